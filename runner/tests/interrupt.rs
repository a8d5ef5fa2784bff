//! An interrupted runner: SIGTERM (or SIGINT) to memproof kills the whole tree it started and records the case as
//! interrupted. A test file of its own: it catches SIGTERM for its whole process.

mod support;

use runner::{Launch, run};
use schema::results::Outcome;
use std::time::{Duration, Instant};

#[test]
fn sigterm_kills_the_whole_tree_and_the_case_is_interrupted() {
    runner::interrupt::install().unwrap();
    let launch = Launch {
        timeout: Duration::from_secs(60),
        // No poll would come for an hour: the interrupt must not wait for one.
        interval: Duration::from_secs(3600),
        ..support::shell("setsid sleep 51 & sleep 52 & wait")
    };
    let signaller = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: kill(2) on this very process.
        unsafe { libc::kill(std::process::id() as libc::pid_t, libc::SIGTERM) };
    });
    let started = Instant::now();
    let measured = run(&launch, |_| {}).unwrap();
    signaller.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        measured.outcome,
        Outcome::Interrupted,
        "{:?}",
        measured.exit
    );
    assert_eq!(runner::interrupt::received(), Some(libc::SIGTERM));
    assert_eq!(
        measured.exit.message.as_deref(),
        Some("interrupted by SIGTERM: the whole process tree was killed")
    );
    let left = std::process::Command::new("pgrep")
        .args(["-f", "^sleep 5[12]$"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&left.stdout), "", "left running");
}
