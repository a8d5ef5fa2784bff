//! `cargo xtask report`, `bless` and `compare`: everything that reads results.json and runs nothing.

use crate::Finished;
use crate::compare_revisions::{self, Side};
use crate::home::{self, SpecHome};
use crate::load_test::select_specs;
use anyhow::Context as _;
use schema::results::{RESULTS_FILE, Results};
use std::path::{Path, PathBuf};

/// The results.json of the run in `dir`; a directory without one is an error that says which command makes one.
fn read_run(dir: &Path) -> anyhow::Result<Results> {
    let path = dir.join(RESULTS_FILE);
    if !path.exists() {
        let program = home::program();
        anyhow::bail!(
            "{}: no {RESULTS_FILE}: expected the output directory of a run; `{program} load-test --out {}` (or \
             `{program} measure --out {} -- CMD`) makes one",
            dir.display(),
            dir.display(),
            dir.display()
        );
    }
    Results::read(&path)
}

/// Re-renders every report of a run from its results.json, without running anything.
#[derive(clap::Args)]
pub struct Report {
    /// The run's output directory (holding results.json).
    dir: PathBuf,
    /// The scenario specs' directory the run read [default: as `load-test`'s].
    #[arg(long, value_name = "DIR")]
    spec_dir: Option<PathBuf>,
    /// Print how far each spec verdict sits from its threshold (the closest judged figure and its margin) instead
    /// of rendering the reports.
    #[arg(long)]
    margins: bool,
}

impl Report {
    pub fn run(self) -> anyhow::Result<Finished> {
        let results = read_run(&self.dir)?;
        let specs = select_specs(&SpecHome::resolve(self.spec_dir.as_deref())?, &[])?;
        if self.margins {
            let margins = reports::judge::margin::margins(&results, &specs);
            print!("{}", reports::judge::margin::margin_table(&margins));
            return Ok(Finished::Passed);
        }
        reports::write_reports(&results, &specs, &self.dir)?;
        eprintln!("memproof: reports rewritten in {}", self.dir.display());
        Ok(Finished::Passed)
    }
}

/// Rewrites the baseline beside the specs from a run, and prints what changed.
#[derive(clap::Args)]
pub struct Bless {
    /// The run to bless [default: target/memproof/ci].
    #[arg(long)]
    from: Option<PathBuf>,
    /// The baseline file to write [default: the one beside the specs: `reports/baseline.json` in memproof's
    /// checkout, `DIR/baseline.json` for `--spec-dir DIR`].
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// The scenario specs' directory the run read [default: as `load-test`'s].
    #[arg(long, value_name = "DIR")]
    spec_dir: Option<PathBuf>,
    /// Update only this scenario's cases in the baseline and keep every other scenario's (a new scenario's first
    /// baseline, or one scenario's deliberate change).
    #[arg(long, value_name = "NAME")]
    scenario: Option<String>,
}

impl Bless {
    pub fn run(self) -> anyhow::Result<Finished> {
        let from = match self.from {
            Some(from) => from,
            None => crate::output_dir::default_out("ci")?,
        };
        let results = read_run(&from)?;
        let home = SpecHome::resolve(self.spec_dir.as_deref())?;
        let path = self.baseline.unwrap_or_else(|| home.baseline.clone());
        let noise = reports::noise::Noise::read(&home.noise)?;
        let changes = match &self.scenario {
            Some(scenario) => reports::baseline::bless_scenario(
                &results,
                Some(&from),
                &path,
                scenario,
                noise.as_ref(),
            )
            .with_context(|| format!("{}", from.join(RESULTS_FILE).display()))?,
            None => reports::baseline::bless(&results, Some(&from), &path, noise.as_ref())?,
        };
        println!("{changes}");
        eprintln!("memproof: baseline written to {}", path.display());
        Ok(Finished::Passed)
    }
}

/// Compares two runs side by side, with regression verdicts between them and the spec verdicts that changed: either
/// two run directories (`compare OLD_DIR NEW_DIR`), or a revision against the working tree or another revision
/// (`compare --base main`), each built and run in a checkout of its own.
#[derive(clap::Args)]
pub struct Compare {
    /// The older run's output directory (holding results.json).
    #[arg(required_unless_present = "base", conflicts_with = "base")]
    old: Option<PathBuf>,
    /// The newer run's output directory.
    #[arg(required_unless_present = "base", conflicts_with = "base")]
    new: Option<PathBuf>,
    /// The revision to compare against (a branch, tag or commit): built and run in a git worktree of its own,
    /// cached by commit under the target directory.
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// The revision to compare [default: the working tree].
    #[arg(long, value_name = "REV", requires = "base")]
    head: Option<String>,
    /// The profile both sides run.
    #[arg(long, default_value = "ci", requires = "base", value_parser = clap::builder::PossibleValuesParser::new(schema::spec::PROFILES))]
    profile: String,
    /// Run only this scenario on both sides (repeatable).
    #[arg(long = "scenario", value_name = "NAME", requires = "base")]
    scenarios: Vec<String>,
    /// Where to write compare.md and compare.html [default: NEW, or memproof/compare in the target directory].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The scenario specs' directory [default: as `load-test`'s]; its noise file sets the tolerances.
    #[arg(long, value_name = "DIR")]
    spec_dir: Option<PathBuf>,
}

impl Compare {
    pub fn run(self) -> anyhow::Result<Finished> {
        let home = SpecHome::resolve(self.spec_dir.as_deref())?;
        let (old_dir, new_dir, sides) = match (&self.base, self.old, self.new) {
            (Some(_), _, _) if home::mode() == home::Mode::Installed => anyhow::bail!(
                "compare --base builds and runs a revision of memproof's own checkout: expected two run \
                 directories, `memproof compare OLD_DIR NEW_DIR`\n\nRun `memproof load-test --out DIR` on each \
                 side (a checkout of the base, then your branch) and compare the two."
            ),
            (Some(base), _, _) => {
                let request = compare_revisions::RunRequest {
                    profile: &self.profile,
                    scenarios: &self.scenarios,
                };
                // Checked before minutes of building the base: a misspelt scenario or profile fails now.
                select_specs(&home, &self.scenarios)?;
                let old = compare_revisions::run_side(&Side::Revision(base.clone()), &request)?;
                let head = match &self.head {
                    Some(head) => Side::Revision(head.clone()),
                    None => Side::WorkingTree,
                };
                let new = compare_revisions::run_side(&head, &request)?;
                (old, new, Some([Side::Revision(base.clone()), head]))
            }
            (None, Some(old), Some(new)) => (old, new, None),
            _ => anyhow::bail!("compare needs OLD_DIR and NEW_DIR, or --base REV"),
        };
        let old = read_run(&old_dir)?;
        let new = read_run(&new_dir)?;
        let specs = select_specs(&home, &[])?;
        let noise = reports::noise::Noise::read(&home.noise)?;
        let out = match (self.out, &self.base) {
            (Some(out), _) => out,
            (None, Some(_)) => crate::output_dir::default_out("compare")?,
            (None, None) => new_dir.clone(),
        };
        // Where the memory went: the failed verdicts' cases profiled on both sides, and only those.
        let explain = reports::compare::verdicts_to_explain(&old, &new, &specs, noise.as_ref());
        let profiled = compare_revisions::profile_failed_cases(
            [(&old, &old_dir), (&new, &new_dir)],
            sides.as_ref().map(|[base, head]| [base, head]),
            &explain,
            &specs,
        )?;
        let comparison = reports::compare::compare_with_sites(
            &old,
            &new,
            &new_dir,
            &profiled,
            &specs,
            noise.as_ref(),
            &out,
        )?;
        eprintln!("memproof: {}", comparison.headline());
        eprintln!(
            "memproof: written to {} and {}",
            out.join("compare.md").display(),
            out.join("compare.html").display()
        );
        Ok(if comparison.failed() {
            Finished::Failed
        } else {
            Finished::Passed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_results_says_which_command_makes_one() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_run(dir.path()).unwrap_err();
        let shown = dir.path().display();
        assert_eq!(
            error.to_string(),
            format!(
                "{shown}: no results.json: expected the output directory of a run; `cargo xtask load-test --out \
                 {shown}` (or `cargo xtask measure --out {shown} -- CMD`) makes one"
            )
        );
    }
}
