//! Events served per second by each of seed C's techniques, over real HTTP on loopback: one 4 MiB AG-UI log, one
//! client fetching `GET /sessions/{id}/events` and verifying nothing (the body is only counted), so the figure is
//! the server's. Criterion's throughput is in events (elements) per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memproof::event_log::client::LoopbackClient;
use memproof::event_log::generate::{LogShape, write_session_log};
use memproof::event_log::{LogReadTechnique, ServerConfig, start_server};

fn events_served_per_second(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let facts = write_session_log(
        &dir.path().join("bench.jsonl"),
        &LogShape {
            target_bytes: 4 * 1024 * 1024,
            large_event_every: 400,
            large_event_bytes: 200_000,
            overlong_event_bytes: 0,
            overlong_at_fraction: 0.0,
            seed: 11,
        },
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(async { LoopbackClient::new() });
    let mut group = c.benchmark_group("event_log_events");
    group.throughput(Throughput::Elements(facts.events));
    group.sample_size(10);
    for technique in LogReadTechnique::ALL {
        let server = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            start_server(ServerConfig::for_technique(technique, dir.path()), listener).unwrap()
        });
        let uri = format!("{}/sessions/bench/events", server.base_uri());
        group.bench_function(technique.name(), |b| {
            b.iter(|| {
                let timing = runtime
                    .block_on(client.get_streaming(&uri, |_| {}))
                    .unwrap();
                assert_eq!(timing.status, 200);
                timing.body_bytes
            })
        });
        runtime.block_on(server.stop()).unwrap();
    }
    group.finish();
}

criterion_group!(benches, events_served_per_second);
criterion_main!(benches);
