//! The HTTP server over a directory of session logs: axum 0.8 on hyper 1 and tokio.
//!
//! axum because it is the tokio project's own web framework, a thin, well-kept layer over hyper (the HTTP
//! implementation most of the Rust ecosystem runs on): routing and extraction without a runtime of its own, and a
//! body type that takes a stream, which is what the streaming technique needs to send chunks as it reads them.
//!
//! Routes (the wire forms are in [`super::wire`]):
//! - `GET /sessions/{id}/events`: the session's events, replayed in order;
//! - `GET /sessions/{id}/export`: the whole log as one JSON array;
//! - `GET /sessions?limit=&cursor=`: the session listing ([`super::listing`]);
//! - `GET /upstream/{*path}`: the proxy path to the configured upstream ([`super::upstream_proxy`]).
//!
//! Which technique serves them is the server's [`LogReadTechnique`]; everything else (routing, session ids, the
//! cache with its stale sweep) is shared.

use super::LogReadTechnique;
use super::error::EventLogError;
use super::listing::{ListingQuery, list_all_at_once, list_one_page};
use super::read_whole_file::{parse_all, whole_events_body, whole_export_body};
use super::scan_lines_capped::{SCANNER_MAX_LINE_BYTES, scan_lines_collect};
use super::session_cache::{SessionCache, StalePolicy, StreamGuard};
use super::session_dir::SessionDir;
use super::stream_to_body::{
    CHUNK_BYTES, CollectingSink, StreamedBody, stream_response_body, stream_to_sink,
};
use super::upstream_proxy::{
    ERROR_BODY_CAP_BYTES, ErrorBodyRead, UpstreamClient, proxy_get, upstream_client,
};
use super::wire::{EVENTS_CONTENT_TYPE, EXPORT_CONTENT_TYPE, push_event_frame};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The streaming technique's default hard limit on one line: far above any AG-UI event seed C saw, low enough
/// that one request cannot be made to hold an unbounded line.
pub const DEFAULT_HARD_LINE_LIMIT_BYTES: usize = 64 * 1024 * 1024;

/// How a server is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub technique: LogReadTechnique,
    pub log_dir: PathBuf,
    /// The streaming technique's hard limit on a line (an error, never a truncation).
    pub hard_line_limit: usize,
    /// The capped scanner's maximum line (a silent stop, as the merged fix did).
    pub scanner_max_line: usize,
    pub stale_policy: StalePolicy,
    /// Base URI of the upstream behind `/upstream/`, e.g. `http://127.0.0.1:9000`.
    pub upstream_base: Option<String>,
    /// The streaming technique collects the whole body before sending it: its one change (to the socket as read)
    /// undone, the counterfactual its verdicts must fail on. `false` in every real technique.
    pub collect_before_sending: bool,
}

impl ServerConfig {
    /// The settings each technique had in seed C: the faulty server's 1 h stale threshold, the merged fix's 1 MiB
    /// line and 10 min threshold, the streaming version's hard limit and touch-while-streaming.
    pub fn for_technique(technique: LogReadTechnique, log_dir: &std::path::Path) -> ServerConfig {
        let stale_policy = match technique {
            LogReadTechnique::ReadWholeFile => StalePolicy::BEFORE_FIX,
            LogReadTechnique::ScanLinesCollect => StalePolicy::MERGED_FIX,
            LogReadTechnique::StreamToBody => StalePolicy::TOUCHED_WHILE_STREAMING,
        };
        ServerConfig {
            technique,
            log_dir: log_dir.to_path_buf(),
            hard_line_limit: DEFAULT_HARD_LINE_LIMIT_BYTES,
            scanner_max_line: SCANNER_MAX_LINE_BYTES,
            stale_policy,
            upstream_base: None,
            collect_before_sending: false,
        }
    }
}

/// What the handlers share.
pub struct ServerState {
    pub config: ServerConfig,
    pub dir: SessionDir,
    pub cache: Arc<SessionCache>,
    upstream: UpstreamClient,
}

/// The router with its state; [`start_server`] serves it.
pub fn router(config: ServerConfig) -> (axum::Router, Arc<ServerState>) {
    let state = Arc::new(ServerState {
        dir: SessionDir::new(&config.log_dir),
        cache: SessionCache::new(config.stale_policy),
        upstream: upstream_client(),
        config,
    });
    let router = axum::Router::new()
        .route("/sessions", axum::routing::get(listing))
        .route("/sessions/{id}/events", axum::routing::get(events))
        .route("/sessions/{id}/export", axum::routing::get(export))
        .route("/upstream/{*path}", axum::routing::get(upstream))
        .with_state(Arc::clone(&state));
    (router, state)
}

/// A server running on the current tokio runtime.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    sweeper: tokio::task::JoinHandle<()>,
}

/// Serves `config` on `listener` (bind it to `127.0.0.1:0` and read the port from [`RunningServer::addr`]) and
/// starts the cache's stale sweep.
pub fn start_server(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
) -> std::io::Result<RunningServer> {
    let addr = listener.local_addr()?;
    let (router, state) = router(config);
    let (shutdown, shutdown_signal) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = shutdown_signal.await;
            })
            .await
    });
    let sweeper = state.cache.spawn_sweeper();
    Ok(RunningServer {
        addr,
        state,
        shutdown,
        serving,
        sweeper,
    })
}

impl RunningServer {
    /// The base URI, `http://127.0.0.1:PORT`.
    pub fn base_uri(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets responses in flight finish, stops the sweep.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.sweeper.abort();
        self.serving.await??;
        Ok(())
    }
}

type ServerStateRef = State<Arc<ServerState>>;

async fn events(State(state): ServerStateRef, Path(session): Path<String>) -> Response {
    serve_log(state, session, StreamedBody::Events).await
}

async fn export(State(state): ServerStateRef, Path(session): Path<String>) -> Response {
    serve_log(state, session, StreamedBody::Export).await
}

async fn listing(State(state): ServerStateRef, Query(query): Query<ListingQuery>) -> Response {
    let page = match state.config.technique {
        LogReadTechnique::ReadWholeFile => list_all_at_once(&state.dir),
        LogReadTechnique::ScanLinesCollect | LogReadTechnique::StreamToBody => {
            list_one_page(&state.dir, &query)
        }
    };
    match page {
        Ok(page) => (
            [(CONTENT_TYPE, "application/json")],
            serde_json::to_vec(&page).expect("serialising a listing cannot fail"),
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

async fn upstream(State(state): ServerStateRef, Path(path): Path<String>) -> Response {
    let Some(base) = &state.config.upstream_base else {
        return (
            axum::http::StatusCode::NOT_FOUND,
            "no upstream is configured for this server\n",
        )
            .into_response();
    };
    let error_body_read = match state.config.technique {
        LogReadTechnique::ReadWholeFile => ErrorBodyRead::Whole,
        LogReadTechnique::ScanLinesCollect | LogReadTechnique::StreamToBody => {
            ErrorBodyRead::CappedAt(ERROR_BODY_CAP_BYTES)
        }
    };
    proxy_get(
        &state.upstream,
        &format!("{}/{path}", base.trim_end_matches('/')),
        error_body_read,
    )
    .await
}

fn content_type(shape: StreamedBody) -> &'static str {
    match shape {
        StreamedBody::Events => EVENTS_CONTENT_TYPE,
        StreamedBody::Export => EXPORT_CONTENT_TYPE,
    }
}

async fn serve_log(state: Arc<ServerState>, session: String, shape: StreamedBody) -> Response {
    let file = match state.dir.open_log(&session) {
        Ok(file) => file,
        Err(error) => return error.into_response(),
    };
    let guard = state.cache.start_stream(&session);
    let body = match state.config.technique {
        LogReadTechnique::StreamToBody if state.config.collect_before_sending => {
            let limit = state.config.hard_line_limit;
            let whole = tokio::task::spawn_blocking(move || {
                let mut sink = CollectingSink::default();
                // As in the streamed body, an error is already written into it.
                let _ = stream_to_sink(&session, file, limit, shape, Some(&guard), &mut sink);
                sink.0
            })
            .await
            .expect("the log reading task does not panic");
            Body::from(whole)
        }
        LogReadTechnique::StreamToBody => {
            stream_response_body(session, file, state.config.hard_line_limit, shape, guard)
        }
        LogReadTechnique::ReadWholeFile | LogReadTechnique::ScanLinesCollect => {
            match collect_then_respond(&state, session, file, shape, guard).await {
                Ok(body) => body,
                Err(error) => return error.into_response(),
            }
        }
    };
    ([(CONTENT_TYPE, content_type(shape))], body).into_response()
}

/// The two collecting techniques: every event is decoded and held before the first byte goes out.
async fn collect_then_respond(
    state: &ServerState,
    session: String,
    file: std::fs::File,
    shape: StreamedBody,
    guard: StreamGuard,
) -> Result<Body, EventLogError> {
    let technique = state.config.technique;
    let scanner_max_line = state.config.scanner_max_line;
    let collected = tokio::task::spawn_blocking(move || match technique {
        LogReadTechnique::ReadWholeFile => parse_all(&session, file),
        _ => scan_lines_collect(&session, file, scanner_max_line).map(|scan| scan.events),
    })
    .await
    .expect("the log reading task does not panic")?;
    let chunks: Box<dyn Iterator<Item = Bytes> + Send> = match (technique, shape) {
        // The faulty server builds the whole body, then sends it.
        (LogReadTechnique::ReadWholeFile, StreamedBody::Events) => {
            Box::new(std::iter::once(Bytes::from(whole_events_body(&collected))))
        }
        // The merged fix replays the collected events one by one into the response.
        (_, StreamedBody::Events) => Box::new(FramesOfCollectedEvents {
            events: collected.into_iter(),
        }),
        // Both pretty-print the whole array in one buffer, as seed C's export did.
        (_, StreamedBody::Export) => {
            Box::new(std::iter::once(Bytes::from(whole_export_body(&collected))))
        }
    };
    let chunks = ChunksHoldingGuard {
        chunks,
        _guard: guard,
    };
    Ok(Body::from_stream(futures_util::stream::iter(
        chunks.map(Ok::<Bytes, std::convert::Infallible>),
    )))
}

/// Encodes already collected events into chunks of about [`CHUNK_BYTES`] as the body asks for them.
struct FramesOfCollectedEvents {
    events: std::vec::IntoIter<Value>,
}

impl Iterator for FramesOfCollectedEvents {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let mut chunk = Vec::new();
        for event in self.events.by_ref() {
            push_event_frame(&event, &mut chunk);
            if chunk.len() >= CHUNK_BYTES {
                break;
            }
        }
        (!chunk.is_empty()).then(|| Bytes::from(chunk))
    }
}

/// Keeps the session's stream claim until the body has been sent (or the client has gone).
struct ChunksHoldingGuard {
    chunks: Box<dyn Iterator<Item = Bytes> + Send>,
    _guard: StreamGuard,
}

impl Iterator for ChunksHoldingGuard {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        self.chunks.next()
    }
}
