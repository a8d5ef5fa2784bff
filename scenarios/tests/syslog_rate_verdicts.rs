//! The verdicts `scenarios/syslog-rate.toml` registers, asserted on the spec's `smoke` profile by running the real
//! case binary (a child process per case, the probe's JSON lines read from its stdout), until the judge in
//! `memproof-reports` evaluates them from results.json. The sizes and parameters come from the spec itself.

use harness::spec::Spec;
use harness::wire::ChildLine;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// What one case reported.
struct CaseFigures {
    metrics: BTreeMap<String, serde_json::Value>,
    peak_heap_bytes: u64,
}

impl CaseFigures {
    fn metric(&self, name: &str) -> f64 {
        self.metrics
            .get(name)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| panic!("metric {name} missing from {:?}", self.metrics))
    }
}

fn run_case(spec: &Spec, role: &str, size: f64) -> CaseFigures {
    let profile = &spec.profiles["smoke"];
    let technique = spec.technique(role).unwrap();
    let work_dir = std::env::temp_dir().join(format!(
        "memproof-syslog-rate-{}-{role}-{size}",
        std::process::id()
    ));
    let output = Command::new(env!("CARGO_BIN_EXE_memproof-case"))
        .args(["case", "--scenario", "syslog-rate", "--role", role])
        .args(["--technique", technique, "--size-name", "records"])
        .args(["--size-value", &size.to_string()])
        .args([
            "--params",
            &serde_json::Value::Object(profile.params.clone()).to_string(),
        ])
        .arg("--work-dir")
        .arg(&work_dir)
        .env(harness::probe::PROBE_FD_ENV, "1")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&work_dir);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{role} at {size}: {}\n{stderr}",
        output.status
    );
    let mut metrics = BTreeMap::new();
    let mut peak_heap_bytes = None;
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        match serde_json::from_str::<ChildLine>(line).unwrap() {
            ChildLine::Metric { name, value } => {
                metrics.insert(name, value);
            }
            ChildLine::Final(figures) => {
                assert_eq!(figures.error, None, "{role} at {size}");
                peak_heap_bytes = figures.peak_heap_bytes;
            }
            _ => {}
        }
    }
    let figures = CaseFigures {
        metrics,
        peak_heap_bytes: peak_heap_bytes.expect("the case sent its final line"),
    };
    // Shown when an assertion below fails.
    eprintln!(
        "{role} at {size} records: peak heap {} bytes, metrics {:?}",
        figures.peak_heap_bytes, figures.metrics
    );
    figures
}

#[test]
fn smoke_profile_meets_the_registered_verdicts() {
    let spec = Spec::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("syslog-rate.toml")).unwrap();
    let sizes = &spec.profiles["smoke"].size.values;
    let (smallest, largest) = (sizes[0], sizes[sizes.len() - 1]);
    let before = run_case(&spec, "before", largest);
    let after = run_case(&spec, "after", largest);
    let best_small = run_case(&spec, "best", smallest);
    let best_large = run_case(&spec, "best", largest);

    for (role, case) in [
        ("before", &before),
        ("after", &after),
        ("best", &best_large),
    ] {
        // Every datagram is accounted for, malformed ones are counted, odd records are read or reported.
        let sent = case.metric("messages_sent");
        assert_eq!(
            sent,
            case.metric("messages_received") + case.metric("messages_dropped"),
            "{role}"
        );
        assert!(case.metric("messages_invalid") > 0.0, "{role}");
        assert!(case.metric("records_unreadable") > 0.0, "{role}");
        assert!(case.metric("fast_path_misses_at_insert") > 0.0, "{role}");
        assert_eq!(case.metric("trims_failed"), 0.0, "{role}");
        assert_eq!(
            case.metric("trims_started"),
            case.metric("trims_completed"),
            "{role}"
        );
    }
    assert!(after.metric("fast_path_misses_in_trims") > 0.0);

    // one-trim-per-workflow-in-flight
    assert!(after.metric("max_trims_in_flight_per_workflow") <= 1.0);
    assert!(best_large.metric("max_trims_in_flight_per_workflow") <= 1.0);
    // fire-and-forget-trims-pile-up
    let piled = before.metric("max_trims_in_flight_per_workflow");
    assert!(
        piled >= 3.0,
        "before's trims in flight per workflow = {piled}"
    );
    // prefix-scan-cuts-peak-heap
    let heap_ratio = before.peak_heap_bytes as f64 / after.peak_heap_bytes as f64;
    assert!(heap_ratio >= 5.0, "before / after peak heap = {heap_ratio}");
    // prefix-regex-cheaper-than-full-parse
    let cpu_ratio = before.metric("field_extraction_cpu_ns_per_record")
        / after.metric("field_extraction_cpu_ns_per_record");
    assert!(
        cpu_ratio >= 10.0,
        "before / after extraction CPU per record = {cpu_ratio}"
    );
    // index-trim-peak-is-flat: the table grows 4x, the peak must not follow, by the judge's own bound for "flat"
    // (an exponent of at most FLAT_MAX_EXPONENT: 1.41x over 4x). A bound of its own here (1.25x) sat inside the
    // figure's spread once the table became a fixture: best's smoke peak is 0.92 to 1.21 MB over seven runs, as its
    // two workflows' trims overlap or not, and one clean-clone CI run measured 1.29x.
    let growth = best_large.peak_heap_bytes as f64 / best_small.peak_heap_bytes as f64;
    let flat_bound = (largest / smallest).powf(reports::judge::growth_fit::FLAT_MAX_EXPONENT);
    assert!(
        growth < flat_bound,
        "best's peak heap grew {growth}x ({} -> {}) over a {}x larger table (flat: under {flat_bound}x)",
        best_small.peak_heap_bytes,
        best_large.peak_heap_bytes,
        largest / smallest
    );
}
