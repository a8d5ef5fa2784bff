//! Counting what a restarted store found against what the hook sender was told was accepted. Per session the
//! expected count is the starting state's events plus the acknowledged ones, under the technique's documented
//! retention rules (the cap keeps the newest; an ended session's events go at load); the events a crash loses are
//! always a session's newest, so counts per session tell exactly which acknowledged events are missing and when,
//! on the storm's clock (the store's clock too), they were sent.

use super::driver::{SeededState, StormFigures};
use memproof::session_store::{RetentionRules, StoreState};
use std::collections::{BTreeMap, BTreeSet};

/// The restart's account of the storm.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossAccount {
    /// Events the restarted store should hold if nothing acknowledged was lost.
    pub expected_events: u64,
    pub found_events: u64,
    /// Acknowledged (or starting) events missing after the restart.
    pub lost_events: u64,
    /// Events found beyond the acknowledged ones (written, killed before the acknowledgement went out).
    pub found_unacknowledged_events: u64,
    /// Acknowledged session ends missing after the restart.
    pub lost_ends: u64,
    /// Age at the kill of the oldest lost acknowledged event, in ms of the storm's clock: how far back the loss
    /// reaches. 0 when nothing was lost; `None` without a kill.
    pub loss_reach_ms: Option<f64>,
}

/// Accounts for the restarted `state` against the starting state and the storm.
pub fn account_for_restart(
    seeded: &SeededState,
    storm: &StormFigures,
    restarted: &StoreState,
    rules: RetentionRules,
) -> LossAccount {
    let mut initial: BTreeMap<&str, u64> = BTreeMap::new();
    for session in &seeded.sessions {
        initial.insert(&session.id, session.n_events);
    }
    let mut ids: BTreeSet<&str> = initial.keys().copied().collect();
    ids.extend(storm.acked_per_session.keys().map(String::as_str));
    ids.extend(restarted.sessions.keys().map(String::as_str));
    let acked_ends: BTreeSet<&str> = storm.acked_ends.iter().map(String::as_str).collect();
    let mut account = LossAccount {
        loss_reach_ms: storm.kill_at_us.map(|_| 0.0),
        ..LossAccount::default()
    };
    let mut oldest_lost_at_us: Option<u64> = None;
    for id in ids {
        let session = restarted.sessions.get(id);
        let ended_now = session.is_some_and(|s| s.status.is_terminal());
        if acked_ends.contains(id) && !ended_now {
            account.lost_ends += 1;
        }
        let acked_here = storm.acked_per_session.get(id).copied().unwrap_or(0);
        let acknowledged = initial.get(id).copied().unwrap_or(0) + acked_here;
        let expected = if rules.prune_ended_sessions_at_load && ended_now {
            0
        } else {
            rules
                .max_events_per_session
                .map_or(acknowledged, |cap| acknowledged.min(cap as u64))
        };
        let found = session.map_or(0, |s| s.events.len() as u64);
        let lost = expected.saturating_sub(found);
        account.expected_events += expected;
        account.found_events += found;
        account.lost_events += lost;
        account.found_unacknowledged_events += found.saturating_sub(expected);
        if lost > 0 {
            let acks = storm
                .ack_at_us_per_session
                .get(id)
                .map_or(&[][..], Vec::as_slice);
            // The lost ones are the newest; if more were lost than the storm acknowledged here, the starting
            // state's events went too, and the loss reaches back before the storm.
            let oldest = if lost as usize <= acks.len() {
                acks[acks.len() - lost as usize]
            } else {
                0
            };
            oldest_lost_at_us = Some(oldest_lost_at_us.map_or(oldest, |o| o.min(oldest)));
        }
    }
    if let (Some(kill_at_us), Some(oldest)) = (storm.kill_at_us, oldest_lost_at_us) {
        account.loss_reach_ms = Some(kill_at_us.saturating_sub(oldest) as f64 / 1e3);
    }
    account
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook_storm::driver::SeededSession;
    use memproof::session_store::{HookEvent, Session, SessionStatus};

    fn session(status: SessionStatus, n: u64) -> Session {
        Session {
            status,
            last_seq: n,
            events: (1..=n)
                .map(|seq| HookEvent {
                    seq,
                    hook: "Stop".into(),
                    body: String::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn lost_events_are_the_newest_and_the_reach_is_their_age_at_the_kill() {
        let seeded = SeededState {
            file_bytes: 0,
            n_events: 3,
            sessions: vec![SeededSession {
                id: "a".into(),
                n_events: 3,
                ended: false,
            }],
        };
        let storm = StormFigures {
            acked_per_session: [("a".to_string(), 4), ("b".to_string(), 2)].into(),
            ack_at_us_per_session: [
                ("a".to_string(), vec![10_000, 20_000, 30_000, 40_000]),
                ("b".to_string(), vec![15_000, 25_000]),
            ]
            .into(),
            acked_ends: vec!["b".into()],
            kill_at_us: Some(50_000),
            ..StormFigures::default()
        };
        let mut restarted = StoreState::default();
        restarted
            .sessions
            .insert("a".into(), session(SessionStatus::Active, 5));
        restarted
            .sessions
            .insert("b".into(), session(SessionStatus::Active, 2));
        let account = account_for_restart(
            &seeded,
            &storm,
            &restarted,
            RetentionRules::MERGED_FIX_DEFAULT,
        );
        assert_eq!(account.expected_events, 9);
        assert_eq!(account.found_events, 7);
        assert_eq!(account.lost_events, 2);
        assert_eq!(account.lost_ends, 1);
        // a's 6th and 7th events are lost; the 6th was sent at 30 ms, 20 ms before the kill.
        assert_eq!(account.loss_reach_ms, Some(20.0));
    }
}
