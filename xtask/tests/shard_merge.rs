//! The real commands end to end: `load-test --profile smoke` whole with `--jobs 1`, then as three shards each with
//! `--jobs 2`, then `merge`. The merged run must hold the same cases in the same order, the same verdict ids, and
//! the same deterministic figures as the whole run; and `merge` must refuse a missing or duplicated shard, and
//! shards of another profile or commit, naming them.
//!
//! Deterministic figures: the calibration cases (every figure, to the byte) and the startup cases (bytes and blocks
//! allocated and the heap left live: a current-thread runtime does the same work every run; its peak at a
//! concurrency above 1 depends on when trigger waits end, so only concurrency 1's peak is compared). The other
//! scenarios run tokio on several threads or race a driver, and allocate differently from run to run whatever N
//! is. Every run directory has a name of the same length, because the path is in each case's arguments and so in
//! its heap.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn xtask(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("xtask starts");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr)
}

fn load_test(out: &Path, extra: &[&str]) {
    let mut args = vec![
        "load-test",
        "--profile",
        "smoke",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, stderr) = xtask(&args);
    // 1 is a failed verdict: smoke's RSS claims and growth fits on small sizes may fail on a loaded machine.
    assert!(code == 0 || code == 1, "exit {code}\n{stderr}");
}

fn results(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ids(results: &Value, list: &str) -> Vec<String> {
    results[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

fn deterministic_figures(results: &Value) -> Vec<(String, String, Value)> {
    let mut figures = Vec::new();
    for case in results["cases"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let fields: &[&str] = match case["scenario"].as_str().unwrap() {
            "calibration" => &[
                "peak_heap_bytes",
                "total_alloc_bytes",
                "alloc_count",
                "end_heap_bytes",
            ],
            "startup" if id.ends_with("concurrency=1") => &[
                "peak_heap_bytes",
                "total_alloc_bytes",
                "alloc_count",
                "end_heap_bytes",
            ],
            "startup" => &["total_alloc_bytes", "alloc_count", "end_heap_bytes"],
            _ => &[],
        };
        for field in fields {
            assert!(case[field].is_u64(), "{id} has no {field}");
            figures.push((id.to_string(), field.to_string(), case[field].clone()));
        }
    }
    figures
}

fn merge(dirs: &[&PathBuf], out: &Path) -> (i32, String) {
    let mut args = vec!["merge".to_string()];
    args.extend(dirs.iter().map(|dir| dir.display().to_string()));
    args.extend(["--out".to_string(), out.display().to_string()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    xtask(&refs)
}

fn rewrite_run(from: &Path, to: &Path, field: &str, value: &str) {
    std::fs::create_dir_all(to).unwrap();
    let mut results = results(from);
    results["run"][field] = Value::String(value.into());
    std::fs::write(to.join("results.json"), results.to_string()).unwrap();
}

#[test]
fn three_shards_with_two_jobs_merge_into_the_whole_run() {
    let root = tempfile::tempdir().unwrap();
    let dir = |name: &str| root.path().join(name);
    let whole = dir("s0");
    load_test(&whole, &["--jobs", "1"]);
    let shards: Vec<PathBuf> = (1..=3).map(|k| dir(&format!("s{k}"))).collect();
    for (k, shard) in shards.iter().enumerate() {
        load_test(shard, &["--jobs", "2", "--shard", &format!("{}/3", k + 1)]);
        let run = &results(shard)["run"];
        assert_eq!(run["jobs"], 2);
        assert_eq!(run["shard"]["index"], k as u64 + 1);
    }

    let merged = dir("mg");
    let (code, stderr) = merge(&shards.iter().collect::<Vec<_>>(), &merged);
    assert!(code == 0 || code == 1, "exit {code}\n{stderr}");
    let whole_results = results(&whole);
    let merged_results = results(&merged);
    assert_eq!(ids(&merged_results, "cases"), ids(&whole_results, "cases"));
    assert_eq!(
        ids(&merged_results, "verdicts"),
        ids(&whole_results, "verdicts")
    );
    assert_eq!(
        deterministic_figures(&merged_results),
        deterministic_figures(&whole_results)
    );
    assert!(merged_results["run"]["shard"].is_null());
    assert!(merged.join("summary.md").exists() && merged.join("index.html").exists());
    // Every shard ran the calibration cases; every other case ran in exactly one shard.
    let mut sharded: Vec<String> = shards
        .iter()
        .flat_map(|shard| ids(&results(shard), "cases"))
        .filter(|id| !id.starts_with("calibration/"))
        .collect();
    let count = sharded.len();
    sharded.sort();
    sharded.dedup();
    assert_eq!(sharded.len(), count);
    for shard in &shards {
        assert!(
            ids(&results(shard), "cases")
                .iter()
                .any(|id| id.starts_with("calibration/"))
        );
    }

    let (code, stderr) = merge(&[&shards[0], &shards[1]], &dir("x1"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("shard 3/3 missing"), "{stderr}");

    let (code, stderr) = merge(
        &[&shards[0], &shards[0], &shards[1], &shards[2]],
        &dir("x2"),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("are both shard 1/3"), "{stderr}");

    let other_profile = dir("op");
    rewrite_run(&shards[2], &other_profile, "profile", "ci");
    let (code, stderr) = merge(&[&shards[0], &shards[1], &other_profile], &dir("x3"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{} is of profile ci", other_profile.display())),
        "{stderr}"
    );

    let other_commit = dir("oc");
    rewrite_run(&shards[2], &other_commit, "git_commit", "0123abc");
    let (code, stderr) = merge(&[&shards[0], &shards[1], &other_commit], &dir("x4"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("{} is of commit 0123abc", other_commit.display())),
        "{stderr}"
    );
}

/// `--dry-run` with `--shard` lists the shard's own share, as the run would balance it: the three shards' cases
/// together are the whole plan, each case in one shard only, and the calibration cases in every shard.
#[test]
fn a_dry_run_of_a_shard_lists_its_share() {
    let listed = |extra: &[&str]| -> Vec<String> {
        let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["load-test", "--profile", "smoke", "--dry-run"])
            .args(extra)
            .output()
            .expect("xtask starts");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| line.strip_prefix("case: ").map(str::to_string))
            .collect()
    };
    let whole = listed(&[]);
    let shards: Vec<Vec<String>> = (1..=3)
        .map(|k| listed(&["--shard", &format!("{k}/3")]))
        .collect();
    let is_calibration = |id: &String| id.starts_with("calibration/");
    let calibration: Vec<&String> = whole.iter().filter(|id| is_calibration(id)).collect();
    assert!(!calibration.is_empty());
    let mut joined: Vec<&String> = Vec::new();
    for shard in &shards {
        assert!(shard.len() < whole.len(), "a shard lists its share only");
        for id in &calibration {
            assert!(shard.contains(id), "{id} in every shard");
        }
        joined.extend(shard.iter().filter(|id| !is_calibration(id)));
    }
    joined.sort();
    let mut rest: Vec<&String> = whole.iter().filter(|id| !is_calibration(id)).collect();
    rest.sort();
    assert_eq!(joined, rest, "every other case in exactly one shard");
}
