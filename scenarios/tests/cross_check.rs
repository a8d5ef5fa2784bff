//! The cross-check on real runs: the calibration case under GNU time, massif and heaptrack (whichever are
//! installed), with the empty case's startup excess, and a C program compiled now under GNU time. Every figure must
//! agree with its independent witness within the target; a tool that is not installed must be reported as skipped.

mod support;
use support::launcher;

use crosscheck::subject::{RunSettings, Subject, external_programs};
use crosscheck::table::{Figure, Status};
use crosscheck::tools::{ALL_TOOLS, Tool};
use crosscheck::{Plan, run_cross_check};
use planning::suite::PlannedCase;
use schema::results::Size;
use std::path::Path;
use std::time::Duration;

fn calibration(bytes: u64, steps: u64, hold: &str) -> PlannedCase {
    let size = Size {
        name: "bytes".into(),
        value: bytes as f64,
        unit: "bytes".into(),
    };
    PlannedCase {
        counterfactual: None,
        id: schema::results::Case::make_id("calibration", "known", &size),
        scenario: "calibration".into(),
        role: "known".into(),
        technique: "touch_known_steps".into(),
        size,
        limit_bytes: None,
        timeout: Duration::from_secs(30),
        params: serde_json::json!({ "steps": steps, "hold": hold })
            .as_object()
            .unwrap()
            .clone(),
        dhat_run: false,
    }
}

#[test]
fn memproof_agrees_with_every_installed_tool() {
    let out_dir = tempfile::tempdir().unwrap();
    let case_binary = Path::new(env!("CARGO_BIN_EXE_memproof-case"));
    let known = 8u64 << 20;
    let c_program = external_programs(out_dir.path())
        .into_iter()
        .filter_map(Result::ok)
        .find(|subject| subject.label.starts_with("C:"));
    let mut subjects = vec![Subject::memproof_case(
        case_binary,
        &calibration(known, 4, "20ms"),
        1,
        "calibration",
    )];
    subjects.extend(c_program);
    let plan = Plan {
        startup_case: Some(Subject::memproof_case(
            case_binary,
            &calibration(0, 1, "0ms"),
            1,
            "empty",
        )),
        subjects,
        unavailable: Vec::new(),
        tools: ALL_TOOLS.to_vec(),
    };
    let settings = RunSettings {
        launcher: launcher(),
        out_dir: out_dir.path().to_path_buf(),
        interval: Duration::from_millis(5),
    };
    let run = planning::host::run_info("cross-check", Path::new("."));
    let report = run_cross_check(&plan, &settings, run, &mut |_| {}).unwrap();

    for row in &report.rows {
        assert_ne!(
            row.status,
            Status::Fail,
            "{} {} against {}: {:?}",
            row.case,
            row.figure.name(),
            row.tool,
            row
        );
    }
    for tool in ALL_TOOLS {
        let available = tool.availability().is_ok();
        let rows: Vec<_> = report
            .rows
            .iter()
            .filter(|row| row.tool == tool.display_name())
            .collect();
        assert!(!rows.is_empty(), "{} has rows", tool.name());
        for row in rows {
            let expected = if available {
                Status::Pass
            } else {
                Status::Skipped
            };
            assert_eq!(row.status, expected, "{row:?}");
            if !available {
                assert!(row.note.contains(tool.apt_package()), "{}", row.note);
            }
        }
    }
    // The calibration case's heap rows: memproof's meter inside each tool's run read what it read in its own run.
    for row in report
        .rows
        .iter()
        .filter(|row| row.figure != Figure::PeakRssBytes && row.status == Status::Pass)
    {
        assert_eq!(row.memproof_inside_tool_run, row.memproof, "{row:?}");
        assert!(row.memproof.unwrap() > 0);
    }
    let heap_rows = report
        .rows
        .iter()
        .filter(|row| row.figure == Figure::PeakHeapBytes && row.status == Status::Pass);
    for row in heap_rows {
        assert!(row.memproof.unwrap() >= known, "{row:?}");
        assert!(
            row.startup_excess.is_some(),
            "heap rows carry the startup excess"
        );
    }
    if Tool::Time.availability().is_ok() {
        let c_row = report
            .rows
            .iter()
            .find(|row| row.case.starts_with("C:"))
            .expect("cc is installed where this test runs");
        assert!(c_row.tool_figure.unwrap() >= 100 << 20, "{c_row:?}");
    }
    assert!(
        report.failures().next().is_none(),
        "{}",
        crosscheck::table::render_terminal(&report)
    );
}
