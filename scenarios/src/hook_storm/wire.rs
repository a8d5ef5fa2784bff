//! The hook-storm wire: newline-delimited JSON over a Unix domain socket. The sender writes one message per line;
//! the store answers each with one line, after the store call has returned, so an acknowledged event is one the
//! store has accepted (how durable it is then depends on the technique).
//!
//! Every message carries its time on the storm's clock ([`HookMessage::at_us`]): when the sender's schedule sends it,
//! counted from the storm's start. The store reads its time from there, not from the machine's clock, so which
//! events share a debounce window is a function of the schedule, and the store's writes (their number, and what
//! each holds) are the same on a fast machine and a slow one. Read from the machine's clock, they were not: the
//! merged fix's one-session storm of 1,500 events allocated 36.9 MiB in every run on the machine that measured its
//! noise and 44.9 MiB on a slower CI machine, which took more windows to play it.

use serde::{Deserialize, Serialize};

/// A message from the hook sender, each with its time on the storm's clock: `at_us`, microseconds from the storm's
/// start at which the schedule sends it. (A field of each message rather than an envelope around it: serde's
/// `flatten` buffered every message once more, two allocations per event in the store's measured figures.)
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HookMessage {
    /// A session starts.
    Open { at_us: u64, session: String },
    /// A hook fired in a session.
    Event {
        at_us: u64,
        session: String,
        hook: String,
        body: String,
    },
    /// A session ended (`completed`, `failed` or `closed`).
    End {
        at_us: u64,
        session: String,
        status: String,
    },
    /// The storm is over: flush and stop (graceful shutdown).
    Shutdown { at_us: u64 },
}

impl HookMessage {
    /// The message's time on the storm's clock.
    pub fn at_us(&self) -> u64 {
        match self {
            HookMessage::Open { at_us, .. }
            | HookMessage::Event { at_us, .. }
            | HookMessage::End { at_us, .. }
            | HookMessage::Shutdown { at_us } => *at_us,
        }
    }
}

/// The store's answer to one message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookAck {
    pub ok: bool,
    /// The event's sequence number, for an accepted event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Why the message was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_carries_its_time_on_the_storm_clock() {
        let message = HookMessage::End {
            at_us: 53_333,
            session: "s-1".into(),
            status: "completed".into(),
        };
        let text = serde_json::to_string(&message).unwrap();
        assert_eq!(
            text,
            r#"{"type":"end","at_us":53333,"session":"s-1","status":"completed"}"#
        );
        let back: HookMessage = serde_json::from_str(&text).unwrap();
        assert_eq!(back.at_us(), 53_333);
    }

    #[test]
    fn a_message_without_its_time_is_refused() {
        let error = serde_json::from_str::<HookMessage>(r#"{"type":"shutdown"}"#).unwrap_err();
        assert!(error.to_string().contains("at_us"), "{error}");
    }
}
