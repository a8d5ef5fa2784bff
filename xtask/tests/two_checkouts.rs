//! Two checkouts of memproof on one cargo target directory (a shared `CARGO_TARGET_DIR`, or the worktree
//! `compare --base` makes) each run their own specs and build into their own directory, even through one xtask
//! binary: the workspace is found at run time from the directory the command runs in. The checkouts are git
//! worktrees of this repository's HEAD; in one, the `startup` scenario's spec is deleted.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::smoke_load_test;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn git(args: &[&str]) {
    let status = Command::new("git")
        .current_dir(repository())
        .args(args)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

/// A detached worktree of HEAD, removed again when dropped.
struct Worktree(PathBuf);

impl Worktree {
    fn add(path: PathBuf) -> Worktree {
        git(&[
            "worktree",
            "add",
            "--detach",
            "--quiet",
            path.to_str().unwrap(),
            "HEAD",
        ]);
        Worktree(path)
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        git(&["worktree", "remove", "--force", self.0.to_str().unwrap()]);
    }
}

fn plan(checkout: &Path, target: &Path) -> Output {
    smoke_load_test("startup")
        // One binary stands in for both checkouts' xtask: skip the rebuild a stale xtask would do, so what is
        // tested is the run-time lookup of specs and binaries.
        .env("MEMPROOF_XTASK_REBUILT", "1")
        .current_dir(checkout.join("scenarios"))
        .env("CARGO_TARGET_DIR", target)
        .arg("--dry-run")
        .output()
        .expect("xtask runs")
}

fn line<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key:?} line in:\n{stdout}"))
}

#[test]
fn two_worktrees_on_one_target_directory_run_their_own_specs() {
    let scratch = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(scratch.path()).unwrap();
    let shared_target = root.join("shared-target");
    let a = Worktree::add(root.join("a"));
    let b = Worktree::add(root.join("b"));
    std::fs::remove_file(b.0.join("scenarios/startup.toml")).unwrap();

    let in_a = plan(&a.0, &shared_target);
    let stdout = String::from_utf8_lossy(&in_a.stdout);
    assert_eq!(
        in_a.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&in_a.stderr)
    );
    assert_eq!(line(&stdout, "workspace: "), a.0.to_str().unwrap());
    let binaries_a = PathBuf::from(line(&stdout, "binaries: "));
    assert!(
        binaries_a.starts_with(shared_target.join("memproof-checkouts")),
        "{}",
        binaries_a.display()
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("case: startup/before/")),
        "{stdout}"
    );

    let in_b = plan(&b.0, &shared_target);
    assert_eq!(
        in_b.status.code(),
        Some(2),
        "startup is gone from b's specs"
    );
    let stderr = String::from_utf8_lossy(&in_b.stderr);
    assert!(
        stderr.starts_with("memproof: unknown scenario \"startup\": expected one of "),
        "{stderr}"
    );
    assert!(!stderr.contains("startup,") && !stderr.trim_end().ends_with("startup"));

    let everything_in_b = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .env("MEMPROOF_XTASK_REBUILT", "1")
        .current_dir(&b.0)
        .env("CARGO_TARGET_DIR", &shared_target)
        .args(["load-test", "--profile", "smoke", "--dry-run"])
        .output()
        .unwrap();
    let stdout_b = String::from_utf8_lossy(&everything_in_b.stdout);
    assert_eq!(line(&stdout_b, "workspace: "), b.0.to_str().unwrap());
    let binaries_b = PathBuf::from(line(&stdout_b, "binaries: "));
    assert_ne!(
        binaries_a, binaries_b,
        "each checkout builds into a directory of its own"
    );
    assert!(binaries_b.starts_with(shared_target.join("memproof-checkouts")));
    assert!(!stdout_b.contains("case: startup/"), "{stdout_b}");
    assert!(stdout_b.contains("case: large-session/"), "{stdout_b}");
}
