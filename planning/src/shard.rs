//! Shards: a profile's cases split over N machines of a CI system's matrix (`--shard K/N`), and the shards' results
//! joined back into one run (`cargo xtask merge`).
//!
//! Why: `full` took about an hour on one 2-core machine; no pull request waits that long, and a team with more
//! scenarios outgrows one machine. memproof spreads over the CI system's own matrix rather than a scheduler of its
//! own: each matrix job runs one shard, and a last job merges them and judges the whole.
//!
//! A shard's share is **deterministic** (the same plan and baseline give every machine the same split, with no
//! talking between them) and **balanced by the baseline's wall times**: the longest-processing-time rule, cases by
//! their baseline time (timeline plus profile run) longest first, each to the shard with the least time so far,
//! which keeps the longest shard within one case of the mean. A case the baseline does not hold weighs the mean of
//! those it does; with no baseline of this profile every case weighs the same. The calibration cases run in every
//! shard: nothing a machine measures is believed until its meters are; the merge keeps shard 1's.

use anyhow::{Context as _, bail};
use schema::results::{Case, Results, Shard};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The weight of each case id: its baseline wall time (timeline plus profile run), in milliseconds.
pub fn baseline_weights(baseline: &Results) -> BTreeMap<String, f64> {
    baseline
        .cases
        .iter()
        .map(|case| {
            let profile_ms = case.dhat_run.as_ref().map_or(0.0, |run| run.wall_ms);
            (case.id.clone(), case.wall_ms + profile_ms)
        })
        .collect()
}

/// Which of `ids` shard `shard` runs, as indices into `ids` in their order. `always` marks the ids every shard
/// runs (the calibration cases); the rest go to exactly one shard each, balanced by `weights`.
pub fn select(
    ids: &[&str],
    always: &dyn Fn(usize) -> bool,
    weights: &BTreeMap<String, f64>,
    shard: Shard,
) -> Vec<usize> {
    let weight = weigher(ids, weights);
    let order: Vec<usize> = longest_first(ids, weights)
        .into_iter()
        .filter(|&at| !always(at))
        .collect();
    let mut loads = vec![0.0f64; shard.count as usize];
    let mut mine = Vec::new();
    for at in order {
        let least = (0..loads.len())
            .min_by(|&a, &b| loads[a].total_cmp(&loads[b]).then(a.cmp(&b)))
            .unwrap_or(0);
        loads[least] += weight(at);
        if least + 1 == shard.index as usize {
            mine.push(at);
        }
    }
    mine.extend((0..ids.len()).filter(|&at| always(at)));
    mine.sort_unstable();
    mine
}

/// Each case's weight by its index in `ids`: its baseline time, or the mean of the known ones when the baseline does
/// not hold it (1 for all when it holds none).
fn weigher<'a>(ids: &'a [&str], weights: &'a BTreeMap<String, f64>) -> impl Fn(usize) -> f64 + 'a {
    let known: Vec<f64> = ids
        .iter()
        .filter_map(|id| weights.get(*id).copied())
        .collect();
    let fallback = if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    move |at: usize| weights.get(ids[at]).copied().unwrap_or(fallback)
}

/// The indices of `ids`, longest baseline time first; equal weights in plan order, so the order depends on nothing
/// but the plan and the baseline. The order a shard's split deals cases in, and the order `--jobs N` starts them in
/// (the longest-processing-time rule: the last cases to start are the shortest, so no job is left running long after
/// the others ran out of work).
pub fn longest_first(ids: &[&str], weights: &BTreeMap<String, f64>) -> Vec<usize> {
    let weight = weigher(ids, weights);
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by(|&a, &b| weight(b).total_cmp(&weight(a)).then(a.cmp(&b)));
    order
}

/// One shard's results as read from its directory.
pub struct ShardRun {
    pub dir: PathBuf,
    pub results: Results,
}

/// The shards of one run, checked and in shard order: all from one commit and profile, each a shard of the same
/// N, each index once, none missing. Every error names the directories concerned.
pub fn check_shards(mut runs: Vec<ShardRun>) -> anyhow::Result<Vec<ShardRun>> {
    let Some(first) = runs.first() else {
        bail!("no shard directories given");
    };
    let first_dir = first.dir.clone();
    let first_run = first.results.run.clone();
    for run in &runs {
        let shard = run.results.run.shard.with_context(|| {
            format!(
                "{}: not a shard (its run has no `shard`: it ran without --shard)",
                run.dir.display()
            )
        })?;
        let first_shard = first_run.shard.unwrap_or(shard);
        if run.results.run.profile != first_run.profile {
            bail!(
                "{} is of profile {}, {} of profile {}: shards of one run share a profile",
                run.dir.display(),
                run.results.run.profile,
                first_dir.display(),
                first_run.profile
            );
        }
        if run.results.run.git_commit != first_run.git_commit {
            let show =
                |commit: &Option<String>| commit.clone().unwrap_or_else(|| "no commit".into());
            bail!(
                "{} is of commit {}, {} of commit {}: shards of one run share a commit",
                run.dir.display(),
                show(&run.results.run.git_commit),
                first_dir.display(),
                show(&first_run.git_commit)
            );
        }
        if shard.count != first_shard.count {
            bail!(
                "{} is shard {shard}, {} is shard {first_shard}: shards of one run share N",
                run.dir.display(),
                first_dir.display()
            );
        }
    }
    runs.sort_by_key(|run| run.results.run.shard.map_or(0, |shard| shard.index));
    for pair in runs.windows(2) {
        if pair[0].results.run.shard == pair[1].results.run.shard {
            bail!(
                "{} and {} are both shard {}",
                pair[0].dir.display(),
                pair[1].dir.display(),
                pair[0]
                    .results
                    .run
                    .shard
                    .map_or(String::new(), |s| s.to_string())
            );
        }
    }
    let count = first_run.shard.map_or(0, |shard| shard.count);
    let present: Vec<u32> = runs
        .iter()
        .filter_map(|run| run.results.run.shard.map(|shard| shard.index))
        .collect();
    let missing: Vec<String> = (1..=count)
        .filter(|index| !present.contains(index))
        .map(|index| format!("{index}/{count}"))
        .collect();
    if !missing.is_empty() {
        let given: Vec<String> = runs
            .iter()
            .map(|run| run.dir.display().to_string())
            .collect();
        bail!(
            "shard {} missing (given: {})",
            missing.join(", "),
            given.join(", ")
        );
    }
    Ok(runs)
}

/// The cases of checked shards as one run's: the calibration cases (`is_always`) of the first shard, every other
/// case once. A case in two shards is an error naming both.
pub fn join_cases(
    runs: &[ShardRun],
    is_always: &dyn Fn(&Case) -> bool,
) -> anyhow::Result<Vec<Case>> {
    let mut seen: BTreeMap<String, &PathBuf> = BTreeMap::new();
    let mut cases = Vec::new();
    for (at, run) in runs.iter().enumerate() {
        for case in &run.results.cases {
            if is_always(case) {
                if at == 0 {
                    cases.push(case.clone());
                }
                continue;
            }
            if let Some(other) = seen.insert(case.id.clone(), &run.dir) {
                bail!(
                    "case {} is in both {} and {}",
                    case.id,
                    other.display(),
                    run.dir.display()
                );
            }
            cases.push(case.clone());
        }
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shards_are_written_k_of_n() {
        assert_eq!("2/8".parse::<Shard>(), Ok(Shard { index: 2, count: 8 }));
        for bad in ["0/3", "4/3", "3", "a/3", "1/0", ""] {
            assert_eq!(
                bad.parse::<Shard>().unwrap_err(),
                format!("shard {bad:?}: expected K/N with 1 <= K <= N, e.g. 2/8")
            );
        }
    }

    #[test]
    fn the_longest_cases_go_to_different_shards_and_calibration_to_all() {
        let ids = ["calibration/a", "s/long", "s/mid", "s/short", "s/short2"];
        let weights: BTreeMap<String, f64> = [
            ("s/long", 100.0),
            ("s/mid", 60.0),
            ("s/short", 30.0),
            ("s/short2", 30.0),
        ]
        .into_iter()
        .map(|(id, w)| (id.to_string(), w))
        .collect();
        let always = |at: usize| ids[at].starts_with("calibration/");
        let one = select(&ids, &always, &weights, Shard { index: 1, count: 2 });
        let two = select(&ids, &always, &weights, Shard { index: 2, count: 2 });
        // long (100) to 1; mid (60) to 2; short (30) to 2 (60 < 100); short2 (30) to 2 (90 < 100).
        assert_eq!(one, [0, 1]);
        assert_eq!(two, [0, 2, 3, 4]);
    }

    proptest! {
        /// Every case but calibration in exactly one shard; each shard within one case of the mean load.
        #[test]
        fn every_case_runs_once_and_the_shards_balance(
            weights in proptest::collection::vec(1u32..10_000, 1..40),
            count in 1u32..9,
        ) {
            let ids: Vec<String> = (0..weights.len()).map(|at| format!("s/{at}")).collect();
            let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let map: BTreeMap<String, f64> = ids.iter().cloned().zip(weights.iter().map(|&w| w as f64)).collect();
            let never = |_: usize| false;
            let mut seen = vec![0u32; ids.len()];
            let total: f64 = weights.iter().map(|&w| w as f64).sum();
            let heaviest = weights.iter().copied().max().unwrap_or(0) as f64;
            for index in 1..=count {
                let mine = select(&id_refs, &never, &map, Shard { index, count });
                let load: f64 = mine.iter().map(|&at| weights[at] as f64).sum();
                prop_assert!(load <= total / count as f64 + heaviest, "shard {index}: {load}");
                for at in mine {
                    seen[at] += 1;
                }
            }
            prop_assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
        }
    }
}
