//! `measure` on programs that turn on what reports them: a name made of markup, a flood of phases with huge names,
//! a program first seen between fork and exec. Run as a user runs them (the built `xtask` binary, real programs).

mod support;

use std::path::Path;
use std::process::Output;
use support::xtask;

fn measure(dir: &Path, flags: &[&str], command: &[&str]) -> Output {
    xtask()
        .arg("measure")
        .args(flags)
        .arg("--out")
        .arg(dir)
        .arg("--")
        .args(command)
        .output()
        .unwrap()
}

fn results(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

#[test]
fn a_program_named_in_markup_that_fails_is_escaped_and_headlined_failed() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("<script>alert(1)<|script>`x`.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 3\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = dir.path().join("out");
    let output = measure(&out, &[], &[script.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let headline = summary.lines().next().unwrap();
    assert!(
        headline.starts_with("## ❌ memproof `measure` run failed: 1 did not end ok"),
        "{headline}"
    );
    assert!(!summary.contains("<script>"), "{summary}");
    assert!(!summary.contains("<|script>"), "{summary}");
    assert!(!summary.contains("`x`"), "{summary}");
    // Every table row has as many cells as its header.
    for table in summary.split("\n\n").filter(|block| block.starts_with('|')) {
        let cells = |line: &str| line.replace("\\|", "").matches('|').count();
        let header = cells(table.lines().next().unwrap());
        for row in table.lines() {
            assert_eq!(cells(row), header, "{row}");
        }
    }
}

#[test]
fn a_flood_of_phases_with_huge_names_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    // 10,000 phases, each name 30 KB.
    let script = "name=$(head -c 30000 /dev/zero | tr '\\0' x); i=0; \
                  while [ $i -lt 10000 ]; do \
                  echo \"{\\\"type\\\":\\\"phase\\\",\\\"name\\\":\\\"$i$name\\\",\\\"mono_ns\\\":$i}\"; i=$((i+1)); \
                  done >&$MEMPROOF_PROBE_FD";
    let output = measure(dir.path(), &["--probe"], &["sh", "-c", script]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results = results(dir.path());
    let phases = results["cases"][0]["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 100);
    assert!(
        phases
            .iter()
            .all(|p| p["name"].as_str().unwrap().len() <= 64 + '…'.len_utf8())
    );
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("9900 phases past the first 100 were not kept")
    );
}

#[test]
fn the_largest_process_is_named_by_its_program_not_the_launcher() {
    // dd allocates its 64 MiB buffer at once: the largest process, first seen perhaps before its exec.
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let output = measure(
            dir.path(),
            &[],
            &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=20"],
        );
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let command = results(dir.path())["cases"][0]["tree"]["largest_process"]["command"].clone();
        // Its command line, or, first seen as it exited (its arguments already released), its `comm` name.
        assert!(
            command
                .as_str()
                .is_some_and(|c| c.starts_with("dd ") || c == "[dd]"),
            "{command}"
        );
    }
}
