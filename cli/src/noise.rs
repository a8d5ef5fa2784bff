//! `cargo xtask noise`: runs a profile's load test several times and writes how far each figure of each case moved
//! (`reports/noise.json`), which the regression check takes its tolerances from. Run it again when a scenario's
//! load or the machine changes, and commit the file with the baseline; `--scenario NAME --update` gives a new
//! scenario its entries and leaves every other entry as it was.

use crate::Finished;
use crate::home::{self, SpecHome};
use crate::load_test::LoadTest;
use anyhow::{Context as _, bail};
use clap::Parser as _;
use reports::noise::Noise;
use schema::results::{RESULTS_FILE, Results};
use std::path::PathBuf;

/// Measures each figure's spread over repeated runs of a profile.
#[derive(clap::Args)]
pub struct NoiseCommand {
    /// How many runs to measure.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The profile to run.
    #[arg(long, default_value = "ci", value_parser = clap::builder::PossibleValuesParser::new(schema::spec::PROFILES))]
    profile: String,
    /// Run only this scenario (repeatable). The noise file is then written under target/, not over the committed
    /// one, which must hold every case.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Measure these finished runs (directories holding results.json) instead of running the load test.
    #[arg(long = "from", value_name = "DIR", num_args = 1..)]
    from: Vec<PathBuf>,
    /// Fold in an earlier noise file of the same profile (repeatable): each figure keeps the wider spread, so a
    /// mode that earlier runs saw and these did not still sets its tolerance.
    #[arg(long = "fold", value_name = "FILE")]
    fold: Vec<PathBuf>,
    /// Forget these cases in the folded files (repeatable; a case id, or a prefix ending at a `/`, e.g.
    /// `large-session/best`): their code changed since, and only this measurement describes them.
    #[arg(long = "refresh", value_name = "CASES")]
    refresh: Vec<String>,
    /// Forget this figure of every case in the folded files (repeatable; `peak_rss_bytes`, `wall_ms`, …): what every
    /// case runs under changed that figure alone, so only this measurement describes it and the others still fold.
    #[arg(long = "refresh-figure", value_name = "FIGURE")]
    refresh_figures: Vec<String>,
    /// Fold this measurement into the noise file (the one beside the specs, or --out) and write it back: with
    /// --scenario, that scenario's entries (a new incident's first ones) and every other entry as it was.
    #[arg(long)]
    update: bool,
    /// The scenario specs' directory [default: as `load-test`'s]; the noise file goes beside them.
    #[arg(long, value_name = "DIR")]
    spec_dir: Option<PathBuf>,
    /// Where to write the noise file [default: the one beside the specs (reports/noise.json in memproof's
    /// checkout, DIR/noise.json for --spec-dir DIR); with --scenario and no --update,
    /// target/memproof/noise/<profile>/noise.json].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `path` as the recorded command names it: relative to the repository, never absolute.
fn recorded(path: &std::path::Path) -> anyhow::Result<String> {
    Ok(reports::noise::repository_relative(
        path,
        &home::repository()?,
        &std::env::current_dir().context("the current directory")?,
    ))
}

/// A parser for one load-test run's flags, so each run goes through `cargo xtask load-test`'s own code.
#[derive(clap::Parser)]
struct LoadTestFlags {
    #[command(flatten)]
    load_test: LoadTest,
}

impl NoiseCommand {
    pub fn run(self) -> anyhow::Result<Finished> {
        if (!self.refresh.is_empty() || !self.refresh_figures.is_empty())
            && self.fold.is_empty()
            && !self.update
        {
            bail!(
                "--refresh and --refresh-figure forget entries of an earlier file: expected --fold FILE or --update"
            );
        }
        let home = SpecHome::resolve(self.spec_dir.as_deref())?;
        let runs_root = crate::output_dir::default_out("noise")?.join(&self.profile);
        let (dirs, command) = if self.from.is_empty() {
            if self.runs < 2 {
                bail!(
                    "--runs {}: expected at least 2 runs to measure a spread",
                    self.runs
                );
            }
            let mut dirs = Vec::new();
            for run in 1..=self.runs {
                let dir = runs_root.join(format!("run-{run}"));
                eprintln!("memproof: noise run {run} of {}", self.runs);
                let mut args = vec![
                    "load-test".to_string(),
                    "--profile".into(),
                    self.profile.clone(),
                    "--out".into(),
                    dir.display().to_string(),
                ];
                for scenario in &self.scenarios {
                    args.extend(["--scenario".to_string(), scenario.clone()]);
                }
                if let Some(dir) = &self.spec_dir {
                    args.extend(["--spec-dir".to_string(), dir.display().to_string()]);
                }
                let flags = LoadTestFlags::try_parse_from(&args)?;
                // A failed verdict does not spoil the figures: the spread is measured all the same.
                flags.load_test.run()?;
                dirs.push(dir);
            }
            let mut command = format!(
                "{} --runs {} --profile {}",
                home.command("noise"),
                self.runs,
                self.profile
            );
            for scenario in &self.scenarios {
                command.push_str(&format!(" --scenario {scenario}"));
            }
            (dirs, command)
        } else {
            let listed: Vec<String> = self
                .from
                .iter()
                .map(|d| recorded(d))
                .collect::<anyhow::Result<_>>()?;
            (
                self.from.clone(),
                format!("{} --from {}", home.command("noise"), listed.join(" ")),
            )
        };
        let runs = dirs
            .iter()
            .map(|dir| Results::read(&dir.join(RESULTS_FILE)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if runs.len() < 2 {
            bail!("--from: expected at least 2 run directories to measure a spread");
        }
        if let Some(run) = runs.iter().find(|r| r.run.profile != self.profile) {
            bail!(
                "--from: a run of profile {}, expected {} (give --profile {})",
                run.run.profile,
                self.profile,
                run.run.profile
            );
        }
        let mut command = command;
        for earlier in &self.fold {
            command.push_str(&format!(" --fold {}", recorded(earlier)?));
        }
        if self.update {
            command.push_str(" --update");
        }
        for cases in &self.refresh {
            command.push_str(&format!(" --refresh {cases}"));
        }
        for figure in &self.refresh_figures {
            command.push_str(&format!(" --refresh-figure {figure}"));
        }
        let measurement = Noise::measure(&runs, &command)?;
        let measured_cases = measurement.cases.len();
        if let Some(note) = measurement.dirty_note() {
            eprintln!("{note}");
        }
        let out = match (&self.out, self.scenarios.is_empty() || self.update) {
            (Some(out), _) => out.clone(),
            (None, true) => home.noise.clone(),
            (None, false) => runs_root.join("noise.json"),
        };
        let mut earlier_files = Vec::new();
        if self.update
            && let Some(file) = Noise::read(&out)?
        {
            earlier_files.push((out.clone(), file));
        }
        for earlier in &self.fold {
            let file = Noise::read(earlier)?
                .with_context(|| format!("--fold {}: no such file", earlier.display()))?;
            earlier_files.push((earlier.clone(), file));
        }
        let mut folded_files = Vec::new();
        for (earlier, mut folded) in earlier_files {
            let forgotten = folded.forget(&self.refresh);
            if !self.refresh.is_empty() {
                eprintln!(
                    "memproof: --refresh: {forgotten} cases of {} forgotten",
                    earlier.display()
                );
            }
            let touched = folded
                .forget_figures(&self.refresh_figures)
                .with_context(|| format!("--fold {}", earlier.display()))?;
            if !self.refresh_figures.is_empty() {
                eprintln!(
                    "memproof: --refresh-figure: {} forgotten in {touched} cases of {}",
                    self.refresh_figures.join(", "),
                    earlier.display()
                );
            }
            folded_files.push(folded);
        }
        let noise = Noise::folded(measurement, folded_files)?;
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create", parent.display()))?;
        }
        noise.write(&out)?;
        println!("{}", noise.spread_table());
        let specs = schema::spec::read_dir(&home.dir)?;
        println!(
            "{}",
            reports::judge::tolerance::detection_table(&noise, &specs)
        );
        eprintln!(
            "memproof: {} cases measured over {} {} runs; {} cases written to {}",
            measured_cases,
            runs.len(),
            noise.profile,
            noise.cases.len(),
            out.display()
        );
        Ok(Finished::Passed)
    }
}
