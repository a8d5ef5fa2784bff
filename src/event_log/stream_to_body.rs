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

    /// Returns once every chunk sent so far has left memory (written out, or dropped with the client). The reader
    /// calls it before decoding a line longer than [`CHUNK_BYTES`]: see [`stream_to_sink`].
    fn wait_until_written(&mut self) {}
}

/// Reads `source` and writes the body to `sink` chunk by chunk. Returns `Ok` when the whole log was sent, the
/// error that ended the body otherwise (it has already been written to the body in its wire form).
///
/// Before it decodes a line longer than [`CHUNK_BYTES`] (seed C's state snapshots, the over-long event), the reader
/// waits until the chunks it sent before have been written out: a long line, its decoded form and its wire form are
/// then all the request holds, never those and earlier chunks (up to [`CHANNEL_CHUNKS`] in the channel, more in the
/// HTTP layer, each possibly holding a snapshot) still on their way to the socket. Without the wait, how many were
/// on their way was the two threads' interleaving, and the streaming server's peak heap at ci's 6 and 32 MiB logs
/// took one of several values 131 to 619 KB apart from run to run (`cargo xtask noise --profile ci --scenario
/// large-session`).
pub fn stream_to_sink<S: ChunkSink>(
    session: &str,
    source: impl Read,
    hard_line_limit: usize,
    shape: StreamedBody,
    guard: Option<&StreamGuard>,
    sink: &mut S,
) -> Result<(), EventLogError> {
    let mut reader = LimitedLineReader::new(
        BufReader::with_capacity(READ_BUFFER_BYTES, source),
        session,
        hard_line_limit,
    );
    let mut array = IncrementalExportArray::new();
    let mut chunk = Vec::with_capacity(CHUNK_BYTES);
    // Hands the chunk over once it is full (or at the end, `force`), touching the session's cache entry.
    let flush = |sink: &mut S, chunk: &mut Vec<u8>, force: bool| -> bool {
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
            Ok(Some(line)) => {
                if line.bytes.len() > CHUNK_BYTES {
                    sink.wait_until_written();
                }
                decode_event(session, &line)
            }
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
        if !flush(sink, &mut chunk, false) {
            return Ok(());
        }
    };
    match (&failure, shape) {
        (None, StreamedBody::Events) => {}
        (None, StreamedBody::Export) => array.finish(&mut chunk),
        (Some(error), StreamedBody::Events) => push_events_error(error, &mut chunk),
        (Some(error), StreamedBody::Export) => array.fail(error, &mut chunk),
    }
    flush(sink, &mut chunk, true);
    failure.map_or(Ok(()), Err)
}

/// Bytes of body a [`ChannelSink`] sent that have not left memory yet.
#[derive(Default)]
struct InFlight {
    bytes: std::sync::Mutex<usize>,
    written: std::sync::Condvar,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.bytes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// A sent chunk that gives its bytes back to the count when the HTTP layer drops it (after writing it out, or
/// with the connection).
struct Counted {
    chunk: Bytes,
    in_flight: std::sync::Arc<InFlight>,
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.chunk
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut bytes = self.in_flight.lock();
        *bytes -= self.chunk.len();
        if *bytes == 0 {
            self.in_flight.written.notify_all();
        }
    }
}

/// A sink that sends chunks into a tokio channel from a blocking thread, counting the bytes on their way.
pub struct ChannelSink {
    sender: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    in_flight: std::sync::Arc<InFlight>,
}

impl ChannelSink {
    pub fn new(sender: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) -> ChannelSink {
        ChannelSink {
            sender,
            in_flight: Default::default(),
        }
    }
}

impl ChunkSink for ChannelSink {
    fn send_chunk(&mut self, chunk: Bytes) -> bool {
        *self.in_flight.lock() += chunk.len();
        let counted = Bytes::from_owner(Counted {
            chunk,
            in_flight: std::sync::Arc::clone(&self.in_flight),
        });
        // A failed send drops the chunk with the error: its bytes are given back.
        self.sender.blocking_send(Ok(counted)).is_ok()
    }

    fn wait_until_written(&mut self) {
        let bytes = self.in_flight.lock();
        drop(
            self.in_flight
                .written
                .wait_while(bytes, |bytes| *bytes > 0)
                .unwrap_or_else(|poison| poison.into_inner()),
        );
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
        let mut sink = ChannelSink::new(sender);
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

    /// What a sink was asked, in order.
    #[derive(Default)]
    struct Journal(Vec<String>);

    impl ChunkSink for Journal {
        fn send_chunk(&mut self, chunk: Bytes) -> bool {
            self.0.push(format!("send {}", chunk.len()));
            true
        }
        fn wait_until_written(&mut self) {
            self.0.push("wait".into());
        }
    }

    /// The reader waits for what it sent before each line longer than a chunk, and only then.
    #[test]
    fn a_long_line_is_decoded_only_once_everything_sent_before_is_written() {
        let small = "{\"a\":1}\n".repeat(CHUNK_BYTES / 8 + 1);
        let long = format!("\"{}\"\n", "x".repeat(CHUNK_BYTES + 10));
        let log = format!("{small}{long}{small}");
        let mut journal = Journal::default();
        stream_to_sink(
            "s1",
            log.as_bytes(),
            usize::MAX,
            StreamedBody::Events,
            None,
            &mut journal,
        )
        .unwrap();
        let waits: Vec<usize> = (0..journal.0.len())
            .filter(|&at| journal.0[at] == "wait")
            .collect();
        assert_eq!(waits.len(), 1, "{:?}", journal.0);
        // Sent before the wait: the small lines' chunks; the long line's own chunk after it.
        assert!(waits[0] > 0, "{:?}", journal.0);
        let after: Vec<&String> = journal.0[waits[0] + 1..].iter().collect();
        assert!(after.iter().any(|event| {
            event
                .strip_prefix("send ")
                .is_some_and(|n| n.parse::<usize>().unwrap() > CHUNK_BYTES)
        }));
    }

    /// A channel sink's wait returns only once the receiving side has dropped every chunk sent.
    #[test]
    fn a_channel_sink_waits_until_the_chunks_are_dropped() {
        let (sender, mut receiver) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
        let mut sink = ChannelSink::new(sender);
        assert!(sink.send_chunk(Bytes::from(vec![1u8; 10])));
        assert!(sink.send_chunk(Bytes::from(vec![2u8; 20])));
        let written = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let waiter = {
            let written = std::sync::Arc::clone(&written);
            std::thread::spawn(move || {
                sink.wait_until_written();
                written.store(true, std::sync::atomic::Ordering::SeqCst);
            })
        };
        let first = receiver.blocking_recv().unwrap().unwrap();
        let second = receiver.blocking_recv().unwrap().unwrap();
        assert_eq!((first.len(), second.len()), (10, 20));
        drop(first);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(
            !written.load(std::sync::atomic::Ordering::SeqCst),
            "20 bytes are still held"
        );
        drop(second);
        waiter.join().unwrap();
        assert!(written.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn an_export_of_an_empty_log_is_an_empty_array() {
        assert_eq!(stream(b"", 100, StreamedBody::Export).0, "[]");
        assert_eq!(stream(b"\n\n", 100, StreamedBody::Export).0, "[]");
        assert_eq!(stream(b"", 100, StreamedBody::Events).0, "");
    }
}
