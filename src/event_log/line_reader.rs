//! Reading a JSONL log one line at a time with a hard limit on a line's length, so that memory is bounded by the
//! longest line the reader accepts and never by the file.
//!
//! Seed C's merged fix used Go's `bufio.Scanner` with a 1 MiB buffer: a longer line ended the scan, the error was
//! never looked at, and the client got a short history. This reader never ends quietly: every line it cannot give
//! (longer than the limit, invalid UTF-8, an incomplete last line) is an [`EventLogError`] that names the session
//! and the line number. The limit is a hard one configured by the caller (64 MiB by default in the server), far
//! above the AG-UI events the seed saw, and hitting it is an error, never a truncation.

use super::error::{EventLogError, LineProblem};
use std::io::BufRead;

/// One line of a log: its 1-based number and its bytes without the `\n` (a `\r` before it is kept; JSON treats it
/// as whitespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub number: u64,
    pub bytes: &'a [u8],
    /// `false` for a last line that the file ends without a newline.
    pub ended_by_newline: bool,
}

impl Line<'_> {
    /// A line of only whitespace carries no event; all readers skip it (documented and tested behaviour).
    pub fn is_blank(&self) -> bool {
        self.bytes.iter().all(u8::is_ascii_whitespace)
    }
}

/// Reads lines from `source` into a buffer of its own that grows to the longest line seen, at most `hard_limit`.
pub struct LimitedLineReader<R> {
    source: R,
    session: String,
    hard_limit: usize,
    buffer: Vec<u8>,
    lines_read: u64,
}

impl<R: BufRead> LimitedLineReader<R> {
    /// `session` names the log in errors; a line of more than `hard_limit` bytes (without its newline) is an error.
    pub fn new(source: R, session: &str, hard_limit: usize) -> LimitedLineReader<R> {
        LimitedLineReader {
            source,
            session: session.to_string(),
            hard_limit,
            buffer: Vec::new(),
            lines_read: 0,
        }
    }

    /// The next line, `None` at the end of the file. After an error the reader must not be used again.
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>, EventLogError> {
        self.buffer.clear();
        let number = self.lines_read + 1;
        let mut ended_by_newline = false;
        loop {
            let available = match self.source.fill_buf() {
                Ok(available) => available,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(EventLogError::line(
                        &self.session,
                        number,
                        LineProblem::Unreadable(error.to_string()),
                    ));
                }
            };
            if available.is_empty() {
                break;
            }
            let (taken, found_newline) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (at, true),
                None => (available.len(), false),
            };
            if self.buffer.len() + taken > self.hard_limit {
                return Err(EventLogError::line(
                    &self.session,
                    number,
                    LineProblem::LongerThanHardLimit {
                        hard_limit: self.hard_limit as u64,
                    },
                ));
            }
            self.buffer.extend_from_slice(&available[..taken]);
            self.source.consume(taken + usize::from(found_newline));
            if found_newline {
                ended_by_newline = true;
                break;
            }
        }
        if !ended_by_newline && self.buffer.is_empty() {
            return Ok(None);
        }
        self.lines_read = number;
        Ok(Some(Line {
            number,
            bytes: &self.buffer,
            ended_by_newline,
        }))
    }

    /// How many lines have been read so far.
    pub fn lines_read(&self) -> u64 {
        self.lines_read
    }
}

/// Decodes one line into an event: UTF-8 first (so the message can say where the bad byte is), then JSON. A last
/// line without a newline that does not parse is reported as incomplete: the log may have been cut, or still be
/// being written.
pub fn decode_event(session: &str, line: &Line<'_>) -> Result<serde_json::Value, EventLogError> {
    let text = std::str::from_utf8(line.bytes).map_err(|error| {
        EventLogError::line(
            session,
            line.number,
            LineProblem::InvalidUtf8 {
                byte_offset: error.valid_up_to() as u64,
            },
        )
    })?;
    serde_json::from_str(text).map_err(|error| {
        let problem = if line.ended_by_newline {
            LineProblem::NotJson(error.to_string())
        } else {
            LineProblem::IncompleteLastLine(error.to_string())
        };
        EventLogError::line(session, line.number, problem)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &[u8], hard_limit: usize) -> Result<Vec<(u64, Vec<u8>, bool)>, String> {
        let mut reader = LimitedLineReader::new(text, "s1", hard_limit);
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().map_err(|error| error.to_string())? {
            lines.push((line.number, line.bytes.to_vec(), line.ended_by_newline));
        }
        Ok(lines)
    }

    #[test]
    fn lines_are_numbered_from_one_and_a_last_line_without_newline_is_kept() {
        let lines = read_all(b"{\"a\":1}\n\n{\"b\":2}", 100).unwrap();
        assert_eq!(
            lines,
            vec![
                (1, b"{\"a\":1}".to_vec(), true),
                (2, b"".to_vec(), true),
                (3, b"{\"b\":2}".to_vec(), false),
            ]
        );
    }

    #[test]
    fn a_line_over_the_hard_limit_is_an_error_naming_session_and_line() {
        let error = read_all(b"{}\n0123456789\n", 9).unwrap_err();
        assert_eq!(
            error,
            "session s1, line 2: the line is longer than the hard limit of 9 bytes"
        );
        // Exactly at the limit is fine.
        assert_eq!(read_all(b"{}\n012345678\n", 9).unwrap().len(), 2);
    }

    #[test]
    fn lines_longer_than_the_source_buffer_are_joined() {
        let long = vec![b'x'; 100_000];
        let mut text = long.clone();
        text.push(b'\n');
        let reader = std::io::BufReader::with_capacity(16, &text[..]);
        let mut reader = LimitedLineReader::new(reader, "s1", 1 << 20);
        let line = reader.next_line().unwrap().unwrap();
        assert_eq!(line.bytes, &long[..]);
        assert!(reader.next_line().unwrap().is_none());
    }

    #[test]
    fn decode_names_invalid_utf8_bad_json_and_an_incomplete_last_line() {
        let check = |bytes: &[u8], ended_by_newline: bool| {
            let line = Line {
                number: 4,
                bytes,
                ended_by_newline,
            };
            decode_event("s1", &line).unwrap_err().to_string()
        };
        assert_eq!(
            check(b"{\"a\":\"\xff\"}", true),
            "session s1, line 4: invalid UTF-8 at byte 6 of the line"
        );
        assert_eq!(
            check(b"{\"a\":", true),
            "session s1, line 4: not valid JSON: EOF while parsing a value at line 1 column 5"
        );
        assert_eq!(
            check(b"{\"a\":", false),
            "session s1, line 4: the last line is incomplete (no newline, and not valid JSON: EOF while parsing a value at line 1 column 5); the log was cut or is still being written"
        );
    }
}
