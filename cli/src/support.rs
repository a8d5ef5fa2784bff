//! The files the installed `memproof` runs beside a measured program, carried inside its own binary: the launcher
//! (`memproof-launch`: a few MB, so `wait4`'s `ru_maxrss` is the program's, not memproof's) and the preload library
//! (`libmemproof_preload.so`, for `heap = "preload"`). `cargo install` installs binaries only, and nothing of the
//! checkout it was built from may be read after it, so build.rs embeds both and this module writes them out.
//!
//! They go to a directory named for their content (`<cache>/support-<hash>/`), written beside their place and
//! renamed in, so two runs at once never see half a file, and an install of another version never runs this one's.

use anyhow::Context as _;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

const LAUNCHER: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/memproof-launch"));
const PRELOAD: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libmemproof_preload.so"));

/// Overrides where the support files are written (a directory that must allow executing files).
pub const CACHE_DIR_ENV: &str = "MEMPROOF_CACHE_DIR";

/// The launcher, written out if it is not there yet.
pub fn launcher() -> anyhow::Result<PathBuf> {
    write_out("memproof-launch", LAUNCHER, 0o755)
}

/// The preload library, written out if it is not there yet.
pub fn preload() -> anyhow::Result<PathBuf> {
    write_out("libmemproof_preload.so", PRELOAD, 0o644)
}

/// Where support files go: `$MEMPROOF_CACHE_DIR`, `$XDG_CACHE_HOME/memproof`, `$HOME/.cache/memproof`, else a
/// directory of this user's under the system's temporary directory.
fn cache_root() -> PathBuf {
    let from_env = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = from_env(CACHE_DIR_ENV) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = from_env("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("memproof");
    }
    if let Some(home) = from_env("HOME") {
        return PathBuf::from(home).join(".cache").join("memproof");
    }
    // SAFETY: getuid(2) cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("memproof-{uid}"))
}

fn write_out(name: &str, bytes: &[u8], mode: u32) -> anyhow::Result<PathBuf> {
    let dir = cache_root().join(format!("support-{:016x}", content_key()));
    let path = dir.join(name);
    if std::fs::read(&path).is_ok_and(|there| there == bytes) {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let mut file = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("{}: cannot write a support file", dir.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("{}: cannot write", file.path().display()))?;
    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(mode))?;
    file.persist(&path)
        .with_context(|| format!("{}: cannot write", path.display()))?;
    check_runnable(&path, mode)?;
    Ok(path)
}

/// A directory mounted `noexec` would let the launcher be written and never run: say so and how to move it.
fn check_runnable(path: &Path, mode: u32) -> anyhow::Result<()> {
    if mode & 0o111 == 0 {
        return Ok(());
    }
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: access(2) on a NUL-terminated path.
    if unsafe { libc::access(c_path.as_ptr(), libc::X_OK) } != 0 {
        anyhow::bail!(
            "{}: cannot be executed (is its file system mounted noexec?)\n\nSet {CACHE_DIR_ENV} to a directory \
             where programs can run.",
            path.display()
        );
    }
    Ok(())
}

/// FNV-1a over both files: a new build's support files never replace a running older one's.
fn content_key() -> u64 {
    LAUNCHER
        .iter()
        .chain(PRELOAD)
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_support_files_are_written_once_and_run() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: this test's process reads the variable in this thread only; no other test sets it.
        unsafe { std::env::set_var(CACHE_DIR_ENV, dir.path()) };
        let launcher = launcher().unwrap();
        assert!(launcher.starts_with(dir.path()));
        assert_eq!(std::fs::read(&launcher).unwrap(), LAUNCHER);
        let modified = std::fs::metadata(&launcher).unwrap().modified().unwrap();
        assert_eq!(super::launcher().unwrap(), launcher);
        assert_eq!(
            std::fs::metadata(&launcher).unwrap().modified().unwrap(),
            modified,
            "an intact file is not written again"
        );
        // A file cut short (a disk that filled, an interrupted write) is written again.
        std::fs::write(&launcher, &LAUNCHER[..10]).unwrap();
        assert_eq!(std::fs::read(super::launcher().unwrap()).unwrap(), LAUNCHER);
        let preload = preload().unwrap();
        assert_eq!(std::fs::read(&preload).unwrap(), PRELOAD);
        // The launcher runs: with no control pipe it refuses in words, not with exec's ENOEXEC.
        let output = std::process::Command::new(&launcher).output().unwrap();
        assert!(!output.status.success());
        assert!(!output.stderr.is_empty());
    }
}
