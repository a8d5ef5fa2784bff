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

/// A command's output directory, created and made absolute: cases run in scratch directories of their own, so a
/// relative path handed to them (the dhat profile's file, `--work-dir`) would land in the wrong place.
pub fn output_dir(given: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
    let dir = given.map_or_else(|| default_out(name), Path::to_path_buf);
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    std::path::absolute(&dir).with_context(|| format!("{}: cannot make absolute", dir.display()))
}
