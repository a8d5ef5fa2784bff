//! What can go wrong in a session store, worded for the person who has to act on it: a state file that cannot be
//! trusted names the file and what is wrong with it (and says it was left alone), and a refused event names its
//! session, so that one bad hook never takes the store down with it.

use std::path::{Path, PathBuf};

/// An error of a session store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A state file (or journal) that load refuses; it is never overwritten.
    #[error("{}: {reason}; the file was left as it is", path.display())]
    Refused { path: PathBuf, reason: String },
    /// Reading or writing a file failed.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// An event or completion for a session nobody opened.
    #[error("no session {session:?}: open it before sending its events")]
    UnknownSession { session: String },
    /// An event for a session that has ended.
    #[error("session {session:?} has ended ({status}): it takes no more events")]
    SessionEnded {
        session: String,
        status: &'static str,
    },
    /// An event larger than the store accepts.
    #[error("an event of {bytes} bytes for session {session:?} is over the limit of {limit} bytes")]
    EventTooLarge {
        session: String,
        bytes: usize,
        limit: usize,
    },
}

impl StoreError {
    /// A refusal of the file at `path` for `reason`.
    pub fn refused(path: &Path, reason: impl Into<String>) -> StoreError {
        StoreError::Refused {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// An I/O failure while doing `action` on `path`.
    pub fn io(path: &Path, action: &'static str, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    /// Whether the store can go on after this error (a refused event) rather than having lost its footing.
    pub fn is_rejected_input(&self) -> bool {
        matches!(
            self,
            StoreError::UnknownSession { .. }
                | StoreError::SessionEnded { .. }
                | StoreError::EventTooLarge { .. }
        )
    }
}
