//! The runner on real child processes: outcomes, limits, timeouts, and a peak RSS that a large parent cannot
//! inflate. The children are `memproof-testbed`, whose memory behaviour is known in advance.

mod support;

use runner::{Launch, Measured, ProbeAccess, run};
use schema::results::Outcome;
use std::path::PathBuf;
use std::time::Duration;

const MIB: u64 = 1024 * 1024;

fn testbed() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_memproof-testbed"))
}

fn launch(args: &[&str]) -> Launch {
    Launch {
        interval: Duration::from_millis(2),
        probe: ProbeAccess::MemproofCase,
        ..support::launch(testbed(), args)
    }
}

fn measure(launch: &Launch) -> Measured {
    run(launch, |_| {}).expect("the runner itself works")
}

#[test]
fn a_child_over_its_limit_is_oom_killed_and_keeps_its_timeline() {
    let mut over = launch(&["grow", &(8 * MIB).to_string(), "5"]);
    over.limit_bytes = Some(64 * MIB);
    let measured = measure(&over);
    assert_eq!(measured.outcome, Outcome::OomKilled, "{:?}", measured.exit);
    assert_eq!(measured.exit.signal, Some(libc::SIGKILL));
    let limit = measured.limit.as_ref().unwrap();
    assert!(limit.killed_by_watchdog);
    assert_eq!(limit.mechanism, "watchdog");
    // What it streamed before the kill is kept: heap samples, RSS samples, its phase and its last metric.
    assert!(
        measured
            .timeline
            .iter()
            .filter(|s| s.heap_bytes.is_some())
            .count()
            >= 3
    );
    let highest_rss = measured
        .timeline
        .iter()
        .filter_map(|s| s.rss_bytes)
        .max()
        .unwrap();
    assert!(
        highest_rss > 64 * MIB,
        "the sample that tripped the watchdog is in the timeline"
    );
    let phases: Vec<&str> = measured.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases, ["grow", "oom-kill"]);
    assert!(measured.metrics["blocks"].as_u64().unwrap() >= 7);
    assert!(
        measured.final_figures.is_none(),
        "a killed child makes no final report"
    );
    assert!(measured.peak_rss_bytes.unwrap() > 64 * MIB);
    assert_eq!(
        limit.overshoot_bytes,
        measured.peak_rss_bytes.unwrap() - 64 * MIB
    );
}

#[test]
fn a_child_past_its_timeout_is_killed_as_timed_out() {
    let mut slow = launch(&["sleep", "20000"]);
    slow.timeout = Duration::from_millis(300);
    let measured = measure(&slow);
    assert_eq!(measured.outcome, Outcome::TimedOut);
    assert!(
        measured.wall_ms < 10_000.0,
        "killed, not waited for: {} ms",
        measured.wall_ms
    );
    assert!(
        measured
            .exit
            .message
            .as_deref()
            .unwrap()
            .starts_with("still running after 0.3 s")
    );
}

#[test]
fn a_child_that_panics_fails_with_the_panic_message() {
    let measured = measure(&launch(&["panic", "the trim went wrong"]));
    assert_eq!(measured.outcome, Outcome::Failed);
    assert_eq!(measured.exit.code, Some(101));
    let message = measured.exit.message.unwrap();
    assert!(message.contains("the trim went wrong"), "{message}");
    assert!(
        message.starts_with("exited with status 101\n--------------------\n"),
        "{message}"
    );
}

#[test]
fn an_external_command_has_rss_but_no_heap_figures() {
    let mut shell = launch(&[]);
    shell.probe = ProbeAccess::Off;
    shell.program = PathBuf::from("sh");
    shell.args = vec!["-c".into(), "echo oops >&2; exit 3".into()];
    let measured = measure(&shell);
    assert_eq!(measured.outcome, Outcome::Failed);
    assert_eq!(measured.exit.code, Some(3));
    assert!(measured.final_figures.is_none());
    assert!(measured.peak_rss_bytes.is_some_and(|peak| peak > 0));
    assert_eq!(
        measured.exit.message.unwrap(),
        "exited with status 3\n--------------------\noops\n--------------------"
    );
}

#[test]
fn a_command_that_cannot_start_fails_with_the_reason() {
    let mut missing = launch(&[]);
    missing.program = PathBuf::from("/nonexistent/program");
    let measured = measure(&missing);
    assert_eq!(measured.outcome, Outcome::Failed);
    assert!(
        measured
            .exit
            .message
            .unwrap()
            .starts_with("cannot run /nonexistent/program: ")
    );
}

#[test]
fn a_large_zeroed_buffer_shows_only_the_touched_pages_in_rss() {
    // 512 MiB asked for, 8 MiB touched: a meter without a zeroed path would make all 512 MiB resident.
    let measured = measure(&launch(&[
        "zeroed",
        &(512 * MIB).to_string(),
        &(8 * MIB).to_string(),
        "50",
    ]));
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    let peak_rss = measured.peak_rss_bytes.unwrap();
    assert!(peak_rss >= 8 * MIB, "{peak_rss}");
    assert!(
        peak_rss < 40 * MIB,
        "the untouched 504 MiB stayed out of RSS: {peak_rss}"
    );
    let heap = measured.final_figures.unwrap().peak_heap_bytes.unwrap();
    assert!(
        heap >= 512 * MIB,
        "the heap counts what was asked for: {heap}"
    );
}

#[test]
fn peak_rss_is_the_childs_own_even_when_the_parent_is_far_larger() {
    // Make this (parent) process hold 600 MiB resident: exec would carry a forked copy's high-water mark over.
    let mut ballast = vec![0u8; 600 * MIB as usize];
    for offset in (0..ballast.len()).step_by(4096) {
        ballast[offset] = 1;
    }
    let touched = 64 * MIB;
    let measured = measure(&launch(&["touch", &touched.to_string(), "100"]));
    std::hint::black_box(&ballast);
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    let peak = measured.peak_rss_bytes.unwrap();
    let maxrss = measured.maxrss_bytes.unwrap();
    assert!(
        peak >= touched,
        "peak {peak} below the {touched} bytes touched"
    );
    assert!(
        peak < touched + 16 * MIB,
        "peak {peak} is not the child's own"
    );
    // The launcher's ru_maxrss is the kernel's figure for the same process: they agree within a few percent.
    let ratio = peak as f64 / maxrss as f64;
    assert!(
        (0.97..=1.03).contains(&ratio),
        "VmHWM {peak} against ru_maxrss {maxrss}"
    );
}
