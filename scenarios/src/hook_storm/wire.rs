//! The hook-storm wire: newline-delimited JSON over a Unix domain socket. The sender writes one message per line;
//! the store answers each with one line, after the store call has returned, so an acknowledged event is one the
//! store has accepted (how durable it is then depends on the technique).

use serde::{Deserialize, Serialize};

/// A message from the hook sender.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HookMessage {
    /// A session starts.
    Open { session: String },
    /// A hook fired in a session.
    Event {
        session: String,
        hook: String,
        body: String,
    },
    /// A session ended (`completed`, `failed` or `closed`).
    End { session: String, status: String },
    /// The storm is over: flush and stop (graceful shutdown).
    Shutdown,
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
