//! Where the workspace is, and building the binaries a command runs (always `--release`: a debug build's memory
//! and time are not the program's).
//!
//! Both are found at run time, never from this crate's compile-time `CARGO_MANIFEST_DIR`: two checkouts that share
//! a cargo target directory (a `CARGO_TARGET_DIR` set for a cache, or the worktree `compare --base` makes) share
//! one xtask binary, and cargo does not rebuild a binary whose sources are older than it, so a path baked in at
//! compile time would run one checkout's specs from the other. For the same reason the case binaries of a checkout
//! whose target directory lies outside it are built into a subdirectory of that target directory keyed by the
//! checkout's path ([`workspace_target`]): each checkout runs the binaries built from its own sources.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace the command was run in: the nearest directory, from the current one upwards, whose Cargo.toml
/// declares a `[workspace]` with the `xtask` member.
pub fn workspace_root() -> anyhow::Result<PathBuf> {
    let here = std::env::current_dir().context("cannot read the current directory")?;
    find_workspace(&here)
}

/// [`workspace_root`] from `start`.
pub fn find_workspace(start: &Path) -> anyhow::Result<PathBuf> {
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let Ok(table) = text.parse::<toml::Table>() else {
            continue;
        };
        let is_ours = table
            .get("workspace")
            .and_then(|w| w.get("members"))
            .and_then(|m| m.as_array())
            .is_some_and(|members| members.iter().any(|m| m.as_str() == Some("xtask")));
        if is_ours {
            return Ok(dir.to_path_buf());
        }
    }
    bail!(
        "{}: not inside a memproof workspace: expected a Cargo.toml with a [workspace] whose members include \"xtask\" here or in a parent directory",
        start.display()
    )
}

/// The cargo target directory of `workspace`, as cargo resolves it (`CARGO_TARGET_DIR`, `build.target-dir`, else
/// `target/` in the workspace).
pub fn cargo_target_dir(workspace: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "{}: cargo metadata failed ({}): {}",
            workspace.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("cargo metadata printed no JSON")?;
    let dir = metadata["target_directory"]
        .as_str()
        .context("cargo metadata names no target_directory")?;
    Ok(PathBuf::from(dir))
}

/// Where this workspace's builds and outputs go: its cargo target directory when that lies inside the workspace
/// (no other checkout uses it), else a subdirectory of it keyed by the workspace's path.
pub fn workspace_target() -> anyhow::Result<PathBuf> {
    let workspace = workspace_root()?;
    let target = cargo_target_dir(&workspace)?;
    Ok(target_for(&workspace, &target))
}

/// [`workspace_target`] for a given workspace and cargo target directory.
pub fn target_for(workspace: &Path, cargo_target: &Path) -> PathBuf {
    if cargo_target.starts_with(workspace) {
        return cargo_target.to_path_buf();
    }
    let name = workspace
        .file_name()
        .map_or_else(|| "workspace".into(), |n| n.to_string_lossy().into_owned());
    cargo_target.join("memproof-checkouts").join(format!(
        "{name}-{:016x}",
        fnv1a(workspace.as_os_str().as_encoded_bytes())
    ))
}

/// Set on the xtask a checkout rebuilt for itself (see [`run_own_build_if_stale`]), so it never loops. Tests that
/// run one xtask binary in other checkouts set it too, to exercise the run-time workspace lookup on its own.
pub const REBUILT_ENV: &str = "MEMPROOF_XTASK_REBUILT";

/// Whether this xtask binary was built from another checkout than the one it runs in. Two checkouts that share a
/// cargo target directory share `target/debug/xtask`, and cargo does not rebuild (or re-link) it for a checkout
/// whose sources are older than the binary, so `cargo xtask` in one checkout can start the other's xtask.
pub fn built_from_elsewhere(built_from: &Path, running_in: &Path) -> bool {
    let canonical =
        |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    canonical(built_from) != canonical(running_in)
}

/// When this xtask was built from another checkout, builds this checkout's own xtask into a target directory of
/// its own (under [`target_for`]) and runs it with the same arguments; returns its exit status. `None`: this binary
/// is the checkout's own, go on.
pub fn run_own_build_if_stale() -> anyhow::Result<Option<std::process::ExitStatus>> {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("/"));
    let Ok(workspace) = workspace_root() else {
        // Not inside a workspace: the command itself says so.
        return Ok(None);
    };
    if !built_from_elsewhere(built_from, &workspace) {
        return Ok(None);
    }
    if std::env::var_os(REBUILT_ENV).is_some() {
        // Built for this checkout a moment ago by its own cargo run (the path baked in may be a symlink's or a
        // copy's): never rebuild twice.
        return Ok(None);
    }
    let target = target_for(&workspace, &cargo_target_dir(&workspace)?).join("xtask-own");
    eprintln!(
        "memproof: this xtask binary was built from {}; building {}'s own into {}",
        built_from.display(),
        workspace.display(),
        target.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args(["run", "--quiet", "--package", "xtask", "--target-dir"])
        .arg(&target)
        .arg("--")
        .args(std::env::args_os().skip(1))
        .env(REBUILT_ENV, "1")
        .status()
        .context("cannot run cargo to build this checkout's own xtask")?;
    Ok(Some(status))
}

/// FNV-1a, 64 bits: a key that stays the same across Rust versions (std's hasher does not promise to).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Builds the named binaries of the named packages of this workspace in release mode, into its own target
/// directory ([`workspace_target`]), and returns the directory they are in.
pub fn build_release(packages: &[&str], bins: &[&str]) -> anyhow::Result<PathBuf> {
    let workspace = workspace_root()?;
    let target = workspace_target()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--release", "--quiet", "--target-dir"])
        .arg(&target);
    for package in packages {
        command.args(["--package", package]);
    }
    for bin in bins {
        command.args(["--bin", bin]);
    }
    eprintln!(
        "memproof: building {} (release) from {}",
        bins.join(", "),
        workspace.display()
    );
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release failed ({status})");
    }
    let dir = target.join("release");
    for bin in bins {
        let path = dir.join(bin);
        if !path.exists() {
            bail!("{}: cargo built it but it is not there", path.display());
        }
    }
    Ok(dir)
}

/// Builds the preload library (`memproof-preload`, release) of this workspace, into its own target directory
/// ([`workspace_target`]), and returns its path.
pub fn build_preload() -> anyhow::Result<PathBuf> {
    let workspace = workspace_root()?;
    let target = workspace_target()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("memproof: building libmemproof_preload.so (release)");
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args(["build", "--release", "--quiet", "--target-dir"])
        .arg(&target)
        .args(["--package", "memproof-preload"])
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release --package memproof-preload failed ({status})");
    }
    let path = target.join("release").join("libmemproof_preload.so");
    if !path.exists() {
        bail!("{}: cargo built it but it is not there", path.display());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_the_nearest_manifest_with_the_xtask_member() {
        let root = tempfile::tempdir().unwrap();
        let ws = root.path().join("checkout");
        std::fs::create_dir_all(ws.join("scenarios/deep")).unwrap();
        std::fs::write(
            ws.join("Cargo.toml"),
            "[workspace]\nmembers = [\".\", \"xtask\"]\n",
        )
        .unwrap();
        // A member's own manifest on the way up is not the workspace.
        std::fs::write(ws.join("scenarios/Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        assert_eq!(find_workspace(&ws.join("scenarios/deep")).unwrap(), ws);
        let error = find_workspace(root.path()).unwrap_err().to_string();
        assert!(
            error.ends_with("not inside a memproof workspace: expected a Cargo.toml with a [workspace] whose members include \"xtask\" here or in a parent directory"),
            "{error}"
        );
    }

    #[test]
    fn an_xtask_built_in_another_checkout_is_told_apart_from_this_ones() {
        let root = tempfile::tempdir().unwrap();
        let (a, b) = (root.path().join("a"), root.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        assert!(built_from_elsewhere(&a, &b));
        assert!(!built_from_elsewhere(&a, &a));
        // The same checkout reached through a symlink is the same checkout.
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        assert!(!built_from_elsewhere(&a, &link));
    }

    #[test]
    fn checkouts_sharing_a_target_directory_build_into_their_own_subdirectories() {
        let shared = Path::new("/cache/target");
        let a = target_for(Path::new("/src/a/memproof"), shared);
        let b = target_for(Path::new("/src/b/memproof"), shared);
        assert_ne!(a, b);
        assert!(
            a.to_str()
                .unwrap()
                .starts_with("/cache/target/memproof-checkouts/memproof-")
        );
        assert_eq!(
            a,
            target_for(Path::new("/src/a/memproof"), shared),
            "stable"
        );
        assert_eq!(
            target_for(Path::new("/src/a"), Path::new("/src/a/target")),
            Path::new("/src/a/target"),
            "a workspace's own target directory is used as it is"
        );
    }
}
