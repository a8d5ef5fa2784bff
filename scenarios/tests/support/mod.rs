//! What the integration tests that run real cases share.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The launcher is a binary of the harness package; build it when this package is tested on its own.
pub fn launcher() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_memproof-case"))
        .parent()
        .unwrap();
    let path = dir.join("memproof-launch");
    if !path.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--package",
                "memproof-runner",
                "--bin",
                "memproof-launch",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build memproof-launch");
    }
    path
}

/// Runs every case of `spec_file`'s `profile` (a spec in `scenarios/`) through the runner as the load test does:
/// the built case binaries, a process of its own per case, a role the profile repeats run that many times and
/// combined into medians, no dhat runs. Returns the run and the spec's own verdicts on it, judged by memproof's
/// judge: a test asserts them instead of copying a spec's thresholds, which would drift from it.
pub fn judge_spec_profile(
    spec_file: &str,
    profile: &str,
) -> (schema::results::Results, Vec<schema::results::Verdict>) {
    use planning::suite::{Binaries, SuiteOptions, plan, run_case};
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(spec_file);
    let specs = [schema::spec::Spec::read(&spec_path).unwrap()];
    let out = tempfile::tempdir().unwrap();
    let binaries = Binaries {
        launcher: launcher(),
        case: PathBuf::from(env!("CARGO_BIN_EXE_memproof-case")),
        dhat: PathBuf::from(env!("CARGO_BIN_EXE_memproof-dhat")),
    };
    let options = SuiteOptions {
        profile: profile.to_string(),
        out_dir: out.path().to_path_buf(),
        interval: std::time::Duration::from_millis(5),
        sample_ms: 10,
        seed: 1,
    };
    let mut cases = Vec::new();
    for mut planned in plan(&specs, profile).unwrap() {
        planned.dhat_run = false;
        let runs = planning::repeat::runs_for(&specs, profile, &planned, None);
        let case = planning::repeat::run_repeated(runs, |_| {
            run_case(&planned, &binaries, &options, &mut |_| {})
        })
        .unwrap();
        cases.push(case);
    }
    let results = schema::results::Results::unjudged(
        planning::host::run_info(profile, Path::new(env!("CARGO_MANIFEST_DIR"))),
        cases,
    );
    let verdicts = reports::judge::judge(&results, &specs, None);
    (results, verdicts)
}

/// Asserts that every verdict holds, naming each that does not with the judge's own words.
pub fn assert_every_verdict_holds(verdicts: &[schema::results::Verdict]) {
    assert!(!verdicts.is_empty(), "no verdicts were judged");
    let failed: Vec<&str> = verdicts
        .iter()
        .filter(|verdict| !verdict.pass)
        .map(|verdict| verdict.text.as_str())
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
