//! Seed D: a local session store that persists to disk, under a storm of hook events.
//!
//! The seed's store kept every event of every session (8,614 events across 359 sessions, 22 MB on disk, never
//! pruned) and on every appended event deep-cloned the whole state, serialised it and wrote the file synchronously:
//! about 110 MB allocated per mutation. Hooks fired rapidly across ~220 sessions, the heap reached 4 GB, and the
//! process crashed and restarted 595 times. The merged fix capped each session at 1000 events (oldest dropped on
//! append), dropped ended sessions' events at startup, debounced the persist (3 s, dirty flag, flush on shutdown),
//! numbered events from an O(1) record instead of a scan, and serialised without the clone. What it still does:
//! every window re-serialises and rewrites the whole state.
//!
//! Three techniques, one type each, behind [`SessionStore`]:
//! - [`CloneAllSyncWriteStore`] (`clone_all_sync_write`): the seed's store. Every mutation clones the whole state,
//!   serialises the clone and writes the file before it returns; events numbered by a scan; nothing pruned.
//! - [`DebouncedSnapshotStore`] (`debounced_snapshot`): the merged fix.
//! - [`JournalWithSnapshotStore`] (`journal_with_snapshot`): an append costs O(the event): one line appended to a
//!   journal beside the snapshot; the snapshot is rewritten (streamed, no whole-state buffer) only when the journal
//!   has outgrown it. Same retention rules as the merged fix.
//!
//! Every whole-file write, in every technique, goes through [`atomic_replace`]: a crash leaves the old file or the
//! new one, never a torn one. Every load refuses a file it cannot trust and never overwrites it ([`state_file`]).

pub mod atomic_replace;
pub mod clone_all_sync_write;
pub mod debounce;
pub mod debounced_snapshot;
pub mod error;
pub mod journal_with_snapshot;
pub mod mutation;
pub mod state;
pub mod state_file;
pub mod synthetic_state;

pub use clone_all_sync_write::CloneAllSyncWriteStore;
pub use debounce::PersistWaiter;
pub use debounced_snapshot::DebouncedSnapshotStore;
pub use error::StoreError;
pub use journal_with_snapshot::JournalWithSnapshotStore;
pub use mutation::Numbering;
pub use state::{HookEvent, RetentionRules, Session, SessionStatus, StoreState};

use std::path::Path;
use std::time::{Duration, Instant};

/// How a store is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// Which events are kept. The seed's store ignores this and keeps everything.
    pub rules: RetentionRules,
    /// The debounced persist's window (merged fix only; 3 s by default).
    pub debounce_window: Duration,
    /// Largest event (hook name plus body) accepted; a larger one is refused with an error.
    pub max_event_bytes: usize,
    /// The journal is compacted into the snapshot once it is larger than both the snapshot and this (best only).
    pub compact_min_journal_bytes: u64,
    /// One change of a fix undone, for the counterfactuals its verdicts must fail on; `None` in every real use.
    pub undone: Option<UndoneChange>,
}

/// A change of seed D's fixes undone, and nothing else: each turns a store into the counterfactual a verdict about
/// that change must fail on (`cargo xtask load-test --prove`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UndoneChange {
    /// The store never writes what it holds: the debounced store's scheduled writes and its flush on shutdown,
    /// the journal store's appends and its compactions, are skipped. What it acknowledged is lost on any ending.
    Persist,
    /// The journal store compacts (rewrites the whole snapshot) after every append, as if it had no journal.
    Journal,
    /// The debounced store numbers each event by scanning its session's events (the seed's O(n) filter), not from
    /// the session's record of its last number. Same numbers, the seed's cost: up to the cap's 1000 events examined
    /// per append.
    SeqRecord,
    /// The debounced store deep-clones the whole state before each window's serialisation (the seed's
    /// `structuredClone` before `JSON.stringify`): the same bytes written, a second copy of the state live while
    /// they are.
    SerialiseWithoutClone,
}

impl Default for StoreConfig {
    /// The merged fix's defaults: 1000 events per session, prune at load, 3 s window; 1 MiB events.
    fn default() -> Self {
        StoreConfig {
            rules: RetentionRules::MERGED_FIX_DEFAULT,
            debounce_window: Duration::from_secs(3),
            max_event_bytes: 1024 * 1024,
            compact_min_journal_bytes: 1024 * 1024,
            undone: None,
        }
    }
}

/// What a store found when it loaded its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadReport {
    /// Events in the files (snapshot plus journal) before any retention rule.
    pub n_events_in_files: u64,
    /// Events dropped by the startup prune and the cap.
    pub n_events_dropped_at_load: u64,
    /// Bytes of the snapshot file.
    pub snapshot_bytes: u64,
    /// Bytes of the journal file (best only).
    pub journal_bytes: u64,
    /// Journal records replayed onto the snapshot (best only).
    pub n_journal_records_replayed: u64,
    /// Bytes of a final journal line that a crash cut off before it was complete (best only): a write that never
    /// returned, so never acknowledged; discarded at load.
    pub torn_journal_tail_bytes: u64,
}

/// What a store has written since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PersistStats {
    /// Whole-state writes (snapshots).
    pub n_snapshot_writes: u64,
    /// Records appended to the journal (best only).
    pub n_journal_appends: u64,
    /// Compactions of the journal into the snapshot (best only).
    pub n_compactions: u64,
    /// Bytes handed to the file system, every file counted.
    pub bytes_written: u64,
    /// Bytes of event content (hook name plus body) appended, the denominator of write amplification.
    pub event_content_bytes: u64,
}

impl PersistStats {
    /// What was written after `earlier` was taken (e.g. a storm's share, without the load's own compaction).
    pub fn since(&self, earlier: PersistStats) -> PersistStats {
        PersistStats {
            n_snapshot_writes: self.n_snapshot_writes - earlier.n_snapshot_writes,
            n_journal_appends: self.n_journal_appends - earlier.n_journal_appends,
            n_compactions: self.n_compactions - earlier.n_compactions,
            bytes_written: self.bytes_written - earlier.bytes_written,
            event_content_bytes: self.event_content_bytes - earlier.event_content_bytes,
        }
    }

    /// Bytes written to disk per byte of event content.
    pub fn write_amplification(&self) -> f64 {
        if self.event_content_bytes == 0 {
            0.0
        } else {
            self.bytes_written as f64 / self.event_content_bytes as f64
        }
    }
}

/// A session store. Every mutation takes the time it happens at (`now`), so debounce windows are driven by the
/// caller's clock: a tokio timer in the scenario, explicit instants in the tests.
pub trait SessionStore: Send {
    /// The technique's name, as specs spell it.
    fn technique(&self) -> StoreTechnique;
    /// Opens a session (opening an active one again does nothing).
    fn open_session(&mut self, session_id: &str, now: Instant) -> Result<(), StoreError>;
    /// Appends one hook event and returns its sequence number.
    fn append_event(
        &mut self,
        session_id: &str,
        hook: &str,
        body: &str,
        now: Instant,
    ) -> Result<u64, StoreError>;
    /// Ends a session with a terminal status.
    fn end_session(
        &mut self,
        session_id: &str,
        status: SessionStatus,
        now: Instant,
    ) -> Result<(), StoreError>;
    /// How the store numbers events: the seed's scan or the merged fix's record of the last number.
    fn numbering(&self) -> Numbering;
    /// The number the next event of `session_id` would get, by the technique's own way of numbering.
    fn next_seq(&self, session_id: &str) -> Option<u64> {
        self.held()
            .state
            .sessions
            .get(session_id)
            .map(|session| self.numbering().next_seq(session).0)
    }
    /// Events the numbering of appends has examined since the store was opened: the session's whole event list per
    /// append for the seed's scan, none for a record of the last number.
    fn seq_entries_scanned(&self) -> u64 {
        self.held().seq_entries_scanned
    }
    /// A waiter resolved once everything mutated so far is as durable as the technique promises.
    fn persist_waiter(&mut self) -> PersistWaiter;
    /// When a debounced write is next due, if one is pending; a store that writes as it goes never has one.
    fn persist_deadline(&self) -> Option<Instant> {
        None
    }
    /// Writes if a debounced write is due at `now`; returns whether it wrote. A store that writes as it goes has
    /// nothing due.
    fn persist_if_due(&mut self, now: Instant) -> Result<bool, StoreError> {
        let _ = now;
        Ok(false)
    }
    /// Makes everything durable now (graceful shutdown) and resolves every pending waiter; nothing to do for a
    /// store whose every mutation was durable when it returned.
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// What every store holds alike: its state, its write counters, what loading it found, and what numbering
    /// has examined.
    fn held(&self) -> &Held;
    /// The state held in memory.
    fn state(&self) -> &StoreState {
        &self.held().state
    }
    fn persist_stats(&self) -> PersistStats {
        self.held().stats
    }
    fn load_report(&self) -> LoadReport {
        self.held().load_report
    }
}

/// What every store holds alike, owned by each store and lent to the trait's default methods, so that reading it
/// (the state, the counters, the next number) is written once for all the techniques.
pub struct Held {
    pub state: StoreState,
    pub stats: PersistStats,
    pub load_report: LoadReport,
    /// Events the numbering of appends has examined ([`SessionStore::seq_entries_scanned`]).
    pub seq_entries_scanned: u64,
}

impl Held {
    /// A store's holdings right after it loaded `state`: nothing written, nothing numbered yet.
    pub fn loaded(state: StoreState, load_report: LoadReport) -> Held {
        Held {
            state,
            stats: PersistStats::default(),
            load_report,
            seq_entries_scanned: 0,
        }
    }

    /// The checks and the numbering of an append, alike in every technique: the session `hook` and `body` may be
    /// appended to, and the number their event gets by `numbering`, whose examined events are counted.
    pub fn number_append(
        &mut self,
        numbering: Numbering,
        session_id: &str,
        hook: &str,
        body: &str,
        max_event_bytes: usize,
    ) -> Result<(&mut Session, u64), StoreError> {
        let session =
            mutation::appendable_session(&mut self.state, session_id, hook, body, max_event_bytes)?;
        let (seq, scanned) = numbering.next_seq(session);
        self.seq_entries_scanned += scanned;
        Ok((session, seq))
    }
}

crate::technique_enum! {
    /// The store techniques.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum StoreTechnique {
        CloneAllSyncWrite => "clone_all_sync_write",
        DebouncedSnapshot => "debounced_snapshot",
        JournalWithSnapshot => "journal_with_snapshot",
    }
}

impl StoreTechnique {
    /// The retention rules the technique applies under `config`: the seed's store keeps everything.
    pub fn effective_rules(self, config: &StoreConfig) -> RetentionRules {
        match self {
            StoreTechnique::CloneAllSyncWrite => RetentionRules::KEEP_EVERYTHING,
            StoreTechnique::DebouncedSnapshot | StoreTechnique::JournalWithSnapshot => config.rules,
        }
    }

    /// Opens (loads, or creates empty) the store whose state file is `path`.
    pub fn open(
        self,
        path: &Path,
        config: StoreConfig,
        now: Instant,
    ) -> Result<Box<dyn SessionStore>, StoreError> {
        Ok(match self {
            StoreTechnique::CloneAllSyncWrite => {
                Box::new(CloneAllSyncWriteStore::open(path, config)?)
            }
            StoreTechnique::DebouncedSnapshot => {
                Box::new(DebouncedSnapshotStore::open(path, config, now)?)
            }
            StoreTechnique::JournalWithSnapshot => {
                Box::new(JournalWithSnapshotStore::open(path, config)?)
            }
        })
    }
}
