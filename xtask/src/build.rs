//! Where the workspace is, and building the binaries a command runs (always `--release`: a debug build's memory
//! and time are not the program's).

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The cargo target directory, honouring `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// Builds the named binaries of the named packages in release mode and returns the directory they are in.
pub fn build_release(packages: &[&str], bins: &[&str]) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root())
        .args(["build", "--release", "--quiet"]);
    for package in packages {
        command.args(["--package", package]);
    }
    for bin in bins {
        command.args(["--bin", bin]);
    }
    eprintln!("memproof: building {} (release)", bins.join(", "));
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release failed ({status})");
    }
    let dir = target_dir().join("release");
    for bin in bins {
        let path = dir.join(bin);
        if !path.exists() {
            bail!("{}: cargo built it but it is not there", path.display());
        }
    }
    Ok(dir)
}

/// Builds the preload library (`memproof-preload`, release) and returns its path.
pub fn build_preload() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("memproof: building libmemproof_preload.so (release)");
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "--quiet",
            "--package",
            "memproof-preload",
        ])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release --package memproof-preload failed ({status})");
    }
    let path = target_dir().join("release").join("libmemproof_preload.so");
    if !path.exists() {
        bail!("{}: cargo built it but it is not there", path.display());
    }
    Ok(path)
}

/// The default output directory of a command: `target/memproof/<name>`.
pub fn default_out(name: &str) -> PathBuf {
    target_dir().join("memproof").join(name)
}

/// The lock file in an output directory: it holds the pid of the run writing there.
pub const LOCK_FILE: &str = ".memproof.lock";

/// A command's output directory, locked for this run: it derefs to the directory's absolute path.
#[derive(Debug)]
pub struct OutputDir {
    path: PathBuf,
    /// Held open with an exclusive `flock` for as long as the run lasts; the kernel releases it when the process
    /// ends, however it ends, so the lock of a run that died is taken over by the next.
    _lock: std::fs::File,
}

impl std::ops::Deref for OutputDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.path
    }
}

/// A command's output directory, created, made absolute and locked. Absolute: cases run in scratch directories of
/// their own, so a relative path handed to them (the dhat profile's file, `--work-dir`) would land in the wrong
/// place. Locked: two runs into one directory would each report success while one silently replaced the other's
/// files, so a second run is refused, naming the first run's pid.
pub fn output_dir(given: Option<&Path>, name: &str) -> anyhow::Result<OutputDir> {
    let dir = given.map_or_else(|| default_out(name), Path::to_path_buf);
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let path = std::path::absolute(&dir)
        .with_context(|| format!("{}: cannot make absolute", dir.display()))?;
    let lock = lock_dir(&path)?;
    Ok(OutputDir { path, _lock: lock })
}

fn lock_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read as _, Seek as _, Write as _};
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            bail!(
                "{}: another memproof run (pid {}) is writing to this directory\n\nWait for it to finish, or give this run another --out.",
                dir.display(),
                if holder.is_empty() { "unknown" } else { holder }
            );
        }
        Err(std::fs::TryLockError::Error(error)) => {
            return Err(error).with_context(|| format!("{}: cannot lock", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_into_a_locked_directory_is_refused_and_a_dead_runs_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // A lock file left by a run that died: its pid is in it, but nobody holds the lock.
        std::fs::write(dir.path().join(LOCK_FILE), "999999999\n").unwrap();
        let first = output_dir(Some(dir.path()), "unused").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(),
            format!("{}\n", std::process::id())
        );
        let error = output_dir(Some(dir.path()), "unused")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "{}: another memproof run (pid {}) is writing to this directory\n\nWait for it to finish, or give this run another --out.",
                dir.path().display(),
                std::process::id()
            )
        );
        drop(first);
        assert!(
            output_dir(Some(dir.path()), "unused").is_ok(),
            "released when the run ends"
        );
    }
}
