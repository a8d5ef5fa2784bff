//! Regression verdicts: every figure of every case against the same case of an earlier run (the committed
//! `reports/baseline.json`, or the old side of `cargo xtask compare`).
//!
//! The figures are not equally repeatable, so each has its own tolerance, decided in one place ([`tolerance_for`]):
//! how far the figure of that very case moved over repeated runs (`cargo xtask noise` writes it to
//! `reports/noise.json`), times [`NOISE_MARGIN`], above a [`floor`]. A single-threaded case's heap repeats to the
//! byte and gets the floor; a figure threads make spread gets its own spread's width. A figure without a measured
//! spread gets the wide [`unmeasured`] default, and its verdict says so. Wall time depends on whatever else the two
//! shared cores are doing and is not judged ([`JUDGED_FIELDS`]). More is worse for every case field. Scenario
//! metrics (`metrics.*`) are not judged here, because their direction is the scenario's to say (more messages
//! delivered is better, more trims in flight is worse): write a budget for them instead; `compare` still lists
//! their change.

use super::check_expression::Metric;
use super::tolerance::{Tolerance, tolerance_for};
use crate::allocation_sites::push_case_sites;
use crate::noise::Noise;
use schema::results::{CaseField, Change, VerdictKind};

use schema::results::{Case, Results, Verdict};
use schema::spec::Spec;
use std::path::Path;

/// The case fields judged against a baseline: the memory figures. Wall time is not: on the shared 2-core machine a
/// busy neighbour made cases 3-4x slower (hook-storm/before_pruned/starting_events=100: 301 ms in the baseline,
/// 1.07 s while other builds ran), beyond any tolerance that would still catch a regression; `compare` lists its
/// change all the same.
pub const JUDGED_FIELDS: [CaseField; 5] = [
    CaseField::PeakHeapBytes,
    CaseField::PeakRssBytes,
    CaseField::TotalAllocBytes,
    CaseField::AllocCount,
    CaseField::EndHeapBytes,
];

/// Classifies a change from `old` to `new` under `tolerance`.
pub fn classify(old: f64, new: f64, tolerance: Tolerance) -> Change {
    let slack = old.abs() * tolerance.relative + tolerance.absolute;
    if new > old + slack {
        Change::Regressed
    } else if new < old - slack {
        Change::Improved
    } else {
        Change::WithinNoise
    }
}

/// `+20.0%`, `-3.1%`, `new` when the old value was 0.
pub fn format_percent_change(old: f64, new: f64) -> String {
    if old == 0.0 {
        if new == 0.0 {
            "±0%".to_string()
        } else {
            "new".to_string()
        }
    } else {
        format!("{:+.1}%", (new - old) / old * 100.0)
    }
}

/// One regression verdict per case field of every case present (by id) in both runs, where both have the figure,
/// for the roles its scenario's spec judges, each within its [`tolerance_for`] from `noise`. `what_old_is` names the
/// old run in the text ("the baseline", "the old run").
pub fn regression_verdicts(
    new: &Results,
    old: &Results,
    specs: &[Spec],
    results_dir: Option<&Path>,
    what_old_is: &str,
    noise: Option<&Noise>,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for case in &new.cases {
        // A counterfactual case is evidence that a verdict can fail, not a figure of the project to guard.
        if case.counterfactual.is_some() {
            continue;
        }
        let Some(old_case) = old.cases.iter().find(|old_case| old_case.id == case.id) else {
            continue;
        };
        let regression = specs
            .iter()
            .find(|spec| spec.scenario == case.scenario)
            .map(|spec| &spec.regression);
        for field in JUDGED_FIELDS {
            if regression.is_some_and(|judged| !judged.judges(&case.role, field.name())) {
                continue;
            }
            if let (Some(old_value), Some(new_value)) = (field.value(old_case), field.value(case)) {
                let tolerance = tolerance_for(noise, &new.run.profile, &case.id, field);
                verdicts.push(regression_verdict(
                    case,
                    field,
                    (tolerance.tolerance, tolerance.describe(field, noise)),
                    (old_value, new_value),
                    results_dir,
                    what_old_is,
                ));
            }
        }
    }
    verdicts
}

fn regression_verdict(
    case: &Case,
    field: CaseField,
    (tolerance, allowed): (Tolerance, String),
    (old_value, new_value): (f64, f64),
    results_dir: Option<&Path>,
    what_old_is: &str,
) -> Verdict {
    let metric = Metric::Field(field);
    let change = classify(old_value, new_value, tolerance);
    let percent = format_percent_change(old_value, new_value);
    let mut text = format!(
        "{} {}: {} against {what_old_is}: previously {}, now {} ({percent}; {allowed})",
        case.id,
        field.name(),
        change.word(),
        metric.format(old_value),
        metric.format(new_value),
    );
    if change == Change::Regressed
        && let Some(ranking) = metric.site_ranking()
    {
        push_case_sites(&mut text, results_dir, case, ranking);
    }
    Verdict {
        change: Some(change),
        id: format!("{}/{}", case.id, field.name()),
        kind: VerdictKind::Regression,
        subject: case.id.clone(),
        text,
        expected: format!("<= {} ({allowed})", metric.format(old_value)),
        measured: format!("{} ({percent})", metric.format(new_value)),
        pass: change != Change::Regressed,
        counterfactual: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::tolerance::unmeasured;

    #[test]
    fn the_judged_fields_are_the_ones_a_spec_can_name() {
        let names: Vec<&str> = JUDGED_FIELDS.iter().map(|field| field.name()).collect();
        assert_eq!(names, schema::spec::REGRESSION_FIGURES);
    }

    #[test]
    fn changes_are_classified_against_the_tolerance() {
        let heap = unmeasured(CaseField::PeakHeapBytes);
        let mib = 1024.0 * 1024.0;
        assert_eq!(
            classify(100.0 * mib, 104.0 * mib, heap),
            Change::WithinNoise
        );
        assert_eq!(classify(100.0 * mib, 106.0 * mib, heap), Change::Regressed);
        assert_eq!(classify(100.0 * mib, 90.0 * mib, heap), Change::Improved);
        assert_eq!(format_percent_change(200.0, 250.0), "+25.0%");
        assert_eq!(format_percent_change(0.0, 250.0), "new");
    }
}
