//! The bytes a client receives, shared by every technique so that they all send the same bytes for the same log.
//!
//! - **events** (`GET /sessions/{id}/events`, `text/event-stream`): each event as one server-sent event
//!   `data: <compact JSON>\n\n`, in the log's order. The JSON is the event decoded and encoded again, as seed C's Go
//!   backend did (`map[string]interface{}` re-marshalled): object keys come out sorted, whitespace goes.
//! - **export** (`GET /sessions/{id}/export`, `application/json`): the whole log as one JSON array, pretty-printed
//!   with two-space indentation as seed C's `json.MarshalIndent` export was: `[\n  {\n    "k": v\n  },\n  …\n]`,
//!   `[]` when the log has no events.
//!
//! **When a line cannot be served after the body has started** (the streaming technique only; the collecting ones
//! find every error before they answer, and answer with an HTTP error status instead):
//! - events end with a server-sent event named `error`: `event: error\ndata: {"error":"session s, line 7: …",
//!   "line":7}\n\n`, and nothing after it;
//! - export ends, after the elements sent so far, with a newline and the line `!error {"error":…,"line":7}`, and
//!   the array is left unclosed: the body is deliberately not valid JSON, so no parser can take the short array
//!   for the whole log. [`EXPORT_ERROR_MARKER`] starts that line.

use super::error::EventLogError;
use serde_json::Value;

/// The content type of the events endpoint.
pub const EVENTS_CONTENT_TYPE: &str = "text/event-stream";
/// The content type of the export endpoint.
pub const EXPORT_CONTENT_TYPE: &str = "application/json";
/// Starts the line that ends an export which failed part-way (`\n!error {json}\n`).
pub const EXPORT_ERROR_MARKER: &str = "!error ";
/// Starts the server-sent event that ends an event stream which failed part-way.
pub const EVENTS_ERROR_PREFIX: &str = "event: error\ndata: ";

/// Appends one event as a server-sent event.
pub fn push_event_frame(event: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut *out, event).expect("writing JSON to a Vec cannot fail");
    out.extend_from_slice(b"\n\n");
}

/// Appends the error event that ends a failed event stream.
pub fn push_events_error(error: &EventLogError, out: &mut Vec<u8>) {
    out.extend_from_slice(EVENTS_ERROR_PREFIX.as_bytes());
    serde_json::to_writer(&mut *out, &error.to_json()).expect("writing JSON to a Vec cannot fail");
    out.extend_from_slice(b"\n\n");
}

/// Writes an export array one element at a time, byte for byte what `serde_json::to_vec_pretty` gives for the
/// whole array.
#[derive(Debug, Default)]
pub struct IncrementalExportArray {
    elements_written: u64,
    scratch: Vec<u8>,
}

impl IncrementalExportArray {
    pub fn new() -> IncrementalExportArray {
        IncrementalExportArray::default()
    }

    /// Appends one element: pretty-printed, every line indented by two more spaces (a pretty-printed value has raw
    /// newlines only between tokens; newlines inside strings are escaped).
    pub fn push_element(&mut self, event: &Value, out: &mut Vec<u8>) {
        out.extend_from_slice(if self.elements_written == 0 {
            b"[\n  "
        } else {
            b",\n  "
        });
        self.scratch.clear();
        serde_json::to_writer_pretty(&mut self.scratch, event)
            .expect("writing JSON to a Vec cannot fail");
        for (index, piece) in self.scratch.split(|&b| b == b'\n').enumerate() {
            if index > 0 {
                out.extend_from_slice(b"\n  ");
            }
            out.extend_from_slice(piece);
        }
        self.elements_written += 1;
        // A very large element must not keep its scratch buffer for the rest of the export.
        if self.scratch.capacity() > 1 << 20 {
            self.scratch = Vec::new();
        }
    }

    /// Closes the array.
    pub fn finish(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if self.elements_written == 0 {
            b"[]"
        } else {
            b"\n]"
        });
    }

    /// Ends a failed export: the explicit error line, the array left unclosed.
    pub fn fail(&self, error: &EventLogError, out: &mut Vec<u8>) {
        if self.elements_written == 0 {
            out.push(b'[');
        }
        out.push(b'\n');
        out.extend_from_slice(EXPORT_ERROR_MARKER.as_bytes());
        serde_json::to_writer(&mut *out, &error.to_json())
            .expect("writing JSON to a Vec cannot fail");
        out.push(b'\n');
    }
}

/// Finds the explicit error at the end of a failed body, if there is one: the error event of an event stream or
/// the `!error` line of an export. Clients and tests use it to tell a reported failure from a silent short body.
pub fn find_reported_error(body: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(body).ok()?;
    let tail = if let Some(at) = text.rfind(EVENTS_ERROR_PREFIX) {
        &text[at + EVENTS_ERROR_PREFIX.len()..]
    } else {
        let at = text.rfind(&format!("\n{EXPORT_ERROR_MARKER}"))?;
        &text[at + 1 + EXPORT_ERROR_MARKER.len()..]
    };
    serde_json::from_str(tail.trim_end()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn incremental(events: &[Value]) -> Vec<u8> {
        let mut array = IncrementalExportArray::new();
        let mut out = Vec::new();
        for event in events {
            array.push_element(event, &mut out);
        }
        array.finish(&mut out);
        out
    }

    #[test]
    fn the_incremental_export_is_byte_for_byte_the_pretty_printed_array() {
        let cases = vec![
            vec![],
            vec![json!({})],
            vec![json!([])],
            vec![json!(1), json!("a\nb")],
            vec![
                json!({"type": "TEXT_MESSAGE_CONTENT", "delta": "line\none \"q\" 日本", "nested": {"a": [1, {"b": []}]}}),
                json!({"z": null, "a": [true, false, 1.5, -3]}),
            ],
        ];
        for events in cases {
            let whole = serde_json::to_vec_pretty(&events).unwrap();
            assert_eq!(
                String::from_utf8(incremental(&events)).unwrap(),
                String::from_utf8(whole).unwrap()
            );
        }
    }

    #[test]
    fn event_frames_are_compact_json_with_sorted_keys() {
        let mut out = Vec::new();
        push_event_frame(
            &json!({"type": "RUN_STARTED", "b": 1, "a": "x y"}),
            &mut out,
        );
        assert_eq!(
            out,
            b"data: {\"a\":\"x y\",\"b\":1,\"type\":\"RUN_STARTED\"}\n\n"
        );
    }

    #[test]
    fn failed_bodies_carry_an_error_a_client_finds() {
        let error = EventLogError::line(
            "s1",
            7,
            super::super::error::LineProblem::NotJson("x".into()),
        );
        let mut events = Vec::new();
        push_event_frame(&json!({"a": 1}), &mut events);
        push_events_error(&error, &mut events);
        assert_eq!(
            String::from_utf8(events.clone()).unwrap(),
            "data: {\"a\":1}\n\nevent: error\ndata: {\"error\":\"session s1, line 7: not valid JSON: x\",\"line\":7}\n\n"
        );
        assert_eq!(find_reported_error(&events).unwrap()["line"], 7);

        let mut array = IncrementalExportArray::new();
        let mut export = Vec::new();
        array.push_element(&json!({"a": 1}), &mut export);
        array.fail(&error, &mut export);
        assert_eq!(
            String::from_utf8(export.clone()).unwrap(),
            "[\n  {\n    \"a\": 1\n  }\n!error {\"error\":\"session s1, line 7: not valid JSON: x\",\"line\":7}\n"
        );
        assert!(serde_json::from_slice::<Value>(&export).is_err());
        assert_eq!(find_reported_error(&export).unwrap()["line"], 7);

        let mut complete = Vec::new();
        push_event_frame(&json!({"a": 1}), &mut complete);
        assert!(find_reported_error(&complete).is_none());
    }
}
