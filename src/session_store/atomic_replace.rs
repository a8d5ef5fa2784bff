//! Replacing a file so that a crash at any moment leaves either the old contents or the new ones, never a torn
//! file: write a temporary file beside it, `fsync` it, `rename` it over the old one, `fsync` the directory so the
//! rename itself survives a power cut. The seed's store was restarted 595 times by the OOM killer; each of those
//! kills landed somewhere in a write, and a store that writes in place would have destroyed its own state.

use super::error::StoreError;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A writer that counts the bytes that pass through it (bytes written to disk, for write amplification).
pub struct CountingWriter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> CountingWriter<W> {
    pub fn new(inner: W) -> CountingWriter<W> {
        CountingWriter { inner, bytes: 0 }
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The temporary file a replacement of `path` writes first: same directory (so the rename stays on one file
/// system), the process id in its name (so two processes never share one).
pub fn temporary_path_for(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Replaces `path` with what `write_contents` writes, atomically: temporary file, `fsync`, `rename`, `fsync` of
/// the directory. Returns the bytes written. On failure the temporary file is removed and `path` is untouched.
pub fn replace_file_atomically(
    path: &Path,
    write_contents: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<u64, StoreError> {
    let temporary = temporary_path_for(path);
    let result = write_and_rename(path, &temporary, write_contents);
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn write_and_rename(
    path: &Path,
    temporary: &Path,
    write_contents: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<u64, StoreError> {
    let file = File::create(temporary)
        .map_err(|error| StoreError::io(temporary, "create the temporary file", error))?;
    let mut writer = CountingWriter::new(BufWriter::with_capacity(64 * 1024, file));
    write_contents(&mut writer)
        .and_then(|()| writer.flush())
        .map_err(|error| StoreError::io(temporary, "write the temporary file", error))?;
    let bytes = writer.bytes();
    let file = writer.into_inner().into_inner().map_err(|error| {
        StoreError::io(temporary, "write the temporary file", error.into_error())
    })?;
    file.sync_all()
        .map_err(|error| StoreError::io(temporary, "fsync the temporary file", error))?;
    drop(file);
    std::fs::rename(temporary, path)
        .map_err(|error| StoreError::io(path, "rename the temporary file over", error))?;
    sync_directory_of(path)?;
    Ok(bytes)
}

/// `fsync`s the directory holding `path`, so that a rename or a creation in it is durable.
pub fn sync_directory_of(path: &Path) -> Result<(), StoreError> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)
        .and_then(|handle| handle.sync_all())
        .map_err(|error| StoreError::io(directory, "fsync the directory", error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"old").unwrap();
        let bytes = replace_file_atomically(&path, |out| out.write_all(b"new contents")).unwrap();
        assert_eq!(bytes, 12);
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
        assert!(!temporary_path_for(&path).exists());
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"old state").unwrap();
        let error = replace_file_atomically(&path, |out| {
            out.write_all(b"half of the new")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(error.to_string().contains("disk full"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old state");
        assert!(!temporary_path_for(&path).exists());
    }
}
