//! Where a command finds what it works on, for the two ways memproof runs:
//!
//! - **checkout**: `cargo xtask` in memproof's own repository. Its specs are `scenarios/`, its committed data
//!   `reports/baseline.json` and `reports/noise.json`, its runs under the workspace's target directory, and the
//!   binaries it runs are built from the checkout's sources (`crate::build`).
//! - **installed**: the `memproof` binary `cargo install` put on the PATH, run from the user's own repository. Its
//!   specs are `--spec-dir DIR` (default `memproof/` in the current directory), their baseline and noise files sit
//!   beside them (`DIR/baseline.json`, `DIR/noise.json`), its runs go to `target/memproof/` in the current
//!   directory, and the launcher and preload library come out of its own binary (`crate::support`). It runs command
//!   scenarios only: memproof's own Rust scenarios need the checkout's case binaries.
//!
//! Either way a `--spec-dir` keeps its baseline and noise beside its specs, so a run of another directory's specs
//! never judges against, or blesses into, memproof's own `reports/`.

use crate::build;
use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Which binary is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `cargo xtask` in memproof's checkout.
    Checkout,
    /// The installed `memproof`.
    Installed,
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// Set once, by the binary's `main`, before any command runs.
pub fn set_mode(mode: Mode) {
    let _ = MODE.set(mode);
}

/// The running binary's mode; [`Mode::Checkout`] when unset (the unit tests of this crate run in the checkout).
pub fn mode() -> Mode {
    MODE.get().copied().unwrap_or(Mode::Checkout)
}

/// How the user starts memproof: `cargo xtask` or `memproof`, for every command a message suggests.
pub fn program() -> &'static str {
    match mode() {
        Mode::Checkout => "cargo xtask",
        Mode::Installed => "memproof",
    }
}

/// The spec directory an installed `memproof` reads when `--spec-dir` is not given, relative to the current
/// directory.
pub const DEFAULT_SPEC_DIR: &str = "memproof";
/// The baseline file beside a spec directory's specs.
pub const BASELINE_FILE: &str = "baseline.json";
/// The noise file beside a spec directory's specs.
pub const NOISE_FILE: &str = "noise.json";

/// A run's specs and the data judged with them.
#[derive(Debug, Clone)]
pub struct SpecHome {
    /// The directory the scenario specs are read from.
    pub dir: PathBuf,
    /// The spec directory as the user gave it (for the commands messages suggest); `None` for the default one.
    pub given: Option<PathBuf>,
    /// The baseline regressions are judged against, and `bless` writes.
    pub baseline: PathBuf,
    /// The measured noise regression tolerances come from, and `noise` writes.
    pub noise: PathBuf,
    /// The memproof checkout whose case binaries run the built-in scenarios (and whose `scenarios/` holds the
    /// calibration case); `None` for the installed binary, which runs command scenarios only.
    pub checkout: Option<PathBuf>,
}

impl SpecHome {
    /// The spec home for a `--spec-dir` flag (`None`: the default of this mode). A directory that does not exist is
    /// an error naming it.
    pub fn resolve(spec_dir: Option<&Path>) -> anyhow::Result<SpecHome> {
        let checkout = match mode() {
            Mode::Checkout => Some(build::workspace_root()?),
            Mode::Installed => None,
        };
        SpecHome::resolve_in(spec_dir, checkout)
    }

    /// [`SpecHome::resolve`] with the checkout given (`xtask mutants` runs a mutated copy of the tree).
    pub fn resolve_in(
        spec_dir: Option<&Path>,
        checkout: Option<PathBuf>,
    ) -> anyhow::Result<SpecHome> {
        let home = match (spec_dir, checkout) {
            (Some(dir), checkout) => SpecHome::beside(dir, Some(dir.to_path_buf()), checkout),
            (None, Some(root)) => SpecHome {
                dir: root.join("scenarios"),
                given: None,
                baseline: root.join(reports::baseline::BASELINE_PATH),
                noise: root.join(reports::noise::NOISE_PATH),
                checkout: Some(root),
            },
            (None, None) => SpecHome::beside(Path::new(DEFAULT_SPEC_DIR), None, None),
        };
        if !home.dir.is_dir() {
            match home.given {
                Some(_) => bail!(
                    "{}: no such directory: expected the directory of the scenario specs (--spec-dir)",
                    home.dir.display()
                ),
                None => bail!(
                    "{}/: no such directory: expected the scenario specs in {DEFAULT_SPEC_DIR}/ here (the default), \
                     or --spec-dir DIR\n\nmemproof's user guide (docs/user-guide.md in its repository) shows how \
                     to write one.",
                    home.dir.display()
                ),
            }
        }
        Ok(home)
    }

    fn beside(dir: &Path, given: Option<PathBuf>, checkout: Option<PathBuf>) -> SpecHome {
        SpecHome {
            dir: dir.to_path_buf(),
            given,
            baseline: dir.join(BASELINE_FILE),
            noise: dir.join(NOISE_FILE),
            checkout,
        }
    }

    /// How the run records its invocation in results.json, so its reports suggest commands that work here.
    pub fn invocation(&self) -> schema::results::Invocation {
        schema::results::Invocation {
            program: program().into(),
            spec_dir: self.given.as_ref().map(|dir| dir.display().to_string()),
        }
    }

    /// A command line for `subcommand` on these specs: `memproof bless --spec-dir specs`, `cargo xtask bless`.
    pub fn command(&self, subcommand: &str) -> String {
        match &self.given {
            Some(dir) => format!("{} {subcommand} --spec-dir {}", program(), dir.display()),
            None => format!("{} {subcommand}", program()),
        }
    }
}

/// Where runs go: `memproof/` in the checkout's target directory, or `target/memproof/` in the current directory
/// for the installed binary.
pub fn runs_root() -> anyhow::Result<PathBuf> {
    match mode() {
        Mode::Checkout => Ok(build::workspace_target()?.join("memproof")),
        Mode::Installed => Ok(std::env::current_dir()
            .context("cannot read the current directory")?
            .join("target")
            .join("memproof")),
    }
}

/// The directory a run records the git commit of: the checkout, or the current directory (the user's repository).
pub fn repository() -> anyhow::Result<PathBuf> {
    match mode() {
        Mode::Checkout => build::workspace_root(),
        Mode::Installed => std::env::current_dir().context("cannot read the current directory"),
    }
}

/// The launcher every measured program starts under.
pub fn launcher() -> anyhow::Result<PathBuf> {
    match mode() {
        Mode::Checkout => Ok(
            build::build_release(&["memproof-runner"], &["memproof-launch"])?
                .join("memproof-launch"),
        ),
        Mode::Installed => crate::support::launcher(),
    }
}

/// The preload library `heap = "preload"` loads.
pub fn preload() -> anyhow::Result<PathBuf> {
    match mode() {
        Mode::Checkout => build::build_preload(),
        Mode::Installed => crate::support::preload(),
    }
}
