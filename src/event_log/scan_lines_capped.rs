//! Seed C's merged fix: a buffered line scanner with a 1 MiB maximum line instead of reading the whole file, for
//! both the events and the export endpoint; but every decoded event is still collected in a list before the
//! response starts, and the export still pretty-prints the whole array in one buffer.
//!
//! It reproduces the fix's two faults as its reviewer found them: memory still grows with the log (the collected
//! events, plus the export body), and a line over the scanner's 1 MiB buffer ends the scan **silently** — Go's
//! `bufio.Scanner` returned `false` with `ErrTooLong`, nobody looked at the error, and the client got a short
//! history with a 200 status. This is the documented contract of this technique, tested as such; it is the bug the
//! streaming technique fixes.

use super::error::{EventLogError, LineProblem};
use super::line_reader::{LimitedLineReader, decode_event};
use serde_json::Value;
use std::io::{BufReader, Read};

/// The merged fix's maximum line: its scanner buffer of 1 MiB, which must also hold the newline.
pub const SCANNER_MAX_LINE_BYTES: usize = 1024 * 1024;
/// The scanner's starting buffer (Go's `bufio.Scanner` starts at 64 KiB and doubles up to the maximum).
pub const SCANNER_START_BUFFER_BYTES: usize = 64 * 1024;

/// What a capped scan collected, and whether it stopped early. The server never tells the client about the
/// stop (the seed's behaviour); tests and the scenario read `stopped_at_line`.
#[derive(Debug, Clone, PartialEq)]
pub struct CappedScan {
    pub events: Vec<Value>,
    /// The line that was over the cap, where the scan ended without an error.
    pub stopped_at_line: Option<u64>,
}

/// Scans lines with the 1 MiB cap, decoding and collecting every event; a bad line that fits under the cap is an
/// error, a line over the cap ends the scan quietly.
pub fn scan_lines_collect(
    session: &str,
    source: impl Read,
    max_line_bytes: usize,
) -> Result<CappedScan, EventLogError> {
    let buffered = BufReader::with_capacity(SCANNER_START_BUFFER_BYTES, source);
    // The newline must fit in the scanner's buffer too.
    let mut reader = LimitedLineReader::new(buffered, session, max_line_bytes.saturating_sub(1));
    let mut events = Vec::new();
    loop {
        match reader.next_line() {
            Ok(Some(line)) => {
                if !line.is_blank() {
                    events.push(decode_event(session, &line)?);
                }
            }
            Ok(None) => {
                return Ok(CappedScan {
                    events,
                    stopped_at_line: None,
                });
            }
            Err(EventLogError::Line {
                line,
                problem: LineProblem::LongerThanHardLimit { .. },
                ..
            }) => {
                return Ok(CappedScan {
                    events,
                    stopped_at_line: Some(line),
                });
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_over_the_cap_ends_the_scan_without_an_error() {
        let mut log = b"{\"a\":1}\n".to_vec();
        log.extend_from_slice(format!("{{\"big\":\"{}\"}}\n", "x".repeat(64)).as_bytes());
        log.extend_from_slice(b"{\"c\":3}\n");
        let scan = scan_lines_collect("s1", &log[..], 32).unwrap();
        assert_eq!(scan.events, vec![serde_json::json!({"a": 1})]);
        assert_eq!(scan.stopped_at_line, Some(2));
    }

    #[test]
    fn bad_json_under_the_cap_is_still_an_error() {
        let error = scan_lines_collect("s1", &b"{}\nnope\n"[..], 1024).unwrap_err();
        assert_eq!(error.line_number(), Some(2));
    }
}
