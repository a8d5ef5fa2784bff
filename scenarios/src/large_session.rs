//! Scenario `large-session` (seed C): a session's JSONL event log of tens to hundreds of MB on disk, served over
//! real HTTP on loopback by the measured process, while concurrent clients in a driver process replay its events
//! and export it and check every response against the file, byte for byte.
//!
//! Seed C's backend was OOM-killed at its 512 MiB limit because each `GET` of a long session's events read the whole
//! file; the `full` profile replays that limit at the seed's log sizes, the `ci` profile the same story scaled down
//! so it runs in seconds. The case process is only the server: the log is the scenario's shared fixture
//! (`planning::fixtures`: generated once per size, shape and seed by a process of its own before the first case
//! that reads it, then served read-only to each of the three roles), and the clients run in a driver process
//! (phase `serve`), so neither the generation's nor the clients' memory or time counts against the server.
//!
//! The requests go one at a time, in a fixed order (each client's first request, then each client's second, …), and
//! the server runs on a single-threaded runtime. Seed C's OOM needs no concurrency, one `GET` reading a whole log is
//! enough, and with concurrent clients how many responses the server held at one moment was a matter of
//! scheduling: over five ci runs the streaming server's peak heap spread 1.84x (9.8 to 18.1 MiB on the 6 MiB log)
//! and the merged fix's 1.37x. One request in flight makes the peak a property of the technique and the log.
//!
//! Parameters: `clients` (HTTP clients taking turns), `requests_per_client` (each alternates events and export),
//! `large_event_every` / `large_event_bytes` (a state snapshot of that size every n events),
//! `overlong_event_bytes` / `overlong_at_fraction` (one event on a line over the merged fix's 1 MiB scanner, placed
//! at that fraction of the log; 0 bytes for none). The size is the log's size in bytes.

use crate::{CaseContext, Scenario, spawn_driver};
use anyhow::{Context as _, bail};
use memproof::event_log::client::LoopbackClient;
use memproof::event_log::expected::{BodyVerifier, ExpectedBody, ResponseCheck};
use memproof::event_log::generate::{LogShape, write_session_log};
use memproof::event_log::{LogReadTechnique, ServerConfig, StreamedBody, start_server};
use meter::probe;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The scenario.
pub struct LargeSession;

/// The scenario's parameters (the module's doc says what each does); a key it does not read is refused.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LargeSessionParams {
    /// HTTP clients taking turns.
    pub clients: u64,
    /// Requests each client makes, alternating events and export.
    pub requests_per_client: u64,
    /// A state snapshot every this many events.
    pub large_event_every: u64,
    /// The snapshot's size.
    #[serde(deserialize_with = "crate::params::size")]
    pub large_event_bytes: u64,
    /// The one event over the merged fix's 1 MiB scanner; 0 for none.
    #[serde(deserialize_with = "crate::params::size")]
    pub overlong_event_bytes: u64,
    /// Where in the log the overlong event stands, as a fraction of it.
    pub overlong_at_fraction: f64,
}

/// The log directory inside the fixture's data directory.
const LOG_DIR: &str = "logs";

/// The one session every client asks for.
const SESSION_ID: &str = "large";

/// The streaming server with its one change undone (`load-test --prove`'s counterfactual): the same reader and
/// encoder, the whole body collected before the first byte is sent.
const STREAM_TO_BODY_COLLECTED: &str = "stream_to_body_collected";

impl Scenario for LargeSession {
    fn name(&self) -> &'static str {
        "large-session"
    }

    fn techniques(&self) -> Vec<&'static str> {
        let mut names = LogReadTechnique::NAMES.to_vec();
        names.push(STREAM_TO_BODY_COLLECTED);
        names
    }

    fn check_params(&self, params: &serde_json::Map<String, Value>) -> anyhow::Result<()> {
        crate::params::read::<LargeSessionParams>(params).map(drop)
    }

    fn run_case(&self, case: &CaseContext) -> anyhow::Result<()> {
        let params: LargeSessionParams = case.read_params()?;
        let collect_before_sending = case.technique == STREAM_TO_BODY_COLLECTED;
        let technique = if collect_before_sending {
            LogReadTechnique::StreamToBody
        } else {
            LogReadTechnique::from_name(&case.technique)
                .with_context(|| format!("large-session: unknown technique {:?}", case.technique))?
        };
        // The log is the fixture every role at this size reads; the server only ever reads its directory.
        let fixture = case.fixture()?;
        let facts = fixture.manifest.figures;
        let log_dir = fixture.data_dir.join(LOG_DIR);
        let log_path = log_dir.join(format!("{SESSION_ID}.jsonl"));

        // One thread serves: with one request in flight, a second worker only makes the heap's shape a matter of
        // which thread ran which task.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the server's tokio runtime")?;
        probe::phase("serve");
        let load_args = json!({
            "mode": "load",
            "log_path": log_path,
            "clients": params.clients,
            "requests_per_client": params.requests_per_client,
        });
        let (figures, evicted_while_streaming) = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let config = ServerConfig {
                collect_before_sending,
                ..ServerConfig::for_technique(technique, &log_dir)
            };
            let server = start_server(config, listener)?;
            let mut load_args = load_args;
            load_args["base_uri"] = server.base_uri().into();
            let driver = spawn_driver(&LargeSession, &load_args)?;
            let figures = tokio::task::spawn_blocking(move || driver.wait()).await??;
            let evicted_while_streaming = server.state.cache.evicted_while_streaming();
            server.stop().await?;
            anyhow::Ok((figures, evicted_while_streaming))
        })?;
        drop(runtime);
        probe::phase("done");

        for name in ["events", "bytes", "longest_line_bytes"] {
            probe::metric(&format!("log_{name}"), &facts[name]);
        }
        if let Value::Object(figures) = figures {
            for (name, value) in figures {
                probe::metric(&name, value);
            }
        }
        probe::metric("sessions_evicted_while_streaming", evicted_while_streaming);
        Ok(())
    }

    fn run_driver(&self, args: &Value) -> anyhow::Result<Value> {
        match args["mode"].as_str() {
            Some("load") => run_load(args),
            other => bail!("large-session driver: mode {other:?}: expected \"load\""),
        }
    }

    fn fixture_key(&self, case: &CaseContext) -> anyhow::Result<Option<Value>> {
        let params: LargeSessionParams = case.read_params()?;
        Ok(Some(json!({
            "target_bytes": case.size_u64(),
            "large_event_every": params.large_event_every,
            "large_event_bytes": params.large_event_bytes,
            "overlong_event_bytes": params.overlong_event_bytes,
            "overlong_at_fraction": params.overlong_at_fraction,
            "seed": case.seed,
        })))
    }

    fn make_fixture(&self, key: &Value, data_dir: &std::path::Path) -> anyhow::Result<Value> {
        let log_dir = data_dir.join(LOG_DIR);
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("cannot create {}", log_dir.display()))?;
        let path = log_dir.join(format!("{SESSION_ID}.jsonl"));
        generate_log(&json!({"path": path, "shape": key}))
    }
}

fn arg_u64(args: &Value, name: &str) -> anyhow::Result<u64> {
    args[name].as_u64().with_context(|| {
        format!(
            "large-session driver: {name} = {}: expected a whole number",
            args[name]
        )
    })
}

fn arg_path(args: &Value, name: &str) -> anyhow::Result<PathBuf> {
    args[name].as_str().map(PathBuf::from).with_context(|| {
        format!(
            "large-session driver: {name} = {}: expected a path",
            args[name]
        )
    })
}

/// Writes the log, streaming to disk, and returns its facts.
fn generate_log(args: &Value) -> anyhow::Result<Value> {
    let path = arg_path(args, "path")?;
    let shape = &args["shape"];
    let shape = LogShape {
        target_bytes: arg_u64(shape, "target_bytes")?,
        large_event_every: arg_u64(shape, "large_event_every")?,
        large_event_bytes: arg_u64(shape, "large_event_bytes")?,
        overlong_event_bytes: arg_u64(shape, "overlong_event_bytes")?,
        overlong_at_fraction: shape["overlong_at_fraction"].as_f64().unwrap_or(0.0),
        seed: arg_u64(shape, "seed")?,
    };
    let facts = write_session_log(&path, &shape)
        .with_context(|| format!("cannot write the session log {}", path.display()))?;
    Ok(serde_json::to_value(facts)?)
}

/// What one request gave.
struct RequestOutcome {
    check: ResponseCheck,
    status: u16,
    time_to_first_byte: Option<Duration>,
    total: Duration,
    body_bytes: u64,
    events_served: u64,
}

/// Counts server-sent events in a body as it arrives: each ends with a blank line, and JSON has no raw newline.
#[derive(Default)]
struct EventFrameCounter {
    previous_was_newline: bool,
    frames: u64,
}

impl EventFrameCounter {
    fn feed(&mut self, chunk: &[u8]) {
        for &byte in chunk {
            let newline = byte == b'\n';
            if newline && self.previous_was_newline {
                self.frames += 1;
            }
            self.previous_was_newline = newline && !self.previous_was_newline;
        }
    }
}

async fn one_request(
    client: &LoopbackClient,
    base_uri: &str,
    log_path: &Path,
    shape: StreamedBody,
) -> anyhow::Result<RequestOutcome> {
    let endpoint = match shape {
        StreamedBody::Events => "events",
        StreamedBody::Export => "export",
    };
    let expected = ExpectedBody::open(log_path, SESSION_ID, shape)?;
    let mut verifier = BodyVerifier::new(expected);
    let mut counter = EventFrameCounter::default();
    let mut feed_error = None;
    let timing = client
        .get_streaming(
            &format!("{base_uri}/sessions/{SESSION_ID}/{endpoint}"),
            |chunk| {
                if shape == StreamedBody::Events {
                    counter.feed(chunk);
                }
                if feed_error.is_none() {
                    feed_error = verifier.feed(chunk).err();
                }
            },
        )
        .await?;
    if let Some(error) = feed_error {
        bail!("the log on disk is not well-formed, so no response can be checked: {error}");
    }
    Ok(RequestOutcome {
        check: verifier.finish()?,
        status: timing.status,
        time_to_first_byte: timing.time_to_first_byte,
        total: timing.total,
        body_bytes: timing.body_bytes,
        events_served: counter.frames,
    })
}

/// Runs the clients against the server and returns their figures.
fn run_load(args: &Value) -> anyhow::Result<Value> {
    let base_uri = args["base_uri"]
        .as_str()
        .context("large-session driver: base_uri missing")?
        .to_string();
    let log_path = arg_path(args, "log_path")?;
    let clients = arg_u64(args, "clients")?.max(1);
    let requests_per_client = arg_u64(args, "requests_per_client")?.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let outcomes: Vec<RequestOutcome> = runtime.block_on(async {
        let client_pool: Vec<LoopbackClient> =
            (0..clients).map(|_| LoopbackClient::new()).collect();
        let mut all = Vec::new();
        for (client_index, request_index) in request_order(clients, requests_per_client) {
            let shape = if (client_index + request_index) % 2 == 0 {
                StreamedBody::Events
            } else {
                StreamedBody::Export
            };
            let client = &client_pool[client_index as usize];
            all.push(one_request(client, &base_uri, &log_path, shape).await?);
        }
        anyhow::Ok(all)
    })?;
    let load_seconds = started.elapsed().as_secs_f64();
    Ok(summarise(&outcomes, load_seconds))
}

/// The fixed order the requests go in, one at a time: `(client, request)`, every client's first request, then
/// every client's second, and so on.
fn request_order(clients: u64, requests_per_client: u64) -> Vec<(u64, u64)> {
    (0..requests_per_client)
        .flat_map(|request| (0..clients).map(move |client| (client, request)))
        .collect()
}

fn summarise(outcomes: &[RequestOutcome], load_seconds: f64) -> Value {
    let count = |wanted: fn(&RequestOutcome) -> bool| outcomes.iter().filter(|o| wanted(o)).count();
    let millis = |duration: Duration| duration.as_secs_f64() * 1000.0;
    let ttfb: Vec<f64> = outcomes
        .iter()
        .filter_map(|o| o.time_to_first_byte.map(millis))
        .collect();
    let totals: Vec<f64> = outcomes.iter().map(|o| millis(o.total)).collect();
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let max = |values: &[f64]| values.iter().copied().fold(0.0, f64::max);
    let events_served: u64 = outcomes.iter().map(|o| o.events_served).sum();
    json!({
        "requests": outcomes.len(),
        "bytes_served": outcomes.iter().map(|o| o.body_bytes).sum::<u64>(),
        "responses_verified": count(|o| o.status == 200 && matches!(o.check, ResponseCheck::Verified { .. })),
        "responses_short": count(|o| matches!(o.check, ResponseCheck::Short { .. })),
        "responses_wrong": count(|o| matches!(o.check, ResponseCheck::Wrong { .. })),
        "responses_error_reported": count(|o| matches!(o.check, ResponseCheck::ReportedError { .. })),
        "responses_not_200": count(|o| o.status != 200),
        "time_to_first_byte_ms_mean": mean(&ttfb),
        "time_to_first_byte_ms_max": max(&ttfb),
        "request_total_ms_mean": mean(&totals),
        "request_total_ms_max": max(&totals),
        "events_served": events_served,
        "events_per_second": events_served as f64 / load_seconds.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_take_turns_client_by_client() {
        assert_eq!(
            request_order(3, 2),
            [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
        );
    }

    #[test]
    fn the_frame_counter_counts_events_across_chunk_boundaries() {
        let body = b"data: {\"a\":1}\n\ndata: {\"b\":\"x\\ny\"}\n\ndata: 3\n\n";
        for chunk in [1, 2, 5, 100] {
            let mut counter = EventFrameCounter::default();
            for piece in body.chunks(chunk) {
                counter.feed(piece);
            }
            assert_eq!(counter.frames, 3, "chunk {chunk}");
        }
    }
}
