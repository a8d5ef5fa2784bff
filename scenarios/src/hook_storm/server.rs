//! The store's side of the storm: a tokio `UnixListener` on a current-thread runtime (one thread, as the seed's
//! Node.js store had), one task per connection applying each message to the store and acknowledging it, and one
//! timer task that writes when the debounce window closes. It runs in the measured case process for the graceful
//! ending, and in a `store_server` subprocess for the endings that kill or restart it.

use super::wire::{HookAck, HookMessage};
use memproof::session_store::{SessionStatus, SessionStore};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixListener;

/// What the store did during the storm.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeFigures {
    /// Events accepted and acknowledged.
    pub n_appends_ok: u64,
    /// Messages refused with an error (the store went on).
    pub n_refused: u64,
    /// Whether the storm ended with a shutdown message (rather than the sender going away).
    pub shutdown_requested: bool,
}

type SharedStore = Arc<Mutex<Box<dyn SessionStore>>>;

fn lock(store: &SharedStore) -> std::sync::MutexGuard<'_, Box<dyn SessionStore>> {
    store.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn parse_status(text: &str) -> Option<SessionStatus> {
    match text {
        "completed" => Some(SessionStatus::Completed),
        "failed" => Some(SessionStatus::Failed),
        "closed" => Some(SessionStatus::Closed),
        _ => None,
    }
}

/// Applies one message; returns its acknowledgement and whether it asked for shutdown.
fn apply_message(store: &SharedStore, line: &str, figures: &mut ServeFigures) -> (HookAck, bool) {
    let refused = |error: String| HookAck {
        ok: false,
        seq: None,
        error: Some(error),
    };
    let message: HookMessage = match serde_json::from_str(line) {
        Ok(message) => message,
        Err(error) => return (refused(format!("not a hook message: {error}")), false),
    };
    let now = Instant::now();
    let outcome = match message {
        HookMessage::Shutdown => {
            figures.shutdown_requested = true;
            return (
                HookAck {
                    ok: true,
                    seq: None,
                    error: None,
                },
                true,
            );
        }
        HookMessage::Open { session } => lock(store).open_session(&session, now).map(|()| None),
        HookMessage::Event {
            session,
            hook,
            body,
        } => lock(store)
            .append_event(&session, &hook, &body, now)
            .map(Some),
        HookMessage::End { session, status } => match parse_status(&status) {
            Some(status) => lock(store)
                .end_session(&session, status, now)
                .map(|()| None),
            None => {
                figures.n_refused += 1;
                return (
                    refused(format!(
                        "status {status:?}: expected completed, failed or closed"
                    )),
                    false,
                );
            }
        },
    };
    match outcome {
        Ok(seq) => {
            figures.n_appends_ok += u64::from(seq.is_some());
            (
                HookAck {
                    ok: true,
                    seq,
                    error: None,
                },
                false,
            )
        }
        Err(error) => {
            figures.n_refused += 1;
            (refused(error.to_string()), false)
        }
    }
}

/// Serves hook messages on `listener` until a shutdown message arrives or `stop` resolves (the sender is gone).
/// Does not flush: the caller decides how the store ends.
pub async fn serve_hook_events(
    store: SharedStore,
    listener: UnixListener,
    stop: impl std::future::Future<Output = ()>,
) -> ServeFigures {
    let figures = Arc::new(Mutex::new(ServeFigures::default()));
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let timer = tokio::spawn(persist_when_due(store.clone()));
    let accept_loop = {
        let store = store.clone();
        let figures = figures.clone();
        let shutdown = shutdown.clone();
        async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let store = store.clone();
                let figures = figures.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let (reader, mut writer) = stream.into_split();
                    let mut lines = BufReader::new(reader).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let (ack, stop_now) = {
                            let mut figures = figures.lock().unwrap_or_else(|p| p.into_inner());
                            apply_message(&store, &line, &mut figures)
                        };
                        let mut text = serde_json::to_vec(&ack).expect("an ack serialises");
                        text.push(b'\n');
                        if writer.write_all(&text).await.is_err() {
                            break;
                        }
                        if stop_now {
                            shutdown.notify_one();
                            break;
                        }
                    }
                });
            }
        }
    };
    tokio::select! {
        () = accept_loop => {}
        () = shutdown.notified() => {}
        () = stop => {}
    }
    timer.abort();
    *figures.lock().unwrap_or_else(|p| p.into_inner())
}

/// The debounce timer: sleeps until the store's window closes, then lets it write.
async fn persist_when_due(store: SharedStore) {
    const IDLE_CHECK: Duration = Duration::from_millis(20);
    loop {
        let deadline = lock(&store).persist_deadline();
        let wake = deadline.unwrap_or_else(|| Instant::now() + IDLE_CHECK);
        tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
        if let Err(error) = lock(&store).persist_if_due(Instant::now()) {
            eprintln!("hook-storm store: a debounced write failed: {error}");
        }
    }
}
