//! Shared fixtures: an input several cases of a profile read (the startup scenario's stored workflow specs, a
//! large-session log, a hook-storm starting state), generated once and cached under the run's output directory.
//!
//! Why: `full`'s startup cases each stored the same 120 workflows of 12 MiB again, most of the scenario's 40
//! minutes; and a large-session log of 320 MiB was written again for each of its three roles. An entry is keyed by
//! everything that decides its bytes (the scenario and the generator's own request: sizes, parameters, seed; the
//! key is kept beside the data as `key.json`), so two cases asking the same thing share one entry, and a change to
//! any of those makes a new one.
//!
//! Generating runs in a process of its own (`memproof-case fixture …`) before the case starts, so neither its
//! memory nor its time is in any case's figures. An entry is trusted only after its **manifest** holds: every file
//! it lists present with the listed size and SHA-256, and no file it does not list. A corrupt or partial entry is
//! regenerated, and the caller is told why. An entry is built in a temporary directory beside its place and renamed
//! into it when complete, under an exclusive `flock` on the entry's lock file, so two cases running at once (`--jobs`)
//! never both build it, and a run killed mid-build leaves no entry that looks whole.

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};

/// The directory under a run's output directory that holds the cache.
pub const CACHE_DIR: &str = "fixtures";
/// The manifest's file name inside an entry.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The directory inside an entry that holds the generated files.
pub const DATA_DIR: &str = "data";
const SCHEMA: &str = "memproof.fixture/v1";

/// One generated file as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the entry's `data/` directory, `/`-separated.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What an entry holds: its key, the generator's figures, and every file with its size and hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: String,
    pub scenario: String,
    pub key: serde_json::Value,
    /// What the generator reported (counts and bytes it wrote), handed to each case with the data.
    pub figures: serde_json::Value,
    pub files: Vec<FileEntry>,
}

/// A checked entry, ready for a case.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The entry's `data/` directory. Cases read it, or copy from it what they change; never write into it.
    pub data_dir: PathBuf,
    pub manifest: Manifest,
}

/// What `memproof-case fixture` prints: the checked entry's `data/` directory (`null` when the scenario shares no
/// input) and how the cache answered ([`CacheStatus`]'s text, or `none`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub data_dir: Option<PathBuf>,
    pub status: String,
}

/// How the cache answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStatus {
    /// The entry was there and its manifest held.
    Hit,
    /// There was no entry: generated now.
    Made,
    /// The entry did not hold (the reason): generated again.
    Regenerated(String),
}

impl std::fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheStatus::Hit => f.write_str("cached"),
            CacheStatus::Made => f.write_str("generated"),
            CacheStatus::Regenerated(reason) => write!(f, "regenerated ({reason})"),
        }
    }
}

/// The entry's directory name: the scenario and the first 16 hex digits of the key's SHA-256.
pub fn entry_name(scenario: &str, key: &serde_json::Value) -> String {
    // serde_json's maps are sorted (no `preserve_order`), so one key always serialises to the same bytes.
    let digest = Sha256::digest(key.to_string().as_bytes());
    format!("{scenario}-{}", &hex(&digest)[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file, streamed.
pub fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Every regular file under `root`, as sorted `/`-separated relative paths.
fn list_files(root: &Path) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("{}: cannot list", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap_or(&path);
                found.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Lists and hashes every file under `data_dir`.
pub fn describe(data_dir: &Path) -> anyhow::Result<Vec<FileEntry>> {
    list_files(data_dir)?
        .into_iter()
        .map(|path| {
            let full = data_dir.join(&path);
            let bytes = std::fs::metadata(&full)
                .with_context(|| format!("{}: cannot stat", full.display()))?
                .len();
            Ok(FileEntry {
                sha256: file_sha256(&full)?,
                path,
                bytes,
            })
        })
        .collect()
}

/// Checks an entry against its manifest: `Ok(manifest)` when every listed file is there with its size and hash
/// and nothing else is; otherwise the first thing wrong, naming the file.
pub fn verify(entry: &Path) -> Result<Manifest, String> {
    let manifest_path = entry.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|error| format!("{}: cannot read: {error}", manifest_path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|error| {
        format!(
            "{}: not a fixture manifest: {error}",
            manifest_path.display()
        )
    })?;
    if manifest.schema != SCHEMA {
        return Err(format!(
            "{}: schema {:?}, expected {SCHEMA:?}",
            manifest_path.display(),
            manifest.schema
        ));
    }
    let data_dir = entry.join(DATA_DIR);
    let present = list_files(&data_dir).map_err(|error| format!("{error:#}"))?;
    let listed: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    if let Some(extra) = present.iter().find(|p| !listed.contains(&p.as_str())) {
        return Err(format!(
            "{}: not in the manifest",
            data_dir.join(extra).display()
        ));
    }
    for file in &manifest.files {
        let path = data_dir.join(&file.path);
        let bytes = std::fs::metadata(&path)
            .map_err(|_| format!("{}: missing", path.display()))?
            .len();
        if bytes != file.bytes {
            return Err(format!(
                "{}: {bytes} bytes, the manifest says {}",
                path.display(),
                file.bytes
            ));
        }
        let sha256 = file_sha256(&path).map_err(|error| format!("{error:#}"))?;
        if sha256 != file.sha256 {
            return Err(format!(
                "{}: SHA-256 {sha256}, the manifest says {}",
                path.display(),
                file.sha256
            ));
        }
    }
    Ok(manifest)
}

/// Reads an entry's manifest without checking the files (a case trusts the entry the harness checked just before).
pub fn read_manifest(data_dir: &Path) -> anyhow::Result<Manifest> {
    let entry = data_dir
        .parent()
        .with_context(|| format!("{}: not a fixture's data directory", data_dir.display()))?;
    let path = entry.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a fixture manifest", path.display()))
}

/// An exclusive `flock` held until dropped.
struct EntryLock {
    _file: std::fs::File,
}

impl EntryLock {
    fn take(path: &Path) -> anyhow::Result<EntryLock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("{}: cannot open the lock file", path.display()))?;
        // SAFETY: flock on a descriptor this function owns; it blocks until the lock is ours.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            bail!(
                "{}: cannot lock: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(EntryLock { _file: file })
    }
}

/// The entry for `key` under `cache_root`, checked, or generated by `generate` (which writes its files into the
/// directory it is given and returns its figures) when missing or corrupt.
pub fn ensure(
    cache_root: &Path,
    scenario: &str,
    key: &serde_json::Value,
    generate: impl FnOnce(&Path) -> anyhow::Result<serde_json::Value>,
) -> anyhow::Result<(Fixture, CacheStatus)> {
    std::fs::create_dir_all(cache_root)
        .with_context(|| format!("{}: cannot create the fixture cache", cache_root.display()))?;
    let name = entry_name(scenario, key);
    let entry = cache_root.join(&name);
    let _lock = EntryLock::take(&cache_root.join(format!("{name}.lock")))?;
    let status = if entry.exists() {
        match verify(&entry) {
            Ok(manifest) if manifest.key == *key && manifest.scenario == scenario => {
                let fixture = Fixture {
                    data_dir: entry.join(DATA_DIR),
                    manifest,
                };
                return Ok((fixture, CacheStatus::Hit));
            }
            Ok(_) => CacheStatus::Regenerated(format!(
                "{}: the manifest's key is not this fixture's",
                entry.join(MANIFEST_FILE).display()
            )),
            Err(reason) => CacheStatus::Regenerated(reason),
        }
    } else {
        CacheStatus::Made
    };
    let building = cache_root.join(format!("{name}.building"));
    for stale in [&building, &entry] {
        if stale.exists() {
            std::fs::remove_dir_all(stale)
                .with_context(|| format!("{}: cannot remove", stale.display()))?;
        }
    }
    let data_dir = building.join(DATA_DIR);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("{}: cannot create", data_dir.display()))?;
    let figures = match generate(&data_dir) {
        Ok(figures) => figures,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&building);
            return Err(error.context(format!("cannot generate the {scenario} fixture {name}")));
        }
    };
    let manifest = Manifest {
        schema: SCHEMA.to_string(),
        scenario: scenario.to_string(),
        key: key.clone(),
        figures,
        files: describe(&data_dir)?,
    };
    let manifest_path = building.join(MANIFEST_FILE);
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("{}: cannot write", manifest_path.display()))?;
    std::fs::write(building.join("key.json"), serde_json::to_vec_pretty(key)?)?;
    std::fs::rename(&building, &entry)
        .with_context(|| format!("cannot move {} to {}", building.display(), entry.display()))?;
    Ok((
        Fixture {
            data_dir: entry.join(DATA_DIR),
            manifest,
        },
        status,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::Cell;

    fn write_two(dir: &Path) -> anyhow::Result<serde_json::Value> {
        std::fs::create_dir_all(dir.join("sub"))?;
        std::fs::write(dir.join("a.txt"), "alpha")?;
        std::fs::write(dir.join("sub/b.bin"), vec![7u8; 3000])?;
        Ok(json!({"files": 2}))
    }

    #[test]
    fn an_entry_is_made_once_then_served_from_the_cache() {
        let root = tempfile::tempdir().unwrap();
        let key = json!({"workflows": 3, "seed": 1});
        let calls = Cell::new(0);
        let generate = |dir: &Path| {
            calls.set(calls.get() + 1);
            write_two(dir)
        };
        let (first, status) = ensure(root.path(), "toy", &key, generate).unwrap();
        assert_eq!(status, CacheStatus::Made);
        assert_eq!(first.manifest.figures, json!({"files": 2}));
        let paths: Vec<&str> = first
            .manifest
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(paths, ["a.txt", "sub/b.bin"]);
        assert_eq!(first.manifest.files[1].bytes, 3000);
        // SHA-256 of "alpha".
        assert_eq!(
            first.manifest.files[0].sha256,
            "8ed3f6ad685b959ead7022518e1af76cd816f8e8ec7ccdda1ed4018e8f2223f8"
        );
        let (second, status) = ensure(root.path(), "toy", &key, |dir| {
            calls.set(calls.get() + 1);
            write_two(dir)
        })
        .unwrap();
        assert_eq!(status, CacheStatus::Hit);
        assert_eq!(calls.get(), 1);
        assert_eq!(second.data_dir, first.data_dir);
        assert_eq!(
            std::fs::read_to_string(second.data_dir.join("a.txt")).unwrap(),
            "alpha"
        );
    }

    #[test]
    fn another_key_is_another_entry() {
        assert_ne!(
            entry_name("toy", &json!({"seed": 1})),
            entry_name("toy", &json!({"seed": 2}))
        );
        assert_ne!(
            entry_name("toy", &json!({"seed": 1})),
            entry_name("other", &json!({"seed": 1}))
        );
        assert_eq!(
            entry_name("toy", &json!({"a": 1, "b": 2})),
            entry_name("toy", &json!({"b": 2, "a": 1}))
        );
    }

    fn regenerated_after(damage: impl FnOnce(&Path), expected: &str) {
        let root = tempfile::tempdir().unwrap();
        let key = json!({"k": 1});
        let (fixture, _) = ensure(root.path(), "toy", &key, write_two).unwrap();
        damage(&fixture.data_dir);
        let (again, status) = ensure(root.path(), "toy", &key, write_two).unwrap();
        match status {
            CacheStatus::Regenerated(reason) => {
                assert!(reason.contains(expected), "{reason}")
            }
            other => panic!("expected a regeneration, got {other}"),
        }
        assert_eq!(
            verify(again.data_dir.parent().unwrap()).unwrap(),
            again.manifest
        );
        assert_eq!(
            std::fs::read(again.data_dir.join("sub/b.bin")).unwrap(),
            vec![7u8; 3000]
        );
    }

    #[test]
    fn a_file_of_another_size_is_regenerated() {
        regenerated_after(
            |dir| std::fs::write(dir.join("sub/b.bin"), [7u8; 10]).unwrap(),
            "sub/b.bin: 10 bytes, the manifest says 3000",
        );
    }

    #[test]
    fn a_file_of_the_same_size_but_other_bytes_is_regenerated() {
        regenerated_after(
            |dir| {
                let mut bytes = vec![7u8; 3000];
                bytes[1500] = 8;
                std::fs::write(dir.join("sub/b.bin"), bytes).unwrap()
            },
            "sub/b.bin: SHA-256",
        );
    }

    #[test]
    fn a_missing_or_extra_file_is_regenerated() {
        regenerated_after(
            |dir| std::fs::remove_file(dir.join("a.txt")).unwrap(),
            "a.txt: missing",
        );
        regenerated_after(
            |dir| std::fs::write(dir.join("stray"), "x").unwrap(),
            "stray: not in the manifest",
        );
    }

    #[test]
    fn a_broken_manifest_is_regenerated() {
        regenerated_after(
            |dir| std::fs::write(dir.parent().unwrap().join(MANIFEST_FILE), "{").unwrap(),
            "not a fixture manifest",
        );
    }

    #[test]
    fn a_failed_generation_leaves_no_entry() {
        let root = tempfile::tempdir().unwrap();
        let key = json!({"k": 2});
        let error = ensure(root.path(), "toy", &key, |dir| {
            std::fs::write(dir.join("half"), "x")?;
            bail!("disk full")
        })
        .unwrap_err();
        assert!(format!("{error:#}").contains("disk full"));
        assert!(!root.path().join(entry_name("toy", &key)).exists());
        let left: Vec<String> = list_files(root.path()).unwrap();
        assert_eq!(left, [format!("{}.lock", entry_name("toy", &key))]);
        let (_, status) = ensure(root.path(), "toy", &key, write_two).unwrap();
        assert_eq!(status, CacheStatus::Made);
    }
}
