//! Regression verdicts: every figure of every case against the same case of an earlier run (the committed
//! `reports/baseline.json`, or the old side of `cargo xtask compare`).
//!
//! The figures are not equally trustworthy, so each kind has its own tolerance, all in [`tolerance`]: the heap
//! figures come from a counting allocator and repeat to the byte for a single-threaded case (docs/measured.md), so a
//! few percent is already a change; RSS depends on what glibc keeps and when the kernel reclaims, and wall time on
//! whatever else the two shared cores are doing, so only a large change means anything. More is worse for every
//! case field. Scenario metrics (`metrics.*`) are not judged here, because their direction is the scenario's to say
//! (more messages delivered is better, more trims in flight is worse): write a budget for them instead; `compare`
//! still lists their change.

use super::check_expression::{CaseField, Metric};
use crate::allocation_sites::describe_top_sites;
use harness::results::{Case, Results, Verdict};
use harness::spec::Spec;
use std::path::Path;

/// How far a figure may rise before it is a regression: `relative` of the old value plus `absolute` in the
/// metric's unit (the absolute slack keeps a 3 KiB case from failing on a 200-byte change).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub relative: f64,
    pub absolute: f64,
}

/// The tolerance of each case field.
pub fn tolerance(field: CaseField) -> Tolerance {
    match field {
        CaseField::PeakHeapBytes | CaseField::TotalAllocBytes | CaseField::EndHeapBytes => {
            Tolerance {
                relative: 0.05,
                absolute: 256.0 * 1024.0,
            }
        }
        CaseField::AllocCount => Tolerance {
            relative: 0.05,
            absolute: 1000.0,
        },
        CaseField::PeakRssBytes => Tolerance {
            relative: 0.25,
            absolute: 8.0 * 1024.0 * 1024.0,
        },
        CaseField::WallMs => Tolerance {
            relative: 1.0,
            absolute: 250.0,
        },
    }
}

/// criterion's three words for a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Regressed,
    Improved,
    WithinNoise,
}

impl Change {
    pub fn word(self) -> &'static str {
        match self {
            Change::Regressed => "regressed",
            Change::Improved => "improved",
            Change::WithinNoise => "within noise",
        }
    }
}

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

/// The tolerance of a case field in a scenario: the spec's own `[regression]` figure where it gives one (for
/// figures that do not repeat from run to run), else the default of the field's kind.
pub fn scenario_tolerance(field: CaseField, spec: Option<&Spec>) -> Tolerance {
    let default = tolerance(field);
    let Some(own) = spec.map(|spec| &spec.regression) else {
        return default;
    };
    let relative = match field {
        CaseField::PeakHeapBytes
        | CaseField::TotalAllocBytes
        | CaseField::EndHeapBytes
        | CaseField::AllocCount => own.heap,
        CaseField::PeakRssBytes => own.rss,
        CaseField::WallMs => own.time,
    };
    Tolerance {
        relative: relative.unwrap_or(default.relative),
        ..default
    }
}

/// One regression verdict per case field of every case present (by id) in both runs, where both have the figure,
/// for the roles its scenario's spec judges. `what_old_is` names the old run in the text ("the baseline", "the old
/// run").
pub fn regression_verdicts(
    new: &Results,
    old: &Results,
    specs: &[Spec],
    results_dir: Option<&Path>,
    what_old_is: &str,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for case in &new.cases {
        let Some(old_case) = old.cases.iter().find(|old_case| old_case.id == case.id) else {
            continue;
        };
        let spec = specs.iter().find(|spec| spec.scenario == case.scenario);
        let judged_roles = spec.and_then(|spec| spec.regression.roles.as_ref());
        if judged_roles.is_some_and(|roles| !roles.contains(&case.variant)) {
            continue;
        }
        for field in CaseField::ALL {
            if let (Some(old_value), Some(new_value)) = (field.value(old_case), field.value(case)) {
                verdicts.push(regression_verdict(
                    case,
                    field,
                    scenario_tolerance(field, spec),
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
    tolerance: Tolerance,
    (old_value, new_value): (f64, f64),
    results_dir: Option<&Path>,
    what_old_is: &str,
) -> Verdict {
    let metric = Metric::Field(field);
    let change = classify(old_value, new_value, tolerance);
    let percent = format_percent_change(old_value, new_value);
    let allowed = format!(
        "tolerance +{:.0}% and {}",
        tolerance.relative * 100.0,
        metric.format(tolerance.absolute)
    );
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
        text.push('\n');
        text.push_str(&describe_top_sites(
            results_dir,
            &case.id,
            case.profile_file.as_deref(),
            ranking,
        ));
    }
    Verdict {
        id: format!("{}/{}", case.id, field.name()),
        kind: "regression".to_string(),
        subject: case.id.clone(),
        text,
        expected: format!("<= {} ({allowed})", metric.format(old_value)),
        measured: format!("{} ({percent})", metric.format(new_value)),
        pass: change != Change::Regressed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_classified_against_the_tolerance_of_their_kind() {
        let heap = tolerance(CaseField::PeakHeapBytes);
        let mib = 1024.0 * 1024.0;
        assert_eq!(
            classify(100.0 * mib, 104.0 * mib, heap),
            Change::WithinNoise
        );
        assert_eq!(classify(100.0 * mib, 106.0 * mib, heap), Change::Regressed);
        assert_eq!(classify(100.0 * mib, 90.0 * mib, heap), Change::Improved);
        let rss = tolerance(CaseField::PeakRssBytes);
        assert_eq!(classify(100.0 * mib, 120.0 * mib, rss), Change::WithinNoise);
        assert_eq!(classify(100.0 * mib, 140.0 * mib, rss), Change::Regressed);
        let time = tolerance(CaseField::WallMs);
        assert_eq!(classify(1000.0, 1900.0, time), Change::WithinNoise);
        assert_eq!(classify(1000.0, 2300.0, time), Change::Regressed);
        assert_eq!(format_percent_change(200.0, 250.0), "+25.0%");
        let spec = harness::spec::Spec::parse(
            Path::new("toy.toml"),
            "scenario = \"toy\"\ntitle = \"t\"\nsummary = \"s\"\nvariants = [{ role = \"after\", technique = \"x\" }]\n\
             [profiles.ci]\nsize = { name = \"n\", unit = \"items\", values = [1] }\n[regression]\nheap = 0.5\n",
        )
        .unwrap();
        let own = scenario_tolerance(CaseField::PeakHeapBytes, Some(&spec));
        assert_eq!(own.relative, 0.5, "the spec's own heap tolerance");
        assert_eq!(classify(100.0 * mib, 140.0 * mib, own), Change::WithinNoise);
        assert_eq!(
            scenario_tolerance(CaseField::PeakRssBytes, Some(&spec)),
            rss,
            "RSS keeps the default"
        );
        assert_eq!(format_percent_change(0.0, 250.0), "new");
    }
}
