//! Once the results are written, an interrupt ends memproof at once (`interrupt::end_promptly`): SIGTERM while
//! the reports render exits 143 there, rather than after them. The test runs itself again as the process to
//! interrupt, busy the way rendering is, and times nothing but a bound far above what it takes.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "MEMPROOF_END_PROMPTLY_CHILD";

#[test]
fn sigterm_after_end_promptly_exits_143_at_once() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // The interrupted process: catches interrupts as a run does, then arms the prompt end and keeps busy.
        runner::interrupt::install().unwrap();
        runner::interrupt::end_promptly().unwrap();
        println!("ready");
        let until = Instant::now() + Duration::from_secs(60);
        let mut spin = 0u64;
        while Instant::now() < until {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigterm_after_end_promptly_exits_143_at_once",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|line| line.is_ok_and(|line| line == "ready")),
        "the child never got ready"
    );
    let signalled = Instant::now();
    // SAFETY: kill(2) on a child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(30),
        "it ran on after the signal: {:?}",
        signalled.elapsed()
    );
}
