//! Seed-shaped states and hook events, deterministic from a seed: the scenario, the benchmark and the tests all
//! start from them. The seed's state held 8,614 events across 359 sessions in 22 MB, so about 24 events per
//! session and 2.5 KB per event; its hooks are tool calls whose bodies range from a short notification to a large
//! tool output. Bodies here are drawn log-uniformly between 200 B and 10 KB (mean about 2.5 KB), made of
//! [`crate::payload::filler_text`], which JSON has to escape in places as real payloads do.

use super::state::{HookEvent, Session, SessionStatus, StoreState};
use crate::payload::{Rng, filler_text};

/// The hook names a coding agent fires.
pub const HOOK_NAMES: [&str; 7] = [
    "PreToolUse",
    "PostToolUse",
    "UserPromptSubmit",
    "Notification",
    "Stop",
    "SubagentStop",
    "SessionStart",
];

/// The shape of a generated state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StateShape {
    pub n_events: usize,
    /// Mean events per session (the seed: 8,614 / 359, about 24).
    pub mean_events_per_session: usize,
    /// Share of sessions that have ended (completed, failed or closed).
    pub ended_fraction: f64,
    pub min_body_bytes: usize,
    pub max_body_bytes: usize,
}

impl StateShape {
    /// The seed's proportions at `n_events` events (8,614 for the seed's own 22 MB state).
    pub fn seed_like(n_events: usize) -> StateShape {
        StateShape {
            n_events,
            mean_events_per_session: 24,
            ended_fraction: 0.4,
            min_body_bytes: 200,
            max_body_bytes: 10_000,
        }
    }

    /// How many sessions the state has (the seed: 359 for 8,614 events).
    pub fn n_sessions(&self) -> usize {
        self.n_events
            .div_ceil(self.mean_events_per_session.max(1))
            .max(1)
    }
}

/// The id of the `n`th generated session.
pub fn session_id(n: usize) -> String {
    format!("session-{n:05}")
}

/// A body size drawn log-uniformly in `min..=max` bytes.
pub fn random_body_bytes(rng: &mut Rng, min: usize, max: usize) -> usize {
    let (low, high) = ((min.max(1)) as f64, (max.max(min).max(1)) as f64);
    let unit = rng.below(1 << 24) as f64 / (1u64 << 24) as f64;
    (low * (high / low).powf(unit)).round() as usize
}

/// A hook name drawn from [`HOOK_NAMES`].
pub fn random_hook_name(rng: &mut Rng) -> &'static str {
    HOOK_NAMES[rng.below(HOOK_NAMES.len() as u64) as usize]
}

/// A hook body of exactly `bytes` bytes: a small JSON object whose last field carries filler text.
pub fn hook_body(rng: &mut Rng, bytes: usize) -> String {
    const PREFIX: &str = "{\"tool\":\"bash\",\"output\":\"";
    const SUFFIX: &str = "\"}";
    let filler_bytes = bytes.saturating_sub(PREFIX.len() + SUFFIX.len());
    let filler = filler_text(rng, filler_bytes);
    // The body is text the store keeps as is; it does not need to be valid JSON itself.
    let mut body = String::with_capacity(PREFIX.len() + filler.len() + SUFFIX.len());
    body.push_str(PREFIX);
    body.push_str(&filler);
    body.push_str(SUFFIX);
    body
}

/// A state of the given shape: events spread over sessions at random, sequence numbers from 1 per session, a share
/// of sessions ended.
pub fn generate_state(rng: &mut Rng, shape: StateShape) -> StoreState {
    let n_sessions = shape.n_sessions();
    let mut sessions: Vec<Session> = (0..n_sessions).map(|_| Session::default()).collect();
    for _ in 0..shape.n_events {
        let session = &mut sessions[rng.below(n_sessions as u64) as usize];
        let seq = session.last_seq + 1;
        let bytes = random_body_bytes(rng, shape.min_body_bytes, shape.max_body_bytes);
        session.last_seq = seq;
        session.events.push_back(HookEvent {
            seq,
            hook: random_hook_name(rng).to_string(),
            body: hook_body(rng, bytes),
        });
    }
    let ended = [
        SessionStatus::Completed,
        SessionStatus::Failed,
        SessionStatus::Closed,
    ];
    let mut state = StoreState::default();
    for (n, mut session) in sessions.into_iter().enumerate() {
        if (rng.below(1_000_000) as f64) < shape.ended_fraction * 1_000_000.0 {
            session.status = ended[rng.below(3) as usize];
        }
        state.sessions.insert(session_id(n), session);
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_shape_gives_the_seeds_session_count_and_size() {
        let shape = StateShape::seed_like(8_614);
        assert_eq!(shape.n_sessions(), 359);
        let state = generate_state(&mut Rng::new(1), StateShape::seed_like(2_000));
        assert_eq!(state.n_events(), 2_000);
        let mean = state.content_bytes() as f64 / 2_000.0;
        assert!((2_000.0..3_200.0).contains(&mean), "mean event {mean} B");
    }

    #[test]
    fn bodies_have_the_size_asked_for() {
        let mut rng = Rng::new(5);
        for bytes in [30, 200, 9_999] {
            assert_eq!(hook_body(&mut rng, bytes).len(), bytes);
        }
    }
}
