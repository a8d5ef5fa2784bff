//! The best version of seed D: an append costs O(the event), not O(the state). Each mutation is one JSON line
//! appended to a journal beside the snapshot (`<state file>.journal`); when the journal has grown larger than the
//! snapshot (and than a floor), the two are compacted: the snapshot is rewritten, streamed straight into the file
//! with no whole-state buffer, and a fresh journal started. Rewriting the snapshot once per snapshot's worth of
//! journal keeps the bytes written per event bytes at about two, whatever the state's size; the merged fix rewrites
//! the whole 22 MB state every window however few events it holds. Retention is the merged fix's: the cap on
//! append, the startup prune at load (followed by a compaction, so the files shrink too).
//!
//! **Durability**, documented: a record is handed to the kernel with one `write(2)` before `append_event`
//! returns, so a killed process (SIGKILL, OOM kill) loses no acknowledged event; `flush` (shutdown) `fsync`s the
//! journal, so only an OS crash or power cut between two flushes can lose records, and then only whole trailing
//! records. A final line cut short by such a crash was never acknowledged; load discards it, says so in
//! [`LoadReport::torn_journal_tail_bytes`], and compacts.
//!
//! **Crash safety of compaction**: the snapshot carries a generation, the journal's first line names the generation
//! it extends. Compaction writes snapshot `g+1` (atomically), then replaces the journal with an empty one for `g+1`
//! (atomically). A crash between the two leaves a journal for `g`, older than the snapshot: its records are all in
//! the snapshot, and load ignores it.

use super::atomic_replace::replace_file_atomically;
use super::debounce::PersistWaiter;
use super::error::StoreError;
use super::mutation::{
    Numbering, appendable_session, check_openable, end_session, endable_session, open_session,
    push_event,
};
use super::state::{SessionStatus, StoreState, apply_rules_at_load, cap_events};
use super::state_file::{load_state_file, serialize_state_streaming};
use super::{Held, LoadReport, SessionStore, StoreConfig, StoreTechnique, UndoneChange};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The journal's first line.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalHeader {
    journal_for_generation: u64,
}

/// One journal line, as written (borrowing the event).
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum JournalRecordRef<'a> {
    Open {
        session: &'a str,
    },
    Append {
        session: &'a str,
        seq: u64,
        hook: &'a str,
        body: &'a str,
    },
    End {
        session: &'a str,
        status: SessionStatus,
    },
}

/// One journal line, as read.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum JournalRecord {
    Open {
        session: String,
    },
    Append {
        session: String,
        seq: u64,
        hook: String,
        body: String,
    },
    End {
        session: String,
        status: SessionStatus,
    },
}

/// The journal that extends the state file at `snapshot_path`.
pub fn journal_path_for(snapshot_path: &Path) -> PathBuf {
    let mut name = snapshot_path.file_name().unwrap_or_default().to_os_string();
    name.push(".journal");
    snapshot_path.with_file_name(name)
}

/// What reading the journal found.
struct JournalReplay {
    /// The journal belongs to an older snapshot (a compaction was cut short) or is cut short itself.
    needs_compaction: bool,
    n_appends_replayed: u64,
    n_records_replayed: u64,
    torn_tail_bytes: u64,
    journal_bytes: u64,
}

/// The best version: journal appends, compacted into a streamed snapshot when the journal outgrows it.
pub struct JournalWithSnapshotStore {
    snapshot_path: PathBuf,
    journal_path: PathBuf,
    held: Held,
    config: StoreConfig,
    journal: Option<File>,
    journal_bytes: u64,
    snapshot_bytes: u64,
    /// One line's bytes, reused from append to append.
    record_buffer: Vec<u8>,
}

impl JournalWithSnapshotStore {
    /// Loads the snapshot at `path` and replays its journal, applies the startup prune and the cap, and compacts
    /// at once when the files hold anything the state no longer does (pruned events, a stale or torn journal) or
    /// do not exist yet.
    pub fn open(path: &Path, config: StoreConfig) -> Result<JournalWithSnapshotStore, StoreError> {
        let journal_path = journal_path_for(path);
        let snapshot = load_state_file(path)?;
        let snapshot_existed = snapshot.is_some();
        let mut state = snapshot.unwrap_or_default();
        let snapshot_bytes = std::fs::metadata(path).map_or(0, |meta| meta.len());
        let n_snapshot_events = state.n_events() as u64;
        let replay = replay_journal(&journal_path, &mut state, &config)?;
        let n_events_in_files = n_snapshot_events + replay.n_appends_replayed;
        apply_rules_at_load(&mut state, config.rules);
        let n_events_dropped_at_load = n_events_in_files - state.n_events() as u64;
        let load_report = LoadReport {
            n_events_in_files,
            n_events_dropped_at_load,
            snapshot_bytes,
            journal_bytes: replay.journal_bytes,
            n_journal_records_replayed: replay.n_records_replayed,
            torn_journal_tail_bytes: replay.torn_tail_bytes,
        };
        let mut store = JournalWithSnapshotStore {
            snapshot_path: path.to_path_buf(),
            journal_path,
            held: Held::loaded(state, load_report),
            config,
            journal: None,
            journal_bytes: replay.journal_bytes,
            snapshot_bytes,
            record_buffer: Vec::new(),
        };
        if !snapshot_existed || replay.needs_compaction || n_events_dropped_at_load > 0 {
            store.compact()?;
        } else {
            store.journal = Some(open_for_append(&store.journal_path)?);
        }
        Ok(store)
    }

    /// Writes the whole state as snapshot `generation + 1`, streamed into the file, then starts an empty journal
    /// for it.
    fn compact(&mut self) -> Result<(), StoreError> {
        self.journal = None;
        self.held.state.generation += 1;
        let state = &self.held.state;
        let snapshot_bytes = match replace_file_atomically(&self.snapshot_path, |out| {
            serialize_state_streaming(state, out)
        }) {
            Ok(bytes) => bytes,
            Err(error) => {
                self.held.state.generation -= 1;
                self.journal = Some(open_for_append(&self.journal_path)?);
                return Err(error);
            }
        };
        let mut header = serde_json::to_vec(&JournalHeader {
            journal_for_generation: self.held.state.generation,
        })
        .expect("a header serialises");
        header.push(b'\n');
        let journal_bytes =
            replace_file_atomically(&self.journal_path, |out| out.write_all(&header))?;
        self.journal = Some(open_for_append(&self.journal_path)?);
        self.snapshot_bytes = snapshot_bytes;
        self.journal_bytes = journal_bytes;
        self.held.stats.n_compactions += 1;
        self.held.stats.n_snapshot_writes += 1;
        self.held.stats.bytes_written += snapshot_bytes + journal_bytes;
        Ok(())
    }

    /// Appends one record to the journal with a single `write(2)`.
    fn append_record(&mut self, record: &JournalRecordRef<'_>) -> Result<(), StoreError> {
        self.record_buffer.clear();
        serde_json::to_writer(&mut self.record_buffer, record).expect("a record serialises");
        self.record_buffer.push(b'\n');
        if self.config.undone == Some(UndoneChange::Persist) {
            return Ok(());
        }
        let journal = match &mut self.journal {
            Some(journal) => journal,
            None => {
                self.journal = Some(open_for_append(&self.journal_path)?);
                self.journal.as_mut().expect("just opened")
            }
        };
        journal
            .write_all(&self.record_buffer)
            .map_err(|error| StoreError::io(&self.journal_path, "append to the journal", error))?;
        let bytes = self.record_buffer.len() as u64;
        self.journal_bytes += bytes;
        self.held.stats.bytes_written += bytes;
        self.held.stats.n_journal_appends += 1;
        Ok(())
    }

    /// Compacts once the journal is larger than both the snapshot and the configured floor.
    fn compact_if_outgrown(&mut self) -> Result<(), StoreError> {
        match self.config.undone {
            Some(UndoneChange::Persist) => return Ok(()),
            Some(UndoneChange::Journal) => return self.compact(),
            // Changes of the merged fix only; the journal store has neither a scan nor a clone to undo.
            Some(UndoneChange::SeqRecord | UndoneChange::SerialiseWithoutClone) | None => {}
        }
        if self.journal_bytes
            > self
                .snapshot_bytes
                .max(self.config.compact_min_journal_bytes)
        {
            self.compact()?;
        }
        Ok(())
    }

    /// Bytes of the snapshot and of the journal now.
    pub fn file_bytes(&self) -> (u64, u64) {
        (self.snapshot_bytes, self.journal_bytes)
    }
}

fn open_for_append(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|error| StoreError::io(path, "open the journal for appending", error))
}

/// Replays the journal at `path` onto `state` (a missing journal is an empty one).
fn replay_journal(
    path: &Path,
    state: &mut StoreState,
    config: &StoreConfig,
) -> Result<JournalReplay, StoreError> {
    let mut replay = JournalReplay {
        needs_compaction: false,
        n_appends_replayed: 0,
        n_records_replayed: 0,
        torn_tail_bytes: 0,
        journal_bytes: 0,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            replay.needs_compaction = true;
            return Ok(replay);
        }
        Err(error) => return Err(StoreError::io(path, "open the journal", error)),
    };
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::new();
    let mut line_number = 0usize;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|error| StoreError::io(path, "read the journal", error))?;
        if n == 0 {
            break;
        }
        replay.journal_bytes += n as u64;
        line_number += 1;
        if line.last() != Some(&b'\n') {
            // A write a crash cut short: it never returned, so it was never acknowledged.
            replay.torn_tail_bytes = n as u64;
            replay.needs_compaction = true;
            break;
        }
        if line_number == 1 {
            let header: JournalHeader = serde_json::from_slice(&line).map_err(|error| {
                StoreError::refused(
                    path,
                    format!("line 1: expected the journal header {{\"journal_for_generation\":N}}: {error}"),
                )
            })?;
            if header.journal_for_generation > state.generation {
                return Err(StoreError::refused(
                    path,
                    format!(
                        "line 1: the journal extends generation {} but the snapshot is generation {}: the snapshot is older than its journal",
                        header.journal_for_generation, state.generation
                    ),
                ));
            }
            if header.journal_for_generation < state.generation {
                // Left by a compaction cut short after its snapshot was written: every record is in the snapshot.
                replay.needs_compaction = true;
                return Ok(replay);
            }
            continue;
        }
        let record: JournalRecord = serde_json::from_slice(&line).map_err(|error| {
            StoreError::refused(
                path,
                format!("line {line_number}: not a journal record: {error}"),
            )
        })?;
        let was_append = apply_journal_record(state, record, config)
            .map_err(|reason| StoreError::refused(path, format!("line {line_number}: {reason}")))?;
        replay.n_records_replayed += 1;
        replay.n_appends_replayed += u64::from(was_append);
    }
    if line_number == 0 {
        return Err(StoreError::refused(
            path,
            "the journal is empty: expected the header line {\"journal_for_generation\":N}",
        ));
    }
    Ok(replay)
}

/// Applies one replayed record; returns whether it was an append. The reason for a refusal names the session.
fn apply_journal_record(
    state: &mut StoreState,
    record: JournalRecord,
    config: &StoreConfig,
) -> Result<bool, String> {
    match record {
        JournalRecord::Open { session } => {
            open_session(state, &session).map_err(|error| error.to_string())?;
            Ok(false)
        }
        JournalRecord::Append {
            session: session_id,
            seq,
            hook,
            body,
        } => {
            let session = appendable_session(state, &session_id, &hook, &body, usize::MAX)
                .map_err(|error| error.to_string())?;
            if seq <= session.last_seq {
                let what = if session.events.iter().any(|event| event.seq == seq) {
                    "duplicate sequence number"
                } else {
                    "sequence number not above the last one"
                };
                return Err(format!(
                    "session {session_id:?}: {what} {seq} (last was {})",
                    session.last_seq
                ));
            }
            push_event(session, seq, &hook, &body);
            if let Some(max_events) = config.rules.max_events_per_session {
                cap_events(session, max_events);
            }
            Ok(true)
        }
        JournalRecord::End { session, status } => {
            end_session(state, &session, status).map_err(|error| error.to_string())?;
            Ok(false)
        }
    }
}

impl SessionStore for JournalWithSnapshotStore {
    fn technique(&self) -> StoreTechnique {
        StoreTechnique::JournalWithSnapshot
    }

    fn open_session(&mut self, session_id: &str, _now: Instant) -> Result<(), StoreError> {
        if check_openable(&self.held.state, session_id)? {
            self.append_record(&JournalRecordRef::Open {
                session: session_id,
            })?;
        }
        open_session(&mut self.held.state, session_id)?;
        self.compact_if_outgrown()
    }

    fn append_event(
        &mut self,
        session_id: &str,
        hook: &str,
        body: &str,
        _now: Instant,
    ) -> Result<u64, StoreError> {
        let (_, seq) = self.held.number_append(
            Numbering::ByRecord,
            session_id,
            hook,
            body,
            self.config.max_event_bytes,
        )?;
        // The record goes to the journal first: a failed write leaves the state as it was.
        self.append_record(&JournalRecordRef::Append {
            session: session_id,
            seq,
            hook,
            body,
        })?;
        let session = self
            .held
            .state
            .sessions
            .get_mut(session_id)
            .expect("checked above");
        push_event(session, seq, hook, body);
        if let Some(max_events) = self.config.rules.max_events_per_session {
            cap_events(session, max_events);
        }
        self.held.stats.event_content_bytes += (hook.len() + body.len()) as u64;
        self.compact_if_outgrown()?;
        Ok(seq)
    }

    fn end_session(
        &mut self,
        session_id: &str,
        status: SessionStatus,
        _now: Instant,
    ) -> Result<(), StoreError> {
        // Check, journal, then apply: a refused or failed record leaves the state as it was.
        endable_session(&mut self.held.state, session_id)?;
        self.append_record(&JournalRecordRef::End {
            session: session_id,
            status,
        })?;
        end_session(&mut self.held.state, session_id, status)?;
        self.compact_if_outgrown()
    }

    fn numbering(&self) -> Numbering {
        Numbering::ByRecord
    }

    fn persist_waiter(&mut self) -> PersistWaiter {
        PersistWaiter::resolved(Ok(self.held.stats.n_journal_appends))
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if let Some(journal) = &self.journal {
            journal
                .sync_data()
                .map_err(|error| StoreError::io(&self.journal_path, "fsync the journal", error))?;
        }
        Ok(())
    }

    fn held(&self) -> &Held {
        &self.held
    }
}
