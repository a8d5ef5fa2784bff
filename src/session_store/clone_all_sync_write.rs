//! The seed's store, kept as the `before` of seed D: every mutation deep-clones the whole state, serialises the
//! clone into one string and writes the file before it returns; the next sequence number comes from scanning the
//! session's events; nothing is ever pruned. At the seed's 22 MB state that was about 110 MB allocated per event,
//! and under a hook storm the heap reached 4 GB. The write itself is atomic here (temporary file, fsync, rename),
//! as in every technique, so a kill never leaves a torn file; what stays faithful is the cost.

use super::atomic_replace::replace_file_atomically;
use super::debounce::PersistWaiter;
use super::error::StoreError;
use super::mutation::{Numbering, end_session, open_session, push_event};
use super::state::SessionStatus;
use super::state_file::{load_state_file, serialize_clone_to_vec};
use super::{Held, LoadReport, SessionStore, StoreConfig, StoreTechnique};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The seed's store: clone, serialise and write the whole state on every mutation.
pub struct CloneAllSyncWriteStore {
    path: PathBuf,
    held: Held,
    max_event_bytes: usize,
}

impl CloneAllSyncWriteStore {
    /// Loads the state file at `path` (or starts empty). Retention rules in `config` are ignored: this store keeps
    /// everything.
    pub fn open(path: &Path, config: StoreConfig) -> Result<CloneAllSyncWriteStore, StoreError> {
        let state = load_state_file(path)?.unwrap_or_default();
        let load_report = LoadReport {
            n_events_in_files: state.n_events() as u64,
            snapshot_bytes: std::fs::metadata(path).map_or(0, |meta| meta.len()),
            ..LoadReport::default()
        };
        Ok(CloneAllSyncWriteStore {
            path: path.to_path_buf(),
            held: Held::loaded(state, load_report),
            max_event_bytes: config.max_event_bytes,
        })
    }

    /// The seed's persist: a deep clone of everything, serialised whole, written before the mutation returns.
    fn clone_serialise_write_all(&mut self) -> Result<(), StoreError> {
        let text = serialize_clone_to_vec(&self.held.state);
        let bytes = replace_file_atomically(&self.path, |out| out.write_all(&text))?;
        self.held.stats.n_snapshot_writes += 1;
        self.held.stats.bytes_written += bytes;
        Ok(())
    }
}

impl SessionStore for CloneAllSyncWriteStore {
    fn technique(&self) -> StoreTechnique {
        StoreTechnique::CloneAllSyncWrite
    }

    fn open_session(&mut self, session_id: &str, _now: Instant) -> Result<(), StoreError> {
        open_session(&mut self.held.state, session_id)?;
        self.clone_serialise_write_all()
    }

    fn append_event(
        &mut self,
        session_id: &str,
        hook: &str,
        body: &str,
        _now: Instant,
    ) -> Result<u64, StoreError> {
        let (session, seq) = self.held.number_append(
            Numbering::ByScan,
            session_id,
            hook,
            body,
            self.max_event_bytes,
        )?;
        push_event(session, seq, hook, body);
        self.held.stats.event_content_bytes += (hook.len() + body.len()) as u64;
        self.clone_serialise_write_all()?;
        Ok(seq)
    }

    fn end_session(
        &mut self,
        session_id: &str,
        status: SessionStatus,
        _now: Instant,
    ) -> Result<(), StoreError> {
        end_session(&mut self.held.state, session_id, status)?;
        self.clone_serialise_write_all()
    }

    fn numbering(&self) -> Numbering {
        Numbering::ByScan
    }

    fn persist_waiter(&mut self) -> PersistWaiter {
        PersistWaiter::resolved(Ok(self.held.stats.n_snapshot_writes))
    }

    fn held(&self) -> &Held {
        &self.held
    }
}
