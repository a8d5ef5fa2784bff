//! Session logs that look like seed C's: AG-UI events (run start and finish, text message start, content deltas
//! and end, tool calls with their arguments and results, state snapshots), mostly small, a few large, written
//! straight to disk one line at a time so that generating a log of hundreds of MB holds one event in memory.
//!
//! Seeded through [`crate::payload::Rng`], so a scenario serves the same bytes on every run.

use crate::payload::{Rng, filler_text};
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::Path;

/// What log to write.
#[derive(Debug, Clone, PartialEq)]
pub struct LogShape {
    /// Stop once the log holds at least this many bytes.
    pub target_bytes: u64,
    /// Every `large_event_every`-th event is a state snapshot of about `large_event_bytes` (0: none).
    pub large_event_every: u64,
    pub large_event_bytes: u64,
    /// One event of about this many bytes, on a line longer than the merged fix's 1 MiB scanner (0: none)…
    pub overlong_event_bytes: u64,
    /// …placed once the log has reached this fraction of `target_bytes`.
    pub overlong_at_fraction: f64,
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LogFacts {
    pub events: u64,
    pub bytes: u64,
    pub longest_line_bytes: u64,
    /// The line number of the over-long event, if one was written.
    pub overlong_line: Option<u64>,
}

/// One AG-UI style event; `payload_bytes` sizes its text.
pub fn agui_event(rng: &mut Rng, index: u64, kind: AguiEventKind, payload_bytes: usize) -> Value {
    let thread_id = "thread-7f3a";
    let run_id = format!("run-{}", index / 500);
    let message_id = format!("msg-{}", index / 20);
    let timestamp = 1_741_780_000_000_u64 + index * 37;
    match kind {
        AguiEventKind::RunStarted => json!({
            "type": "RUN_STARTED", "threadId": thread_id, "runId": run_id, "timestamp": timestamp,
        }),
        AguiEventKind::TextMessageStart => json!({
            "type": "TEXT_MESSAGE_START", "messageId": message_id, "role": "assistant", "timestamp": timestamp,
        }),
        AguiEventKind::TextMessageContent => json!({
            "type": "TEXT_MESSAGE_CONTENT", "messageId": message_id,
            "delta": filler_text(rng, payload_bytes), "timestamp": timestamp,
        }),
        AguiEventKind::TextMessageEnd => json!({
            "type": "TEXT_MESSAGE_END", "messageId": message_id, "timestamp": timestamp,
        }),
        AguiEventKind::ToolCallArgs => json!({
            "type": "TOOL_CALL_ARGS", "toolCallId": format!("call-{index}"),
            "delta": filler_text(rng, payload_bytes), "timestamp": timestamp,
        }),
        AguiEventKind::ToolCallResult => json!({
            "type": "TOOL_CALL_RESULT", "toolCallId": format!("call-{index}"), "messageId": message_id,
            "content": filler_text(rng, payload_bytes), "role": "tool", "timestamp": timestamp,
        }),
        AguiEventKind::StateSnapshot => json!({
            "type": "STATE_SNAPSHOT", "timestamp": timestamp,
            "snapshot": {
                "runId": run_id,
                "step": index,
                "artifacts": [
                    {"name": "report.md", "content": filler_text(rng, payload_bytes / 2)},
                    {"name": "trace.log", "content": filler_text(rng, payload_bytes - payload_bytes / 2)},
                ],
            },
        }),
        AguiEventKind::RunFinished => json!({
            "type": "RUN_FINISHED", "threadId": thread_id, "runId": run_id, "timestamp": timestamp,
        }),
    }
}

/// The AG-UI event types the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AguiEventKind {
    RunStarted,
    TextMessageStart,
    TextMessageContent,
    TextMessageEnd,
    ToolCallArgs,
    ToolCallResult,
    StateSnapshot,
    RunFinished,
}

/// The kind and payload size of the `index`-th ordinary event: mostly small content deltas, some tool traffic.
fn ordinary_event(rng: &mut Rng, index: u64) -> (AguiEventKind, usize) {
    if index.is_multiple_of(500) {
        return (AguiEventKind::RunStarted, 0);
    }
    if index % 500 == 499 {
        return (AguiEventKind::RunFinished, 0);
    }
    match rng.below(20) {
        0 => (AguiEventKind::TextMessageStart, 0),
        1 => (AguiEventKind::TextMessageEnd, 0),
        2..=4 => (AguiEventKind::ToolCallArgs, rng.between(50, 600) as usize),
        5 | 6 => (
            AguiEventKind::ToolCallResult,
            rng.between(1024, 8192) as usize,
        ),
        _ => (
            AguiEventKind::TextMessageContent,
            rng.between(20, 400) as usize,
        ),
    }
}

/// Writes a log of `shape` to `path`, one event per line.
pub fn write_session_log(path: &Path, shape: &LogShape) -> std::io::Result<LogFacts> {
    let mut rng = Rng::new(shape.seed);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut facts = LogFacts {
        events: 0,
        bytes: 0,
        longest_line_bytes: 0,
        overlong_line: None,
    };
    let overlong_after = (shape.target_bytes as f64 * shape.overlong_at_fraction) as u64;
    let mut line = Vec::new();
    while facts.bytes < shape.target_bytes {
        let index = facts.events;
        let (kind, payload_bytes) = if shape.overlong_event_bytes > 0
            && facts.overlong_line.is_none()
            && facts.bytes >= overlong_after
        {
            facts.overlong_line = Some(index + 1);
            (
                AguiEventKind::StateSnapshot,
                shape.overlong_event_bytes as usize,
            )
        } else if shape.large_event_every > 0
            && shape.large_event_bytes > 0
            && index % shape.large_event_every == shape.large_event_every - 1
        {
            (
                AguiEventKind::StateSnapshot,
                shape.large_event_bytes as usize,
            )
        } else {
            ordinary_event(&mut rng, index)
        };
        line.clear();
        serde_json::to_writer(&mut line, &agui_event(&mut rng, index, kind, payload_bytes))?;
        line.push(b'\n');
        out.write_all(&line)?;
        facts.events += 1;
        facts.bytes += line.len() as u64;
        facts.longest_line_bytes = facts.longest_line_bytes.max(line.len() as u64 - 1);
    }
    out.flush()?;
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_log_has_the_size_asked_for_and_its_overlong_line_where_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let shape = LogShape {
            target_bytes: 3 << 20,
            large_event_every: 200,
            large_event_bytes: 200_000,
            overlong_event_bytes: 1_200_000,
            overlong_at_fraction: 0.5,
            seed: 9,
        };
        let facts = write_session_log(&path, &shape).unwrap();
        let text = std::fs::read(&path).unwrap();
        assert_eq!(facts.bytes, text.len() as u64);
        assert!(facts.bytes >= shape.target_bytes);
        assert_eq!(
            text.iter().filter(|&&b| b == b'\n').count() as u64,
            facts.events
        );
        assert!(facts.longest_line_bytes > 1 << 20);
        let overlong = facts.overlong_line.unwrap() as usize;
        let line = text.split(|&b| b == b'\n').nth(overlong - 1).unwrap();
        assert_eq!(line.len() as u64, facts.longest_line_bytes);
        for line in text.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
            let event: Value = serde_json::from_slice(line).unwrap();
            assert!(event["type"].is_string());
        }
        // Same seed, same bytes.
        let again = dir.path().join("again.jsonl");
        write_session_log(&again, &shape).unwrap();
        assert_eq!(std::fs::read(&again).unwrap(), text);
    }
}
