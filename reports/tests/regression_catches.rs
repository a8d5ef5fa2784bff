//! The regression check against the committed baseline and noise file (`reports/baseline.json`,
//! `reports/noise.json`): for every case it judges, the peak heap raised by the smallest change it must catch
//! fails the check, and the baseline against itself passes.
//!
//! The target: a deterministic case (its peak heap repeated within 1% over the noise runs) must fail at +10% or
//! +32 KiB, whichever is larger; any other at +20%. Re-measuring the noise (`cargo xtask noise`) or re-blessing the
//! baseline re-runs this test against the new figures; a new scenario needs its noise entries first
//! (`cargo xtask noise --scenario NAME --update`, see docs/noise.md).
//!
//! [`KNOWN_GAPS`] are the cases whose measured spread is too wide for +20%: for them the test asserts only that a
//! rise past their own tolerance fails. The list must shrink, not grow.

use reports::judge::regression::regression_verdicts;
use reports::noise::Noise;
use schema::results::CaseField;
use schema::results::Results;
use std::path::Path;

/// A peak heap that moved less than this over the noise runs is a deterministic case's.
const DETERMINISTIC_RATIO: f64 = 1.01;

/// Cases whose peak heap spreads too far over the noise runs for the check to catch +20% (2x the spread is more),
/// by the spreads in reports/noise.json. A case belongs here only until its load is made to repeat
/// (docs/noise.md, "Making figures repeat"). syslog-rate's merged fix at 200 records repeats to 0.1% on a quiet
/// machine, and with a CPU hog per core its two workflows' trims overlap further (up to 1.121x): its regression check
/// catches a rise past that spread, not +20%.
const KNOWN_GAPS: [&str; 1] = ["syslog-rate/after/records=200"];

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The smallest raised peak heap the check must catch, and the target's name.
fn must_catch(old: u64, ratio: f64) -> (u64, &'static str) {
    if ratio <= DETERMINISTIC_RATIO {
        let raised = (old as f64 * 1.10).max(old as f64 + 32.0 * 1024.0);
        (raised.ceil() as u64, "+10% or +32 KiB")
    } else {
        ((old as f64 * 1.20).ceil() as u64, "+20%")
    }
}

#[test]
fn every_judged_case_fails_the_regression_check_at_the_target_change() {
    let baseline = Results::read(&workspace().join("reports/baseline.json")).unwrap();
    let noise = Noise::read(&workspace().join("reports/noise.json"))
        .unwrap()
        .expect("reports/noise.json: measure it with `cargo xtask noise`");
    assert_eq!(
        noise.profile, baseline.run.profile,
        "noise and baseline of one profile"
    );
    let specs = schema::spec::read_dir(&workspace().join("scenarios")).unwrap();

    let unchanged = regression_verdicts(
        &baseline,
        &baseline,
        &specs,
        None,
        "the baseline",
        Some(&noise),
    );
    assert!(!unchanged.is_empty());
    let failing: Vec<_> = unchanged
        .iter()
        .filter(|v| !v.pass)
        .map(|v| &v.id)
        .collect();
    assert!(
        failing.is_empty(),
        "the baseline against itself: {failing:?}"
    );

    let mut checked = 0;
    let mut missed = Vec::new();
    for (index, case) in baseline.cases.iter().enumerate() {
        let Some(old) = case.peak_heap_bytes else {
            continue;
        };
        let judged = specs
            .iter()
            .find(|spec| spec.scenario == case.scenario)
            .is_none_or(|spec| {
                spec.regression
                    .judges(&case.role, CaseField::PeakHeapBytes.name())
            });
        if !judged {
            continue;
        }
        let spread = noise
            .spread(&case.id, CaseField::PeakHeapBytes)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no entry for its peak heap in reports/noise.json\n\nMeasure the scenario's noise with \
                     `cargo xtask noise --scenario {} --update` and commit the file.",
                    case.id, case.scenario
                )
            });
        let ratio = spread.ratio.expect("a peak heap is never 0");
        let (raised, target) = if KNOWN_GAPS.contains(&case.id.as_str()) {
            let past_tolerance = old as f64 * (1.0 + 2.0 * (ratio - 1.0)) + 16.0 * 1024.0 + 1.0;
            (past_tolerance.ceil() as u64, "its own tolerance")
        } else {
            must_catch(old, ratio)
        };
        let mut new = baseline.clone();
        new.cases[index].peak_heap_bytes = Some(raised);
        let verdicts =
            regression_verdicts(&new, &baseline, &specs, None, "the baseline", Some(&noise));
        let id = format!("{}/peak_heap_bytes", case.id);
        let verdict = verdicts.iter().find(|v| v.id == id).unwrap();
        if verdict.pass {
            missed.push(format!(
                "{} ({target}, measured spread {ratio:.3}x): {}",
                case.id, verdict.text
            ));
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} cases judged");
    assert!(missed.is_empty(), "not caught:\n{}", missed.join("\n"));
}
