//! The state file: one JSON document, `{"schema_version":1,"generation":G,"sessions":[{"id":…,"status":…,
//! "last_seq":…,"events":[{"seq":…,"hook":…,"body":…}]}]}`. The seed's store kept 22 MB of it and reread and
//! rewrote all of it on every event.
//!
//! Load trusts nothing: a file that is truncated, is not JSON, has another schema version, or holds a session's
//! sequence numbers twice or out of order is refused with an error naming the file and what was wrong, and load
//! never writes, so the refused file is still there for a person to look at.

use super::error::StoreError;
use super::state::{HookEvent, SCHEMA_VERSION, Session, SessionStatus, StoreState};
use serde::ser::SerializeSeq as _;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::Path;

#[derive(Serialize)]
struct SessionRecordRef<'a> {
    id: &'a str,
    status: SessionStatus,
    last_seq: u64,
    events: &'a VecDeque<HookEvent>,
}

struct SessionsRef<'a>(&'a BTreeMap<String, Session>);

impl Serialize for SessionsRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (id, session) in self.0 {
            seq.serialize_element(&SessionRecordRef {
                id,
                status: session.status,
                last_seq: session.last_seq,
                events: &session.events,
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct StateFileRef<'a> {
    schema_version: u64,
    generation: u64,
    sessions: SessionsRef<'a>,
}

impl Serialize for StoreState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StateFileRef {
            schema_version: SCHEMA_VERSION,
            generation: self.generation,
            sessions: SessionsRef(&self.sessions),
        }
        .serialize(serializer)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionRecord {
    id: String,
    status: SessionStatus,
    last_seq: u64,
    events: VecDeque<HookEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    schema_version: u64,
    generation: u64,
    sessions: Vec<SessionRecord>,
}

#[derive(Deserialize)]
struct SchemaVersionOnly {
    schema_version: u64,
}

/// Serialises the whole state into one buffer, as `JSON.stringify` did in the seed.
pub fn serialize_state_to_vec(state: &StoreState) -> Vec<u8> {
    serde_json::to_vec(state).expect("a state always serialises")
}

/// The seed's `serializeState()`: a deep clone of the whole state (its `structuredClone`), serialised into one
/// buffer; the clone is dropped once the text exists, so the two are live together at the peak.
pub fn serialize_clone_to_vec(state: &StoreState) -> Vec<u8> {
    let clone = state.clone();
    let text = serialize_state_to_vec(std::hint::black_box(&clone));
    drop(clone);
    text
}

/// Serialises the state straight into `out`, with no whole-state buffer in between.
pub fn serialize_state_streaming(state: &StoreState, out: &mut dyn Write) -> std::io::Result<()> {
    serde_json::to_writer(out, state).map_err(std::io::Error::from)
}

/// Describes a JSON error of `path` by what it means for a state file.
fn describe_json_error(error: &serde_json::Error) -> String {
    match error.classify() {
        serde_json::error::Category::Eof => format!(
            "truncated: the JSON ends at line {} column {} before the state is complete",
            error.line(),
            error.column()
        ),
        serde_json::error::Category::Syntax => format!("not JSON: {error}"),
        serde_json::error::Category::Data => format!("not a session state file: {error}"),
        serde_json::error::Category::Io => format!("cannot be read: {error}"),
    }
}

fn read_schema_version(path: &Path) -> Option<u64> {
    let file = std::fs::File::open(path).ok()?;
    serde_json::from_reader::<_, SchemaVersionOnly>(std::io::BufReader::new(file))
        .ok()
        .map(|probe| probe.schema_version)
}

fn unknown_version_reason(version: u64) -> String {
    format!("unknown schema version {version}: this store reads version {SCHEMA_VERSION}")
}

/// Loads the state file at `path`; `Ok(None)` when there is none yet. Refuses (never rewrites) a file it cannot
/// trust.
pub fn load_state_file(path: &Path) -> Result<Option<StoreState>, StoreError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StoreError::io(path, "open the state file", error)),
    };
    let parsed: StateFile =
        match serde_json::from_reader(std::io::BufReader::with_capacity(64 * 1024, file)) {
            Ok(parsed) => parsed,
            Err(error) => {
                if error.classify() == serde_json::error::Category::Io {
                    return Err(StoreError::io(
                        path,
                        "read the state file",
                        std::io::Error::other(error.to_string()),
                    ));
                }
                // A file of another version may not fit this version's shape; say that rather than the shape error.
                if error.classify() == serde_json::error::Category::Data
                    && let Some(version) = read_schema_version(path)
                    && version != SCHEMA_VERSION
                {
                    return Err(StoreError::refused(path, unknown_version_reason(version)));
                }
                return Err(StoreError::refused(path, describe_json_error(&error)));
            }
        };
    if parsed.schema_version != SCHEMA_VERSION {
        return Err(StoreError::refused(
            path,
            unknown_version_reason(parsed.schema_version),
        ));
    }
    let mut state = StoreState {
        generation: parsed.generation,
        sessions: BTreeMap::new(),
    };
    for record in parsed.sessions {
        check_sequence_numbers(&record.id, record.last_seq, &record.events)
            .map_err(|reason| StoreError::refused(path, reason))?;
        let session = Session {
            status: record.status,
            last_seq: record.last_seq,
            events: record.events,
        };
        if state.sessions.insert(record.id.clone(), session).is_some() {
            return Err(StoreError::refused(
                path,
                format!("session {:?} appears twice", record.id),
            ));
        }
    }
    Ok(Some(state))
}

/// Checks that a session's sequence numbers are strictly increasing, none repeated, none above `last_seq`.
pub fn check_sequence_numbers(
    session_id: &str,
    last_seq: u64,
    events: &VecDeque<HookEvent>,
) -> Result<(), String> {
    let mut previous: Option<u64> = None;
    for event in events {
        if let Some(previous) = previous {
            if event.seq == previous {
                return Err(format!(
                    "session {session_id:?}: duplicate sequence number {}",
                    event.seq
                ));
            }
            if event.seq < previous {
                return Err(format!(
                    "session {session_id:?}: sequence number {} follows {previous}: expected strictly increasing numbers",
                    event.seq
                ));
            }
        }
        if event.seq == 0 || event.seq > last_seq {
            return Err(format!(
                "session {session_id:?}: sequence number {} is outside 1..={last_seq} (the session's last_seq)",
                event.seq
            ));
        }
        previous = Some(event.seq);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_state() -> StoreState {
        let mut state = StoreState::default();
        state.sessions.insert(
            "s-1".into(),
            Session {
                status: SessionStatus::Active,
                last_seq: 2,
                events: VecDeque::from(vec![
                    HookEvent {
                        seq: 1,
                        hook: "PreToolUse".into(),
                        body: "{\"tool\":\"bash\"}".into(),
                    },
                    HookEvent {
                        seq: 2,
                        hook: "PostToolUse".into(),
                        body: "naïve \"quoted\" \\ 🚀".into(),
                    },
                ]),
            },
        );
        state
    }

    #[test]
    fn round_trips_through_the_file_and_both_serialisers_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let state = sample_state();
        let mut streamed = Vec::new();
        serialize_state_streaming(&state, &mut streamed).unwrap();
        assert_eq!(streamed, serialize_state_to_vec(&state));
        std::fs::write(&path, &streamed).unwrap();
        assert_eq!(load_state_file(&path).unwrap(), Some(state));
    }

    #[test]
    fn a_missing_file_is_an_empty_start() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            load_state_file(&dir.path().join("none.json")).unwrap(),
            None
        );
    }
}
