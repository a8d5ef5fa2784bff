//! What the xtask integration tests share: the built `xtask` binary, run as a user runs it, and the smallest real
//! load test of one scenario (the smoke profile), to which each test adds the flags it is about.
#![allow(dead_code)]

use std::process::{Command, Stdio};

/// The built `xtask`, reading nothing from stdin.
pub fn xtask() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.stdin(Stdio::null());
    command
}

/// `xtask load-test --profile smoke --scenario SCENARIO`.
pub fn smoke_load_test(scenario: &str) -> Command {
    let mut command = xtask();
    command.args(["load-test", "--profile", "smoke", "--scenario", scenario]);
    command
}
