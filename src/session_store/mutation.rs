//! The checks and the state change of each mutation (open a session, append an event, end a session), shared by
//! every technique: the variants differ in how they number events and persist them, never in what they accept. A
//! refused mutation leaves the state as it was, so one bad hook (an unknown session, an oversized event) gets its
//! error and the store goes on.

use super::error::StoreError;
use super::state::{HookEvent, Session, SessionStatus, StoreState};

/// Whether `session_id` may be opened: `Ok(true)` when it is new, `Ok(false)` when it is already active (opening
/// it again does nothing), an error when it has ended.
pub fn check_openable(state: &StoreState, session_id: &str) -> Result<bool, StoreError> {
    match state.sessions.get(session_id) {
        Some(session) if session.status.is_terminal() => Err(StoreError::SessionEnded {
            session: session_id.to_string(),
            status: session.status.as_str(),
        }),
        Some(_) => Ok(false),
        None => Ok(true),
    }
}

/// Opens `session_id` as active; returns whether it is new.
pub fn open_session(state: &mut StoreState, session_id: &str) -> Result<bool, StoreError> {
    let is_new = check_openable(state, session_id)?;
    if is_new {
        state
            .sessions
            .insert(session_id.to_string(), Session::default());
    }
    Ok(is_new)
}

/// The session an event may be appended to, after checking the session exists and is active and the event is
/// within `max_event_bytes`.
pub fn appendable_session<'a>(
    state: &'a mut StoreState,
    session_id: &str,
    hook: &str,
    body: &str,
    max_event_bytes: usize,
) -> Result<&'a mut Session, StoreError> {
    let session = endable_session(state, session_id)?;
    let bytes = hook.len() + body.len();
    if bytes > max_event_bytes {
        return Err(StoreError::EventTooLarge {
            session: session_id.to_string(),
            bytes,
            limit: max_event_bytes,
        });
    }
    Ok(session)
}

/// Appends an event numbered `seq` (which must be above the session's `last_seq`).
pub fn push_event(session: &mut Session, seq: u64, hook: &str, body: &str) {
    debug_assert!(seq > session.last_seq);
    session.last_seq = seq;
    session.events.push_back(HookEvent {
        seq,
        hook: hook.to_string(),
        body: body.to_string(),
    });
}

/// How a store numbers a session's next event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// The seed's way: scan the session's events for the highest number (O(events)).
    ByScan,
    /// The merged fix's way: the session's record of its last number (O(1)), kept through load, prune and append.
    ByRecord,
}

impl Numbering {
    /// The next event's number, and how many of the session's events were examined to find it.
    pub fn next_seq(self, session: &Session) -> (u64, u64) {
        match self {
            Numbering::ByScan => (
                session
                    .events
                    .iter()
                    .map(|event| event.seq)
                    .max()
                    .unwrap_or(session.last_seq)
                    + 1,
                session.events.len() as u64,
            ),
            Numbering::ByRecord => (session.last_seq + 1, 0),
        }
    }
}

/// The session `session_id`, after checking it exists and has not ended: what an append and an end both need.
pub fn endable_session<'a>(
    state: &'a mut StoreState,
    session_id: &str,
) -> Result<&'a mut Session, StoreError> {
    let session = state
        .sessions
        .get_mut(session_id)
        .ok_or_else(|| StoreError::UnknownSession {
            session: session_id.to_string(),
        })?;
    if session.status.is_terminal() {
        return Err(StoreError::SessionEnded {
            session: session_id.to_string(),
            status: session.status.as_str(),
        });
    }
    Ok(session)
}

/// Ends `session_id` with a terminal `status`; its events stay until the next startup prune.
pub fn end_session(
    state: &mut StoreState,
    session_id: &str,
    status: SessionStatus,
) -> Result<(), StoreError> {
    endable_session(state, session_id)?.status = status;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_events_leave_the_state_as_it_was() {
        let mut state = StoreState::default();
        open_session(&mut state, "s").unwrap();
        let before = state.clone();
        let unknown = appendable_session(&mut state, "nope", "Stop", "{}", 100).unwrap_err();
        assert_eq!(
            unknown.to_string(),
            "no session \"nope\": open it before sending its events"
        );
        let large = appendable_session(&mut state, "s", "Stop", &"x".repeat(200), 100).unwrap_err();
        assert_eq!(
            large.to_string(),
            "an event of 204 bytes for session \"s\" is over the limit of 100 bytes"
        );
        assert_eq!(state, before);
        end_session(&mut state, "s", SessionStatus::Completed).unwrap();
        let ended = appendable_session(&mut state, "s", "Stop", "{}", 100).unwrap_err();
        assert_eq!(
            ended.to_string(),
            "session \"s\" has ended (completed): it takes no more events"
        );
    }

    #[test]
    fn both_numberings_agree_and_only_the_scan_examines_events() {
        let mut state = StoreState::default();
        open_session(&mut state, "s").unwrap();
        let session = state.sessions.get_mut("s").unwrap();
        assert_eq!(Numbering::ByScan.next_seq(session), (1, 0));
        assert_eq!(Numbering::ByRecord.next_seq(session), (1, 0));
        for seq in 1..=5 {
            push_event(session, seq, "Stop", "{}");
        }
        session.events.pop_front();
        assert_eq!(Numbering::ByScan.next_seq(session), (6, 4));
        assert_eq!(Numbering::ByRecord.next_seq(session), (6, 0));
        session.events.clear();
        assert_eq!(Numbering::ByScan.next_seq(session), (6, 0));
        assert_eq!(Numbering::ByRecord.next_seq(session), (6, 0));
    }
}
