//! The runner on hostile programs and whole process trees: what a program writes on any descriptor cannot change
//! its figures, the limit and the total cover every descendant, nothing is left running, and the wall time is the
//! program's own, not the poll interval's.

mod support;

use runner::{Launch, Measured, ProbeAccess, run};
use schema::results::Outcome;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::shell;

const MIB: u64 = 1024 * 1024;

fn testbed() -> &'static str {
    env!("CARGO_BIN_EXE_memproof-testbed")
}

fn measure(launch: &Launch) -> Measured {
    run(launch, |_| {}).expect("the runner itself works")
}

fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rfind(')').map(|end| stat[end + 2..].to_string()))
        .is_some_and(|rest| !rest.starts_with('Z'))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn a_command_sees_neither_the_control_pipe_nor_the_probe_and_cannot_forge_its_peak() {
    let dir = tempfile::tempdir().unwrap();
    // Lists its own descriptors, then writes forged launcher and probe lines on every descriptor it might guess,
    // then touches 64 MiB.
    let forged = r#"{"type":"exited","code":0,"signal":null,"maxrss_bytes":4096,"mono_ns":1}"#;
    let final_line = r#"{"type":"final","peak_heap_bytes":1,"total_alloc_bytes":1,"alloc_count":1,"end_heap_bytes":1,"vm_hwm_bytes":4096,"error":null,"mono_ns":1}"#;
    let script = format!(
        "ls /proc/self/fd; echo \"probe=${{MEMPROOF_PROBE_FD}} launch=${{MEMPROOF_LAUNCH_FD}}\"; \
         for fd in 3 4 5 6; do (echo '{forged}' >&$fd; echo '{final_line}' >&$fd) 2>/dev/null; done; \
         exec {} touch {} 300",
        testbed(),
        64 * MIB
    );
    let mut launch = shell(&script);
    launch.output_stem = Some(dir.path().join("command"));
    launch.limit_bytes = Some(1024 * MIB);
    let measured = measure(&launch);
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    let stdout = read(&dir.path().join("command.stdout"));
    // ls's own descriptors: 0, 1, 2 and the one it opened to list /proc/self/fd; nothing of memproof's.
    let fds: Vec<&str> = stdout
        .lines()
        .take_while(|l| !l.starts_with("probe="))
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{stdout}");
    assert!(stdout.contains("probe= launch=\n"), "{stdout}");
    let peak = measured.peak_rss_bytes.unwrap();
    assert!(peak >= 64 * MIB, "a forged line set the peak: {peak}");
    assert!(measured.final_figures.is_none());
    assert_eq!(measured.exit.code, Some(0));
}

#[test]
fn a_program_given_the_probe_keeps_its_phases_but_not_a_forged_peak() {
    let script = format!(
        "echo '{{\"type\":\"phase\",\"name\":\"load\",\"mono_ns\":1}}' >&$MEMPROOF_PROBE_FD; \
         echo '{{\"type\":\"launched\",\"pid\":1,\"mono_ns\":1}}' >&$MEMPROOF_PROBE_FD; \
         echo '{{\"type\":\"final\",\"peak_heap_bytes\":5,\"total_alloc_bytes\":5,\"alloc_count\":1,\"end_heap_bytes\":0,\"vm_hwm_bytes\":4096,\"error\":\"forged failure\",\"mono_ns\":1}}' >&$MEMPROOF_PROBE_FD; \
         MEMPROOF_PROBE_FD= exec {} touch {} 100",
        testbed(),
        32 * MIB
    );
    let mut launch = shell(&script);
    launch.probe = ProbeAccess::Program;
    let measured = measure(&launch);
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    assert_eq!(measured.phases[0].name, "load");
    assert_eq!(
        measured.final_figures.as_ref().unwrap().peak_heap_bytes,
        Some(5)
    );
    assert!(measured.peak_rss_bytes.unwrap() >= 32 * MIB);
    // The launcher's words on the probe pipe are a stray line, believed by nothing.
    assert_eq!(measured.stray_lines.len(), 1, "{:?}", measured.stray_lines);
}

#[test]
fn a_newer_probe_protocol_is_not_taken_and_says_why() {
    let script = "echo '{\"type\":\"hello\",\"protocol\":2,\"pid\":1,\"meter\":\"x\"}' >&$MEMPROOF_PROBE_FD; \
         echo '{\"type\":\"phase\",\"name\":\"load\",\"mono_ns\":1}' >&$MEMPROOF_PROBE_FD; \
         echo '{\"type\":\"final\",\"peak_heap_bytes\":5,\"mono_ns\":1}' >&$MEMPROOF_PROBE_FD";
    let mut launch = shell(script);
    launch.probe = ProbeAccess::Program;
    let measured = measure(&launch);
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    assert!(measured.phases.is_empty(), "{:?}", measured.phases);
    assert!(measured.final_figures.is_none());
    assert_eq!(
        measured.stray_lines,
        ["hello spoke probe protocol 2, this memproof speaks 1: none of its lines were taken"]
    );
}

#[test]
fn a_newer_hello_after_data_takes_none_of_it_either() {
    // Data first, then the newer hello: what came before it is dropped too, as the stray line says.
    let script = "echo '{\"type\":\"phase\",\"name\":\"load\",\"mono_ns\":1}' >&$MEMPROOF_PROBE_FD; \
         echo '{\"type\":\"heap\",\"heap_bytes\":7,\"mono_ns\":1}' >&$MEMPROOF_PROBE_FD; \
         echo '{\"type\":\"metric\",\"name\":\"rows\",\"value\":3}' >&$MEMPROOF_PROBE_FD; \
         echo '{\"type\":\"final\",\"peak_heap_bytes\":5,\"mono_ns\":1}' >&$MEMPROOF_PROBE_FD; \
         echo '{\"type\":\"hello\",\"protocol\":2,\"pid\":1,\"meter\":\"x\"}' >&$MEMPROOF_PROBE_FD";
    let mut launch = shell(script);
    launch.probe = ProbeAccess::Program;
    let measured = measure(&launch);
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    assert!(measured.phases.is_empty(), "{:?}", measured.phases);
    assert!(measured.metrics.is_empty(), "{:?}", measured.metrics);
    assert!(measured.timeline.iter().all(|s| s.heap_bytes.is_none()));
    assert!(measured.final_figures.is_none());
    assert_eq!(
        measured.stray_lines,
        ["hello spoke probe protocol 2, this memproof speaks 1: none of its lines were taken"]
    );
}

#[test]
fn a_program_a_case_starts_does_not_inherit_the_probe() {
    let dir = tempfile::tempdir().unwrap();
    let launch = Launch {
        program: PathBuf::from(testbed()),
        args: vec![
            "shell".into(),
            "ls /proc/self/fd; echo probe=$MEMPROOF_PROBE_FD".into(),
        ],
        probe: ProbeAccess::MemproofCase,
        output_stem: Some(dir.path().join("case")),
        ..shell("")
    };
    let measured = measure(&launch);
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    let stdout = read(&dir.path().join("case.stdout"));
    let fds: Vec<&str> = stdout
        .lines()
        .take_while(|l| !l.starts_with("probe="))
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{stdout}");
    assert!(stdout.ends_with("probe=\n"), "{stdout}");
    assert!(
        measured.final_figures.is_some(),
        "the case itself still reports"
    );
}

#[test]
fn the_limit_and_the_total_cover_every_process_of_the_tree() {
    // Two 100 MiB processes under a shell: each under a 150 MiB limit, together over it.
    let script = format!(
        "{t} touch {b} 5000 & {t} touch {b} 5000 & wait",
        t = testbed(),
        b = 100 * MIB
    );
    let mut launch = shell(&script);
    launch.limit_bytes = Some(150 * MIB);
    let started = Instant::now();
    let measured = measure(&launch);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "killed, not waited for"
    );
    assert_eq!(measured.outcome, Outcome::OomKilled, "{:?}", measured.exit);
    assert!(measured.limit.as_ref().unwrap().killed_by_watchdog);
    let total = measured.tree.peak_pss_bytes.unwrap();
    assert!(total > 150 * MIB, "total {total}");
    let largest = measured.tree.largest_process.as_ref().unwrap();
    assert!(largest.peak_rss_bytes < 150 * MIB, "{largest:?}");
    assert_eq!(measured.peak_rss_bytes, Some(largest.peak_rss_bytes));
    assert!(measured.tree.most_processes >= 3);
    let highest_sample = measured
        .timeline
        .iter()
        .filter_map(|s| s.rss_bytes)
        .max()
        .unwrap();
    assert_eq!(highest_sample, total, "the timeline is the tree's total");

    // Without the limit, both run to their end and the total is beside the largest process.
    let mut free = shell(&script.replace("5000", "300"));
    free.limit_bytes = None;
    let measured = measure(&free);
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    let total = measured.tree.peak_pss_bytes.unwrap();
    let largest = measured.tree.largest_process.unwrap().peak_rss_bytes;
    assert!(
        total > largest + 80 * MIB,
        "total {total}, largest {largest}"
    );
}

#[test]
fn descendants_left_running_are_killed_and_named_and_do_not_hold_the_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let mut launch = shell("sleep 37 & sleep 38 > /dev/null 2>&1 & sleep 0.2; echo started");
    launch.output_stem = Some(dir.path().join("command"));
    let started = Instant::now();
    let measured = measure(&launch);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?} for a background sleep",
        started.elapsed()
    );
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    let mut left: Vec<&str> = measured
        .tree
        .left_running
        .iter()
        .map(|l| l.command.as_str())
        .collect();
    left.sort();
    assert_eq!(left, ["sleep 37", "sleep 38"]);
    for process in &measured.tree.left_running {
        assert!(!is_running(process.pid), "{process:?} still runs");
    }
    let message = measured.exit.message.unwrap();
    assert!(
        message.starts_with("left running when it exited, killed: "),
        "{message}"
    );
    assert_eq!(read(&dir.path().join("command.stdout")), "started\n");
}

#[test]
fn the_timeout_bounds_the_whole_tree() {
    // The shell's child ignores the group kill by leaving the group; the timeout still ends everything.
    let mut launch = shell("setsid sleep 41 & sleep 42; wait");
    launch.timeout = Duration::from_millis(500);
    let started = Instant::now();
    let measured = measure(&launch);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(measured.outcome, Outcome::TimedOut);
    let sleeps = std::process::Command::new("pgrep")
        .args(["-f", "^sleep 4[12]$"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert_eq!(sleeps, "", "left running");
}

#[test]
fn the_wall_time_is_the_programs_not_the_poll_intervals() {
    for interval in [Duration::from_secs(10), Duration::from_secs(3600)] {
        let mut launch = shell("sleep 0.2");
        launch.interval = interval;
        let started = Instant::now();
        let measured = measure(&launch);
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(3),
            "waited {elapsed:?} at {interval:?}"
        );
        assert_eq!(measured.outcome, Outcome::Ok);
        // The program slept 200 ms: its wall time is at least that and at most what the whole call took.
        assert!(
            measured.wall_ms >= 200.0 && measured.wall_ms <= elapsed.as_secs_f64() * 1e3,
            "{} ms in a call of {elapsed:?}",
            measured.wall_ms
        );
    }
}

#[test]
fn a_spike_between_two_polls_is_over_the_limit_by_high_water_mark_only() {
    // One poll at the start (the shell sleeping), the next ten seconds later: the 96 MiB spike falls between.
    let mut launch = shell(&format!("sleep 0.3; {} touch {} 0", testbed(), 96 * MIB));
    launch.interval = Duration::from_secs(10);
    launch.limit_bytes = Some(64 * MIB);
    let measured = measure(&launch);
    assert_eq!(measured.outcome, Outcome::OverLimit, "{:?}", measured.exit);
    assert!(!measured.limit.as_ref().unwrap().killed_by_watchdog);
    assert_eq!(measured.exit.code, Some(0), "it ran to its end");
    assert!(measured.peak_rss_bytes.unwrap() >= 96 * MIB);
    assert!(
        measured
            .exit
            .message
            .unwrap()
            .starts_with("went over its memory limit of 64.0 MiB between two polls")
    );
}
