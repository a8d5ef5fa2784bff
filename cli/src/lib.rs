//! memproof's commands, one module each, shared by the installed `memproof` (`src/bin/memproof.rs`) and by
//! `cargo xtask` in memproof's own checkout (which adds the project's own commands, `cross-check` and `mutants`).
//! The heavy lifting lives in the `harness` (running and measuring) and `reports` (judging and rendering) crates;
//! [`home`] says where a command finds its specs, baseline, noise and binaries in either mode.
//!
//! Exit status: 0 success, 1 a verdict or a case failed, 2 an error (bad usage, bad spec, a build that failed).

use clap::Subcommand;
use std::process::ExitCode;

pub mod build;
pub mod client;
pub mod compare_revisions;
pub mod home;
pub mod load_test;
pub mod measure;
pub mod merge;
pub mod noise;
pub mod output_dir;
pub mod preflight;
pub mod progress;
pub mod report;
pub mod support;

/// The commands that apply to any user's specs.
#[derive(Subcommand)]
pub enum Command {
    LoadTest(load_test::LoadTest),
    Measure(measure::Measure),
    Merge(merge::Merge),
    Report(report::Report),
    Bless(report::Bless),
    Compare(report::Compare),
    Noise(noise::NoiseCommand),
    Client(client::Client),
}

impl Command {
    pub fn run(self) -> anyhow::Result<Finished> {
        match self {
            Command::LoadTest(flags) => flags.run(),
            Command::Measure(flags) => flags.run(),
            Command::Merge(flags) => flags.run(),
            Command::Report(flags) => flags.run(),
            Command::Bless(flags) => flags.run(),
            Command::Compare(flags) => flags.run(),
            Command::Noise(flags) => flags.run(),
            Command::Client(flags) => flags.run(),
        }
    }
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

/// The exit status of a command's result; an error's whole chain goes to stderr first.
pub fn exit_code(result: anyhow::Result<Finished>) -> ExitCode {
    match result {
        Ok(Finished::Passed) => ExitCode::SUCCESS,
        Ok(Finished::Failed) => ExitCode::from(1),
        Ok(Finished::Interrupted(signal)) => ExitCode::from(runner::interrupt::exit_status(signal)),
        Err(error) => {
            eprintln!("memproof: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Parses a command line, printing clap's message on a usage error: `Err` holds the exit status (2 for a usage
/// error, 0 for `--help` and `--version`).
pub fn parse_or_exit<P: clap::Parser>() -> Result<P, ExitCode> {
    P::try_parse().map_err(|error| {
        let code = if error.use_stderr() { 2 } else { 0 };
        let _ = error.print();
        ExitCode::from(code)
    })
}
