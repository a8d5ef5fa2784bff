//! The committed baseline, `reports/baseline.json`: the figures of every case of a blessed run, which the next runs'
//! regression verdicts compare against.
//!
//! It keeps the results.json schema (so the same code reads it and a person can diff it in review) but only what
//! regression needs: per case id its figures and outcome. Timelines, phases, profile files and verdicts are dropped,
//! so a bless diff shows figures changing, not samples. A missing baseline is not an error: the first run has none,
//! and its report says so.
//!
//! Beside the figures, `allocation_sites` keeps, per case the blessed run profiled, a summary of its dhat profile's
//! top sites ([`SiteSummary`]: a few dozen sites, not the profile), so a load test that regresses against the
//! baseline names the sites that grew without running the base again. It is optional: a baseline without it reads
//! as before, and its regressions list the head's sites alone.

use crate::judge::check_expression::Metric;
use crate::judge::regression::{classify, format_percent_change};
use crate::judge::tolerance::tolerance_for;
use crate::noise::Noise;
use crate::site_diff::{BaselineSites, SiteSummary};
use anyhow::Context as _;
use schema::results::CaseField;
use schema::results::Change;
use schema::results::{Results, RunInfo};
use schema::spec::Spec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The baseline file: the results schema, and the site summaries beside it.
#[derive(Serialize)]
struct BaselineFile<'a> {
    #[serde(flatten)]
    results: &'a Results,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    allocation_sites: &'a BaselineSites,
}

/// Only the site summaries of a baseline file (the rest is read by [`read_baseline`]).
#[derive(Deserialize)]
struct SitesOnly {
    #[serde(default)]
    allocation_sites: BaselineSites,
}

/// The site summaries of the baseline at `path`: empty when there is no baseline or it keeps none.
pub fn read_baseline_sites(path: &Path) -> anyhow::Result<BaselineSites> {
    if !path.exists() {
        return Ok(BaselineSites::new());
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let sites: SitesOnly = serde_json::from_str(&text).map_err(|error| {
        anyhow::anyhow!(
            "{}:{}:{}: not a memproof baseline's allocation_sites: {error}",
            path.display(),
            error.line(),
            error.column()
        )
    })?;
    Ok(sites.allocation_sites)
}

/// The site summaries of every guarded case of `results` that has a dhat profile in `run_dir`, and one line for
/// each profile that could not be read.
fn site_summaries(results: &Results, run_dir: &Path) -> (BaselineSites, Vec<String>) {
    let mut sites = BaselineSites::new();
    let mut unreadable = Vec::new();
    for case in results.cases.iter().filter(|case| is_guarded(case)) {
        let Some(profile) = &case.dhat_file else {
            continue;
        };
        match SiteSummary::read(&run_dir.join(profile)) {
            Ok(summary) => {
                sites.insert(case.id.clone(), summary);
            }
            Err(error) => unreadable.push(format!("  no site summary for {}: {error:#}", case.id)),
        }
    }
    (sites, unreadable)
}

/// A line on the site summaries a bless kept (after a line break), or nothing when it was given no run directory.
fn sites_line(run_dir: Option<&Path>, sites: &BaselineSites, unreadable: &[String]) -> String {
    if run_dir.is_none() {
        return String::new();
    }
    let mut line = format!(
        "\n  top allocation sites kept for {} profiled cases ({} sites).",
        sites.len(),
        sites.values().map(|s| s.sites.len()).sum::<usize>()
    );
    for problem in unreadable {
        line.push('\n');
        line.push_str(problem);
    }
    line
}

/// Where the baseline lives in the repository.
pub const BASELINE_PATH: &str = "reports/baseline.json";

/// Reads the baseline at `path`: `None` when there is none yet; an error naming the file when it is unreadable.
pub fn read_baseline(path: &Path) -> anyhow::Result<Option<Results>> {
    if !path.exists() {
        return Ok(None);
    }
    Results::read(path).map(Some)
}

/// Whether a case's figures are guarded by a baseline: every case but the counterfactuals (`load-test --prove`),
/// which are evidence that verdicts can fail, never figures to guard.
fn is_guarded(case: &schema::results::Case) -> bool {
    case.counterfactual.is_none()
}

/// `results` reduced to what a baseline keeps.
pub fn baseline_of(results: &Results) -> Results {
    let mut baseline = results.clone();
    baseline.verdicts.clear();
    baseline.without_baseline.clear();
    baseline.cases.retain(is_guarded);
    for case in &mut baseline.cases {
        case.timeline.clear();
        case.phases.clear();
        case.dhat_file = None;
        case.dhat_run = None;
        // A committed file holds no one machine's paths: a process is named by its program alone.
        if let Some(tree) = &mut case.tree {
            if let Some(largest) = &mut tree.largest_process {
                largest.command = largest.command.as_deref().map(program_name);
            }
            for left in &mut tree.left_running {
                left.command = program_name(&left.command);
            }
        }
        case.output = None;
    }
    baseline
}

/// The file name of a command line's program: `memproof-case` of `/home/x/target/release/memproof-case case …`.
fn program_name(command: &str) -> String {
    let program = command.split_whitespace().next().unwrap_or_default();
    Path::new(program).file_name().map_or_else(
        || program.to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// Writes `results` as the new baseline at `path` and returns what changed against the old baseline, in words:
/// cases added and dropped, and every figure that moved beyond its regression tolerance (from `noise`, as the
/// regression check takes it). With `run_dir`, the run's directory, it keeps a summary of each profiled case's top
/// allocation sites.
pub fn bless(
    results: &Results,
    run_dir: Option<&Path>,
    path: &Path,
    noise: Option<&Noise>,
) -> anyhow::Result<String> {
    let (sites, unreadable) = match run_dir {
        Some(dir) => site_summaries(results, dir),
        None => Default::default(),
    };
    let previous = match read_baseline(path) {
        Ok(previous) => previous,
        Err(error) => {
            // A baseline that cannot be read is exactly what bless is for: replace it, and say so.
            let baseline = baseline_of(results);
            write_baseline(&baseline, &sites, path)?;
            return Ok(format!(
                "The previous baseline could not be read ({error:#}); replaced it with {} cases from this run.{}",
                baseline.cases.len(),
                sites_line(run_dir, &sites, &unreadable)
            ));
        }
    };
    let baseline = baseline_of(results);
    write_baseline(&baseline, &sites, path)?;
    let changes = match previous {
        None => format!(
            "No previous baseline at {}; recorded {} cases ({} profile, commit {}).",
            path.display(),
            baseline.cases.len(),
            baseline.run.profile,
            baseline.run.git_commit.as_deref().unwrap_or("unknown")
        ),
        Some(previous) => describe_changes(&previous, &baseline, noise),
    };
    Ok(format!(
        "{changes}{}",
        sites_line(run_dir, &sites, &unreadable)
    ))
}

/// Ids of the cases of `results` that `baseline` holds no case for, among those regression judges (the roles each
/// scenario's `[regression]` names): they get no regression verdict, which a report must not pass over in silence.
/// Counterfactual cases are not among them: a baseline never holds one ([`baseline_of`]), so naming them would
/// send the reader to a bless that cannot add them (a `--prove` run named 34).
pub fn cases_without_baseline(
    results: &Results,
    baseline: &Results,
    specs: &[Spec],
) -> Vec<String> {
    results
        .cases
        .iter()
        .filter(|case| is_guarded(case))
        .filter(|case| {
            specs
                .iter()
                .find(|spec| spec.scenario == case.scenario)
                .is_none_or(|spec| spec.regression.judges_role(&case.role))
        })
        .filter(|case| !baseline.cases.iter().any(|old| old.id == case.id))
        .map(|case| case.id.clone())
        .collect()
}

/// The sentence every report shows for cases without a baseline: how many, of which scenarios, and the command that
/// adds each scenario's. `None` when every case had one.
pub fn without_baseline_notice(case_ids: &[String], run: &RunInfo) -> Option<String> {
    let first = case_ids.first()?;
    let mut scenarios: Vec<(&str, usize)> = Vec::new();
    for id in case_ids {
        let scenario = id.split('/').next().unwrap_or(first);
        match scenarios.iter_mut().find(|(name, _)| *name == scenario) {
            Some((_, count)) => *count += 1,
            None => scenarios.push((scenario, 1)),
        }
    }
    let listed: Vec<String> = scenarios
        .iter()
        .map(|(name, count)| format!("{name} ({count})"))
        .collect();
    let commands: Vec<String> = scenarios
        .iter()
        .map(|(name, _)| format!("`{} --scenario {name}`", run.command("bless")))
        .collect();
    Some(format!(
        "{} {} no baseline, so {} not judged for regression: {}. Add them with {}.",
        case_ids.len(),
        if case_ids.len() == 1 {
            "case has"
        } else {
            "cases have"
        },
        if case_ids.len() == 1 {
            "it is"
        } else {
            "they are"
        },
        listed.join(", "),
        commands.join(", ")
    ))
}

/// Replaces only `scenario`'s cases in the baseline at `path` with those of `results` and keeps every other
/// scenario's as it was (the baseline's run line too): how a new scenario gets its baseline without re-blessing the
/// rest. Returns what changed for that scenario. An error when `results` has no case of `scenario`, or is of
/// another profile than the baseline (one baseline holds one profile's figures). With `run_dir`, the scenario's
/// site summaries are replaced too, and every other scenario's kept.
pub fn bless_scenario(
    results: &Results,
    run_dir: Option<&Path>,
    path: &Path,
    scenario: &str,
    noise: Option<&Noise>,
) -> anyhow::Result<String> {
    let blessed = baseline_of(results);
    let (mut sites, unreadable) = match run_dir {
        Some(dir) => site_summaries(results, dir),
        None => Default::default(),
    };
    let of_scenario = |id: &str| id.split('/').next() == Some(scenario);
    sites.retain(|id, _| of_scenario(id));
    let mut scenarios: Vec<&str> = blessed.cases.iter().map(|c| c.scenario.as_str()).collect();
    scenarios.dedup();
    if !scenarios.contains(&scenario) {
        anyhow::bail!(
            "the run has no case of scenario {scenario:?} (it has: {}): expected a run of it, e.g. `cargo xtask \
             load-test --scenario {scenario}`",
            scenarios.join(", ")
        );
    }
    let Some(previous) = read_baseline(path)? else {
        let mut first = blessed;
        first.cases.retain(|case| case.scenario == scenario);
        write_baseline(&first, &sites, path)?;
        return Ok(format!(
            "No previous baseline at {}; recorded {} cases of {scenario} ({} profile, commit {}).{}",
            path.display(),
            first.cases.len(),
            first.run.profile,
            first.run.git_commit.as_deref().unwrap_or("unknown"),
            sites_line(run_dir, &sites, &unreadable)
        ));
    };
    if previous.run.profile != blessed.run.profile {
        anyhow::bail!(
            "the baseline at {} is of profile {}, the run of profile {}: expected a run of profile {} (`cargo xtask \
             load-test --profile {} --scenario {scenario}`)",
            path.display(),
            previous.run.profile,
            blessed.run.profile,
            previous.run.profile,
            previous.run.profile
        );
    }
    let mut updated = previous.clone();
    updated.cases.retain(|case| case.scenario != scenario);
    updated.cases.extend(
        blessed
            .cases
            .iter()
            .filter(|case| case.scenario == scenario)
            .cloned(),
    );
    let mut all_sites = read_baseline_sites(path)?;
    all_sites.retain(|id, _| !of_scenario(id));
    all_sites.extend(sites.clone());
    write_baseline(&updated, &all_sites, path)?;
    let only = |baseline: &Results| {
        let mut only = baseline.clone();
        only.cases.retain(|case| case.scenario == scenario);
        only
    };
    let mut new = only(&updated);
    new.run = blessed.run;
    let changes = describe_changes(&only(&previous), &new, noise).replacen(
        "Baseline updated:",
        &format!("Baseline of {scenario} updated:"),
        1,
    );
    Ok(format!(
        "{changes}{}",
        sites_line(run_dir, &sites, &unreadable)
    ))
}

fn write_baseline(baseline: &Results, sites: &BaselineSites, path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    if sites.is_empty() {
        return baseline.write(path);
    }
    let text = serde_json::to_string_pretty(&BaselineFile {
        results: baseline,
        allocation_sites: sites,
    })?;
    // Written beside and renamed in, as results.json is: a full disk leaves the last whole baseline in place.
    let scratch = path.with_extension("json.tmp");
    if let Err(error) = std::fs::write(&scratch, text) {
        let _ = std::fs::remove_file(&scratch);
        return Err(error).with_context(|| format!("{}: cannot write", path.display()));
    }
    std::fs::rename(&scratch, path).with_context(|| format!("{}: cannot write", path.display()))
}

/// What changed from `old` to `new`, one line per change, criterion's words for each figure.
pub fn describe_changes(old: &Results, new: &Results, noise: Option<&Noise>) -> String {
    let mut lines = vec![format!(
        "Baseline updated: {} profile, commit {} → {}.",
        new.run.profile,
        old.run.git_commit.as_deref().unwrap_or("unknown"),
        new.run.git_commit.as_deref().unwrap_or("unknown")
    )];
    let mut within_noise = 0;
    for case in &new.cases {
        let Some(old_case) = old.cases.iter().find(|c| c.id == case.id) else {
            lines.push(format!("  new case {}", case.id));
            continue;
        };
        if old_case.outcome != case.outcome {
            lines.push(format!(
                "  {} outcome: {} → {}",
                case.id, old_case.outcome, case.outcome
            ));
        }
        for field in CaseField::ALL {
            match (field.value(old_case), field.value(case)) {
                (Some(before), Some(after)) => {
                    let tolerance = tolerance_for(noise, &new.run.profile, &case.id, field);
                    let change = classify(before, after, tolerance.tolerance);
                    if change == Change::WithinNoise {
                        within_noise += 1;
                    } else {
                        let metric = Metric::Field(field);
                        lines.push(format!(
                            "  {} {}: {} → {} ({}, {})",
                            case.id,
                            field.name(),
                            metric.format(before),
                            metric.format(after),
                            format_percent_change(before, after),
                            change.word()
                        ));
                    }
                }
                (None, Some(_)) => {
                    lines.push(format!("  {} {}: now measured", case.id, field.name()))
                }
                (Some(_), None) => lines.push(format!(
                    "  {} {}: no longer measured",
                    case.id,
                    field.name()
                )),
                (None, None) => {}
            }
        }
    }
    for old_case in &old.cases {
        if !new.cases.iter().any(|c| c.id == old_case.id) {
            lines.push(format!("  dropped case {}", old_case.id));
        }
    }
    lines.push(format!("  {within_noise} figures within noise."));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture_run::results as fixture;

    #[test]
    fn a_first_bless_records_the_figures_and_drops_the_samples() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports/baseline.json");
        assert!(
            read_baseline(&path).unwrap().is_none(),
            "a missing baseline is not an error"
        );
        let message = bless(&fixture(), None, &path, None).unwrap();
        assert_eq!(
            message,
            format!(
                "No previous baseline at {}; recorded 10 cases (ci profile, commit 0123456789abcdef0123456789abcdef01234567).",
                path.display()
            )
        );
        let baseline = read_baseline(&path).unwrap().unwrap();
        assert_eq!(baseline.cases.len(), 10);
        assert!(
            baseline
                .cases
                .iter()
                .all(|c| c.timeline.is_empty() && c.dhat_file.is_none())
        );
        assert_eq!(
            baseline.cases[2].peak_heap_bytes,
            fixture().cases[2].peak_heap_bytes
        );
    }

    #[test]
    fn a_second_bless_lists_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.json");
        bless(&fixture(), None, &path, None).unwrap();
        let mut next = fixture();
        next.run.git_commit = Some("fedcba".into());
        next.cases[2].peak_heap_bytes = Some(90 << 20);
        next.cases
            .retain(|c| c.id != "calibration/known/bytes=67108864");
        let message = bless(&next, None, &path, None).unwrap();
        assert_eq!(
            message,
            "Baseline updated: ci profile, commit 0123456789abcdef0123456789abcdef01234567 → fedcba.
  large-session/before/log_bytes=33554432 peak_heap_bytes: 100 MiB → 90.0 MiB (-10.0%, improved)
  dropped case calibration/known/bytes=67108864
  49 figures within noise."
        );
    }

    #[test]
    fn blessing_one_scenario_replaces_its_cases_and_keeps_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.json");
        bless(&fixture(), None, &path, None).unwrap();
        let mut next = fixture();
        next.run.git_commit = Some("fedcba".into());
        // Both scenarios moved; only large-session is blessed.
        for case in &mut next.cases {
            case.peak_heap_bytes = case.peak_heap_bytes.map(|bytes| bytes / 2);
        }
        let message = bless_scenario(&next, None, &path, "large-session", None).unwrap();
        assert!(
            message.starts_with(
                "Baseline of large-session updated: ci profile, commit \
                 0123456789abcdef0123456789abcdef01234567 → fedcba.\n"
            ),
            "{message}"
        );
        assert!(!message.contains("calibration/"), "{message}");
        let baseline = read_baseline(&path).unwrap().unwrap();
        assert_eq!(baseline.cases.len(), fixture().cases.len());
        for case in &baseline.cases {
            let original = fixture()
                .cases
                .into_iter()
                .find(|c| c.id == case.id)
                .unwrap();
            let expected = if case.scenario == "large-session" {
                original.peak_heap_bytes.map(|bytes| bytes / 2)
            } else {
                original.peak_heap_bytes
            };
            assert_eq!(case.peak_heap_bytes, expected, "{}", case.id);
        }
        assert_eq!(
            baseline.run.git_commit.as_deref(),
            Some("0123456789abcdef0123456789abcdef01234567"),
            "the baseline's run line stays that of the scenarios not blessed"
        );
    }

    #[test]
    fn blessing_one_scenario_into_no_baseline_records_only_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.json");
        let message = bless_scenario(&fixture(), None, &path, "calibration", None).unwrap();
        let baseline = read_baseline(&path).unwrap().unwrap();
        assert!(!baseline.cases.is_empty());
        assert!(baseline.cases.iter().all(|c| c.scenario == "calibration"));
        assert!(
            message.contains(&format!(
                "recorded {} cases of calibration",
                baseline.cases.len()
            )),
            "{message}"
        );
    }

    #[test]
    fn blessing_a_scenario_the_run_lacks_or_of_another_profile_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.json");
        let error = bless_scenario(&fixture(), None, &path, "dedup-cache", None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the run has no case of scenario \"dedup-cache\" (it has: calibration, large-session): expected a run \
             of it, e.g. `cargo xtask load-test --scenario dedup-cache`"
        );
        assert!(!path.exists(), "nothing written");
        bless(&fixture(), None, &path, None).unwrap();
        let mut smoke = fixture();
        smoke.run.profile = "smoke".into();
        let error = bless_scenario(&smoke, None, &path, "calibration", None).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "the baseline at {} is of profile ci, the run of profile smoke: expected a run of profile ci \
                 (`cargo xtask load-test --profile ci --scenario calibration`)",
                path.display()
            )
        );
    }

    #[test]
    fn cases_missing_from_the_baseline_are_named_with_the_command_that_adds_them() {
        let mut baseline = fixture();
        baseline.cases.retain(|c| c.scenario != "large-session");
        let missing = cases_without_baseline(&fixture(), &baseline, &[]);
        assert!(!missing.is_empty());
        assert!(missing.iter().all(|id| id.starts_with("large-session/")));
        let notice = without_baseline_notice(&missing, &fixture().run).unwrap();
        assert_eq!(
            notice,
            format!(
                "{} cases have no baseline, so they are not judged for regression: large-session ({}). Add them \
                 with `cargo xtask bless --scenario large-session`.",
                missing.len(),
                missing.len()
            )
        );
        assert_eq!(
            cases_without_baseline(&fixture(), &fixture(), &[]),
            Vec::<String>::new()
        );
        assert_eq!(without_baseline_notice(&[], &fixture().run), None);
        // A run of the installed binary on a spec directory names the command that works there.
        let mut installed = fixture().run;
        installed.invocation = Some(schema::results::Invocation {
            program: "memproof".into(),
            spec_dir: Some("perf/memory".into()),
        });
        assert!(
            without_baseline_notice(&missing, &installed)
                .unwrap()
                .ends_with("Add them with `memproof bless --spec-dir perf/memory --scenario large-session`."),
        );
        // A counterfactual case (`--prove`) is never in a baseline, so never named as missing from one.
        let mut proved = fixture();
        let mut counterfactual = proved.cases[0].clone();
        counterfactual.role = schema::results::counterfactual_role("undone", &Default::default());
        counterfactual.counterfactual = Some("undone".into());
        counterfactual.id = format!("{}/{}/x=1", counterfactual.scenario, counterfactual.role);
        proved.cases.push(counterfactual);
        assert_eq!(
            cases_without_baseline(&proved, &fixture(), &[]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_unreadable_baseline_is_replaced_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.json");
        std::fs::write(&path, "{ not json").unwrap();
        let message = bless(&fixture(), None, &path, None).unwrap();
        assert!(
            message.starts_with("The previous baseline could not be read ("),
            "{message}"
        );
        assert!(read_baseline(&path).unwrap().is_some());
    }

    #[test]
    fn a_baseline_names_processes_by_their_program_alone() {
        assert_eq!(
            program_name(
                "/home/someone/memproof/target/release/memproof-case case --work-dir /tmp/x"
            ),
            "memproof-case"
        );
        assert_eq!(program_name("python3 server.py"), "python3");
        let mut results = fixture();
        results.cases[0].tree = Some(schema::results::TreeReport {
            largest_process: Some(schema::results::ProcessPeak {
                pid: 7,
                command: Some("/home/someone/bin/server --data /home/someone/data".into()),
                peak_rss_bytes: 1,
            }),
            ..Default::default()
        });
        let baseline = baseline_of(&results);
        let text = serde_json::to_string(&baseline).unwrap();
        assert!(!text.contains("/home/someone"), "{text}");
    }
}
