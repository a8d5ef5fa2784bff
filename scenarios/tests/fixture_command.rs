//! `memproof-case fixture`, the real binary: a startup store made once, served from the cache to a case at another
//! concurrency, and remade (and said so) when a stored spec is damaged.

use planning::fixtures::Answer;
use std::path::Path;
use std::process::Command;

fn fixture(cache: &Path, concurrency: u32) -> Answer {
    let output = Command::new(env!("CARGO_BIN_EXE_memproof-case"))
        .args([
            "fixture",
            "--scenario",
            "startup",
            "--role",
            "before",
            "--technique",
            "hold_through_trigger_wait",
            "--size-name",
            "concurrency",
            "--size-value",
            &concurrency.to_string(),
            "--params",
            r#"{"workflows": 3, "module_bytes": "16KiB", "size_spread": 0.25, "data_fraction": 0.25, "trigger_wait": "1ms", "corrupt_workflows": 1}"#,
            "--seed",
            "5",
            "--cache",
        ])
        .arg(cache)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn the_store_is_made_once_and_remade_when_damaged() {
    let cache = tempfile::tempdir().unwrap();
    let first = fixture(cache.path(), 1);
    assert_eq!(first.status, "generated");
    let data_dir = first.data_dir.clone().unwrap();
    let manifest = planning::fixtures::read_manifest(&data_dir).unwrap();
    assert_eq!(manifest.figures["workflows"], 3);
    assert_eq!(manifest.files.len(), 3);

    // Another concurrency stores the same specs: the same entry, from the cache.
    let second = fixture(cache.path(), 12);
    assert_eq!(second.status, "cached");
    assert_eq!(second.data_dir, first.data_dir);

    let spec = data_dir.join(&manifest.files[0].path);
    let mut bytes = std::fs::read(&spec).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&spec, &bytes).unwrap();
    let third = fixture(cache.path(), 4);
    assert!(
        third.status.starts_with("regenerated (") && third.status.contains("SHA-256"),
        "{}",
        third.status
    );
    assert_eq!(
        planning::fixtures::read_manifest(&data_dir).unwrap(),
        manifest
    );
    assert_eq!(
        planning::fixtures::file_sha256(&spec).unwrap(),
        manifest.files[0].sha256
    );
}
