//! `cargo xtask compare --base REV [--head REV]`: a pull request against its base in one command.
//!
//! A revision runs in a git worktree of its own under `memproof/revisions/<commit>/` in the workspace's target
//! directory, with a cargo target directory of its own beside it, by that revision's own `cargo xtask load-test`:
//! its specs, its judge, its binaries. Its results are kept there keyed by commit, profile and scenarios, so a second
//! comparison against the same base neither rebuilds nor reruns it. The head is the working tree by default (run
//! by `cargo xtask load-test` in this workspace, every time: it is what the reviewer is changing), or another
//! revision.

use crate::{build, load_test};
use anyhow::{Context as _, bail};
use planning::suite;
use schema::results::{RESULTS_FILE, Results, Verdict};
use schema::spec::Spec;
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

/// Where a side's dhat runs of a comparison go: beside its run, so a revision's are kept with its cached run.
const SITE_PROFILES_DIR: &str = "site-profiles";

/// The cases of the failed verdicts `explain` (as the load test picks the cases a failed verdict profiles), each
/// with a dhat profile of each side: the one its run made, else, where `sides` says how to run them, a dhat run of
/// that case by that side's own binaries. At most the failed verdicts' cases, two runs each; none when nothing
/// failed. A case a command plays gets no run: its heap has no sites (the report says which tool has them).
pub fn profile_failed_cases(
    runs: [(&Results, &Path); 2],
    sides: Option<[&Side; 2]>,
    explain: &[Verdict],
    specs: &[Spec],
) -> anyhow::Result<Vec<reports::compare::CaseProfiles>> {
    let [(old, old_dir), (new, new_dir)] = runs;
    let scenarios: Vec<Spec> = specs
        .iter()
        .filter(|spec| new.cases.iter().any(|case| case.scenario == spec.scenario))
        .cloned()
        .collect();
    if explain.is_empty() {
        return Ok(Vec::new());
    }
    // A run of another profile than the specs define (`measure`) plans nothing to profile.
    let planned = match suite::plan(&scenarios, &new.run.profile) {
        Ok(planned) => planned,
        Err(error) => {
            eprintln!("memproof: no site diff: {error:#}");
            return Ok(Vec::new());
        }
    };
    let mut wanted: Vec<reports::compare::CaseProfiles> = Vec::new();
    for verdict in explain {
        for (at, _) in load_test::cases_to_profile(&planned, std::slice::from_ref(verdict)) {
            let id = &planned[at].id;
            if !old.cases.iter().any(|case| &case.id == id) {
                continue;
            }
            match wanted.iter_mut().find(|w| &w.case_id == id) {
                Some(case) => case.verdicts.push(verdict.id.clone()),
                None => wanted.push(reports::compare::CaseProfiles {
                    case_id: id.clone(),
                    verdicts: vec![verdict.id.clone()],
                    base: Err(String::new()),
                    head: Err(String::new()),
                }),
            }
        }
    }
    // Each side's tree and binaries, found (the working tree's built) once, at its first dhat run.
    let mut located: [Option<Located>; 2] = [None, None];
    for case in &mut wanted {
        let planned_case = planned.iter().find(|p| p.id == case.case_id);
        let is_command = planned_case.is_some_and(|p| {
            scenarios
                .iter()
                .any(|s| s.scenario == p.scenario && s.external_technique(&p.technique).is_some())
        });
        if is_command {
            continue;
        }
        for (index, (results, dir, name)) in [(old, old_dir, "base"), (new, new_dir, "head")]
            .into_iter()
            .enumerate()
        {
            let made = results
                .cases
                .iter()
                .find(|c| c.id == case.case_id)
                .and_then(|c| c.dhat_file.as_ref())
                .map(|file| dir.join(file))
                .filter(|path| path.is_file());
            let profile = match (made, sides) {
                (Some(path), _) => Ok(path),
                (None, Some(sides)) => {
                    let side = match &mut located[index] {
                        Some(side) => side,
                        slot => slot.insert(locate(sides[index])?),
                    };
                    profile_case(side, &case.case_id, &results.run.profile, dir)
                        .map_err(|error| format!("the dhat run of the {name} failed: {error:#}"))
                }
                (None, None) => Err(format!(
                    "the {name} run has no dhat profile of it (`cargo xtask compare --base REV` profiles both sides)"
                )),
            };
            if index == 0 {
                case.base = profile;
            } else {
                case.head = profile;
            }
        }
    }
    Ok(wanted)
}

/// A side's tree (its specs) and the directory of its case binaries.
struct Located {
    root: PathBuf,
    bin_dir: PathBuf,
    words: String,
    /// A revision's code cannot change, so a profile it made before is reused.
    fixed: bool,
}

fn locate(side: &Side) -> anyhow::Result<Located> {
    let (root, bin_dir, words) = match side {
        Side::WorkingTree => (
            build::workspace_root()?,
            build::build_release(&load_test::CASE_PACKAGES, &load_test::CASE_BINARIES)?,
            "the working tree".to_string(),
        ),
        Side::Revision(revision) => {
            let commit = resolve_commit(&build::workspace_root()?, revision)?;
            let home = build::workspace_target()?
                .join("memproof")
                .join("revisions")
                .join(&commit);
            let checkout = home.join("checkout");
            // Its specs: a cached run outlives a worktree that was removed.
            ensure_worktree(&build::workspace_root()?, &checkout, &commit)?;
            // Where that revision's own `cargo xtask load-test` built them (an older one built into its target
            // directory's release/ itself).
            let keyed = build::target_for(&checkout, &home.join("target")).join("release");
            let bin_dir = if keyed.join("memproof-dhat").is_file() {
                keyed
            } else {
                home.join("target").join("release")
            };
            (checkout, bin_dir, format!("{revision} ({})", &commit[..12]))
        }
    };
    Ok(Located {
        root,
        bin_dir,
        words,
        fixed: matches!(side, Side::Revision(_)),
    })
}

/// A dhat run of `case_id` by `side`'s own binaries and specs, into `run_dir`'s [`SITE_PROFILES_DIR`].
fn profile_case(
    side: &Located,
    case_id: &str,
    profile: &str,
    run_dir: &Path,
) -> anyhow::Result<PathBuf> {
    let Located {
        root,
        bin_dir,
        words,
        fixed,
    } = side;
    let out_dir = run_dir.join(SITE_PROFILES_DIR);
    let file = out_dir.join("profiles").join(format!(
        "{}.dhat.json",
        schema::file_stem::file_stem(case_id)
    ));
    if *fixed && file.is_file() {
        return Ok(file);
    }
    let binaries = suite::Binaries::in_dir(bin_dir);
    if !binaries.dhat.is_file() {
        bail!(
            "{}: no memproof-dhat: expected the binaries its load test built",
            binaries.dhat.display()
        );
    }
    let home = crate::home::SpecHome::resolve_in(None, Some(root.to_path_buf()))?;
    let specs = load_test::select_specs(&home, &[])?;
    let scenario = case_id.split('/').next().unwrap_or_default();
    let specs: Vec<Spec> = specs
        .into_iter()
        .filter(|s| s.scenario == scenario)
        .collect();
    let planned = suite::plan(&specs, profile)?;
    let Some(case) = planned.iter().find(|p| p.id == case_id) else {
        bail!("{words} plans no case {case_id} in profile {profile}");
    };
    let options = suite::SuiteOptions {
        profile: profile.to_string(),
        out_dir,
        interval: std::time::Duration::from_millis(5),
        sample_ms: 10,
        seed: 1,
    };
    std::fs::create_dir_all(options.out_dir.join("work"))
        .with_context(|| format!("{}: cannot create", options.out_dir.display()))?;
    let started = std::time::Instant::now();
    let fixture = suite::prepare_fixture(case, &binaries, &options)?;
    let (run, made) = suite::run_profile(
        case,
        &binaries,
        &options,
        fixture.as_ref().map(|(dir, _)| dir.as_path()),
        "compare",
        &mut |_| {},
    )?;
    let _ = std::fs::remove_dir(options.out_dir.join("work"));
    eprintln!(
        "memproof: dhat run of {case_id} on {words}: {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        run.map_or_else(|| "no outcome".to_string(), |r| r.outcome.to_string())
    );
    match made {
        Some(relative) => Ok(options.out_dir.join(relative)),
        None => bail!("{case_id}: the dhat run wrote no profile"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_verdicts_case_takes_the_profiles_its_runs_made_and_says_which_side_has_none() {
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/tests/fixtures/results.json");
        let mut old = Results::read(&fixture).unwrap();
        old.run.profile = "ci".to_string();
        // A case the ci profile plans.
        let id = "large-session/after/log_bytes=33554432";
        let case = old.cases.iter_mut().find(|c| c.id == id).unwrap();
        case.dhat_file = Some("profiles/after.dhat.json".to_string());
        let mut new = old.clone();
        new.cases.iter_mut().for_each(|c| c.dhat_file = None);
        let (old_dir, new_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::create_dir_all(old_dir.path().join("profiles")).unwrap();
        std::fs::write(old_dir.path().join("profiles/after.dhat.json"), "{}").unwrap();
        let regressed = Verdict {
            change: None,
            id: format!("{id}/peak_heap_bytes"),
            kind: schema::results::VerdictKind::Regression,
            subject: id.to_string(),
            text: String::new(),
            expected: String::new(),
            measured: String::new(),
            pass: false,
            counterfactual: None,
        };
        let specs =
            load_test::select_specs(&crate::home::SpecHome::resolve(None).unwrap(), &[]).unwrap();
        let runs = [(&old, old_dir.path()), (&new, new_dir.path())];
        let profiled = profile_failed_cases(runs, None, &[regressed], &specs).unwrap();
        assert_eq!(profiled.len(), 1);
        assert_eq!(profiled[0].case_id, id);
        assert_eq!(
            profiled[0].base,
            Ok(old_dir.path().join("profiles/after.dhat.json"))
        );
        assert_eq!(
            profiled[0].head,
            Err("the head run has no dhat profile of it (`cargo xtask compare --base REV` profiles both \
                 sides)"
                .to_string())
        );
        // Nothing failed: nothing to profile.
        assert!(
            profile_failed_cases(runs, None, &[], &specs)
                .unwrap()
                .is_empty()
        );
    }
}
