//! For the tests that measure a program through the runner, this crate's and the preload library's: a launch with
//! nothing set but the program (no limit, no environment, no probe, output thrown away), which a test changes by
//! struct update, and a run that must end ok with nothing stray on the probe. Behind the `test-support` feature:
//! nothing that measures uses it.

use crate::results::Outcome;
use crate::runner::{Launch, Measured, ProbeAccess, run};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

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
