//! The meters checking themselves: verdicts on the calibration case, which runs first in every load test. The judge
//! makes them, as it makes every verdict: the planner only runs the case first.
//!
//! The calibration cases allocate and touch a known number of bytes (`scenarios/calibration.toml`), one on a
//! single thread (`known`), one on several threads in barrier-separated phases (`threads`). If the heap meter does
//! not report exactly the peak that allocation makes (and, on the threaded case, exactly the bytes and blocks it
//! allocated and the bytes it leaked), if the kernel's high-water mark is below the known bytes, or if the counting
//! allocator and dhat disagree on peak, total or count of the same deterministic run, the meters are wrong and no
//! other figure of the run can be believed: the run fails.
//!
//! The verdicts of the `known` case are `calibration/NAME`; those of any other case `calibration/ROLE-NAME`.

use schema::results::{Case, Outcome, Verdict, VerdictKind};
use schema::spec::CALIBRATION_SCENARIO as SCENARIO;
use schema::units::format_bytes;

fn metric_u64(case: &Case, name: &str) -> Option<u64> {
    case.metrics.get(name).and_then(serde_json::Value::as_u64)
}

/// How a figure is shown in a verdict.
type Shown = fn(Option<u64>) -> String;

fn count(value: Option<u64>) -> String {
    value.map_or_else(|| "nothing".to_string(), |c| c.to_string())
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
        let prefix = if case.role == "known" {
            String::new()
        } else {
            format!("{}-", case.role)
        };
        let verdict =
            |name: &str, text: String, expected: String, measured: String, pass: bool| Verdict {
                id: format!("{SCENARIO}/{prefix}{name}"),
                kind: VerdictKind::Calibration,
                change: None,
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
        for (name, what, known, measured) in [
            (
                "total-exact",
                "bytes allocated",
                "known_alloc_bytes",
                "measured_alloc_bytes",
            ),
            (
                "count-exact",
                "blocks allocated",
                "known_alloc_count",
                "measured_alloc_count",
            ),
            (
                "leak-exact",
                "bytes left live",
                "known_leak_bytes",
                "measured_leak_bytes",
            ),
        ] {
            // Only a case that knows the figure in advance is judged on it.
            let Some(known) = metric_u64(case, known) else {
                continue;
            };
            let measured = metric_u64(case, measured);
            let exact = measured == Some(known);
            verdicts.push(verdict(
                name,
                if exact {
                    format!("the heap meter counts exactly the {what} between the case's barriers")
                } else {
                    format!(
                        "the heap meter is wrong: the case made {} {what} between its barriers but the meter counted {}",
                        known,
                        count(measured)
                    )
                },
                format!("{what} == {known}"),
                count(measured),
                exact,
            ));
        }
        if let Some(profile) = &case.dhat_run {
            let figures: [(&str, Option<u64>, Option<u64>, Shown); 3] = [
                ("peak", profile.peak_heap_bytes, case.peak_heap_bytes, bytes),
                (
                    "total",
                    profile.total_alloc_bytes,
                    case.total_alloc_bytes,
                    bytes,
                ),
                ("count", profile.alloc_count, case.alloc_count, count),
            ];
            let apart: Vec<String> = figures
                .iter()
                .filter(|(_, dhat, counting, _)| dhat != counting)
                .map(|(name, dhat, counting, show)| {
                    format!(
                        "{name} counting {} against dhat {}",
                        show(*counting),
                        show(*dhat)
                    )
                })
                .collect();
            let agree = profile.outcome == Outcome::Ok && apart.is_empty();
            verdicts.push(verdict(
                "meters-agree",
                if agree {
                    "the counting allocator and dhat report the same peak heap, bytes and blocks allocated".into()
                } else if profile.outcome != Outcome::Ok {
                    format!("the dhat run of the calibration case ended {}", profile.outcome)
                } else {
                    format!(
                        "the two heap meters disagree on the same deterministic case: {}",
                        apart.join("; ")
                    )
                },
                format!(
                    "dhat max_bytes, total_bytes, total_blocks == {}, {}, {}",
                    bytes(case.peak_heap_bytes),
                    bytes(case.total_alloc_bytes),
                    count(case.alloc_count)
                ),
                format!(
                    "{}, {}, {}",
                    bytes(profile.peak_heap_bytes),
                    bytes(profile.total_alloc_bytes),
                    count(profile.alloc_count)
                ),
                agree,
            ));
        }
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::results::{DhatRun, Exit, Size};

    fn calibration_case(peak_heap: u64, peak_rss: u64, dhat_peak: u64) -> Case {
        let size = Size {
            name: "bytes".into(),
            value: 1000.0,
            unit: "bytes".into(),
        };
        Case {
            counterfactual: None,
            id: Case::make_id(SCENARIO, "known", &size),
            scenario: SCENARIO.into(),
            role: "known".into(),
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
            dhat_file: None,
            dhat_run: Some(DhatRun {
                outcome: Outcome::Ok,
                peak_heap_bytes: Some(dhat_peak),
                total_alloc_bytes: Some(peak_heap),
                alloc_count: Some(3),
                wall_ms: 1.0,
                reason: None,
            }),
            tree: None,
            output: None,
            repeat: None,
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

    /// The threaded case: its known totals and leak, and dhat's totals and count, all judged.
    fn threaded_case(measured_count: u64, dhat_total: u64) -> Case {
        let mut case = calibration_case(1100, 4096, 1100);
        case.role = "threads".into();
        case.id = Case::make_id(SCENARIO, "threads", &case.size);
        for (name, value) in [
            ("known_alloc_bytes", 5000),
            ("measured_alloc_bytes", 5000),
            ("known_alloc_count", 12),
            ("measured_alloc_count", measured_count),
            ("known_leak_bytes", 0),
            ("measured_leak_bytes", 0),
        ] {
            case.metrics.insert(name.into(), serde_json::json!(value));
        }
        case.dhat_run.as_mut().unwrap().total_alloc_bytes = Some(dhat_total);
        case
    }

    #[test]
    fn the_threaded_case_is_judged_on_totals_count_and_leak_under_its_own_ids() {
        let verdicts = verdicts(&[threaded_case(12, 1100)]);
        let ids: Vec<&str> = verdicts.iter().map(|v| v.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "calibration/threads-heap-exact",
                "calibration/threads-rss-covers",
                "calibration/threads-total-exact",
                "calibration/threads-count-exact",
                "calibration/threads-leak-exact",
                "calibration/threads-meters-agree"
            ]
        );
        assert!(verdicts.iter().all(|v| v.pass), "{verdicts:?}");
    }

    #[test]
    fn a_block_the_meter_lost_on_another_thread_fails_and_says_which_figure() {
        let verdicts = verdicts(&[threaded_case(11, 1100)]);
        let count = &verdicts[3];
        assert!(!count.pass);
        assert_eq!(
            count.text,
            "the heap meter is wrong: the case made 12 blocks allocated between its barriers but the meter counted 11"
        );
        assert!(verdicts.iter().filter(|v| !v.pass).count() == 1);
    }

    #[test]
    fn meters_that_disagree_on_the_total_alone_fail() {
        let verdicts = verdicts(&[threaded_case(12, 1164)]);
        let agree = verdicts.last().unwrap();
        assert!(!agree.pass);
        assert_eq!(
            agree.text,
            "the two heap meters disagree on the same deterministic case: total counting 1100 B (1.07 KiB) against dhat 1164 B (1.14 KiB)"
        );
    }
}
