//! Seed C: a backend serving sessions' JSONL event logs over HTTP. Long sessions' logs grew to hundreds of MB,
//! each `GET` of a session's events read the whole file into memory, parsed every line and replayed the events,
//! and the pod was OOM-killed at its 512 MiB limit.
//!
//! The merged fix read the log with a line scanner (1 MiB maximum line) for events and export, capped upstream
//! error bodies at 1 KiB, paged the session listing at 500, and evicted stale sessions sooner (threshold 1 h →
//! 10 min, sweep 10 min → 2 min). Its reviewer found what it left: every decoded event is still collected before
//! the replay, the export still builds and pretty-prints the whole array, a line over 1 MiB ends the scan and the
//! client silently gets a truncated history, and the 10-minute threshold evicts sessions still streaming because
//! "last seen" is only touched when a request starts.
//!
//! This module is a real HTTP server ([`server`]) over a directory of logs ([`session_dir`]) with three ways of
//! reading a log, one per [`LogReadTechnique`]:
//! - [`read_whole_file`]: read it all, parse all, collect, then build the response (seed C before its fix);
//! - [`scan_lines_capped`]: the merged fix, a 1 MiB line scanner that still collects every event;
//! - [`stream_to_body`]: each event from the file to the chunked response as it is read, bounded by the longest
//!   line; a line that cannot be served ends the body with an explicit error, never a silent short history.
//!
//! All three send the same bytes for every well-formed log ([`wire`]); `tests/event_log_props.rs` checks it.

pub mod client;
pub mod error;
pub mod expected;
pub mod generate;
pub mod line_reader;
pub mod listing;
pub mod read_whole_file;
pub mod scan_lines_capped;
pub mod server;
pub mod session_cache;
pub mod session_dir;
pub mod stream_to_body;
pub mod upstream_proxy;
pub mod wire;

pub use error::{EventLogError, LineProblem};
pub use server::{RunningServer, ServerConfig, start_server};
pub use stream_to_body::StreamedBody;

crate::technique_enum! {
    /// How the server reads a session's log; the scenario maps these to roles.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum LogReadTechnique {
        /// Read the whole file, parse every line, collect, then respond.
        ReadWholeFile => "read_whole_file",
        /// Buffered line scanner with a 1 MiB line cap that stops silently; still collects every event.
        ScanLinesCollect => "scan_lines_collect",
        /// Stream each event from the file to the response body as it is read.
        StreamToBody => "stream_to_body",
    }
}
