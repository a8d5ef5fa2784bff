//! Seed C's bad inputs over real HTTP, for each technique: every one gets a clear error naming the session, the
//! line and what was wrong, or a documented behaviour; nothing is lost without a word — except by the merged fix's
//! documented 1 MiB cap, which is asserted as it is.
//!
//! The collecting techniques find a bad line before they answer, so they answer with an HTTP error status and the
//! message; the streaming technique has already sent a 200 and the lines before, so its body ends with the
//! explicit error of `memproof::event_log::wire`.

use memproof::event_log::client::LoopbackClient;
use memproof::event_log::session_cache::StalePolicy;
use memproof::event_log::stream_to_body::{ChunkSink, StreamedBody, stream_to_sink};
use memproof::event_log::wire::find_reported_error;
use memproof::event_log::{LogReadTechnique, ServerConfig, start_server};
use std::time::{Duration, Instant};

const BEFORE: LogReadTechnique = LogReadTechnique::ReadWholeFile;
const AFTER: LogReadTechnique = LogReadTechnique::ScanLinesCollect;
const BEST: LogReadTechnique = LogReadTechnique::StreamToBody;

/// What each technique answers for each request path, against logs written in one directory.
struct Answers {
    answers: Vec<(LogReadTechnique, String, u16, String)>,
}

impl Answers {
    fn of(&self, technique: LogReadTechnique, path: &str) -> (u16, &str) {
        let (_, _, status, body) = self
            .answers
            .iter()
            .find(|(t, p, _, _)| *t == technique && p == path)
            .unwrap_or_else(|| panic!("no answer for {technique:?} {path}"));
        (*status, body)
    }
}

/// Writes the logs, starts one server per technique (the streaming one with a 1 MiB hard limit) and fetches
/// every path from each.
fn ask_every_technique(
    logs: &[(&str, Vec<u8>)],
    paths: &[&str],
    upstream: Option<String>,
) -> Answers {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("logs");
    std::fs::create_dir(&log_dir).unwrap();
    for (name, bytes) in logs {
        std::fs::write(log_dir.join(name), bytes).unwrap();
    }
    // A log outside the log directory that no session id may reach.
    std::fs::write(dir.path().join("secret.jsonl"), "{\"secret\":true}\n").unwrap();
    // A "log" that cannot be read as a file.
    std::fs::create_dir(log_dir.join("adirectory.jsonl")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = LoopbackClient::new();
        let mut answers = Vec::new();
        for technique in LogReadTechnique::ALL {
            let mut config = ServerConfig::for_technique(technique, &log_dir);
            config.hard_line_limit = 1 << 20;
            config.upstream_base = upstream.clone();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let server = start_server(config, listener).unwrap();
            for path in paths {
                let (status, body) = client
                    .get_whole(&format!("{}{path}", server.base_uri()))
                    .await
                    .unwrap();
                answers.push((
                    technique,
                    path.to_string(),
                    status,
                    String::from_utf8_lossy(&body).into_owned(),
                ));
            }
            server.stop().await.unwrap();
        }
        Answers { answers }
    })
}

fn reported_line(body: &str) -> (u64, String) {
    let error = find_reported_error(body.as_bytes())
        .unwrap_or_else(|| panic!("no reported error in {body:?}"));
    (
        error["line"].as_u64().unwrap(),
        error["error"].as_str().unwrap().to_string(),
    )
}

#[test]
fn bad_lines_are_named_by_session_and_line_number() {
    let mut over_hard_limit = b"{\"a\":1}\n".to_vec();
    over_hard_limit.extend_from_slice(format!("\"{}\"\n", "x".repeat(1_200_000)).as_bytes());
    over_hard_limit.extend_from_slice(b"{\"c\":3}\n");
    let logs = [
        ("truncated.jsonl", b"{\"a\":1}\n{\"b\":2}\n{\"c\":".to_vec()),
        (
            "badutf8.jsonl",
            b"{\"a\":1}\n{\"b\":\"\xc3\x28\"}\n".to_vec(),
        ),
        ("notjson.jsonl", b"{\"a\":1}\n\nnot json\n".to_vec()),
        (
            "blanks.jsonl",
            b"\n{\"a\":1}\n   \n\r\n{\"b\":2}\n\n".to_vec(),
        ),
        ("overlong.jsonl", over_hard_limit),
    ];
    let paths = [
        "/sessions/truncated/events",
        "/sessions/truncated/export",
        "/sessions/badutf8/events",
        "/sessions/notjson/export",
        "/sessions/blanks/events",
        "/sessions/blanks/export",
        "/sessions/overlong/events",
        "/sessions/overlong/export",
    ];
    let answers = ask_every_technique(&logs, &paths, None);

    let incomplete = "session truncated, line 3: the last line is incomplete (no newline, and not valid JSON: EOF \
                      while parsing a value at line 1 column 5); the log was cut or is still being written";
    let bad_utf8 = "session badutf8, line 2: invalid UTF-8 at byte 6 of the line";
    let not_json = "session notjson, line 3: not valid JSON: expected ident at line 1 column 2";
    for technique in [BEFORE, AFTER] {
        assert_eq!(
            answers.of(technique, "/sessions/truncated/events"),
            (422, &*format!("{incomplete}\n"))
        );
        assert_eq!(
            answers.of(technique, "/sessions/truncated/export"),
            (422, &*format!("{incomplete}\n"))
        );
        assert_eq!(
            answers.of(technique, "/sessions/badutf8/events"),
            (422, &*format!("{bad_utf8}\n"))
        );
        assert_eq!(
            answers.of(technique, "/sessions/notjson/export"),
            (422, &*format!("{not_json}\n"))
        );
    }
    // The streaming technique: 200, the good lines, then the error naming the line.
    let (status, body) = answers.of(BEST, "/sessions/truncated/events");
    assert_eq!(status, 200);
    assert!(
        body.starts_with("data: {\"a\":1}\n\ndata: {\"b\":2}\n\nevent: error\n"),
        "{body}"
    );
    assert_eq!(reported_line(body), (3, incomplete.to_string()));
    assert_eq!(
        reported_line(answers.of(BEST, "/sessions/truncated/export").1),
        (3, incomplete.to_string())
    );
    assert_eq!(
        reported_line(answers.of(BEST, "/sessions/badutf8/events").1),
        (2, bad_utf8.to_string())
    );
    let (status, body) = answers.of(BEST, "/sessions/notjson/export");
    assert_eq!(status, 200);
    assert!(
        serde_json::from_str::<serde_json::Value>(body).is_err(),
        "a failed export must not parse"
    );
    assert_eq!(reported_line(body), (3, not_json.to_string()));

    // Blank lines (empty, spaces, a lone \r) carry no event and are skipped by all three, identically.
    for path in ["/sessions/blanks/events", "/sessions/blanks/export"] {
        let before = answers.of(BEFORE, path);
        assert_eq!(before.0, 200);
        assert_eq!(answers.of(AFTER, path), before);
        assert_eq!(answers.of(BEST, path), before);
    }
    assert_eq!(
        answers.of(BEFORE, "/sessions/blanks/events").1,
        "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n"
    );

    // A 1.2 MB line: the whole-file reader has no limit and serves it; the merged fix stops silently before it
    // (its documented fault: 200, one event, no error); streaming with a 1 MiB hard limit says so, naming line 2.
    let (status, body) = answers.of(BEFORE, "/sessions/overlong/events");
    assert_eq!((status, body.matches("data: ").count()), (200, 3));
    assert_eq!(
        answers.of(AFTER, "/sessions/overlong/events"),
        (200, "data: {\"a\":1}\n\n")
    );
    let (status, body) = answers.of(BEST, "/sessions/overlong/events");
    assert_eq!(status, 200);
    assert_eq!(
        reported_line(body),
        (
            2,
            "session overlong, line 2: the line is longer than the hard limit of 1048576 bytes"
                .to_string()
        )
    );
    assert_eq!(
        reported_line(answers.of(BEST, "/sessions/overlong/export").1).0,
        2
    );
}

#[test]
fn missing_unreadable_and_escaping_sessions_get_clear_errors() {
    let paths = [
        "/sessions/nope/events",
        "/sessions/..%2Fsecret/events",
        "/sessions/..%2F..%2Fsecret/export",
        "/sessions/adirectory/events",
    ];
    let answers = ask_every_technique(&[], &paths, None);
    let escaping = "session id \"../secret\" is not valid: expected 1 to 128 characters from A-Z a-z 0-9 _ - (no '/', \
                    no '..')\n";
    for technique in LogReadTechnique::ALL {
        assert_eq!(
            answers.of(technique, "/sessions/nope/events"),
            (
                404,
                "session nope: no event log (expected nope.jsonl in the log directory)\n"
            )
        );
        assert_eq!(
            answers.of(technique, "/sessions/..%2Fsecret/events"),
            (400, escaping)
        );
        let (status, body) = answers.of(technique, "/sessions/..%2F..%2Fsecret/export");
        assert_eq!(status, 400);
        assert!(!body.contains("secret\":true"));
    }
    // A log that opens but cannot be read (here a directory): an error naming the session.
    let unreadable =
        "session adirectory: cannot open the event log: Is a directory (os error 21)\n";
    assert_eq!(
        answers.of(BEFORE, "/sessions/adirectory/events"),
        (500, unreadable)
    );
    assert_eq!(
        answers.of(AFTER, "/sessions/adirectory/events"),
        (
            500,
            "session adirectory, line 1: cannot read the log here: Is a directory (os error 21)\n"
        )
    );
    let (status, body) = answers.of(BEST, "/sessions/adirectory/events");
    assert_eq!(status, 200);
    assert_eq!(reported_line(body).0, 1);
}

#[test]
fn upstream_error_bodies_are_quoted_whole_before_the_fix_and_capped_at_1_kib_after() {
    // An upstream that fails with a 300 KB error page.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let page = "E".repeat(300_000);
    let upstream_page = page.clone();
    let upstream = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/{*path}",
            axum::routing::get(move || async move {
                (axum::http::StatusCode::SERVICE_UNAVAILABLE, upstream_page)
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    });
    let answers = ask_every_technique(&[], &["/upstream/runner/status"], Some(upstream.clone()));
    let (status, body) = answers.of(BEFORE, "/upstream/runner/status");
    assert_eq!(status, 502);
    assert_eq!(
        body,
        format!("upstream {upstream}/runner/status answered 503 Service Unavailable: {page}\n")
    );
    for technique in [AFTER, BEST] {
        let (status, body) = answers.of(technique, "/upstream/runner/status");
        assert_eq!(status, 502);
        assert_eq!(
            body,
            format!(
                "upstream {upstream}/runner/status answered 503 Service Unavailable: {} [error body cut at 1024 \
                 bytes]\n",
                &page[..1024]
            )
        );
    }
    drop(runtime);
}

/// A slow client: each chunk takes `delay` to go out, and the cache is swept after each.
struct SlowSinkSweeping<'a> {
    delay: Duration,
    cache: &'a memproof::event_log::session_cache::SessionCache,
}

impl ChunkSink for SlowSinkSweeping<'_> {
    fn send_chunk(&mut self, _chunk: bytes::Bytes) -> bool {
        std::thread::sleep(self.delay);
        self.cache.sweep(Instant::now());
        true
    }
}

#[test]
fn a_stream_longer_than_the_stale_threshold_keeps_its_session_only_when_touched() {
    // Ten chunks of 64 KiB at 60 ms each: a 600 ms stream against a 200 ms threshold.
    let log: Vec<u8> = (0..10)
        .flat_map(|index| {
            format!("{{\"i\":{index},\"pad\":\"{}\"}}\n", "p".repeat(70_000)).into_bytes()
        })
        .collect();
    for touch_while_streaming in [false, true] {
        let cache = memproof::event_log::session_cache::SessionCache::new(StalePolicy {
            threshold: Duration::from_millis(200),
            sweep_interval: Duration::from_millis(60),
            touch_while_streaming,
        });
        let guard = cache.start_stream("s1");
        let mut sink = SlowSinkSweeping {
            delay: Duration::from_millis(60),
            cache: &cache,
        };
        stream_to_sink(
            "s1",
            &log[..],
            1 << 20,
            StreamedBody::Events,
            Some(&guard),
            &mut sink,
        )
        .unwrap();
        assert_eq!(
            cache.evicted_while_streaming(),
            u64::from(!touch_while_streaming),
            "touch_while_streaming = {touch_while_streaming}"
        );
        drop(guard);
    }
}
