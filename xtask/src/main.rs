//! `cargo xtask`: memproof's commands. One subcommand per task, each in its own module; the heavy lifting lives in
//! the `harness` (running and measuring) and `reports` (judging and rendering) crates.
//!
//! Exit status: 0 success, 1 a verdict or a case failed, 2 an error (bad usage, bad spec, a build that failed).

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod build;
mod compare_revisions;
mod cross_check;
mod load_test;
mod measure;
mod merge;
mod mutants;
mod noise;
mod preflight;
mod progress;
mod report;

/// memproof: replays out-of-memory bugs and their fixes, measures each case in its own process, and judges them.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    LoadTest(load_test::LoadTest),
    Measure(measure::Measure),
    Merge(merge::Merge),
    Report(report::Report),
    Bless(report::Bless),
    Compare(report::Compare),
    CrossCheck(cross_check::CrossCheck),
    Noise(noise::NoiseCommand),
    Mutants(mutants::Mutants),
}

/// The outcome of a command that ran to its end.
pub enum Finished {
    /// Everything passed.
    Passed,
    /// A verdict or a case failed; the reports say which.
    Failed,
    /// SIGINT or SIGTERM stopped it; what finished is kept. Exits 128 + the signal (130, 143).
    Interrupted(i32),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { 2 } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::LoadTest(flags) => flags.run(),
        Command::Measure(flags) => flags.run(),
        Command::Merge(flags) => flags.run(),
        Command::Report(flags) => flags.run(),
        Command::Bless(flags) => flags.run(),
        Command::Compare(flags) => flags.run(),
        Command::CrossCheck(flags) => flags.run(),
        Command::Noise(flags) => flags.run(),
        Command::Mutants(flags) => flags.run(),
    };
    match result {
        Ok(Finished::Passed) => ExitCode::SUCCESS,
        Ok(Finished::Failed) => ExitCode::from(1),
        Ok(Finished::Interrupted(signal)) => {
            ExitCode::from(harness::interrupt::exit_status(signal))
        }
        Err(error) => {
            eprintln!("memproof: {error:#}");
            ExitCode::from(2)
        }
    }
}
