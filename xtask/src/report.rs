//! `cargo xtask report`, `bless` and `compare`: everything that reads results.json and runs nothing.

use crate::Finished;
use crate::build;
use crate::load_test::select_specs;
use harness::results::{RESULTS_FILE, Results};
use std::path::PathBuf;

/// Re-renders every report of a run from its results.json, without running anything.
#[derive(clap::Args)]
pub struct Report {
    /// The run's output directory (holding results.json).
    dir: PathBuf,
}

impl Report {
    pub fn run(self) -> anyhow::Result<Finished> {
        let results = Results::read(&self.dir.join(RESULTS_FILE))?;
        let specs = select_specs(&[])?;
        reports::write_reports(&results, &specs, &self.dir)?;
        eprintln!("memproof: reports rewritten in {}", self.dir.display());
        Ok(Finished::Passed)
    }
}

/// Rewrites reports/baseline.json from a run, and prints what changed.
#[derive(clap::Args)]
pub struct Bless {
    /// The run to bless [default: target/memproof/ci].
    #[arg(long)]
    from: Option<PathBuf>,
    /// The baseline file to write.
    #[arg(long, default_value = "reports/baseline.json")]
    baseline: PathBuf,
}

impl Bless {
    pub fn run(self) -> anyhow::Result<Finished> {
        let from = self.from.unwrap_or_else(|| build::default_out("ci"));
        let results = Results::read(&from.join(RESULTS_FILE))?;
        let path = build::workspace_root().join(&self.baseline);
        let changes = reports::baseline::bless(&results, &path)?;
        println!("{changes}");
        eprintln!("memproof: baseline written to {}", path.display());
        Ok(Finished::Passed)
    }
}

/// Compares two runs (e.g. main and a PR branch) side by side, with regression verdicts between them.
#[derive(clap::Args)]
pub struct Compare {
    /// The older run's output directory.
    old: PathBuf,
    /// The newer run's output directory.
    new: PathBuf,
    /// Where to write compare.md and compare.html [default: NEW].
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Compare {
    pub fn run(self) -> anyhow::Result<Finished> {
        let old = Results::read(&self.old.join(RESULTS_FILE))?;
        let new = Results::read(&self.new.join(RESULTS_FILE))?;
        if !new
            .cases
            .iter()
            .any(|case| old.cases.iter().any(|o| o.id == case.id))
        {
            anyhow::bail!(
                "{} and {}: the two runs have no case in common, so nothing can be compared\n\nCompare runs of the same profile and scenarios.",
                self.old.display(),
                self.new.display()
            );
        }
        let specs = select_specs(&[])?;
        let out = self.out.unwrap_or_else(|| self.new.clone());
        std::fs::create_dir_all(&out)?;
        let verdicts =
            reports::compare::compare_with_profiles(&old, &new, &self.new, &specs, &out)?;
        let failed = verdicts.iter().filter(|v| !v.pass).count();
        eprintln!(
            "memproof: {} comparisons, {failed} regressed; written to {}",
            verdicts.len(),
            out.display()
        );
        Ok(if failed == 0 {
            Finished::Passed
        } else {
            Finished::Failed
        })
    }
}
