//! A command's output directory: where it goes when none is given (under the runs' root, [`crate::home`]), and a
//! lock so that two runs never write into one directory.

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};

/// The default output directory of a command: `<name>` in the runs' root ([`crate::home::runs_root`]).
pub fn default_out(name: &str) -> anyhow::Result<PathBuf> {
    Ok(crate::home::runs_root()?.join(name))
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
    let dir = match given {
        Some(dir) => dir.to_path_buf(),
        None => default_out(name)?,
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let path = std::path::absolute(&dir)
        .with_context(|| format!("{}: cannot make absolute", dir.display()))?;
    // The default directory (under target/memproof) is memproof's whatever it holds; a given one must show it.
    let written_by_memproof = given.is_none() || path.join(LOCK_FILE).exists();
    let lock = lock_dir(&path)?;
    claim_dir(&path, written_by_memproof)?;
    Ok(OutputDir { path, _lock: lock })
}

/// Makes the run own `dir`, which it holds the lock of: what an earlier memproof run left there (its lock file says
/// one wrote there) is removed, so no report, case file or dhat profile of sizes no longer run stays beside this
/// run's; a directory that holds anything else is refused, and left as it was.
fn claim_dir(dir: &Path, written_by_memproof: bool) -> anyhow::Result<()> {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot list", dir.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("{}: cannot list", dir.display()))?;
    let earlier: Vec<&PathBuf> = entries
        .iter()
        .filter(|path| path.file_name().is_none_or(|name| name != LOCK_FILE))
        .collect();
    if earlier.is_empty() {
        return Ok(());
    }
    if !written_by_memproof {
        let _ = std::fs::remove_file(dir.join(LOCK_FILE));
        bail!(
            "{}: not empty, and no memproof run wrote it (no {LOCK_FILE}): expected a new or empty directory, or \
             one of memproof's own output directories",
            dir.display()
        );
    }
    for path in earlier {
        let removed = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        removed.with_context(|| {
            format!("{}: cannot remove what an earlier run left", path.display())
        })?;
    }
    Ok(())
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

    #[test]
    fn a_run_clears_what_an_earlier_run_left_and_refuses_a_directory_it_does_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        drop(output_dir(Some(&out), "unused").unwrap());
        std::fs::create_dir_all(out.join("profiles")).unwrap();
        std::fs::write(out.join("profiles/old-size.dhat.json"), "{}").unwrap();
        std::fs::write(out.join("summary.md"), "old").unwrap();
        let again = output_dir(Some(&out), "unused").unwrap();
        let left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from(LOCK_FILE)]);
        drop(again);

        let foreign = dir.path().join("foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
        let error = output_dir(Some(&foreign), "unused")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "{}: not empty, and no memproof run wrote it (no {LOCK_FILE}): expected a new or empty directory, \
                 or one of memproof's own output directories",
                foreign.display()
            )
        );
        assert_eq!(
            std::fs::read_to_string(foreign.join("notes.txt")).unwrap(),
            "mine"
        );
        assert!(!foreign.join(LOCK_FILE).exists(), "left as it was");
    }
}
