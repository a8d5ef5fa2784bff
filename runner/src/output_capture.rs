//! Where a measured process's stdout and stderr go: files, never the runner's memory.
//!
//! A child that prints 400 MB through a pipe the runner reads made the harness itself grow to about 600 MB of RSS.
//! Files cost the runner nothing: the child writes them directly, and the runner reads back only the last
//! [`TAIL_BYTES`] of stderr to quote in a failure message. Files named by the caller land beside the case's other
//! output; without a name, stdout goes to `/dev/null` and stderr to an unnamed temporary file.

use anyhow::Context as _;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

/// How much of the end of stderr is read back for messages.
pub const TAIL_BYTES: u64 = 64 * 1024;
/// How many of the last stderr lines a failure message quotes.
pub const TAIL_LINES: usize = 20;

/// The two files a process writes its output to.
pub struct Capture {
    pub stdout: File,
    pub stderr: File,
    /// The named files, `None` for the unnamed defaults.
    pub stdout_path: Option<PathBuf>,
    pub stderr_path: Option<PathBuf>,
    /// The runner's own handle on stderr, to read its tail.
    stderr_reader: File,
}

impl Capture {
    /// Opens `<stem>.stdout` and `<stem>.stderr` (created or truncated), or the unnamed defaults for `None`.
    pub fn open(stem: Option<&Path>) -> anyhow::Result<Capture> {
        match stem {
            Some(stem) => {
                let stdout_path = with_suffix(stem, "stdout");
                let stderr_path = with_suffix(stem, "stderr");
                let create = |path: &Path| {
                    File::create(path).with_context(|| format!("{}: cannot create", path.display()))
                };
                let stdout = create(&stdout_path)?;
                let stderr = create(&stderr_path)?;
                let stderr_reader = File::open(&stderr_path)
                    .with_context(|| format!("{}: cannot open", stderr_path.display()))?;
                Ok(Capture {
                    stdout,
                    stderr,
                    stdout_path: Some(stdout_path),
                    stderr_path: Some(stderr_path),
                    stderr_reader,
                })
            }
            None => {
                let stdout = File::options()
                    .write(true)
                    .open("/dev/null")
                    .context("/dev/null: cannot open")?;
                let stderr =
                    tempfile::tempfile().context("cannot create a temporary file for stderr")?;
                let stderr_reader = stderr.try_clone().context("cannot share the stderr file")?;
                Ok(Capture {
                    stdout,
                    stderr,
                    stdout_path: None,
                    stderr_path: None,
                    stderr_reader,
                })
            }
        }
    }

    /// The last [`TAIL_LINES`] lines of what was written to stderr, from at most its last [`TAIL_BYTES`].
    pub fn stderr_tail(&mut self) -> String {
        let reader = &mut self.stderr_reader;
        let length = reader.seek(SeekFrom::End(0)).unwrap_or(0);
        let start = length.saturating_sub(TAIL_BYTES);
        let mut bytes = Vec::new();
        if reader.seek(SeekFrom::Start(start)).is_err()
            || reader.take(TAIL_BYTES).read_to_end(&mut bytes).is_err()
        {
            return String::new();
        }
        last_lines(&String::from_utf8_lossy(&bytes), start > 0)
    }

    /// Removes the named files that stayed empty and returns the names of those that are left.
    pub fn keep_non_empty(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        let keep = |path: &Option<PathBuf>| {
            let path = path.as_ref()?;
            if std::fs::metadata(path).map_or(true, |meta| meta.len() == 0) {
                let _ = std::fs::remove_file(path);
                return None;
            }
            Some(path.clone())
        };
        (keep(&self.stdout_path), keep(&self.stderr_path))
    }
}

fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// The last [`TAIL_LINES`] lines of `text`; `cut` says the text starts mid-stream, so its first line is partial.
fn last_lines(text: &str, cut: bool) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    if cut && !lines.is_empty() {
        lines.remove(0);
    }
    let from = lines.len().saturating_sub(TAIL_LINES);
    lines[from..]
        .iter()
        .map(|line| line.trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A child's stderr between two divider lines, or `<stderr is empty>`.
pub fn show_tail(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        "<stderr is empty>".to_string()
    } else {
        let divider = "-".repeat(20);
        format!("{divider}\n{}\n{divider}", stderr.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn the_tail_is_the_last_lines_of_a_long_stderr_and_empty_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut capture = Capture::open(Some(&dir.path().join("case"))).unwrap();
        for line in 0..100_000 {
            writeln!(capture.stderr, "line {line}").unwrap();
        }
        let tail = capture.stderr_tail();
        let expected: Vec<String> = (100_000 - TAIL_LINES..100_000)
            .map(|line| format!("line {line}"))
            .collect();
        assert_eq!(tail, expected.join("\n"));
        let (stdout, stderr) = capture.keep_non_empty();
        assert_eq!(stdout, None);
        assert!(!dir.path().join("case.stdout").exists());
        assert_eq!(stderr, Some(dir.path().join("case.stderr")));
    }

    #[test]
    fn a_short_stderr_keeps_its_first_line() {
        let mut capture = Capture::open(None).unwrap();
        writeln!(capture.stderr, "only").unwrap();
        assert_eq!(capture.stderr_tail(), "only");
    }
}
