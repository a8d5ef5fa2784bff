//! The commands under faults, run as a user runs them (the built `xtask` binary, real processes): flags checked
//! before anything runs, a locked output directory, an interrupt that kills everything and keeps what finished, a
//! full disk that stops the run with one line, a baseline checked before the first case.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{smoke_load_test, xtask};

fn run(args: &[&str]) -> Output {
    xtask().args(args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The pids of processes whose command line matches `pattern` (pgrep -f).
fn pgrep(pattern: &str) -> String {
    let output = Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    // Generous: the first call builds the release binaries.
    let until = Instant::now() + Duration::from_secs(600);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on a child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
}

/// `xtask measure --out DIR -- COMMAND`.
fn measure(dir: &Path, command: &[&str]) -> Command {
    let mut measure = xtask();
    measure
        .args(["measure", "--out"])
        .arg(dir)
        .arg("--")
        .args(command);
    measure
}

/// Starts measuring `command` into `dir`, and returns once a process matching `started` (a pgrep pattern) runs.
fn start_measuring(dir: &Path, command: &[&str], stderr: Stdio, started: &str) -> Child {
    let child = measure(dir, command).stderr(stderr).spawn().unwrap();
    wait_until(&format!("{started:?} to start"), || {
        !pgrep(started).is_empty()
    });
    child
}

fn results(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn flag_values_out_of_range_are_errors_before_anything_runs() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["--timeout", "10000000000000000000s"],
            "memproof: --timeout: a timeout of 10000000000000000000 s is too long: expected at most 100 years",
        ),
        (
            &["--interval", "0ms"],
            "memproof: --interval 0s is too short: expected at least 1ms",
        ),
        (&["--limit", "0"], "memproof: --limit 0 is not a limit"),
        (
            &["--timeout", "0s"],
            "memproof: --timeout 0s is not longer than --interval 0.005s",
        ),
        (
            &["--limit", "100TiB"],
            "memproof: --limit 100 TiB is too large: expected at most 2 times",
        ),
        (
            &["--limit", "99999999TiB"],
            "size \"99999999TiB\" is too large",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["measure"];
        args.extend_from_slice(flags);
        args.extend(["--", "true"]);
        let output = run(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{flags:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{flags:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn measure_interrupted_kills_the_tree_keeps_the_result_and_exits_143() {
    let dir = tempfile::tempdir().unwrap();
    let child = start_measuring(
        dir.path(),
        &["sh", "-c", "setsid sleep 71 & sleep 72; wait"],
        Stdio::piped(),
        "^sleep 72$",
    );
    signal(&child, libc::SIGTERM);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    assert_eq!(pgrep("^sleep 7[12]$"), "", "left running");
    let results = results(dir.path());
    assert_eq!(results["cases"][0]["outcome"], "interrupted");
    assert!(dir.path().join("index.html").exists(), "the reports render");
}

#[test]
fn a_second_run_into_a_busy_output_directory_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let first = start_measuring(dir.path(), &["sleep", "73"], Stdio::null(), "^sleep 73$");
    let second = measure(dir.path(), &["true"]).output().unwrap();
    signal(&first, libc::SIGINT);
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(130));
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    assert!(
        stderr(&second).contains(&format!(
            "{}: another memproof run (pid {}) is writing to this directory",
            dir.path().display(),
            first_pid(&first, dir.path())
        )),
        "{}",
        stderr(&second)
    );
}

/// The pid the first run wrote into its lock file.
fn first_pid(_first: &Output, dir: &Path) -> String {
    std::fs::read_to_string(dir.join(".memproof.lock"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn compare_of_two_runs_with_nothing_in_common_is_an_error() {
    let old = tempfile::tempdir().unwrap();
    let new = tempfile::tempdir().unwrap();
    let output = run(&[
        "measure",
        "--out",
        old.path().to_str().unwrap(),
        "--",
        "true",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = std::fs::read_to_string(old.path().join("results.json")).unwrap();
    std::fs::write(
        new.path().join("results.json"),
        text.replace("measure/true/", "measure/other/"),
    )
    .unwrap();
    let output = run(&[
        "compare",
        old.path().to_str().unwrap(),
        new.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the two runs have no case in common"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_missing_or_broken_baseline_is_an_error_before_the_first_case() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "not json").unwrap();
    let missing = dir.path().join("missing.json");
    for (baseline, expected) in [
        (&missing, "no such baseline (given with --baseline)"),
        (&garbage, "cannot be used as the baseline"),
    ] {
        let out = dir.path().join("run");
        let output = smoke_load_test("calibration")
            .arg("--baseline")
            .arg(baseline)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
        assert!(!out.join("results.json").exists(), "a case ran");
    }
}

#[test]
fn a_misspelt_param_of_memproofs_own_scenario_stops_the_run_before_the_first_case() {
    let dir = tempfile::tempdir().unwrap();
    let specs = dir.path().join("specs");
    std::fs::create_dir(&specs).unwrap();
    // The calibration spec with the smoke profile's `hold` misspelt, at tiny sizes: were a case to run, it would
    // be over in a moment.
    let calibration = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/calibration.toml"),
    )
    .unwrap()
    .replace(
        "values = [16777216] }\nparams = { steps = 4, hold = \"50ms\"",
        "values = [65536] }\nparams = { steps = 4, hodl = \"5ms\"",
    );
    assert!(
        calibration.contains("hodl"),
        "the spec changed: misspell another way"
    );
    let spec = specs.join("calibration.toml");
    std::fs::write(&spec, &calibration).unwrap();
    let line = calibration
        .lines()
        .position(|line| line.contains("hodl"))
        .unwrap()
        + 1;
    let out = dir.path().join("run");
    let output = xtask()
        .args([
            "load-test",
            "--profile",
            "smoke",
            "--dhat",
            "none",
            "--spec-dir",
        ])
        .arg(&specs)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let expected = format!(
        "memproof: {}:{line}:10: profile smoke: params: unknown field `hodl`, expected one of `steps`, `hold`, `threads`, `leak`\n",
        spec.display()
    );
    assert!(stderr.ends_with(&expected), "{stderr}");
    assert!(
        !stderr.contains("memproof: load test, profile"),
        "a case started: {stderr}"
    );
    assert!(!out.join("results.json").exists(), "a case ran");
}

#[test]
fn load_test_interrupted_keeps_the_finished_cases_and_the_interrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let child = smoke_load_test("startup")
        .args(["--dhat", "none", "--out"])
        .arg(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The calibration case finishes first and is written at once; then interrupt the next.
    wait_until("the first case to be written", || {
        dir.path().join("results.json").exists()
    });
    signal(&child, libc::SIGINT);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    let results = results(dir.path());
    let cases = results["cases"].as_array().unwrap();
    assert_eq!(cases[0]["outcome"], "ok", "{}", cases[0]["id"]);
    assert_eq!(cases.last().unwrap()["outcome"], "interrupted");
    let verdicts = results["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 1);
    assert!(
        verdicts[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("the run was interrupted by SIGINT")
    );
    assert!(dir.path().join("index.html").exists(), "the reports render");
    assert_eq!(
        pgrep(dir.path().to_str().unwrap()),
        "",
        "a case left running"
    );
}

/// How a machine lets the full-disk test mount its tmpfs.
const MOUNT_REMEDY: &str =
    "Run the tests as root (in a container, with --privileged), as `.ci/run` and CI do";

#[test]
fn a_full_disk_stops_the_run_at_once_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mount = PathBuf::from(dir.path());
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&mount)
        .output();
    match mounted {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            runner::missing_tool::skip_or_fail(
                "tmpfs",
                &format!(
                    "cannot mount a small tmpfs to fill ({})",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
                MOUNT_REMEDY,
            );
            return;
        }
        Err(error) => {
            runner::missing_tool::skip_or_fail(
                "tmpfs",
                &format!("cannot run mount: {error}"),
                MOUNT_REMEDY,
            );
            return;
        }
    }
    let output = smoke_load_test("hook-storm")
        .arg("--out")
        .arg(&mount)
        .output()
        .unwrap();
    let written = results_cases(&mount);
    let _ = Command::new("umount").arg(&mount).status();
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    let last = text.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with(&format!("memproof: {}/", mount.display()))
            && last.ends_with("No space left on device (os error 28)"),
        "{text}"
    );
    assert!(!text.contains("Error("), "a debug dump: {text}");
    assert!(
        written <= 1,
        "the run went on after the first failed write: {written} cases"
    );
    assert_eq!(pgrep(mount.to_str().unwrap()), "", "left running");
}

fn results_cases(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .map_or(0, |results| results["cases"].as_array().map_or(0, Vec::len))
}
