//! `cargo xtask noise --update`, run as a contributor runs it to give a new scenario its noise entries: folded into
//! a copy of the committed noise file, the measurement of one scenario leaves the file's header and every other
//! case's entry byte-identical, and the command the file records names no absolute path.

mod support;

use std::path::Path;

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The text of one case's entry in a noise file's text.
fn entry<'a>(text: &'a str, id: &str) -> &'a str {
    let start = text
        .find(&format!(
            "\n    {}: {{\n",
            serde_json::to_string(id).unwrap()
        ))
        .unwrap_or_else(|| panic!("{id}: no entry"));
    let end = start + text[start..].find("\n    }").unwrap();
    &text[start..end]
}

#[test]
fn update_folds_one_scenario_in_and_leaves_every_other_entry_byte_identical() {
    let scratch = tempfile::tempdir().unwrap();
    let committed = std::fs::read_to_string(workspace().join("reports/noise.json")).unwrap();
    let noise_file = scratch.path().join("noise.json");
    std::fs::write(&noise_file, &committed).unwrap();
    // Two finished runs of one scenario (and the calibration, which every run has): the reports' fixture run, and
    // the same with one figure moved.
    let fixture = workspace().join("reports/tests/fixtures/results.json");
    let mut run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    let measured: Vec<String> = run["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| case["id"].as_str().unwrap().to_string())
        .collect();
    let runs = [scratch.path().join("run-1"), scratch.path().join("run-2")];
    for (index, dir) in runs.iter().enumerate() {
        std::fs::create_dir(dir).unwrap();
        if index == 1 {
            let heap = run["cases"][1]["peak_heap_bytes"].as_u64().unwrap();
            run["cases"][1]["peak_heap_bytes"] = (heap + 4096).into();
        }
        std::fs::write(dir.join("results.json"), run.to_string()).unwrap();
    }
    let output = support::xtask()
        .args(["noise", "--update", "--out"])
        .arg(&noise_file)
        .arg("--from")
        .args(&runs)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    let written = std::fs::read_to_string(&noise_file).unwrap();
    let header = |text: &str| text[..text.find("\"cases\"").unwrap()].to_string();
    assert_eq!(header(&written), header(&committed));
    let file: serde_json::Value = serde_json::from_str(&committed).unwrap();
    let mut untouched = 0;
    for id in file["cases"].as_object().unwrap().keys() {
        if !measured.contains(id) {
            assert_eq!(entry(&written, id), entry(&committed, id), "{id}");
            untouched += 1;
        }
    }
    assert!(untouched > 10, "{untouched}");
    let after: serde_json::Value = serde_json::from_str(&written).unwrap();
    for id in &measured {
        assert!(after["cases"].get(id).is_some(), "{id}: not folded in");
    }
    let recorded = after["folded"][0].as_str().unwrap();
    assert!(
        recorded.starts_with("2 runs by `cargo xtask noise --from "),
        "{recorded}"
    );
    assert!(recorded.contains("/run-1 "), "{recorded}");
    assert!(recorded.contains(" --update`"), "{recorded}");
    assert!(
        recorded
            .split(' ')
            .all(|word| !word.starts_with('/') && !word.starts_with("`/")),
        "an absolute path in the recorded command: {recorded}"
    );
}
