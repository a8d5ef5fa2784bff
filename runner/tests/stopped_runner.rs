//! A program that stops memproof itself: nothing of the runner's can run meanwhile, so on resume it polls at once,
//! enforces the limit, and says how long it did not watch. A test file of its own: the program stops this whole
//! test process.

mod support;

use runner::{Launch, run};
use schema::results::Outcome;
use std::time::Duration;

const MIB: u64 = 1024 * 1024;

#[test]
fn a_runner_stopped_by_the_program_enforces_the_limit_on_resume_and_says_it_was_blind() {
    // The runner is the launcher's parent: field 4 of the launcher's stat. A child of the program continues it
    // after two seconds, while the program holds 300 MiB under a 100 MiB limit.
    let script = format!(
        "runner=$(cut -d' ' -f4 /proc/$PPID/stat); kill -STOP $runner; \
         (sleep 2; kill -CONT $runner) & exec {} touch {} 20000",
        env!("CARGO_BIN_EXE_memproof-testbed"),
        300 * MIB
    );
    let measured = run(
        &Launch {
            limit_bytes: Some(100 * MIB),
            timeout: Duration::from_secs(60),
            ..support::shell(&script)
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(measured.outcome, Outcome::OomKilled, "{:?}", measured.exit);
    assert!(
        measured.unwatched_ms >= 1000.0,
        "{} ms unwatched",
        measured.unwatched_ms
    );
    let message = measured.exit.message.clone().unwrap_or_default();
    assert!(message.contains("memproof did not run for"), "{message}");
}
