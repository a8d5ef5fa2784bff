//! The committed baseline, `reports/baseline.json`: the figures of every case of a blessed run, which the next runs'
//! regression verdicts compare against.
//!
//! It keeps the results.json schema (so the same code reads it and a person can diff it in review) but only what
//! regression needs: per case id its figures and outcome. Timelines, phases, profile files and verdicts are dropped,
//! so a bless diff shows figures changing, not samples. A missing baseline is not an error: the first run has none,
//! and its report says so.

use crate::judge::check_expression::{CaseField, Metric};
use crate::judge::regression::{Change, classify, format_percent_change, tolerance_for};
use crate::noise::Noise;
use anyhow::Context as _;
use harness::results::Results;
use std::path::Path;

/// Where the baseline lives in the repository.
pub const BASELINE_PATH: &str = "reports/baseline.json";

/// Reads the baseline at `path`: `None` when there is none yet; an error naming the file when it is unreadable.
pub fn read_baseline(path: &Path) -> anyhow::Result<Option<Results>> {
    if !path.exists() {
        return Ok(None);
    }
    Results::read(path).map(Some)
}

/// `results` reduced to what a baseline keeps.
pub fn baseline_of(results: &Results) -> Results {
    let mut baseline = results.clone();
    baseline.verdicts.clear();
    // Counterfactual cases (`load-test --prove`) are evidence that verdicts can fail, never figures to guard.
    baseline.cases.retain(|case| {
        !case
            .variant
            .starts_with(harness::suite::COUNTERFACTUAL_PREFIX)
    });
    for case in &mut baseline.cases {
        case.timeline.clear();
        case.phases.clear();
        case.profile_file = None;
        case.profile = None;
    }
    baseline
}

/// Writes `results` as the new baseline at `path` and returns what changed against the old baseline, in words:
/// cases added and dropped, and every figure that moved beyond its regression tolerance (from `noise`, as the
/// regression check takes it).
pub fn bless(results: &Results, path: &Path, noise: Option<&Noise>) -> anyhow::Result<String> {
    let previous = match read_baseline(path) {
        Ok(previous) => previous,
        Err(error) => {
            // A baseline that cannot be read is exactly what bless is for: replace it, and say so.
            let baseline = baseline_of(results);
            write_baseline(&baseline, path)?;
            return Ok(format!(
                "The previous baseline could not be read ({error:#}); replaced it with {} cases from this run.",
                baseline.cases.len()
            ));
        }
    };
    let baseline = baseline_of(results);
    write_baseline(&baseline, path)?;
    Ok(match previous {
        None => format!(
            "No previous baseline at {}; recorded {} cases ({} profile, commit {}).",
            path.display(),
            baseline.cases.len(),
            baseline.run.profile,
            baseline.run.git_commit.as_deref().unwrap_or("unknown")
        ),
        Some(previous) => describe_changes(&previous, &baseline, noise),
    })
}

fn write_baseline(baseline: &Results, path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create", parent.display()))?;
    }
    baseline.write(path)
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

    fn fixture() -> Results {
        Results::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results.json"))
            .unwrap()
    }

    #[test]
    fn a_first_bless_records_the_figures_and_drops_the_samples() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports/baseline.json");
        assert!(
            read_baseline(&path).unwrap().is_none(),
            "a missing baseline is not an error"
        );
        let message = bless(&fixture(), &path, None).unwrap();
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
                .all(|c| c.timeline.is_empty() && c.profile_file.is_none())
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
        bless(&fixture(), &path, None).unwrap();
        let mut next = fixture();
        next.run.git_commit = Some("fedcba".into());
        next.cases[2].peak_heap_bytes = Some(90 << 20);
        next.cases
            .retain(|c| c.id != "calibration/known/bytes=67108864");
        let message = bless(&next, &path, None).unwrap();
        assert_eq!(
            message,
            "Baseline updated: ci profile, commit 0123456789abcdef0123456789abcdef01234567 → fedcba.
  large-session/before/log_bytes=33554432 peak_heap_bytes: 100 MiB → 90.0 MiB (-10.0%, improved)
  dropped case calibration/known/bytes=67108864
  49 figures within noise."
        );
    }

    #[test]
    fn an_unreadable_baseline_is_replaced_and_said() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baseline.json");
        std::fs::write(&path, "{ not json").unwrap();
        let message = bless(&fixture(), &path, None).unwrap();
        assert!(
            message.starts_with("The previous baseline could not be read ("),
            "{message}"
        );
        assert!(read_baseline(&path).unwrap().is_some());
    }
}
