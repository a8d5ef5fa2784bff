//! What a response should be, computed from the log on disk one event at a time, and a verifier that checks a
//! body against it byte for byte as the body arrives.
//!
//! The load driver checks every response this way without holding either the response or the expected bytes
//! whole: memory is bounded by the largest event. A body is [`ResponseCheck::Verified`] only when every byte
//! matches and nothing is missing; a body that stops early without an error is [`ResponseCheck::Short`] (what
//! seed C's merged fix sends for a log with a line over 1 MiB); a body that ends with the streaming technique's
//! explicit error is [`ResponseCheck::ReportedError`].

use super::error::EventLogError;
use super::line_reader::{LimitedLineReader, decode_event};
use super::stream_to_body::StreamedBody;
use super::wire::{IncrementalExportArray, find_reported_error, push_event_frame};
use std::io::{BufReader, Read};

/// The expected body of one endpoint for one log, produced one event at a time.
pub struct ExpectedBody<R> {
    session: String,
    reader: LimitedLineReader<BufReader<R>>,
    shape: StreamedBody,
    array: IncrementalExportArray,
    finished: bool,
}

impl ExpectedBody<std::fs::File> {
    /// The expected body for the log at `path`.
    pub fn open(
        path: &std::path::Path,
        session: &str,
        shape: StreamedBody,
    ) -> std::io::Result<ExpectedBody<std::fs::File>> {
        Ok(ExpectedBody::new(
            std::fs::File::open(path)?,
            session,
            shape,
        ))
    }
}

impl<R: Read> ExpectedBody<R> {
    /// The expected body for the log read from `source`; lines of any length are accepted.
    pub fn new(source: R, session: &str, shape: StreamedBody) -> ExpectedBody<R> {
        ExpectedBody {
            session: session.to_string(),
            reader: LimitedLineReader::new(BufReader::new(source), session, usize::MAX),
            shape,
            array: IncrementalExportArray::new(),
            finished: false,
        }
    }

    /// Appends the next event's bytes (or the export's closing bracket) to `out`; `Ok(false)` when the body is
    /// complete. A log that is not well-formed is an error: there is no single expected body for it.
    pub fn next_piece(&mut self, out: &mut Vec<u8>) -> Result<bool, EventLogError> {
        if self.finished {
            return Ok(false);
        }
        loop {
            match self.reader.next_line()? {
                Some(line) if line.is_blank() => continue,
                Some(line) => {
                    let event = decode_event(&self.session, &line)?;
                    match self.shape {
                        StreamedBody::Events => push_event_frame(&event, out),
                        StreamedBody::Export => self.array.push_element(&event, out),
                    }
                    return Ok(true);
                }
                None => {
                    self.finished = true;
                    if self.shape == StreamedBody::Export {
                        self.array.finish(out);
                        return Ok(true);
                    }
                    return Ok(false);
                }
            }
        }
    }
}

/// The judgement of one response body.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseCheck {
    /// Every byte as expected, nothing missing.
    Verified { bytes: u64 },
    /// A prefix of the expected body, then the end, with no error: a silently short history.
    Short { matched_bytes: u64 },
    /// A prefix, then the explicit error of [`super::wire`].
    ReportedError {
        matched_bytes: u64,
        error: serde_json::Value,
    },
    /// Bytes that differ from the expected ones (or go on past its end), at this offset.
    Wrong { first_wrong_byte: u64 },
}

/// How much of a body after its first wrong byte is kept, to look for an explicit error there.
const KEPT_AFTER_DIVERGENCE_BYTES: usize = 64 * 1024;

/// Checks a body against an [`ExpectedBody`] as its chunks arrive.
pub struct BodyVerifier<R> {
    expected: ExpectedBody<R>,
    pending: Vec<u8>,
    pending_at: usize,
    matched_bytes: u64,
    diverged_at: Option<u64>,
    after_divergence: Vec<u8>,
}

impl<R: Read> BodyVerifier<R> {
    pub fn new(expected: ExpectedBody<R>) -> BodyVerifier<R> {
        BodyVerifier {
            expected,
            pending: Vec::new(),
            pending_at: 0,
            matched_bytes: 0,
            diverged_at: None,
            after_divergence: Vec::new(),
        }
    }

    /// Compares the next chunk of the body.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), EventLogError> {
        while !chunk.is_empty() {
            if self.diverged_at.is_some() {
                let room = KEPT_AFTER_DIVERGENCE_BYTES.saturating_sub(self.after_divergence.len());
                self.after_divergence
                    .extend_from_slice(&chunk[..room.min(chunk.len())]);
                return Ok(());
            }
            if self.pending_at == self.pending.len() {
                self.pending.clear();
                self.pending_at = 0;
                if !self.expected.next_piece(&mut self.pending)? {
                    self.diverged_at = Some(self.matched_bytes);
                    continue;
                }
            }
            let expected = &self.pending[self.pending_at..];
            let n = expected.len().min(chunk.len());
            match expected[..n]
                .iter()
                .zip(&chunk[..n])
                .position(|(a, b)| a != b)
            {
                Some(at) => {
                    self.matched_bytes += at as u64;
                    self.diverged_at = Some(self.matched_bytes);
                    chunk = &chunk[at..];
                }
                None => {
                    self.matched_bytes += n as u64;
                    self.pending_at += n;
                    chunk = &chunk[n..];
                }
            }
        }
        Ok(())
    }

    /// The judgement once the body has ended.
    pub fn finish(mut self) -> Result<ResponseCheck, EventLogError> {
        if let Some(first_wrong_byte) = self.diverged_at {
            return Ok(match find_reported_error(&self.after_divergence) {
                Some(error) => ResponseCheck::ReportedError {
                    matched_bytes: self.matched_bytes,
                    error,
                },
                None => ResponseCheck::Wrong { first_wrong_byte },
            });
        }
        let mut rest = Vec::new();
        let nothing_missing =
            self.pending_at == self.pending.len() && !self.expected.next_piece(&mut rest)?;
        Ok(if nothing_missing {
            ResponseCheck::Verified {
                bytes: self.matched_bytes,
            }
        } else {
            ResponseCheck::Short {
                matched_bytes: self.matched_bytes,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(log: &[u8], shape: StreamedBody, body: &[u8], chunk: usize) -> ResponseCheck {
        let mut verifier = BodyVerifier::new(ExpectedBody::new(log, "s1", shape));
        for piece in body.chunks(chunk.max(1)) {
            verifier.feed(piece).unwrap();
        }
        verifier.finish().unwrap()
    }

    #[test]
    fn the_verifier_tells_complete_short_wrong_and_reported_bodies_apart() {
        let log = b"{\"a\":1}\n{\"b\":2}\n";
        let full = b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\n";
        for chunk in [1, 3, 100] {
            assert_eq!(
                check(log, StreamedBody::Events, full, chunk),
                ResponseCheck::Verified { bytes: 30 }
            );
            assert_eq!(
                check(log, StreamedBody::Events, &full[..15], chunk),
                ResponseCheck::Short { matched_bytes: 15 }
            );
            assert_eq!(
                check(log, StreamedBody::Events, b"data: {\"a\":2}", chunk),
                ResponseCheck::Wrong {
                    first_wrong_byte: 11
                }
            );
            let mut extra = full.to_vec();
            extra.extend_from_slice(b"x");
            assert_eq!(
                check(log, StreamedBody::Events, &extra, chunk),
                ResponseCheck::Wrong {
                    first_wrong_byte: 30
                }
            );
            let reported =
                b"data: {\"a\":1}\n\nevent: error\ndata: {\"error\":\"session s1, line 2: x\",\"line\":2}\n\n";
            match check(log, StreamedBody::Events, reported, chunk) {
                ResponseCheck::ReportedError {
                    matched_bytes,
                    error,
                } => {
                    assert_eq!(matched_bytes, 15);
                    assert_eq!(error["line"], 2);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_empty_export_is_expected_as_an_empty_array() {
        assert_eq!(
            check(b"\n", StreamedBody::Export, b"[]", 1),
            ResponseCheck::Verified { bytes: 2 }
        );
        assert_eq!(
            check(b"", StreamedBody::Export, b"", 1),
            ResponseCheck::Short { matched_bytes: 0 }
        );
    }
}
