//! The state every variant of the store holds in memory and writes to disk: sessions, each with its status, the
//! last sequence number it handed out and its retained events. The seed's store held 8,614 events across 359
//! sessions, 22 MB once serialised; here the same shape is kept in a `BTreeMap` so that a state serialises in one
//! order whatever the technique, and the variants' files can be compared byte for byte.
//!
//! The retention rules of the merged fix live here too, as functions of the state ([`cap_events`],
//! [`prune_ended_sessions`]), so that the fix, the best version and the proptest's reference view apply the very
//! same rules.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The version of the state file's layout this code reads and writes.
pub const SCHEMA_VERSION: u64 = 1;

/// Where a session stands. The last three are terminal: the session takes no more events, and the merged fix drops
/// its events at the next startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    #[default]
    Active,
    Completed,
    Failed,
    Closed,
}

impl SessionStatus {
    /// Whether the session has ended (completed, failed or closed).
    pub fn is_terminal(self) -> bool {
        !matches!(self, SessionStatus::Active)
    }

    /// The status as the wire and the file spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Completed => "completed",
            SessionStatus::Failed => "failed",
            SessionStatus::Closed => "closed",
        }
    }
}

/// One hook event as stored: the sequence number the store gave it, the hook's name and its body (the hook's
/// JSON payload, kept as text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookEvent {
    pub seq: u64,
    pub hook: String,
    pub body: String,
}

impl HookEvent {
    /// The bytes the event's content takes (hook name and body), the unit of write amplification.
    pub fn content_bytes(&self) -> u64 {
        (self.hook.len() + self.body.len()) as u64
    }
}

/// One session's record, without its id (the map's key holds it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    pub status: SessionStatus,
    /// The highest sequence number ever handed out in this session, kept when its events are pruned, so that a
    /// sequence number is never reused, across reloads too. 0 before the first event.
    pub last_seq: u64,
    /// Retained events, oldest first, sequence numbers strictly increasing.
    pub events: VecDeque<HookEvent>,
}

/// The whole state of a store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreState {
    /// Bumped by each compaction of the journal (best version); 0 for the snapshot-only variants.
    pub generation: u64,
    pub sessions: BTreeMap<String, Session>,
}

impl StoreState {
    /// Events held across all sessions.
    pub fn n_events(&self) -> usize {
        self.sessions
            .values()
            .map(|session| session.events.len())
            .sum()
    }

    /// The bytes of content (hook names and bodies) held across all sessions.
    pub fn content_bytes(&self) -> u64 {
        self.sessions
            .values()
            .flat_map(|session| session.events.iter())
            .map(HookEvent::content_bytes)
            .sum()
    }
}

/// The rules that decide which events a store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionRules {
    /// At most this many events per session, the oldest dropped first; `None` keeps every event (the seed's bug).
    pub max_events_per_session: Option<usize>,
    /// Whether loading drops the events of ended sessions.
    pub prune_ended_sessions_at_load: bool,
}

impl RetentionRules {
    /// The seed's faulty store: everything kept forever.
    pub const KEEP_EVERYTHING: RetentionRules = RetentionRules {
        max_events_per_session: None,
        prune_ended_sessions_at_load: false,
    };

    /// The merged fix's rules with its default cap of 1000 events per session.
    pub const MERGED_FIX_DEFAULT: RetentionRules = RetentionRules {
        max_events_per_session: Some(1000),
        prune_ended_sessions_at_load: true,
    };
}

/// Drops the oldest events of `session` beyond `max_events`; returns how many were dropped.
pub fn cap_events(session: &mut Session, max_events: usize) -> usize {
    let excess = session.events.len().saturating_sub(max_events);
    session.events.drain(..excess);
    excess
}

/// Drops every event of every ended session (their records and last sequence numbers stay); returns how many
/// events were dropped.
pub fn prune_ended_sessions(state: &mut StoreState) -> usize {
    let mut dropped = 0;
    for session in state.sessions.values_mut() {
        if session.status.is_terminal() && !session.events.is_empty() {
            dropped += session.events.len();
            session.events = VecDeque::new();
        }
    }
    dropped
}

/// Applies `rules` as a load would: the startup prune, then the cap. Returns how many events were dropped.
pub fn apply_rules_at_load(state: &mut StoreState, rules: RetentionRules) -> usize {
    let mut dropped = 0;
    if rules.prune_ended_sessions_at_load {
        dropped += prune_ended_sessions(state);
    }
    if let Some(max_events) = rules.max_events_per_session {
        for session in state.sessions.values_mut() {
            dropped += cap_events(session, max_events);
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session_with(status: SessionStatus, seqs: &[u64]) -> Session {
        Session {
            status,
            last_seq: seqs.last().copied().unwrap_or(0),
            events: seqs
                .iter()
                .map(|&seq| HookEvent {
                    seq,
                    hook: "PostToolUse".into(),
                    body: format!("{{\"n\":{seq}}}"),
                })
                .collect(),
        }
    }

    #[test]
    fn cap_drops_the_oldest_events_first() {
        let mut session = session_with(SessionStatus::Active, &[1, 2, 3, 4, 5]);
        assert_eq!(cap_events(&mut session, 3), 2);
        let kept: Vec<u64> = session.events.iter().map(|event| event.seq).collect();
        assert_eq!(kept, [3, 4, 5]);
        assert_eq!(session.last_seq, 5);
    }

    #[test]
    fn prune_empties_ended_sessions_and_keeps_their_last_seq() {
        let mut state = StoreState::default();
        state
            .sessions
            .insert("live".into(), session_with(SessionStatus::Active, &[1, 2]));
        state.sessions.insert(
            "done".into(),
            session_with(SessionStatus::Completed, &[1, 2, 3]),
        );
        state
            .sessions
            .insert("broken".into(), session_with(SessionStatus::Failed, &[7]));
        assert_eq!(prune_ended_sessions(&mut state), 4);
        assert_eq!(state.sessions["live"].events.len(), 2);
        assert!(state.sessions["done"].events.is_empty());
        assert_eq!(state.sessions["done"].last_seq, 3);
        assert_eq!(state.sessions["broken"].last_seq, 7);
    }
}
