//! What can go wrong when serving a session's log, worded for the client who receives it.
//!
//! Seed C's merged fix lost data without a word: a line over its 1 MiB buffer ended the scan and the client got a
//! short history. Every error here names the session and, for a bad line, its 1-based line number and what was
//! wrong with it, and travels to the client either as an HTTP status with the message as its body (when nothing
//! has been sent yet) or as an explicit error at the end of a streamed body (see [`super::wire`]).

use axum::http::StatusCode;

/// What was wrong with one line of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblem {
    /// Longer than the reader's hard limit; the line was not read into memory.
    LongerThanHardLimit { hard_limit: u64 },
    /// Not UTF-8; `byte_offset` is where the first bad byte sits in the line.
    InvalidUtf8 { byte_offset: u64 },
    /// Ended by a newline but not one JSON value.
    NotJson(String),
    /// The file ends inside this line: no newline, and what is there does not parse.
    IncompleteLastLine(String),
    /// The file could not be read at this line.
    Unreadable(String),
}

impl std::fmt::Display for LineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineProblem::LongerThanHardLimit { hard_limit } => {
                write!(
                    f,
                    "the line is longer than the hard limit of {hard_limit} bytes"
                )
            }
            LineProblem::InvalidUtf8 { byte_offset } => {
                write!(f, "invalid UTF-8 at byte {byte_offset} of the line")
            }
            LineProblem::NotJson(reason) => write!(f, "not valid JSON: {reason}"),
            LineProblem::IncompleteLastLine(reason) => write!(
                f,
                "the last line is incomplete (no newline, and not valid JSON: {reason}); the log was cut or is \
                 still being written"
            ),
            LineProblem::Unreadable(reason) => write!(f, "cannot read the log here: {reason}"),
        }
    }
}

/// An error serving a session's events, export or listing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventLogError {
    /// One line of the log cannot be served.
    #[error("session {session}, line {line}: {problem}")]
    Line {
        session: String,
        line: u64,
        problem: LineProblem,
    },
    /// The id could name a file outside the log directory, or is empty or too long.
    #[error(
        "session id {id:?} is not valid: expected 1 to 128 characters from A-Z a-z 0-9 _ - (no '/', no '..')"
    )]
    InvalidSessionId { id: String },
    /// No log file for this session.
    #[error("session {session}: no event log (expected {file_name} in the log directory)")]
    MissingLog { session: String, file_name: String },
    /// The log exists but cannot be opened or its directory cannot be listed.
    #[error("session {session}: cannot open the event log: {reason}")]
    UnreadableLog { session: String, reason: String },
    /// The listing's cursor or limit is not usable.
    #[error("listing: {0}")]
    BadListingRequest(String),
    /// The log directory cannot be listed.
    #[error("listing: cannot read the log directory: {0}")]
    UnreadableDirectory(String),
}

impl EventLogError {
    pub(crate) fn line(session: &str, line: u64, problem: LineProblem) -> EventLogError {
        EventLogError::Line {
            session: session.to_string(),
            line,
            problem,
        }
    }

    /// The status the error gets when it is found before the response has started.
    pub fn status(&self) -> StatusCode {
        match self {
            EventLogError::Line {
                problem: LineProblem::Unreadable(_),
                ..
            } => StatusCode::INTERNAL_SERVER_ERROR,
            EventLogError::Line { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            EventLogError::InvalidSessionId { .. } | EventLogError::BadListingRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            EventLogError::MissingLog { .. } => StatusCode::NOT_FOUND,
            EventLogError::UnreadableLog { .. } | EventLogError::UnreadableDirectory(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The line number, for a line error.
    pub fn line_number(&self) -> Option<u64> {
        match self {
            EventLogError::Line { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The error as a JSON object `{"error": message, "line": n}` (`line` only for a line error).
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        object.insert("error".into(), self.to_string().into());
        if let Some(line) = self.line_number() {
            object.insert("line".into(), line.into());
        }
        serde_json::Value::Object(object)
    }
}

impl axum::response::IntoResponse for EventLogError {
    fn into_response(self) -> axum::response::Response {
        (self.status(), format!("{self}\n")).into_response()
    }
}
