//! Programs that turn on their launcher: kill it, signal it, stop it. Whatever the program does to `$PPID`, nothing
//! it started outlives the run, the timeout bounds it, and the result says what happened.

mod support;

use runner::{Launch, Measured, run};
use schema::results::Outcome;
use std::time::{Duration, Instant};
use support::shell;

/// Runs `launch`, whose program would run for minutes if anything waited for it: the run must end well before.
fn measure(launch: &Launch) -> Measured {
    let started = Instant::now();
    let measured = run(launch, |_| {}).expect("the runner itself works");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the run waited for the program: {:?}\n{:?}",
        started.elapsed(),
        measured.exit
    );
    measured
}

fn is_running(pid: u32) -> bool {
    meter::procfs::state_of(pid).is_some_and(|state| state != 'Z' && state != 'X')
}

/// The processes running `command` exactly, anywhere on the machine.
fn running(command: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            && is_running(pid)
            && meter::procfs::command_of(pid).as_deref() == Some(command)
        {
            found.push(pid);
        }
    }
    found
}

fn named(measured: &Measured) -> Vec<&str> {
    let mut names: Vec<&str> = measured
        .tree
        .left_running
        .iter()
        .map(|left| left.command.as_str())
        .collect();
    names.sort();
    names
}

#[test]
fn a_program_that_kills_its_launcher_leaves_nothing_running_and_everything_named() {
    let measured = measure(&shell(
        "sleep 311 & setsid sleep 312 & sleep 0.3; kill -KILL $PPID; exec sleep 313",
    ));
    assert_eq!(measured.outcome, Outcome::Failed, "{:?}", measured.exit);
    let message = measured.exit.message.clone().unwrap_or_default();
    assert!(
        message.contains("memproof-launch was killed by signal 9 before the program ended"),
        "{message}"
    );
    // The program itself is named as it was when the runner killed it: before or after its exec.
    let names = named(&measured);
    assert_eq!(names.len(), 3, "{message}");
    assert!(
        names.contains(&"sleep 311") && names.contains(&"sleep 312"),
        "{message}"
    );
    assert!(
        names.iter().any(|name| name.ends_with("sleep 313")),
        "{message}"
    );
    for left in &measured.tree.left_running {
        assert!(!is_running(left.pid), "{left:?} still runs");
    }
    for command in ["sleep 311", "sleep 312", "sleep 313"] {
        assert_eq!(running(command), Vec::<u32>::new(), "{command} escaped");
    }
}

#[test]
fn no_catchable_signal_to_the_launcher_ends_the_run_early() {
    // Every catchable signal but SIGCHLD and SIGCONT (harmless by default), sent by the program to its launcher,
    // then a child left behind and a clean exit: the launcher lives on to sweep it and report the exit.
    let signals: Vec<String> = (1..libc::SIGRTMAX())
        .filter(|&s| {
            ![
                libc::SIGKILL,
                libc::SIGSTOP,
                libc::SIGCHLD,
                libc::SIGCONT,
                32,
                33,
            ]
            .contains(&s)
        })
        .map(|s| s.to_string())
        .collect();
    let script = format!(
        "sleep 321 & for s in {}; do kill -$s $PPID; done; sleep 0.2; exit 3",
        signals.join(" ")
    );
    let measured = measure(&shell(&script));
    assert_eq!(measured.outcome, Outcome::Failed, "{:?}", measured.exit);
    assert_eq!(measured.exit.code, Some(3), "{:?}", measured.exit);
    assert_eq!(named(&measured), ["sleep 321"], "{:?}", measured.exit);
    assert_eq!(running("sleep 321"), Vec::<u32>::new());
}

#[test]
fn a_stopped_launcher_holds_neither_the_run_nor_the_timeout() {
    // The program stops its launcher and runs on: the timeout ends it all the same.
    let measured = measure(&Launch {
        timeout: Duration::from_secs(2),
        ..shell("sleep 331 & kill -STOP $PPID; exec sleep 332")
    });
    assert_eq!(measured.outcome, Outcome::TimedOut, "{:?}", measured.exit);
    let message = measured.exit.message.clone().unwrap_or_default();
    assert!(
        message.contains("the launcher was found stopped"),
        "{message}"
    );
    for command in ["sleep 331", "sleep 332"] {
        assert_eq!(running(command), Vec::<u32>::new(), "{command} escaped");
    }
}

#[test]
fn a_launcher_stopped_over_and_over_still_ends_at_the_timeout() {
    // The program stops its launcher in a loop, so continuing it is not enough: the runner kills the tree itself
    // and, if the launcher does not answer, the launcher too.
    let measured = measure(&Launch {
        timeout: Duration::from_secs(2),
        ..shell("sleep 341 & while :; do kill -STOP $PPID; done")
    });
    assert_eq!(measured.outcome, Outcome::TimedOut, "{:?}", measured.exit);
    assert_eq!(running("sleep 341"), Vec::<u32>::new());
}

#[test]
fn a_program_that_exits_while_its_launcher_is_stopped_ends_the_run() {
    let measured = measure(&Launch {
        timeout: Duration::from_secs(120),
        ..shell("kill -STOP $PPID; exit 0")
    });
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
}

#[test]
fn a_fork_storm_left_running_is_counted_beyond_the_names() {
    let measured = measure(&shell(
        "i=0; while [ $i -lt 300 ]; do sleep 351 & i=$((i+1)); done; exit 0",
    ));
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    assert_eq!(measured.left_running_count, 300);
    assert_eq!(measured.tree.left_running.len(), 100);
    let message = measured.exit.message.clone().unwrap_or_default();
    assert!(message.contains("and 200 more (300 in all)"), "{message}");
    assert_eq!(running("sleep 351"), Vec::<u32>::new());
}
