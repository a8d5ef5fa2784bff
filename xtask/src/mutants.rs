//! `cargo xtask mutants [--scenario NAME] [--mutant NAME]`: the project's own seeded regressions, each applied to a
//! scratch copy of the tree and run through its scenario's `ci` load test with `--prove`; a mutant is caught when
//! that load test fails. Exit 0 only when every mutant is caught.
//!
//! Why: a green load test must mean the fixes still hold. Seeded by hand, the gate once missed the one-trim guard
//! removed and a 16 KiB leak in the best session store; this command keeps such regressions as data, so a verdict
//! that stops catching one shows in CI.
//!
//! The mutants live in `xtask/mutants.toml`: a file, an exact `find` text and its `replace`. A `find` that no longer
//! matches exactly once is an error naming the mutant, so a mutant never rots silently when the code moves.
//!
//! The scratch copy is one fixed directory, `target/mutants/tree`, with a target directory of its own (a build
//! there must never overwrite this tree's binaries; `cargo xtask` finds its workspace through its compile-time
//! manifest path, so it is not run inside the copy). Files are rewritten only when their content differs, so
//! cargo's incremental release build rebuilds only the mutated crate and its dependents; the first run seeds the
//! copy's release directory from this tree's, so registry dependencies are not compiled again. This process runs
//! the copy's case binaries and reads the copy's specs; the judge and the reports are this tree's.

use anyhow::{Context as _, bail};
use memproof_cli::Finished;
use memproof_cli::build;
use memproof_cli::load_test::{CASE_BINARIES, CASE_PACKAGES, LoadTest};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Runs the seeded regressions and says which were caught.
#[derive(clap::Args)]
pub struct Mutants {
    /// Only the mutants of this scenario (repeatable).
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Only the mutant with this name (repeatable).
    #[arg(long = "mutant", value_name = "NAME")]
    names: Vec<String>,
    /// The mutants file, relative to the workspace.
    #[arg(long, default_value = "xtask/mutants.toml")]
    file: PathBuf,
}

/// One seeded regression.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mutant {
    pub name: String,
    /// The scenario whose load test must catch it.
    pub scenario: String,
    /// What kind of regression: `leak`, `buffer`, `guard`, `flush`, `release`, `half-revert`, `bound`, ….
    pub kind: String,
    /// The regression in words.
    pub what: String,
    /// The file it changes, relative to the workspace.
    pub file: String,
    /// Text that occurs exactly once in `file`.
    pub find: String,
    pub replace: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MutantsFile {
    mutant: Vec<Mutant>,
}

/// What became of one mutant.
#[derive(Debug, Serialize)]
struct MutantResult {
    name: String,
    scenario: String,
    kind: String,
    what: String,
    caught: bool,
    /// The verdicts that failed on it.
    failed_verdicts: Vec<String>,
    /// Seconds to build and run it.
    seconds: f64,
}

/// Reads the mutants file and checks every mutant against `root`'s files: known scenario, `find` exactly once.
pub fn read_mutants(path: &Path, root: &Path, scenarios: &[String]) -> anyhow::Result<Vec<Mutant>> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).with_context(|| format!("{shown}: cannot read"))?;
    let file: MutantsFile = toml::from_str(&text).map_err(|error| {
        let (line, col) = error
            .span()
            .map_or((1, 1), |span| schema::spec::line_col(&text, span.start));
        anyhow::anyhow!("{shown}:{line}:{col}: {}", error.message().trim_end())
    })?;
    let mut errors = Vec::new();
    for (index, mutant) in file.mutant.iter().enumerate() {
        if file.mutant[..index].iter().any(|m| m.name == mutant.name) {
            errors.push(format!(
                "{shown}: mutant {}: the name is given twice",
                mutant.name
            ));
        }
        if !scenarios.contains(&mutant.scenario) {
            errors.push(format!(
                "{shown}: mutant {}: unknown scenario {:?}: expected one of {}",
                mutant.name,
                mutant.scenario,
                scenarios.join(", ")
            ));
        }
        let target = root.join(&mutant.file);
        match std::fs::read_to_string(&target) {
            Err(error) => errors.push(format!(
                "{shown}: mutant {}: {}: cannot read: {error}",
                mutant.name, mutant.file
            )),
            Ok(source) => {
                let matches = source.matches(&mutant.find).count();
                if matches != 1 || mutant.find.is_empty() {
                    errors.push(format!(
                        "{shown}: mutant {}: its `find` text occurs {matches} times in {}: expected exactly once (the code changed: update the mutant)",
                        mutant.name, mutant.file
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(file.mutant)
    } else {
        bail!("{}", errors.join("\n"))
    }
}

/// The files of the tree at `root` as git sees them (tracked, and new files not ignored).
fn tree_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let output = Command::new("git")
        .current_dir(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .context("cannot run git to list the tree's files")?;
    if !output.status.success() {
        bail!(
            "{}: git ls-files failed: {}",
            root.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output
        .stdout
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
        .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
        .filter(|name| root.join(name).is_file())
        .collect())
}

/// Makes `scratch` hold `root`'s files, writing only those whose content differs (so cargo sees only real changes).
fn sync_tree(root: &Path, scratch: &Path, files: &[PathBuf]) -> anyhow::Result<()> {
    for name in files {
        let source = root.join(name);
        let copy = scratch.join(name);
        let bytes =
            std::fs::read(&source).with_context(|| format!("{}: cannot read", source.display()))?;
        if std::fs::read(&copy).ok().as_deref() == Some(&bytes[..]) {
            continue;
        }
        if let Some(dir) = copy.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
        }
        std::fs::write(&copy, &bytes)
            .with_context(|| format!("{}: cannot write", copy.display()))?;
    }
    Ok(())
}

/// Applies `mutant` to the scratch copy (already in sync).
fn apply(mutant: &Mutant, scratch: &Path) -> anyhow::Result<()> {
    let path = scratch.join(&mutant.file);
    let source = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let matches = source.matches(&mutant.find).count();
    if matches != 1 {
        bail!(
            "mutant {}: its `find` text occurs {matches} times in {}: expected exactly once",
            mutant.name,
            mutant.file
        );
    }
    std::fs::write(&path, source.replacen(&mutant.find, &mutant.replace, 1))
        .with_context(|| format!("{}: cannot write", path.display()))
}

/// Builds the case binaries of the scratch copy into its own target directory.
fn build_scratch(scratch: &Path, target: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(scratch)
        .env("CARGO_TARGET_DIR", target)
        .args(["build", "--release", "--quiet"]);
    for package in CASE_PACKAGES {
        command.args(["--package", package]);
    }
    for bin in CASE_BINARIES {
        command.args(["--bin", bin]);
    }
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release of the mutated copy failed ({status})");
    }
    Ok(target.join("release"))
}

/// The ids of the failed verdicts in a run's results.json.
fn failed_verdicts(out: &Path) -> Vec<String> {
    schema::results::Results::read(&out.join(schema::results::RESULTS_FILE))
        .map(|results| {
            results
                .verdicts
                .into_iter()
                .filter(|verdict| !verdict.pass)
                .map(|verdict| verdict.id)
                .collect()
        })
        .unwrap_or_default()
}

impl Mutants {
    pub fn run(self) -> anyhow::Result<Finished> {
        let root = build::workspace_root()?;
        let known: Vec<String> = schema::spec::read_dir(&root.join("scenarios"))?
            .into_iter()
            .map(|spec| spec.scenario)
            .collect();
        for name in &self.scenarios {
            if !known.contains(name) {
                bail!(
                    "unknown scenario {name:?}: expected one of {}",
                    known.join(", ")
                );
            }
        }
        let mut mutants = read_mutants(&root.join(&self.file), &root, &known)?;
        for name in &self.names {
            if !mutants.iter().any(|mutant| &mutant.name == name) {
                bail!("unknown mutant {name:?} in {}", self.file.display());
            }
        }
        mutants.retain(|mutant| {
            (self.scenarios.is_empty() || self.scenarios.contains(&mutant.scenario))
                && (self.names.is_empty() || self.names.contains(&mutant.name))
        });
        if mutants.is_empty() {
            bail!(
                "no mutant in {} is of the scenarios and names asked for (a mutant must match both)",
                self.file.display()
            );
        }
        let scratch_root = build::workspace_target()?.join("mutants");
        let scratch = scratch_root.join("tree");
        let scratch_target = scratch_root.join("target");
        seed_release_dir(
            &build::workspace_target()?.join("release"),
            &scratch_target.join("release"),
        )?;
        let out_root = memproof_cli::output_dir::default_out("mutants")?;
        std::fs::create_dir_all(&out_root)
            .with_context(|| format!("{}: cannot create", out_root.display()))?;
        let files = tree_files(&root)?;
        let mut results = Vec::new();
        let started_all = Instant::now();
        for mutant in &mutants {
            eprintln!(
                "memproof: mutant {} ({}, {}): {}",
                mutant.name, mutant.scenario, mutant.kind, mutant.what
            );
            let started = Instant::now();
            sync_tree(&root, &scratch, &files)?;
            apply(mutant, &scratch)?;
            let bin_dir = build_scratch(&scratch, &scratch_target)
                .with_context(|| format!("mutant {}", mutant.name))?;
            let out = out_root.join(&mutant.name);
            // No baseline: a mutant must be caught by a verdict of its spec, not by a figure that moved with the
            // machine's load.
            let load_test = LoadTest::proving("ci", &mutant.scenario, &out);
            let finished = load_test
                .run_in(
                    &memproof_cli::home::SpecHome::resolve_in(None, Some(scratch.clone()))?,
                    Some(&bin_dir),
                )
                .with_context(|| format!("mutant {}", mutant.name))?;
            if let Finished::Interrupted(_) = finished {
                sync_tree(&root, &scratch, &files)?;
                return Ok(finished);
            }
            results.push(MutantResult {
                name: mutant.name.clone(),
                scenario: mutant.scenario.clone(),
                kind: mutant.kind.clone(),
                what: mutant.what.clone(),
                caught: matches!(finished, Finished::Failed),
                failed_verdicts: failed_verdicts(&out),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        sync_tree(&root, &scratch, &files)?;
        let json_path = out_root.join("mutants.json");
        std::fs::write(&json_path, serde_json::to_string_pretty(&results)? + "\n")
            .with_context(|| format!("{}: cannot write", json_path.display()))?;
        println!("{}", table(&results));
        let missed = results.iter().filter(|r| !r.caught).count();
        eprintln!(
            "memproof: {} mutants, {} caught, {missed} missed, in {:.0} s; {}",
            results.len(),
            results.len() - missed,
            started_all.elapsed().as_secs_f64(),
            json_path.display()
        );
        Ok(if missed == 0 {
            Finished::Passed
        } else {
            Finished::Failed
        })
    }
}

/// Copies this tree's release directory to the scratch copy's, once, so its first build reuses the compiled
/// registry dependencies (their fingerprints do not depend on where the workspace is).
fn seed_release_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() || !from.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(to.parent().expect("has a parent"))?;
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .context("cannot run cp")?;
    if !status.success() {
        bail!(
            "cp -a {} {} failed ({status})",
            from.display(),
            to.display()
        );
    }
    Ok(())
}

/// The caught/missed table, as Markdown.
fn table(results: &[MutantResult]) -> String {
    let mut text = String::from(
        "| mutant | scenario | kind | caught? | failed verdicts | time |\n|---|---|---|---|---|---:|\n",
    );
    for result in results {
        let verdicts = if result.failed_verdicts.len() > 3 {
            format!(
                "{} and {} more",
                result.failed_verdicts[..3].join(", "),
                result.failed_verdicts.len() - 3
            )
        } else {
            result.failed_verdicts.join(", ")
        };
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} s |\n",
            result.name,
            result.scenario,
            result.kind,
            if result.caught {
                "caught"
            } else {
                "**MISSED**"
            },
            if verdicts.is_empty() {
                "-".to_string()
            } else {
                verdicts
            },
            result.seconds
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_committed_mutant_still_applies_exactly_once() {
        let root = build::workspace_root().unwrap();
        let known: Vec<String> = schema::spec::read_dir(&root.join("scenarios"))
            .unwrap()
            .into_iter()
            .map(|spec| spec.scenario)
            .collect();
        let mutants = read_mutants(&root.join("xtask/mutants.toml"), &root, &known).unwrap();
        for scenario in ["syslog-rate", "startup", "large-session", "hook-storm"] {
            assert!(
                mutants.iter().filter(|m| m.scenario == scenario).count() >= 2,
                "fewer than two mutants of {scenario}"
            );
        }
    }

    #[test]
    fn a_mutant_whose_find_text_moved_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.rs"), "let x = 1;\nlet x = 1;\n").unwrap();
        let file = dir.path().join("mutants.toml");
        std::fs::write(
            &file,
            "[[mutant]]\nname = \"twice\"\nscenario = \"s\"\nkind = \"leak\"\nwhat = \"w\"\nfile = \"a.rs\"\nfind = \"let x = 1;\"\nreplace = \"\"\n\n[[mutant]]\nname = \"gone\"\nscenario = \"s\"\nkind = \"leak\"\nwhat = \"w\"\nfile = \"a.rs\"\nfind = \"let y\"\nreplace = \"\"\n",
        )
        .unwrap();
        let error = read_mutants(&file, dir.path(), &["s".to_string()])
            .unwrap_err()
            .to_string();
        let shown = file.display();
        assert_eq!(
            error,
            format!(
                "{shown}: mutant twice: its `find` text occurs 2 times in a.rs: expected exactly once (the code changed: update the mutant)\n{shown}: mutant gone: its `find` text occurs 0 times in a.rs: expected exactly once (the code changed: update the mutant)"
            )
        );
    }

    #[test]
    fn syncing_rewrites_only_what_differs() {
        let root = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("src")).unwrap();
        std::fs::write(root.path().join("src/a.rs"), "a").unwrap();
        std::fs::write(root.path().join("b.rs"), "b").unwrap();
        let files = [PathBuf::from("src/a.rs"), PathBuf::from("b.rs")];
        sync_tree(root.path(), scratch.path(), &files).unwrap();
        let mutant = Mutant {
            name: "m".into(),
            scenario: "s".into(),
            kind: "k".into(),
            what: "w".into(),
            file: "src/a.rs".into(),
            find: "a".into(),
            replace: "A".into(),
        };
        apply(&mutant, scratch.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(scratch.path().join("src/a.rs")).unwrap(),
            "A"
        );
        let untouched = std::fs::metadata(scratch.path().join("b.rs"))
            .unwrap()
            .modified()
            .unwrap();
        sync_tree(root.path(), scratch.path(), &files).unwrap();
        assert_eq!(
            std::fs::read_to_string(scratch.path().join("src/a.rs")).unwrap(),
            "a"
        );
        assert_eq!(
            std::fs::metadata(scratch.path().join("b.rs"))
                .unwrap()
                .modified()
                .unwrap(),
            untouched
        );
    }
}
