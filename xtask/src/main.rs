//! `cargo xtask`: memproof's commands in its own checkout. The commands that apply to any user's specs are the
//! installed `memproof`'s (`memproof-cli`), run here against the checkout's specs and its freshly built binaries;
//! `cross-check` and `mutants` are the project's own.
//!
//! Exit status: 0 success, 1 a verdict or a case failed, 2 an error (bad usage, bad spec, a build that failed).

use clap::{Parser, Subcommand};
use memproof_cli::home::{self, Mode};
use memproof_cli::{Finished, build};
use std::process::ExitCode;

mod cross_check;
mod mutants;

/// memproof: replays out-of-memory bugs and their fixes, measures each case in its own process, and judges them.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Shared(memproof_cli::Command),
    CrossCheck(cross_check::CrossCheck),
    Mutants(mutants::Mutants),
}

fn main() -> ExitCode {
    home::set_mode(Mode::Checkout);
    // A shared target directory can hand this checkout another checkout's xtask: run our own instead.
    match build::run_own_build_if_stale() {
        Ok(None) => {}
        Ok(Some(status)) => {
            return ExitCode::from(status.code().map_or(2, |code| code.clamp(0, 255) as u8));
        }
        Err(error) => {
            eprintln!("memproof: {error:#}");
            return ExitCode::from(2);
        }
    }
    let cli = match memproof_cli::parse_or_exit::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result: anyhow::Result<Finished> = match cli.command {
        Command::Shared(command) => command.run(),
        Command::CrossCheck(flags) => flags.run(),
        Command::Mutants(flags) => flags.run(),
    };
    memproof_cli::exit_code(result)
}
