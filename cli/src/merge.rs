//! `cargo xtask merge DIR... --out DIR`: joins the shards of one run (`load-test --shard K/N`, one per CI matrix
//! job) into one run, judged and rendered as if it had run at once: growth fits see every size of a sweep whichever
//! shard ran it, claims see every role.
//!
//! The shards must be all N of one N, from one commit and one profile; a missing or duplicated shard, a case in two
//! shards, or a case the plan does not hold is an error naming them (`planning::shard`). The calibration cases ran in
//! every shard: the merged run keeps shard 1's, and a calibration verdict that failed on any shard fails the merged
//! run, its text naming the shard.

use crate::Finished;
use crate::home::SpecHome;
use crate::load_test::{finish, judge_run, select_specs};
use anyhow::{Context as _, bail};
use planning::shard::{ShardRun, check_shards, join_cases};
use schema::results::{RESULTS_FILE, Results};
use std::path::PathBuf;

/// Joins the shards of one load test into one run, judges it, and writes the reports.
#[derive(clap::Args)]
pub struct Merge {
    /// The shards' output directories (each holds a results.json of `load-test --shard K/N`).
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Where to write the merged results.json and the reports.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The baseline to judge regressions against [default: the one beside the specs, when it exists]. A path given
    /// here must exist.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// The scenario specs' directory, as the shards were given it [default: as `load-test`'s].
    #[arg(long, value_name = "DIR")]
    spec_dir: Option<PathBuf>,
}

impl Merge {
    pub fn run(self) -> anyhow::Result<Finished> {
        let mut runs = Vec::new();
        for dir in &self.dirs {
            let results = Results::read(&dir.join(RESULTS_FILE))?;
            runs.push(ShardRun {
                dir: dir.clone(),
                results,
            });
        }
        let runs = check_shards(runs)?;
        let is_calibration =
            |case: &schema::results::Case| case.scenario == schema::spec::CALIBRATION_SCENARIO;
        let mut cases = join_cases(&runs, &is_calibration)?;
        let first = &runs[0].results.run;
        let profile = first.profile.clone();

        // The scenarios the shards ran, planned as one run would have: the merged cases in that order, every
        // planned case present.
        let mut scenarios: Vec<String> = cases
            .iter()
            .map(|case| case.scenario.clone())
            .filter(|name| name != schema::spec::CALIBRATION_SCENARIO)
            .collect();
        scenarios.sort();
        scenarios.dedup();
        let home = SpecHome::resolve(self.spec_dir.as_deref())?;
        let specs = select_specs(&home, &scenarios)?;
        let planned = planning::suite::plan(&specs, &profile)?;
        // Shards run with --prove also hold the counterfactual cases: known, but not required.
        let mut known = planned.clone();
        known.extend(planning::suite::plan_counterfactuals(&specs, &profile)?);
        let position = |id: &str| known.iter().position(|case| case.id == id);
        if let Some(stray) = cases.iter().find(|case| position(&case.id).is_none()) {
            bail!(
                "case {} is in no plan of profile {profile} from the specs here",
                stray.id
            );
        }
        let missing: Vec<&str> = planned
            .iter()
            .filter(|p| !cases.iter().any(|case| case.id == p.id))
            .map(|p| p.id.as_str())
            .collect();
        if !missing.is_empty() {
            bail!(
                "no shard holds {} planned case(s) of profile {profile}: {}",
                missing.len(),
                missing.join(", ")
            );
        }
        cases.sort_by_key(|case| position(&case.id));

        let out_dir = crate::output_dir::output_dir(Some(&self.out), &profile)?;
        copy_profiles(&runs, &out_dir)?;
        let mut run = first.clone();
        run.shard = None;
        run.jobs = runs.iter().map(|r| r.results.run.jobs).max().unwrap_or(1);
        run.started_at = runs
            .iter()
            .map(|r| r.results.run.started_at.clone())
            .min()
            .unwrap_or_default();
        let mut results = Results::unjudged(run, cases);
        let baseline =
            crate::preflight::baseline(self.baseline.as_deref(), &home, &profile, &out_dir)?;
        let noise = reports::noise::Noise::read(&home.noise)?;
        results.verdicts = judge_run(
            &results,
            &specs,
            baseline.as_ref(),
            noise.as_ref(),
            &out_dir,
        );
        if let Some(baseline) = &baseline {
            results.without_baseline =
                reports::baseline::cases_without_baseline(&results, baseline, &specs);
        }
        // Each shard's meters were checked on its own machine: a failure on any shard fails the merged run.
        for shard_run in &runs[1..] {
            for failed in shard_run.results.verdicts.iter().filter(|v| !v.pass) {
                let shard = shard_run
                    .results
                    .run
                    .shard
                    .map_or(String::new(), |s| s.to_string());
                let text = format!(
                    "shard {shard} ({}): {}",
                    shard_run.dir.display(),
                    failed.text
                );
                match results.verdicts.iter_mut().find(|v| v.id == failed.id) {
                    Some(verdict) => {
                        verdict.pass = false;
                        verdict.text = text;
                    }
                    None => results.verdicts.push(schema::results::Verdict {
                        text,
                        ..failed.clone()
                    }),
                }
            }
        }
        eprintln!(
            "memproof: merged {} shards of profile {profile}: {} cases",
            runs.len(),
            results.cases.len()
        );
        finish(&results, &specs, &out_dir)
    }
}

/// Copies each shard's dhat profiles into the merged run's `profiles/` (the cases name them relative to it).
fn copy_profiles(runs: &[ShardRun], out_dir: &std::path::Path) -> anyhow::Result<()> {
    for run in runs {
        for case in &run.results.cases {
            let Some(relative) = &case.dhat_file else {
                continue;
            };
            let from = run.dir.join(relative);
            let to = out_dir.join(relative);
            if from == to {
                continue;
            }
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("{}: cannot create", parent.display()))?;
            }
            std::fs::copy(&from, &to)
                .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        }
    }
    Ok(())
}
