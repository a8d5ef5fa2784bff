//! The version without seed C's O(n) terms: each event goes from the file to the response body as it is read.
//!
//! A blocking task reads the log line by line ([`LimitedLineReader`]), decodes each line, encodes it in the wire
//! form, and hands chunks of about [`CHUNK_BYTES`] to the response through a channel of [`CHANNEL_CHUNKS`] slots;
//! the body goes out chunked. Memory per request is bounded by the longest line (its bytes plus its decoded form)
//! and the fixed chunk buffers, whatever the log's size. The export writes its JSON array one element at a time.
//!
//! There is no per-line cap that drops data: a line longer than the configured hard limit, a line that is not
//! JSON, and an incomplete last line each end the body with an explicit error naming the session and the line
//! (the wire form is in [`super::wire`]). While the body streams, the session's cache entry is touched, so a long
//! stream is not evicted as stale under it.

use super::error::EventLogError;
use super::line_reader::{LimitedLineReader, decode_event};
use super::session_cache::StreamGuard;
use super::wire::{IncrementalExportArray, push_event_frame, push_events_error};
use bytes::Bytes;
use std::io::{BufReader, Read};

/// A chunk is handed to the response once it holds this many bytes (or holds one event larger than that).
pub const CHUNK_BYTES: usize = 64 * 1024;
/// How many chunks may wait between the reading task and the socket.
pub const CHANNEL_CHUNKS: usize = 2;
/// The read buffer over the file.
pub const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Which body to stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamedBody {
    /// Server-sent events, one per log event.
    Events,
    /// The pretty-printed JSON array.
    Export,
}

/// Receives the chunks of a streamed body; `false` means the client has gone and the stream should stop.
pub trait ChunkSink {
    fn send_chunk(&mut self, chunk: Bytes) -> bool;
}

/// Reads `source` and writes the body to `sink` chunk by chunk. Returns `Ok` when the whole log was sent, the
/// error that ended the body otherwise (it has already been written to the body in its wire form).
pub fn stream_to_sink(
    session: &str,
    source: impl Read,
    hard_line_limit: usize,
    shape: StreamedBody,
    guard: Option<&StreamGuard>,
    sink: &mut impl ChunkSink,
) -> Result<(), EventLogError> {
    let mut reader = LimitedLineReader::new(
        BufReader::with_capacity(READ_BUFFER_BYTES, source),
        session,
        hard_line_limit,
    );
    let mut array = IncrementalExportArray::new();
    let mut chunk = Vec::with_capacity(CHUNK_BYTES);
    let mut flush = |chunk: &mut Vec<u8>, force: bool| -> bool {
        if chunk.is_empty() || (!force && chunk.len() < CHUNK_BYTES) {
            return true;
        }
        let full = std::mem::replace(chunk, Vec::with_capacity(CHUNK_BYTES));
        if let Some(guard) = guard {
            guard.touch_while_streaming();
        }
        sink.send_chunk(Bytes::from(full))
    };
    let failure = loop {
        let event = match reader.next_line() {
            Ok(Some(line)) if line.is_blank() => continue,
            Ok(Some(line)) => decode_event(session, &line),
            Ok(None) => break None,
            Err(error) => Err(error),
        };
        match event {
            Ok(event) => match shape {
                StreamedBody::Events => push_event_frame(&event, &mut chunk),
                StreamedBody::Export => array.push_element(&event, &mut chunk),
            },
            Err(error) => break Some(error),
        }
        if !flush(&mut chunk, false) {
            return Ok(());
        }
    };
    match (&failure, shape) {
        (None, StreamedBody::Events) => {}
        (None, StreamedBody::Export) => array.finish(&mut chunk),
        (Some(error), StreamedBody::Events) => push_events_error(error, &mut chunk),
        (Some(error), StreamedBody::Export) => array.fail(error, &mut chunk),
    }
    flush(&mut chunk, true);
    failure.map_or(Ok(()), Err)
}

/// A sink that sends chunks into a tokio channel from a blocking thread.
pub struct ChannelSink(pub tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>);

impl ChunkSink for ChannelSink {
    fn send_chunk(&mut self, chunk: Bytes) -> bool {
        self.0.blocking_send(Ok(chunk)).is_ok()
    }
}

/// A sink that appends to one buffer; for tests and benchmarks that want the whole body.
#[derive(Debug, Default)]
pub struct CollectingSink(pub Vec<u8>);

impl ChunkSink for CollectingSink {
    fn send_chunk(&mut self, chunk: Bytes) -> bool {
        self.0.extend_from_slice(&chunk);
        true
    }
}

/// The streamed response body: the reading runs on tokio's blocking pool, the body reads from the channel.
pub fn stream_response_body(
    session: String,
    source: std::fs::File,
    hard_line_limit: usize,
    shape: StreamedBody,
    guard: StreamGuard,
) -> axum::body::Body {
    let (sender, receiver) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
    tokio::task::spawn_blocking(move || {
        let mut sink = ChannelSink(sender);
        // The error, if any, is already in the body; the server has nothing more to do with it.
        let _ = stream_to_sink(
            &session,
            source,
            hard_line_limit,
            shape,
            Some(&guard),
            &mut sink,
        );
        drop(guard);
    });
    let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    axum::body::Body::from_stream(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(log: &[u8], hard_limit: usize, shape: StreamedBody) -> (String, Option<u64>) {
        let mut sink = CollectingSink::default();
        let result = stream_to_sink("s1", log, hard_limit, shape, None, &mut sink);
        (
            String::from_utf8(sink.0).unwrap(),
            result.err().and_then(|error| error.line_number()),
        )
    }

    #[test]
    fn events_stream_in_order_and_blank_lines_are_skipped() {
        let (body, error) = stream(b"{\"b\":1,\"a\":2}\n\n[3]\n", 100, StreamedBody::Events);
        assert_eq!(body, "data: {\"a\":2,\"b\":1}\n\ndata: [3]\n\n");
        assert_eq!(error, None);
    }

    #[test]
    fn a_line_over_the_hard_limit_ends_the_body_with_an_error_naming_it() {
        let log = format!("{{\"a\":1}}\n\"{}\"\n{{\"c\":3}}\n", "x".repeat(200));
        let (body, error) = stream(log.as_bytes(), 100, StreamedBody::Events);
        assert_eq!(error, Some(2));
        assert_eq!(
            body,
            "data: {\"a\":1}\n\nevent: error\ndata: {\"error\":\"session s1, line 2: the line is longer than \
             the hard limit of 100 bytes\",\"line\":2}\n\n"
        );
        let (body, error) = stream(log.as_bytes(), 100, StreamedBody::Export);
        assert_eq!(error, Some(2));
        assert!(
            body.starts_with("[\n  {\n    \"a\": 1\n  }\n!error {"),
            "{body}"
        );
    }

    #[test]
    fn an_export_of_an_empty_log_is_an_empty_array() {
        assert_eq!(stream(b"", 100, StreamedBody::Export).0, "[]");
        assert_eq!(stream(b"\n\n", 100, StreamedBody::Export).0, "[]");
        assert_eq!(stream(b"", 100, StreamedBody::Events).0, "");
    }
}
