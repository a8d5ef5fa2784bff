//! `cargo xtask compare --base REV [--head REV]`: a pull request against its base in one command.
//!
//! A revision runs in a git worktree of its own under `memproof/revisions/<commit>/` in the workspace's target
//! directory, with a cargo target directory of its own beside it, by that revision's own `cargo xtask load-test`:
//! its specs, its judge, its binaries. Its results are kept there keyed by commit, profile and scenarios, so a second
//! comparison against the same base neither rebuilds nor reruns it. The head is the working tree by default (run
//! by `cargo xtask load-test` in this workspace, every time: it is what the reviewer is changing), or another
//! revision.

use crate::build;
use anyhow::{Context as _, bail};
use harness::results::RESULTS_FILE;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which side of a comparison, and where it comes from.
pub enum Side {
    /// The working tree of the workspace the command runs in.
    WorkingTree,
    /// A commit, run in a worktree of its own.
    Revision(String),
}

/// What to run on each side.
pub struct RunRequest<'a> {
    pub profile: &'a str,
    pub scenarios: &'a [String],
}

impl RunRequest<'_> {
    /// The directory name a run of this request is kept under: the profile, then the scenarios asked for.
    fn run_name(&self) -> String {
        let mut name = self.profile.to_string();
        for scenario in self.scenarios {
            name.push('+');
            name.push_str(scenario);
        }
        name
    }

    fn load_test_args(&self, out: &Path) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> =
            vec!["load-test".into(), "--profile".into(), self.profile.into()];
        for scenario in self.scenarios {
            args.push("--scenario".into());
            args.push(scenario.into());
        }
        args.push("--out".into());
        args.push(out.into());
        args
    }
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn git(workspace: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .current_dir(workspace)
        .args(args)
        .output()
        .context("cannot run git")?;
    if !output.status.success() {
        bail!(
            "git {} failed in {}: {}",
            args.join(" "),
            workspace.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The full commit a revision names.
pub fn resolve_commit(workspace: &Path, revision: &str) -> anyhow::Result<String> {
    git(
        workspace,
        &["rev-parse", "--verify", "--quiet", &format!("{revision}^{{commit}}")],
    )
    .map_err(|_| {
        anyhow::anyhow!(
            "{revision:?} names no commit in {}: expected a branch, tag or commit (`git log` lists them)",
            workspace.display()
        )
    })
}

/// Runs one side (or finds its cached run) and returns the directory holding its results.json.
pub fn run_side(side: &Side, request: &RunRequest) -> anyhow::Result<PathBuf> {
    let workspace = build::workspace_root()?;
    let revisions = build::workspace_target()?
        .join("memproof")
        .join("revisions");
    match side {
        Side::WorkingTree => {
            let out = build::workspace_target()?
                .join("memproof")
                .join("compare-head")
                .join(request.run_name());
            eprintln!(
                "memproof: running the working tree ({}), profile {}",
                workspace.display(),
                request.profile
            );
            // `cargo xtask` again rather than this process's own binary: a build since it started may have
            // replaced that file, and cargo knows this workspace's xtask.
            let mut command = Command::new(cargo());
            command
                .current_dir(&workspace)
                .arg("xtask")
                .args(request.load_test_args(&out));
            run_load_test(command, "the working tree")?;
            Ok(out)
        }
        Side::Revision(revision) => {
            let commit = resolve_commit(&workspace, revision)?;
            let home = revisions.join(&commit);
            let out = home.join("runs").join(request.run_name());
            if out.join(RESULTS_FILE).is_file() {
                eprintln!(
                    "memproof: {revision} ({}) already ran on profile {}: reusing {}",
                    &commit[..12],
                    request.profile,
                    out.display()
                );
                return Ok(out);
            }
            let checkout = home.join("checkout");
            ensure_worktree(&workspace, &checkout, &commit)?;
            eprintln!(
                "memproof: running {revision} ({}) in {}, profile {} (the first run of a revision builds it: minutes)",
                &commit[..12],
                checkout.display(),
                request.profile
            );
            // Written under a scratch name and renamed when finished, so a run cut off half way is never taken
            // for a cached one.
            let partial = home
                .join("runs")
                .join(format!("{}.partial", request.run_name()));
            if partial.exists() {
                std::fs::remove_dir_all(&partial)
                    .with_context(|| format!("{}: cannot remove", partial.display()))?;
            }
            let mut command = Command::new(cargo());
            // Its own target directory: a revision's binaries are never another checkout's.
            command
                .current_dir(&checkout)
                .env("CARGO_TARGET_DIR", home.join("target"))
                .arg("xtask")
                .args(request.load_test_args(&partial));
            run_load_test(command, revision)?;
            std::fs::rename(&partial, &out).with_context(|| {
                format!("{}: cannot rename to {}", partial.display(), out.display())
            })?;
            Ok(out)
        }
    }
}

/// A worktree of `commit` at `checkout`, made unless one is there already.
fn ensure_worktree(workspace: &Path, checkout: &Path, commit: &str) -> anyhow::Result<()> {
    if checkout.join(".git").exists() {
        let at = git(checkout, &["rev-parse", "HEAD"])?;
        if at == commit {
            return Ok(());
        }
        bail!(
            "{}: a worktree of {at}, expected {commit}: remove it (`git worktree remove --force {}`) and run again",
            checkout.display(),
            checkout.display()
        );
    }
    // A worktree whose directory was deleted (say by `cargo clean`) stays registered until pruned.
    git(workspace, &["worktree", "prune"])?;
    let parent = checkout
        .parent()
        .context("a worktree directory has a parent")?;
    std::fs::create_dir_all(parent)
        .with_context(|| format!("{}: cannot create", parent.display()))?;
    let path = checkout.to_string_lossy();
    git(
        workspace,
        &["worktree", "add", "--detach", "--quiet", &path, commit],
    )?;
    Ok(())
}

/// Runs a load test to its end: exit 0 and 1 (a verdict failed) both leave a full run; anything else is an error.
fn run_load_test(mut command: Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot run the load test of {what}"))?;
    match status.code() {
        Some(0 | 1) => Ok(()),
        _ => bail!("the load test of {what} did not finish ({status}); its output is above"),
    }
}
