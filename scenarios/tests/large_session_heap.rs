//! The limit story of seed C in heap figures, counted by memproof's own allocator in this process: serving a log
//! by reading the whole file peaks at several times the log's size, the merged fix's collecting scanner at more
//! than the log's size, and streaming at a figure that does not move when the log grows fourfold.
//!
//! One test in this file, since every test in a file shares the process and its allocator. Server and client run
//! here together; the client verifies each body as it arrives and holds one event at a time, so its share of the
//! peak is bounded by the largest event.

use memproof::event_log::client::LoopbackClient;
use memproof::event_log::expected::{BodyVerifier, ExpectedBody, ResponseCheck};
use memproof::event_log::generate::{LogShape, write_session_log};
use memproof::event_log::{LogReadTechnique, ServerConfig, StreamedBody, start_server};

#[global_allocator]
static ALLOCATOR: meter::alloc::CountingAlloc = meter::alloc::CountingAlloc;

/// Peak heap while one client fetches the events and then the export of a log of `log_bytes`.
fn peak_heap_serving(technique: LogReadTechnique, log_bytes: u64) -> (u64, u64) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "large_session_heap_{}_{log_bytes}",
        technique.name()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("large.jsonl");
    let facts = write_session_log(
        &log_path,
        &LogShape {
            target_bytes: log_bytes,
            large_event_every: 400,
            large_event_bytes: 200_000,
            overlong_event_bytes: 0,
            overlong_at_fraction: 0.0,
            seed: 3,
        },
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let peak = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = start_server(ServerConfig::for_technique(technique, &dir), listener).unwrap();
        let client = LoopbackClient::new();
        // Warm up the connection pool and the runtime, so that the peak is the serving's own.
        let _ = client
            .get_whole(&format!("{}/sessions/none/events", server.base_uri()))
            .await;
        meter::alloc::reset();
        for (endpoint, shape) in [
            ("events", StreamedBody::Events),
            ("export", StreamedBody::Export),
        ] {
            let mut verifier =
                BodyVerifier::new(ExpectedBody::open(&log_path, "large", shape).unwrap());
            let uri = format!("{}/sessions/large/{endpoint}", server.base_uri());
            let timing = client
                .get_streaming(&uri, |chunk| verifier.feed(chunk).unwrap())
                .await
                .unwrap();
            assert_eq!(timing.status, 200);
            assert!(
                matches!(verifier.finish().unwrap(), ResponseCheck::Verified { .. }),
                "{technique:?} {endpoint}"
            );
        }
        let peak = meter::alloc::counts().peak_bytes;
        server.stop().await.unwrap();
        peak
    });
    drop(runtime);
    std::fs::remove_dir_all(&dir).unwrap();
    (peak, facts.bytes)
}

#[test]
fn whole_file_peaks_with_the_log_and_streaming_does_not() {
    const MIB: u64 = 1024 * 1024;
    let (whole_small, log_small) = peak_heap_serving(LogReadTechnique::ReadWholeFile, MIB);
    let (whole_large, log_large) = peak_heap_serving(LogReadTechnique::ReadWholeFile, 4 * MIB);
    let (scan_large, _) = peak_heap_serving(LogReadTechnique::ScanLinesCollect, 4 * MIB);
    let (stream_small, _) = peak_heap_serving(LogReadTechnique::StreamToBody, 2 * MIB);
    let (stream_large, _) = peak_heap_serving(LogReadTechnique::StreamToBody, 8 * MIB);
    eprintln!(
        "peak heap: read_whole_file {whole_small} ({log_small}-byte log), {whole_large} ({log_large}-byte log); \
         scan_lines_collect {scan_large}; stream_to_body {stream_small}, {stream_large}"
    );
    // Whole file + decoded events + whole body: at least twice the log, on either size.
    assert!(
        whole_small >= 2 * log_small,
        "{whole_small} vs log {log_small}"
    );
    assert!(
        whole_large >= 2 * log_large,
        "{whole_large} vs log {log_large}"
    );
    // The merged fix still holds every decoded event: more than the log itself.
    assert!(scan_large >= log_large, "{scan_large} vs log {log_large}");
    // Streaming: bounded by the longest line (200 KB events) and fixed buffers; a log 4x larger (6 MiB more,
    // which costs the whole-file reader over 12 MiB more) moves it by less than 1 MiB.
    assert!(stream_large <= 4 * MIB, "{stream_large}");
    assert!(
        stream_large.abs_diff(stream_small) <= MIB,
        "streaming peak moved from {stream_small} to {stream_large} when the log grew 4x"
    );
}
