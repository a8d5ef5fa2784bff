//! The reference probe clients (`clients/`) on their real interpreters, through the runner as `measure --probe`
//! runs them: each demo program holds a known amount, and the peak heap its client reports is within 2% of it (for
//! Node and Go, of what the runtime itself says its heap is while it holds it). Without a channel every client is
//! silent. A program's own lines never decide its peak RSS or its outcome, and a line that is not protocol is kept.

use planning::external::{self, HeapSource, ReportedHeap};
use runner::{Launch, Measured, ProbeAccess, run};
use schema::results::Outcome;
use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const HELD: u64 = 64 * 1024 * 1024;

fn clients() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("clients")
}

fn launch(program: impl Into<PathBuf>, args: &[&str]) -> Launch {
    Launch {
        timeout: Duration::from_secs(120),
        probe: ProbeAccess::Program,
        ..runner::test_support::launch(runner::test_support::launcher(), program, args)
    }
}

/// Runs a program as `measure --probe` does and returns what memproof keeps of it and its heap.
fn measure_probe(launch: &Launch) -> (Measured, ReportedHeap) {
    let measured = runner::test_support::run_ok(launch);
    let heap = external::heap_of(&measured, &HeapSource::Probe)
        .unwrap()
        .unwrap();
    (measured, heap)
}

/// A client's report against the truth: within 2%.
fn assert_within_2_percent(reported: u64, truth: u64, what: &str) {
    runner::test_support::assert_within(reported, truth, 0.02, what);
}

fn phases(measured: &Measured) -> Vec<&str> {
    measured.phases.iter().map(|p| p.name.as_str()).collect()
}

/// The Go demo, built with the machine's `go`. Where Go is not installed the test fails, unless
/// `MEMPROOF_ALLOW_SKIP` names `go` (then `None`, and a line saying so): `.ci/run` installs golang-go.
fn go_demo() -> Option<PathBuf> {
    if Command::new("go").arg("version").output().is_err() {
        runner::missing_tool::skip_or_fail(
            "go",
            "go is not installed",
            "Install it with `apt-get install golang-go` (`.ci/run` does)",
        );
        return None;
    }
    let out = tempfile::Builder::new()
        .prefix("probe-demo")
        .tempdir()
        .unwrap()
        .keep();
    let binary = out.join("probe-demo");
    let status = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg("./cmd/probe-demo")
        .current_dir(clients().join("go"))
        .status()
        .expect("go runs");
    assert!(status.success(), "go build failed");
    Some(binary)
}

#[test]
fn the_python_client_reports_the_bytes_it_holds() {
    let script = clients().join("python/demo.py");
    let (measured, heap) = measure_probe(&launch(
        "python3",
        &[script.to_str().unwrap(), &HELD.to_string()],
    ));
    assert_within_2_percent(heap.peak_bytes.unwrap(), HELD, "python peak heap");
    assert!(heap.end_bytes.unwrap() < HELD / 100, "{heap:?}");
    assert_eq!(phases(&measured), ["allocate", "hold", "release"]);
    assert_eq!(measured.metrics["held_bytes"], HELD);
    let sampled_peak = measured.timeline.iter().filter_map(|s| s.heap_bytes).max();
    assert_eq!(sampled_peak, heap.peak_bytes, "the timeline holds the peak");
}

#[test]
fn the_node_client_reports_what_v8_says_its_heap_is() {
    let script = clients().join("node/demo.js");
    let (measured, heap) = measure_probe(&launch(
        "node",
        &[script.to_str().unwrap(), &HELD.to_string()],
    ));
    let runtime = measured.metrics["runtime_heap_bytes"].as_u64().unwrap();
    assert!(runtime >= HELD, "V8 holds the array: {runtime} B");
    assert_within_2_percent(heap.peak_bytes.unwrap(), runtime, "node peak heap");
    assert_eq!(phases(&measured), ["allocate", "hold", "release"]);
}

#[test]
fn the_go_client_reports_what_the_go_runtime_says_its_heap_is() {
    let Some(binary) = go_demo() else { return };
    let (measured, heap) = measure_probe(&launch(&binary, &[&HELD.to_string()]));
    let runtime = measured.metrics["runtime_heap_bytes"].as_u64().unwrap();
    assert!(runtime >= HELD, "the Go heap holds the slice: {runtime} B");
    assert_within_2_percent(heap.peak_bytes.unwrap(), runtime, "go peak heap");
    assert!(heap.total_bytes.unwrap() >= HELD, "{heap:?}");
    assert!(heap.count.unwrap() > 0, "{heap:?}");
    assert_eq!(phases(&measured), ["allocate", "hold", "release"]);
    std::fs::remove_dir_all(binary.parent().unwrap()).unwrap();
}

/// Runs a program with a pipe on fd 3, named by `MEMPROOF_PROBE_FD` only when `channel`, and returns what it wrote
/// on the pipe.
fn written_on_fd_3(program: &Path, args: &[&str], channel: bool) -> Vec<u8> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let write_end = fds[1];
    let mut command = Command::new(program);
    command
        .args(args)
        .env_remove("MEMPROOF_PROBE_FD")
        .stdout(Stdio::null());
    if channel {
        command.env("MEMPROOF_PROBE_FD", "3");
    }
    // SAFETY: dup2 is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(write_end, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = command.status().unwrap();
    // SAFETY: both ends are ours; the child has exited, so the read end sees end of file.
    unsafe { libc::close(write_end) };
    let mut written = Vec::new();
    // SAFETY: the read end is ours and nothing else owns it.
    let mut reader = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
    reader.read_to_end(&mut written).unwrap();
    assert!(
        status.success(),
        "{} failed without a channel",
        program.display()
    );
    written
}

#[test]
fn without_a_channel_every_client_is_silent() {
    let python = clients().join("python/demo.py");
    let node = clients().join("node/demo.js");
    let go = go_demo();
    let mut programs = vec![
        (Path::new("python3"), vec![python.to_str().unwrap(), "1000"]),
        (Path::new("node"), vec![node.to_str().unwrap(), "1000"]),
    ];
    if let Some(go) = &go {
        programs.push((go.as_path(), vec!["1000"]));
    }
    for (program, args) in programs {
        let written = written_on_fd_3(program, &args, false);
        assert!(
            written.is_empty(),
            "{} wrote {:?}",
            program.display(),
            String::from_utf8_lossy(&written)
        );
        // The same pipe gets the lines once the variable names it: the check above can fail.
        let written = written_on_fd_3(program, &args, true);
        assert!(
            String::from_utf8_lossy(&written).starts_with(r#"{"#),
            "{}: {:?}",
            program.display(),
            String::from_utf8_lossy(&written)
        );
    }
    if let Some(go) = go {
        std::fs::remove_dir_all(go.parent().unwrap()).unwrap();
    }
}

#[test]
fn a_program_cannot_forge_its_peak_rss_or_outcome_and_stray_lines_are_kept() {
    // A program that claims a 1-byte peak RSS and an error, and writes a line that is not protocol.
    let forger = r#"
import os
fd = int(os.environ["MEMPROOF_PROBE_FD"])
os.write(fd, b'not a protocol line\n')
os.write(fd, b'{"type":"final","peak_heap_bytes":5,"vm_hwm_bytes":1,"error":"forged","mono_ns":1}\n')
buffer = bytearray(32 * 1024 * 1024)
"#;
    let measured = run(&launch("python3", &["-c", forger]), |_| {}).unwrap();
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    assert!(measured.peak_rss_bytes.unwrap() > 32 * 1024 * 1024);
    assert_eq!(measured.stray_lines, ["not a protocol line"]);
    let heap = external::heap_of(&measured, &HeapSource::Probe)
        .unwrap()
        .unwrap();
    assert_eq!(
        heap.peak_bytes,
        Some(5),
        "the heap is the program's to report"
    );
}

#[test]
fn a_program_that_never_reports_gets_no_heap_rather_than_zero() {
    let measured = run(&launch("python3", &["-c", "pass"]), |_| {}).unwrap();
    assert_eq!(measured.outcome, Outcome::Ok);
    let why = external::heap_of(&measured, &HeapSource::Probe).unwrap_err();
    assert!(why.contains("never reported"), "{why}");
}

#[test]
fn a_program_the_measured_one_starts_does_not_speak_for_it() {
    // The parent takes the channel; a child with the same client finds no variable and stays silent, so the only
    // hello on the channel is the parent's.
    let client = clients().join("python");
    let script = format!(
        r#"
import subprocess, sys
sys.path.insert(0, {client:?})
import memproof_probe as probe
probe.start()
child = """import sys; sys.path.insert(0, {client:?}); import memproof_probe as p; p.start(); p.metric('child', 1); p.finish()"""
subprocess.run([sys.executable, "-c", child], check=True, pass_fds=(3,))
probe.metric("parent", 1)
probe.finish()
"#,
        client = client.to_str().unwrap()
    );
    let (measured, _) = measure_probe(&launch("python3", &["-c", &script]));
    assert_eq!(measured.metrics.get("parent"), Some(&1.into()));
    assert_eq!(
        measured.metrics.get("child"),
        None,
        "{:?}",
        measured.metrics
    );
}
