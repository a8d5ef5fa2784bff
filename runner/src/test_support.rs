//! For the tests that measure a program through the runner, this crate's and the preload library's: a launch with
//! nothing set but the program (no limit, no environment, no probe, output thrown away), which a test changes by
//! struct update, and a run that must end ok with nothing stray on the probe. Behind the `test-support` feature:
//! nothing that measures uses it.

use crate::{Launch, Measured, ProbeAccess, run};
use schema::results::Outcome;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// This build's `memproof-launch`, for the tests of another package (cargo names `CARGO_BIN_EXE_*` only to a
/// package's own tests): built into the target directory and profile the test itself runs from, once per process.
pub fn launcher() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("the test binary's own path");
            // A test binary is <target>/<profile>/deps/<test>.
            let profile_dir = exe
                .ancestors()
                .nth(2)
                .expect("a test binary under <target>/<profile>/deps")
                .to_path_buf();
            let target_dir = profile_dir.parent().expect("a target directory");
            let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the runner crate sits in the workspace");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = std::process::Command::new(cargo);
            build
                .current_dir(workspace)
                .args(["build", "--quiet", "--package", "memproof-runner"])
                .args(["--bin", "memproof-launch", "--target-dir"])
                .arg(target_dir);
            if profile_dir.file_name() == Some("release".as_ref()) {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(
                status.success(),
                "cargo build of memproof-launch failed ({status})"
            );
            profile_dir.join("memproof-launch")
        })
        .clone()
}

/// `program` with `args`, started by `launcher`: 30 s to finish, polled every 5 ms.
pub fn launch(
    launcher: impl Into<PathBuf>,
    program: impl Into<PathBuf>,
    args: impl IntoIterator<Item = impl Into<OsString>>,
) -> Launch {
    Launch {
        launcher: launcher.into(),
        program: program.into(),
        args: args.into_iter().map(Into::into).collect(),
        env: Vec::new(),
        current_dir: None,
        limit_bytes: None,
        timeout: Duration::from_secs(30),
        interval: Duration::from_millis(5),
        probe: ProbeAccess::Off,
        output_stem: None,
    }
}

/// Checks that `reported` is within `tolerance` (a fraction of `truth`) of `truth`, saying how far off it is if not:
/// how a meter is held to another meter, or to what a program is known to hold.
pub fn assert_within(reported: u64, truth: u64, tolerance: f64, what: &str) {
    let off = reported.abs_diff(truth) as f64 / truth as f64;
    assert!(
        off <= tolerance,
        "{what}: {reported} reported, {truth} expected: {:.3}% apart, more than {}%",
        off * 100.0,
        tolerance * 100.0
    );
}

/// Runs `launch` and returns what memproof keeps of it, after checking it ended ok (else its exit and stderr are
/// the message) and that every line it wrote on the probe was protocol.
pub fn run_ok(launch: &Launch) -> Measured {
    let measured = run(launch, |_| {}).unwrap();
    assert_eq!(
        measured.outcome,
        Outcome::Ok,
        "{:?}\n{}",
        measured.exit,
        measured.stderr_tail
    );
    assert!(
        measured.stray_lines.is_empty(),
        "{:?}",
        measured.stray_lines
    );
    measured
}
