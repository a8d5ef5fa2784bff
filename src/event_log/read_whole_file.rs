//! The faulty path of seed C: read the whole log into memory, split it into lines, decode every line, collect the
//! events, and only then build the whole response.
//!
//! For a log of n bytes this holds the file (n), every decoded event (about n again, more for small events) and the
//! finished response body (about n) at once, per request. Seed C's logs grew to hundreds of MB, and each `GET` of a
//! long session's events pushed the backend pod past its 512 MiB limit: OOM-killed.

use super::error::EventLogError;
use super::line_reader::{Line, decode_event};
use super::wire::push_event_frame;
use serde_json::Value;
use std::io::Read;

/// Reads all of `source`, then decodes every non-blank line. The first bad line is the error.
pub fn parse_all(session: &str, mut source: impl Read) -> Result<Vec<Value>, EventLogError> {
    let mut whole_file = Vec::new();
    source
        .read_to_end(&mut whole_file)
        .map_err(|error| EventLogError::UnreadableLog {
            session: session.to_string(),
            reason: error.to_string(),
        })?;
    let ends_with_newline = whole_file.last() == Some(&b'\n');
    let body = whole_file.strip_suffix(b"\n").unwrap_or(&whole_file);
    let n_lines = if whole_file.is_empty() {
        0
    } else {
        body.split(|&b| b == b'\n').count()
    };
    let mut events = Vec::new();
    for (index, bytes) in body.split(|&b| b == b'\n').take(n_lines).enumerate() {
        let line = Line {
            number: index as u64 + 1,
            bytes,
            ended_by_newline: ends_with_newline || index + 1 < n_lines,
        };
        if line.is_blank() {
            continue;
        }
        events.push(decode_event(session, &line)?);
    }
    Ok(events)
}

/// The whole event-stream body for collected events, built in one buffer.
pub fn whole_events_body(events: &[Value]) -> Vec<u8> {
    let mut body = Vec::new();
    for event in events {
        push_event_frame(event, &mut body);
    }
    body
}

/// The whole export body for collected events: the pretty-printed array, built in one buffer, as seed C's
/// `json.MarshalIndent` did.
pub fn whole_export_body(events: &[Value]) -> Vec<u8> {
    serde_json::to_vec_pretty(events).expect("serialising JSON values cannot fail")
}

/// Builds the export array from the collected events element by element; only used to check that
/// [`whole_export_body`] and the incremental writer agree.
#[cfg(test)]
fn incremental_export_body(events: &[Value]) -> Vec<u8> {
    let mut array = super::wire::IncrementalExportArray::new();
    let mut body = Vec::new();
    for event in events {
        array.push_element(event, &mut body);
    }
    array.finish(&mut body);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_are_skipped_and_line_numbers_count_them() {
        let log = b"{\"a\":1}\n\n   \n{\"b\":\n";
        let error = parse_all("s1", &log[..]).unwrap_err();
        assert_eq!(error.line_number(), Some(4));
        let events = parse_all("s1", &b"\n{\"a\":1}\n\n{\"b\":2}"[..]).unwrap();
        assert_eq!(events.len(), 2);
        assert!(parse_all("s1", &b""[..]).unwrap().is_empty());
    }

    #[test]
    fn an_incomplete_last_line_is_reported_as_such() {
        let error = parse_all("s1", &b"{\"a\":1}\n{\"b\":"[..]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("session s1, line 2: the last line is incomplete")
        );
    }

    #[test]
    fn whole_and_incremental_exports_agree() {
        let events = parse_all("s1", &b"{\"a\":[1,2]}\n{\"b\":{\"c\":\"d\"}}\n"[..]).unwrap();
        assert_eq!(whole_export_body(&events), incremental_export_body(&events));
    }
}
