//! The shipped examples (`scenarios/examples/`: a Python server with its probe client, a Node service with its
//! probe client, a C program through the preload library) run as README gives them, through the installed binary
//! from another directory, every fix verdict proven against its counterfactual.

use std::path::Path;
use std::process::Command;

#[test]
fn every_example_runs_and_every_verdict_holds_and_can_fail() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("scenarios")
        .join("examples");
    let elsewhere = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_memproof"))
        .args(["load-test", "--profile", "smoke", "--prove", "--spec-dir"])
        .arg(&examples)
        .current_dir(elsewhere.path())
        .env("MEMPROOF_CACHE_DIR", elsewhere.path().join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(elsewhere.path().join("target/memproof/smoke/results.json"))
            .unwrap(),
    )
    .unwrap();
    let mut scenarios: Vec<&str> = results["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| case["scenario"].as_str().unwrap())
        .collect();
    scenarios.dedup();
    assert_eq!(
        scenarios,
        ["c-line-index", "large-session-python", "node-revenue"]
    );
    let verdicts = results["verdicts"].as_array().unwrap();
    assert!(verdicts.iter().all(|v| v["pass"] == true));
    // Every fix verdict was run on its counterfactual and failed there.
    let proven = verdicts
        .iter()
        .filter(|v| v["counterfactual"]["failed"] == true)
        .count();
    assert!(proven >= 8, "{proven} verdicts proven");
}
