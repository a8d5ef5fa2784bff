//! The calibration case, run for real through the runner: the heap meter reports exactly the known allocation,
//! the kernel's high-water mark covers it, and the counting run and the dhat run agree to the byte.

mod support;
use support::launcher;

use harness::results::Outcome;
use harness::runner::{Launch, Measured, run};
use std::path::{Path, PathBuf};
use std::time::Duration;

const KNOWN_BYTES: u64 = 32 * 1024 * 1024;

fn calibrate(program: &str, work_dir: &Path) -> Measured {
    let params = serde_json::json!({ "steps": 4, "hold": "40ms" }).to_string();
    let args = [
        "case",
        "--scenario",
        "calibration",
        "--role",
        "known",
        "--technique",
        "touch_known_steps",
        "--size-name",
        "bytes",
        "--size-value",
        &KNOWN_BYTES.to_string(),
        "--params",
        &params,
        "--work-dir",
        work_dir.to_str().unwrap(),
    ];
    let launch = Launch {
        launcher: launcher(),
        program: PathBuf::from(program),
        args: args.iter().map(Into::into).collect(),
        env: vec![(
            harness::probe::DHAT_FILE_ENV.into(),
            work_dir.join("dhat.json").into(),
        )],
        current_dir: Some(work_dir.to_path_buf()),
        limit_bytes: None,
        timeout: Duration::from_secs(60),
        interval: Duration::from_millis(5),
        probe: harness::runner::ProbeAccess::MemproofCase,
        output_stem: None,
    };
    let measured = run(&launch, |_| {}).unwrap();
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    measured
}

#[test]
fn the_calibration_case_is_measured_exactly_by_both_meters() {
    let work_dir = tempfile::tempdir().unwrap();
    let counting = calibrate(env!("CARGO_BIN_EXE_memproof-case"), work_dir.path());
    let dhat = calibrate(env!("CARGO_BIN_EXE_memproof-dhat"), work_dir.path());

    let expected = counting.metrics["expected_peak_heap_bytes"]
        .as_u64()
        .unwrap();
    let figures = counting.final_figures.as_ref().unwrap();
    assert_eq!(
        figures.peak_heap_bytes,
        Some(expected),
        "the counting meter is exact"
    );
    assert!((KNOWN_BYTES..KNOWN_BYTES + 64 * 1024).contains(&expected));
    assert!(
        counting.peak_rss_bytes.unwrap() >= KNOWN_BYTES,
        "RSS covers the touched bytes"
    );

    let dhat_figures = dhat.final_figures.as_ref().unwrap();
    assert_eq!(
        dhat_figures.peak_heap_bytes, figures.peak_heap_bytes,
        "the two meters agree on the peak"
    );
    assert_eq!(
        dhat_figures.alloc_count, figures.alloc_count,
        "… on the number of allocations"
    );
    assert_eq!(
        dhat_figures.total_alloc_bytes, figures.total_alloc_bytes,
        "… and on the bytes allocated"
    );
    assert!(
        work_dir.path().join("dhat.json").exists(),
        "the profile run leaves a dhat profile"
    );

    // The heap timeline was sampled while the case ran, and its phases came with it.
    let heap_samples = counting
        .timeline
        .iter()
        .filter(|s| s.heap_bytes.is_some())
        .count();
    assert!(heap_samples >= 5, "{heap_samples} heap samples");
    let phases: Vec<&str> = counting.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(phases, ["allocate", "hold", "free"]);
}
