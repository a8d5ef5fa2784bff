//! The installed `memproof` as a user meets it: copied out of the build (as `cargo install` would put it), run from
//! a git repository of the user's own outside memproof's checkout, against a small before/after program and a
//! TOML spec in `memproof/`, with default flags. Green on the fix; exit 1 with every report on a regression; a
//! driver that fails ends its case at once with its own words kept; a program that cannot be found is exit 2
//! before the first case.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A user's repository and an installed memproof.
struct UserRepository {
    _scratch: tempfile::TempDir,
    repository: PathBuf,
    memproof: PathBuf,
    cache: PathBuf,
}

impl UserRepository {
    fn new() -> UserRepository {
        let scratch = tempfile::tempdir().unwrap();
        let bin = scratch.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let memproof = bin.join("memproof");
        std::fs::copy(env!("CARGO_BIN_EXE_memproof"), &memproof).unwrap();
        let repository = scratch.path().join("orders-service");
        std::fs::create_dir_all(repository.join("memproof")).unwrap();
        let cache = scratch.path().join("cache");
        let user = UserRepository {
            _scratch: scratch,
            repository,
            memproof,
            cache,
        };
        user.git(&["init", "-q"]);
        user
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.repository.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn git(&self, args: &[&str]) {
        let status = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&self.repository)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn memproof(&self, args: &[&str]) -> Output {
        Command::new(&self.memproof)
            .args(args)
            .current_dir(&self.repository)
            .env("MEMPROOF_CACHE_DIR", &self.cache)
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap()
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.repository.join(relative)
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A program that holds its input whole (`hold_all`) or a chunk at a time (`chunks`), with memproof's Python
/// client, and a spec that judges the fix.
const APP: &str = r#"
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools"))
import memproof_probe as probe

probe.start()
size = int(os.environ["MEMPROOF_SIZE"])
if sys.argv[1] == "hold_all":
    held = [bytes(4096) for _ in range(size // 4096)]
    probe.phase("held")
    total = sum(len(chunk) for chunk in held)
else:
    total = 0
    for _ in range(size // 4096):
        chunk = bytes(4096)
        total += len(chunk)
probe.metric("bytes_seen", total)
probe.finish()
"#;

const SPEC: &str = r#"
scenario = "report-export"
title = "The monthly report export"
summary = "The export held every row before writing; the fix writes a chunk at a time."
variants = [
  { role = "before", technique = "hold_all", command = ["python3", "{spec_dir}/../app.py", "hold_all"] },
  { role = "after", technique = "chunks", command = ["python3", "{spec_dir}/../app.py", "chunks"] },
]

[profiles.ci]
timeout = "60s"
size = { name = "rows_bytes", unit = "bytes", values = [4194304, 8388608, 16777216] }

[[verdicts]]
id = "chunks-bounded"
kind = "budget"
text = "the fix holds one chunk, not the export"
check = "after.peak_heap_bytes <= 1MiB"
at = "all"
counterfactual = { technique = "hold_all" }

[[verdicts]]
id = "chunks-many-times-lower"
kind = "claim"
text = "the fix holds many times less than holding every row"
check = "before.peak_heap_bytes / after.peak_heap_bytes >= 10"
at = "largest"
counterfactual = { technique = "hold_all" }

[[verdicts]]
id = "whole-tree-bounded"
kind = "budget"
text = "the fix's whole process tree stays small"
check = "after.tree.peak_pss_bytes <= 200MiB"
at = "all"
counterfactual = { none = "a bound on the tree's total, which the fix did not change" }
"#;

fn user_with_the_fix() -> UserRepository {
    let user = UserRepository::new();
    user.write("app.py", APP);
    user.write("memproof/report-export.toml", SPEC);
    let client = user.memproof(&["client", "python"]);
    assert!(client.status.success(), "{}", stderr(&client));
    user.write(
        "tools/memproof_probe.py",
        &String::from_utf8(client.stdout).unwrap(),
    );
    user.git(&["add", "."]);
    user.git(&["commit", "-qm", "the fix"]);
    user
}

#[test]
fn the_installed_binary_runs_a_users_specs_from_their_repository() {
    let user = user_with_the_fix();
    let run = user.memproof(&["load-test", "--prove"]);
    let text = stderr(&run);
    assert_eq!(run.status.code(), Some(0), "{text}");
    // The first run has no baseline: it says which command records one, from here.
    assert!(text.contains("Consider `memproof bless --from "), "{text}");
    assert!(user.path("target/memproof/ci/summary.md").exists());
    assert!(user.path("target/memproof/ci/index.html").exists());
    // No calibration case and no dhat run: a user's command scenario needs memproof's case binaries for neither.
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(user.path("target/memproof/ci/results.json")).unwrap(),
    )
    .unwrap();
    let cases = results["cases"].as_array().unwrap();
    assert!(cases.iter().all(|c| c["scenario"] == "report-export"));
    assert!(cases.iter().all(|c| c["dhat_file"].is_null()));
    // Heap from the heap run (the probe on), RSS from the run without it.
    let before = cases
        .iter()
        .find(|c| c["id"] == "report-export/before/rows_bytes=16777216")
        .unwrap();
    assert_eq!(before["dhat_run"]["reason"], "heap");
    assert!(before["peak_heap_bytes"].as_u64().unwrap() >= 16 << 20);
    assert_eq!(results["run"]["invocation"]["program"], "memproof");

    let bless = user.memproof(&["bless"]);
    assert_eq!(bless.status.code(), Some(0), "{}", stderr(&bless));
    assert!(user.path("memproof/baseline.json").exists());
    let noise = user.memproof(&["noise", "--runs", "2"]);
    assert_eq!(noise.status.code(), Some(0), "{}", stderr(&noise));
    assert!(user.path("memproof/noise.json").exists());
    let again = user.memproof(&["load-test"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
}

#[test]
fn a_regression_is_exit_1_with_every_report_written() {
    let user = user_with_the_fix();
    // The fix undone: the "chunks" technique keeps every chunk again.
    user.write(
        "app.py",
        &APP.replace(
            "        chunk = bytes(4096)\n        total += len(chunk)",
            "        chunk = bytes(4096)\n        total += len(chunk)\n        kept = globals().setdefault('kept', [])\n        kept.append(chunk)",
        ),
    );
    let run = user.memproof(&["load-test"]);
    let text = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAILED report-export/chunks-bounded"),
        "{text}"
    );
    assert!(
        !text.contains("dhat"),
        "a command is never re-run under dhat: {text}"
    );
    for report in ["summary.md", "index.html", "results.json", "junit.xml"] {
        assert!(
            user.path("target/memproof/ci").join(report).exists(),
            "{report}"
        );
    }
    let summary = std::fs::read_to_string(user.path("target/memproof/ci/summary.md")).unwrap();
    assert!(summary.contains("chunks-bounded"), "{summary}");
    // Once, not under every failure: where a Python program's allocation sites come from.
    assert_eq!(
        summary
            .matches("Allocation sites of the failing command scenarios")
            .count(),
        1,
        "{summary}"
    );
    assert!(summary.contains("for Python, memray"), "{summary}");
    assert!(!summary.contains("dhat profile"), "{summary}");
}

#[test]
fn a_failing_driver_ends_its_case_at_once_in_its_own_words() {
    let user = user_with_the_fix();
    user.write("server.py", "import time\nwhile True:\n    time.sleep(1)\n");
    user.write(
        "driver.py",
        "import sys\nsys.exit('driver.py: cannot connect to the orders database on port 5432')\n",
    );
    user.write(
        "broken/server.toml",
        r#"
scenario = "hangs-without-its-load"
title = "A server whose driver cannot start"
summary = "The driver fails; the server would wait for it forever."
variants = [{ role = "before", technique = "serve", command = ["python3", "{spec_dir}/../server.py"] }]

[driver]
command = ["python3", "{spec_dir}/../driver.py"]

[profiles.ci]
timeout = "120s"
size = { name = "n", unit = "items", values = [1] }
"#,
    );
    let started = std::time::Instant::now();
    let run = user.memproof(&["load-test", "--spec-dir", "broken"]);
    let text = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{text}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the case waited for its timeout: {text}"
    );
    assert!(
        text.contains("cannot connect to the orders database on port 5432"),
        "{text}"
    );
    let kept = user
        .path("target/memproof/ci/cases/hangs-without-its-load_before_n_1/timeline-driver.stderr");
    assert!(
        std::fs::read_to_string(&kept)
            .unwrap()
            .contains("cannot connect to the orders database"),
        "{}",
        kept.display()
    );
    // A bless hint for this spec directory writes beside its specs, never into another's.
    assert!(!user.path("memproof/baseline.json").exists());
}

#[test]
fn a_program_that_cannot_be_found_is_exit_2_before_the_first_case() {
    let user = user_with_the_fix();
    user.write(
        "memproof/report-export.toml",
        &SPEC.replace(
            "\"python3\", \"{spec_dir}/../app.py\", \"chunks\"",
            "\"python3.99\", \"{spec_dir}/../app.py\", \"chunks\"",
        ),
    );
    let run = user.memproof(&["load-test"]);
    let text = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{text}");
    assert!(
        text.contains(
            "memproof/report-export.toml: technique chunks: program \"python3.99\" is not on PATH"
        ),
        "{text}"
    );
    assert!(
        !user.path("target/memproof/ci/cases").exists(),
        "no case ran"
    );
    // Run from a directory with no memproof/ in it: the default is named, with the flag that overrides it.
    let elsewhere = Command::new(&user.memproof)
        .arg("load-test")
        .current_dir(user.path("tools"))
        .env("MEMPROOF_CACHE_DIR", &user.cache)
        .output()
        .unwrap();
    assert_eq!(elsewhere.status.code(), Some(2));
    assert!(
        stderr(&elsewhere).starts_with(
            "memproof: memproof/: no such directory: expected the scenario specs in memproof/ here (the default), or --spec-dir DIR"
        ),
        "{}",
        stderr(&elsewhere)
    );
    let missing = user.memproof(&["load-test", "--spec-dir", "nowhere"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).starts_with("memproof: nowhere: no such directory"),
        "{}",
        stderr(&missing)
    );
}
