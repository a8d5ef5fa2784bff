//! A case played by a program of the user's (a spec in TOML alone) on real processes: the size and params reach
//! the technique, the driver runs beside it and its figures join the case's, the heap comes from the technique's
//! probe client, and a driver that fails fails the case.

use planning::suite::{self, Binaries, SuiteOptions};
use schema::results::Outcome;
use schema::spec::Spec;
use std::path::{Path, PathBuf};
use std::time::Duration;

const HELD: u64 = 8 * 1024 * 1024;

/// Writes a spec, its technique and its driver into `dir` and reads the spec back.
fn spec_in(dir: &Path, driver_exit: i32) -> Spec {
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/python");
    std::fs::write(
        dir.join("tech.py"),
        format!(
            r#"
import json, os, sys, time
sys.path.insert(0, {client:?})
import memproof_probe as probe
# A meter's own cost, as tracemalloc's is: memory only the run with the probe channel holds.
meter_cost = b"m" * (64 << 20) if "MEMPROOF_PROBE_FD" in os.environ else b""
probe.start()
held = bytearray(int(sys.argv[1]))
probe.metric("rows_seen", json.loads(os.environ["MEMPROOF_PARAMS"])["rows"])
probe.metric("size_from_env", int(os.environ["MEMPROOF_SIZE"]))
while not os.path.exists("driver-was-here"):  # the driver runs beside the technique, in its work directory
    time.sleep(0.01)
del held
probe.finish()
"#,
            client = client.to_str().unwrap()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("driver.py"),
        format!(
            "import json, sys\nopen('driver-was-here', 'w').close()\nprint(json.dumps({{'requests': 3}}))\nsys.exit({driver_exit})\n"
        ),
    )
    .unwrap();
    let text = r#"
scenario = "toy-external"
title = "t"
summary = "s"
variants = [{ role = "before", technique = "hold", command = ["python3", "{spec_dir}/tech.py", "{size}"] }]
[driver]
command = ["python3", "{spec_dir}/driver.py"]
[profiles.ci]
timeout = "60s"
size = { name = "bytes", unit = "bytes", values = [8388608] }
params = { rows = 7 }
"#;
    let path = dir.join("toy-external.toml");
    std::fs::write(&path, text).unwrap();
    Spec::read(&path).unwrap()
}

fn run(spec: &Spec, out: &Path) -> schema::results::Case {
    let planned = suite::plan(std::slice::from_ref(spec), "ci").unwrap();
    let binaries = Binaries {
        launcher: runner::test_support::launcher(),
        case: PathBuf::from("/nonexistent/memproof-case"),
        dhat: PathBuf::from("/nonexistent/memproof-dhat"),
    };
    let options = SuiteOptions {
        profile: "ci".into(),
        out_dir: out.to_path_buf(),
        interval: Duration::from_millis(5),
        sample_ms: 5,
        seed: 1,
    };
    let technique = spec.external_technique("hold").unwrap();
    planning::command_case::run(
        &planned[0],
        spec,
        technique,
        &binaries,
        None,
        &options,
        &mut |_| {},
    )
    .unwrap()
}

#[test]
fn an_external_technique_gets_its_size_and_params_and_its_driver_figures() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec_in(dir.path(), 0);
    let case = run(&spec, dir.path());
    assert_eq!(case.outcome, Outcome::Ok, "{:?}", case.exit);
    assert_eq!(case.metrics["rows_seen"], 7);
    assert_eq!(case.metrics["size_from_env"], HELD);
    assert_eq!(case.metrics["requests"], 3, "the driver's figures");
    let peak = case.peak_heap_bytes.unwrap();
    assert!(
        peak.abs_diff(HELD) as f64 / (HELD as f64) < 0.02,
        "peak heap {peak}"
    );
    // The heap came from a heap run of its own (the probe on), recorded as the case's profile run; the peak RSS
    // from the run without it.
    let heap_run = case.dhat_run.as_ref().unwrap();
    assert_eq!(
        heap_run.reason.as_deref(),
        Some(schema::results::HEAP_RUN_REASON)
    );
    assert_eq!(heap_run.outcome, Outcome::Ok);
    assert_eq!(heap_run.peak_heap_bytes, case.peak_heap_bytes);
    // The meter's 64 MiB never reaches the figures an RSS verdict or a limit judges.
    let rss = case.peak_rss_bytes.unwrap();
    assert!(rss < 48 << 20, "peak RSS {rss}");
}

#[test]
fn a_failing_driver_fails_the_case_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec_in(dir.path(), 3);
    let case = run(&spec, dir.path());
    assert_eq!(case.outcome, Outcome::Failed);
    let message = case.exit.message.unwrap();
    assert!(
        message.starts_with("the driver python3 ") && message.contains("failed (exit status: 3)"),
        "{message}"
    );
}

/// A run's record keeps who the case is as its planner said, a counterfactual's technique included: the judge tells
/// evidence from figures to guard by that field alone (a counterfactual case is never judged for regression).
#[test]
fn a_recorded_case_keeps_who_it_is_a_counterfactual_included() {
    let launch = runner::test_support::launch(
        runner::test_support::launcher(),
        "true",
        Vec::<String>::new(),
    );
    let measured = runner::test_support::run_ok(&launch);
    let role = schema::results::counterfactual_role("undone", &Default::default());
    let identity = schema::results::CaseIdentity {
        id: format!("toy/{role}/n=1"),
        scenario: "toy".into(),
        role: role.clone(),
        technique: Some("undone".into()),
        counterfactual: Some("undone".into()),
        size: schema::results::Size {
            name: "n".into(),
            value: 1.0,
            unit: "items".into(),
        },
        limit_bytes: None,
    };
    let case = planning::external::recorded_case(identity, measured, None, None);
    assert_eq!(case.counterfactual.as_deref(), Some("undone"));
    assert_eq!(case.role, role);
    assert_eq!(case.outcome, Outcome::Ok);
}
