//! Seed C's three techniques answer the same over real HTTP: for every well-formed log, reading the whole file,
//! the merged fix's capped scanner and the streaming body send the same bytes for the events and the export.
//! The documented exception is the merged fix's 1 MiB cap: for a log with a longer line it sends, with a 200
//! status and no error, exactly the history before that line — a silent short history — while the streaming body
//! sends everything.

use memproof::event_log::client::LoopbackClient;
use memproof::event_log::expected::{BodyVerifier, ExpectedBody, ResponseCheck};
use memproof::event_log::scan_lines_capped::SCANNER_MAX_LINE_BYTES;
use memproof::event_log::wire::find_reported_error;
use memproof::event_log::{
    LogReadTechnique, RunningServer, ServerConfig, StreamedBody, start_server,
};
use memproof::payload::{Rng, filler_text};
use proptest::prelude::*;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// One runtime and one server per technique, shared by every case; each case writes a log of its own.
struct Servers {
    runtime: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    servers: Vec<(LogReadTechnique, RunningServer)>,
    client: LoopbackClient,
}

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (servers, client) = runtime.block_on(async {
            let mut servers = Vec::new();
            for technique in LogReadTechnique::ALL {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let config = ServerConfig::for_technique(technique, dir.path());
                servers.push((technique, start_server(config, listener).unwrap()));
            }
            (servers, LoopbackClient::new())
        });
        Servers {
            runtime,
            dir,
            servers,
            client,
        }
    })
}

/// One line of a generated log.
#[derive(Debug, Clone)]
enum LogLine {
    /// An event with a unicode text field, written with some formatting variation (key order, spaces).
    Event {
        kind: String,
        text: String,
        spaced: bool,
    },
    /// An event whose payload is `bytes` of filler, to reach lines of several MiB.
    Large {
        bytes: usize,
        seed: u64,
    },
    Blank,
}

fn log_line() -> impl Strategy<Value = LogLine> {
    prop_oneof![
        12 => ("[A-Z_]{1,20}", "\\PC{0,64}", any::<bool>())
            .prop_map(|(kind, text, spaced)| LogLine::Event { kind, text, spaced }),
        2 => (1usize..20_000, any::<u64>()).prop_map(|(bytes, seed)| LogLine::Large { bytes, seed }),
        1 => (900_000usize..3_500_000, any::<u64>()).prop_map(|(bytes, seed)| LogLine::Large { bytes, seed }),
        1 => Just(LogLine::Blank),
    ]
}

fn render_log(lines: &[LogLine], last_newline: bool) -> Vec<u8> {
    let mut log = Vec::new();
    for line in lines {
        match line {
            LogLine::Event { kind, text, spaced } => {
                let text = serde_json::to_string(text).unwrap();
                if *spaced {
                    log.extend_from_slice(
                        format!("{{ \"text\" : {text} , \"type\" : \"{kind}\" }}").as_bytes(),
                    );
                } else {
                    log.extend_from_slice(
                        format!("{{\"type\":\"{kind}\",\"text\":{text}}}").as_bytes(),
                    );
                }
            }
            LogLine::Large { bytes, seed } => {
                let payload = filler_text(&mut Rng::new(*seed), *bytes);
                let event =
                    serde_json::json!({"type": "STATE_SNAPSHOT", "snapshot": {"content": payload}});
                serde_json::to_writer(&mut log, &event).unwrap();
            }
            LogLine::Blank => {}
        }
        log.push(b'\n');
    }
    if !last_newline
        && log.last() == Some(&b'\n')
        && lines.last().is_some_and(|l| !matches!(l, LogLine::Blank))
    {
        log.pop();
    }
    log
}

/// The 1-based number of the first line the merged fix's scanner cannot hold, if any.
fn first_line_over_the_scanner_cap(log: &[u8]) -> Option<u64> {
    log.split(|&b| b == b'\n')
        .position(|line| line.len() + 1 > SCANNER_MAX_LINE_BYTES)
        .map(|index| index as u64 + 1)
}

/// The log's first `n_lines` lines, which a silently stopped scan did serve.
fn first_lines(log: &[u8], n_lines: u64) -> Vec<u8> {
    let mut prefix = Vec::new();
    for line in log.split(|&b| b == b'\n').take(n_lines as usize) {
        prefix.extend_from_slice(line);
        prefix.push(b'\n');
    }
    prefix
}

fn body_of_log(log: &[u8], shape: StreamedBody) -> Vec<u8> {
    let mut expected = ExpectedBody::new(log, "expected", shape);
    let mut body = Vec::new();
    while expected.next_piece(&mut body).unwrap() {}
    body
}

fn fetch(servers: &Servers, server: &RunningServer, path: &str) -> (u16, Vec<u8>) {
    let uri = format!("{}{path}", server.base_uri());
    servers
        .runtime
        .block_on(servers.client.get_whole(&uri))
        .unwrap()
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn the_three_techniques_send_the_same_bytes(
        lines in prop::collection::vec(log_line(), 0..7),
        last_newline in any::<bool>(),
    ) {
        let servers = servers();
        let log = render_log(&lines, last_newline);
        let session = format!("p{}", NEXT_SESSION.fetch_add(1, Ordering::Relaxed));
        std::fs::write(servers.dir.path().join(format!("{session}.jsonl")), &log).unwrap();
        let over_cap = first_line_over_the_scanner_cap(&log);

        for (endpoint, shape) in [("events", StreamedBody::Events), ("export", StreamedBody::Export)] {
            let path = format!("/sessions/{session}/{endpoint}");
            let answers: Vec<(LogReadTechnique, u16, Vec<u8>)> = servers
                .servers
                .iter()
                .map(|(technique, server)| {
                    let (status, body) = fetch(servers, server, &path);
                    (*technique, status, body)
                })
                .collect();
            let (_, before_status, before_body) = &answers[0];
            prop_assert_eq!(*before_status, 200);
            for (technique, status, body) in &answers {
                prop_assert_eq!(*status, 200, "{:?} {}", technique, endpoint);
                prop_assert!(find_reported_error(body).is_none(), "{:?} {}", technique, endpoint);
                match (technique, over_cap) {
                    (LogReadTechnique::ScanLinesCollect, Some(line)) => {
                        // The merged fix's contract: the history up to the over-long line, nothing said.
                        let served = body_of_log(&first_lines(&log, line - 1), shape);
                        prop_assert_eq!(body, &served, "scanner stopped at line {}", line);
                        prop_assert!(body.len() < before_body.len());
                    }
                    _ => prop_assert!(body == before_body, "{:?} {} differs from reading the whole file", technique, endpoint),
                }
            }
            // And the streamed body verifies against the file, byte for byte.
            let mut verifier = BodyVerifier::new(ExpectedBody::new(&log[..], &session, shape));
            verifier.feed(&answers[2].2).unwrap();
            let verified = matches!(verifier.finish().unwrap(), ResponseCheck::Verified { .. });
            prop_assert!(verified);
        }
    }
}

/// The reviewer's finding, by hand: one line of 1.5 MiB in the middle of a log.
#[test]
fn the_merged_fix_truncates_silently_where_streaming_serves_everything() {
    let servers = servers();
    let big = serde_json::json!({"type": "STATE_SNAPSHOT", "snapshot": filler_text(&mut Rng::new(5), 1_500_000)});
    let log = format!("{{\"type\":\"RUN_STARTED\"}}\n{big}\n{{\"type\":\"RUN_FINISHED\"}}\n");
    std::fs::write(servers.dir.path().join("overlong.jsonl"), &log).unwrap();
    for (endpoint, shape) in [
        ("events", StreamedBody::Events),
        ("export", StreamedBody::Export),
    ] {
        let path = format!("/sessions/overlong/{endpoint}");
        let checks: Vec<(u16, ResponseCheck)> = servers
            .servers
            .iter()
            .map(|(_, server)| {
                let (status, body) = fetch(servers, server, &path);
                let mut verifier =
                    BodyVerifier::new(ExpectedBody::new(log.as_bytes(), "overlong", shape));
                verifier.feed(&body).unwrap();
                (status, verifier.finish().unwrap())
            })
            .collect();
        assert!(
            matches!(checks[0], (200, ResponseCheck::Verified { .. })),
            "{checks:?}"
        );
        // after: 200, the first event only, no error anywhere.
        let first_event_bytes = body_of_log(b"{\"type\":\"RUN_STARTED\"}\n", shape).len() as u64;
        match &checks[1] {
            (200, ResponseCheck::Short { matched_bytes }) if shape == StreamedBody::Events => {
                assert_eq!(*matched_bytes, first_event_bytes)
            }
            // The export's short array is closed (`\n]`), so it differs from the full one at the close.
            (200, ResponseCheck::Wrong { first_wrong_byte }) if shape == StreamedBody::Export => {
                assert_eq!(*first_wrong_byte, first_event_bytes - 2)
            }
            other => panic!("{endpoint}: the merged fix answered {other:?}"),
        }
        assert!(
            matches!(checks[2], (200, ResponseCheck::Verified { .. })),
            "{checks:?}"
        );
    }
}
