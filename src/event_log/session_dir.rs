//! The directory of session logs: one `<session id>.jsonl` file per session, the only files the server reads.
//!
//! A session id comes from the URL, so it is checked before it touches the file system: only `A-Z a-z 0-9 _ -`,
//! 1 to 128 characters. That rules out `/`, `\`, `..` and NUL whatever the encoding the client tried, so no id can
//! name a file outside the directory.

use super::error::EventLogError;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The extension of a session log.
pub const LOG_EXTENSION: &str = "jsonl";
/// The longest session id accepted.
pub const MAX_SESSION_ID_LEN: usize = 128;

/// The directory the server serves logs from.
#[derive(Debug, Clone)]
pub struct SessionDir {
    root: PathBuf,
}

/// One session in a listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionSummary {
    pub id: String,
    /// The log's size on disk.
    pub bytes: u64,
}

/// Checks a session id from a URL; see the module doc for the rule.
pub fn check_session_id(id: &str) -> Result<(), EventLogError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_SESSION_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(EventLogError::InvalidSessionId { id: id.to_string() })
    }
}

impl SessionDir {
    pub fn new(root: &Path) -> SessionDir {
        SessionDir {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The log file of a session whose id has been checked.
    pub fn log_path(&self, session: &str) -> Result<PathBuf, EventLogError> {
        check_session_id(session)?;
        Ok(self.root.join(format!("{session}.{LOG_EXTENSION}")))
    }

    /// Opens a session's log; a missing file and an unreadable one are different errors.
    pub fn open_log(&self, session: &str) -> Result<File, EventLogError> {
        let path = self.log_path(session)?;
        File::open(&path).map_err(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                EventLogError::MissingLog {
                    session: session.to_string(),
                    file_name: format!("{session}.{LOG_EXTENSION}"),
                }
            } else {
                EventLogError::UnreadableLog {
                    session: session.to_string(),
                    reason: error.to_string(),
                }
            }
        })
    }

    /// Every session in the directory, sorted by id. Files that are not `<valid id>.jsonl` are not sessions.
    pub fn list_all_sorted(&self) -> Result<Vec<SessionSummary>, EventLogError> {
        let entries = std::fs::read_dir(&self.root)
            .map_err(|error| EventLogError::UnreadableDirectory(error.to_string()))?;
        let mut sessions = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|error| EventLogError::UnreadableDirectory(error.to_string()))?;
            let file_name = entry.file_name();
            let Some(id) = file_name
                .to_str()
                .and_then(|name| name.strip_suffix(&format!(".{LOG_EXTENSION}")))
            else {
                continue;
            };
            if check_session_id(id).is_err() {
                continue;
            }
            let bytes = entry
                .metadata()
                .map_err(|error| EventLogError::UnreadableDirectory(error.to_string()))?
                .len();
            sessions.push(SessionSummary {
                id: id.to_string(),
                bytes,
            });
        }
        sessions.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(sessions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_leave_the_directory_are_refused() {
        for id in [
            "../etc/passwd",
            "..",
            "a/b",
            "a\\b",
            "",
            ".hidden",
            "a\0b",
            "é",
        ] {
            let error = check_session_id(id).unwrap_err();
            assert!(error.to_string().starts_with("session id"), "{error}");
            assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST);
        }
        assert!(check_session_id(&"a".repeat(MAX_SESSION_ID_LEN + 1)).is_err());
        for id in ["s1", "session_2024-01-01", &"a".repeat(MAX_SESSION_ID_LEN)] {
            check_session_id(id).unwrap();
        }
    }

    #[test]
    fn a_missing_log_names_the_session_and_the_file_expected() {
        let dir = tempfile::tempdir().unwrap();
        let error = SessionDir::new(dir.path()).open_log("nope").unwrap_err();
        assert_eq!(
            error.to_string(),
            "session nope: no event log (expected nope.jsonl in the log directory)"
        );
        assert_eq!(error.status(), axum::http::StatusCode::NOT_FOUND);
    }

    #[test]
    fn the_listing_is_sorted_and_skips_files_that_are_not_logs() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.jsonl", "a.jsonl", "notes.txt", "bad id.jsonl"] {
            std::fs::write(dir.path().join(name), "{}\n").unwrap();
        }
        let ids: Vec<String> = SessionDir::new(dir.path())
            .list_all_sorted()
            .unwrap()
            .into_iter()
            .map(|summary| summary.id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }
}
