//! `memproof`: the installed command. It runs a user's own scenario specs (programs in any language, given as
//! commands) from any directory; see docs/user-guide.md.

use clap::Parser;
use memproof_cli::home::{self, Mode};
use std::process::ExitCode;

/// memproof: measures a program's memory in a process tree of its own, before and after a fix, and judges budgets,
/// claims, growth and regressions against a committed baseline. Exit status: 0 passed, 1 a verdict or case failed,
/// 2 an error.
#[derive(Parser)]
#[command(name = "memproof", version)]
struct Cli {
    #[command(subcommand)]
    command: memproof_cli::Command,
}

fn main() -> ExitCode {
    home::set_mode(Mode::Installed);
    match memproof_cli::parse_or_exit::<Cli>() {
        Ok(cli) => memproof_cli::exit_code(cli.command.run()),
        Err(code) => code,
    }
}
