//! The harness checking itself: verdicts on the calibration case, which runs first in every load test.
//!
//! The calibration case allocates and touches a known number of bytes (`scenarios/calibration.toml`). If the heap
//! meter does not report exactly the peak that allocation makes, if the kernel's high-water mark is below the known
//! bytes, or if the counting allocator and dhat disagree on the same deterministic run, the meters are wrong and no
//! other figure of the run can be believed: the run fails.

use crate::results::{Case, Outcome, Verdict};
use crate::units::format_bytes;

/// The scenario name of the calibration case.
pub const SCENARIO: &str = "calibration";

fn metric_u64(case: &Case, name: &str) -> Option<u64> {
    case.metrics.get(name).and_then(serde_json::Value::as_u64)
}

fn bytes(value: Option<u64>) -> String {
    match value {
        None => "nothing".to_string(),
        Some(v) if v < 1024 => format!("{v} B"),
        Some(v) => format!("{v} B ({})", format_bytes(v as f64)),
    }
}

/// The calibration verdicts of a run's calibration cases.
pub fn verdicts(cases: &[Case]) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for case in cases.iter().filter(|case| case.scenario == SCENARIO) {
        let verdict =
            |name: &str, text: String, expected: String, measured: String, pass: bool| Verdict {
                id: format!("{SCENARIO}/{name}"),
                kind: "calibration".to_string(),
                subject: case.id.clone(),
                text,
                expected,
                measured,
                pass,
                counterfactual: None,
            };
        if case.outcome != Outcome::Ok {
            verdicts.push(verdict(
                "ran",
                format!(
                    "the calibration case ended {}: {}",
                    case.outcome,
                    case.exit.message.as_deref().unwrap_or("")
                ),
                "ok".into(),
                case.outcome.to_string(),
                false,
            ));
            continue;
        }
        let expected = metric_u64(case, "expected_peak_heap_bytes");
        let heap_exact = expected.is_some() && case.peak_heap_bytes == expected;
        verdicts.push(verdict(
            "heap-exact",
            if heap_exact {
                "the heap meter reports exactly the known allocation's peak".into()
            } else {
                format!(
                    "the heap meter is wrong: the calibration case held {} at its peak but the meter reported {}",
                    bytes(expected),
                    bytes(case.peak_heap_bytes)
                )
            },
            format!("peak_heap_bytes == {}", bytes(expected)),
            bytes(case.peak_heap_bytes),
            heap_exact,
        ));
        let known = metric_u64(case, "known_bytes");
        let rss_covers = matches!((known, case.peak_rss_bytes), (Some(k), Some(p)) if p >= k);
        verdicts.push(verdict(
            "rss-covers",
            if rss_covers {
                "the kernel's high-water mark covers the known bytes touched".into()
            } else {
                format!(
                    "the RSS meter is wrong: {} were touched but the peak RSS reads {}",
                    bytes(known),
                    bytes(case.peak_rss_bytes)
                )
            },
            format!("peak_rss_bytes >= {}", bytes(known)),
            bytes(case.peak_rss_bytes),
            rss_covers,
        ));
        if let Some(profile) = &case.profile {
            let agree =
                profile.outcome == Outcome::Ok && profile.peak_heap_bytes == case.peak_heap_bytes;
            verdicts.push(verdict(
                "meters-agree",
                if agree {
                    "the counting allocator and dhat report the same peak heap".into()
                } else {
                    format!(
                        "the two heap meters disagree on the same deterministic case: counting {} against dhat {}",
                        bytes(case.peak_heap_bytes),
                        bytes(profile.peak_heap_bytes)
                    )
                },
                format!("dhat max_bytes == {}", bytes(case.peak_heap_bytes)),
                bytes(profile.peak_heap_bytes),
                agree,
            ));
        }
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Exit, ProfileRun, Size};

    fn calibration_case(peak_heap: u64, peak_rss: u64, dhat_peak: u64) -> Case {
        let size = Size {
            name: "bytes".into(),
            value: 1000.0,
            unit: "bytes".into(),
        };
        Case {
            id: Case::make_id(SCENARIO, "known", &size),
            scenario: SCENARIO.into(),
            variant: "known".into(),
            technique: Some("touch_known_steps".into()),
            size,
            outcome: Outcome::Ok,
            exit: Exit::default(),
            limit_bytes: None,
            limit: None,
            peak_rss_bytes: Some(peak_rss),
            peak_heap_bytes: Some(peak_heap),
            total_alloc_bytes: Some(peak_heap),
            alloc_count: Some(3),
            end_heap_bytes: Some(0),
            wall_ms: 1.0,
            timeline: Vec::new(),
            phases: Vec::new(),
            metrics: [
                ("known_bytes".to_string(), serde_json::json!(1000)),
                (
                    "expected_peak_heap_bytes".to_string(),
                    serde_json::json!(1100),
                ),
            ]
            .into_iter()
            .collect(),
            profile_file: None,
            profile: Some(ProfileRun {
                outcome: Outcome::Ok,
                peak_heap_bytes: Some(dhat_peak),
                total_alloc_bytes: None,
                alloc_count: None,
                wall_ms: 1.0,
            }),
        }
    }

    #[test]
    fn exact_meters_pass_every_calibration_verdict() {
        let verdicts = verdicts(&[calibration_case(1100, 4096, 1100)]);
        let ids: Vec<&str> = verdicts.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "calibration/heap-exact",
                "calibration/rss-covers",
                "calibration/meters-agree"
            ]
        );
        assert!(verdicts.iter().all(|v| v.pass));
    }

    #[test]
    fn a_heap_meter_off_by_eight_bytes_fails_the_run_and_says_by_what() {
        let verdicts = verdicts(&[calibration_case(1092, 4096, 1100)]);
        assert!(!verdicts[0].pass);
        assert_eq!(
            verdicts[0].text,
            "the heap meter is wrong: the calibration case held 1100 B (1.07 KiB) at its peak but the meter reported 1092 B (1.07 KiB)"
        );
        assert!(!verdicts[2].pass, "dhat's 1100 against counting's 1092");
    }

    #[test]
    fn an_rss_below_the_touched_bytes_fails() {
        let verdicts = verdicts(&[calibration_case(1100, 999, 1100)]);
        assert!(!verdicts[1].pass);
        assert_eq!(
            verdicts[1].text,
            "the RSS meter is wrong: 1000 B were touched but the peak RSS reads 999 B"
        );
    }
}
