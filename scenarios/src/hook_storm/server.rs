//! The store's side of the storm: a tokio `UnixListener` on a current-thread runtime (one thread, as the seed's
//! Node.js store had), one task per connection applying each message to the store and acknowledging it. It runs
//! in the measured case process for the graceful ending, and in a `store_server` subprocess for the endings that
//! kill or restart it.
//!
//! The store's time is the storm's clock ([`StormClock`]), not the machine's: a debounce window closes when the
//! first message at or past its deadline arrives, and its write happens then, before that message is applied. A
//! timer on the machine's clock would write the same state (every message before the deadline, none after), but
//! how many windows a storm spans would then depend on how fast the machine plays it (see `super::wire`). A store
//! that is killed between a deadline and the next message loses that window, as it would if the kill had come
//! just before a timer's write.

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

/// The storm's clock as the store reads it: the store's opening instant plus each message's `at_us`, never going
/// back (messages of different connections can arrive a little out of their schedule's order).
#[derive(Debug, Clone, Copy)]
pub struct StormClock {
    origin: Instant,
    latest: Instant,
}

impl StormClock {
    /// A clock whose zero is `origin`: the instant the store was opened with, so a window that the store's load
    /// opened (a startup prune to persist) closes on the same schedule as the storm's.
    pub fn starting_at(origin: Instant) -> StormClock {
        StormClock {
            origin,
            latest: origin,
        }
    }

    /// The store's `now` for a message sent at `at_us` on the storm's clock.
    pub fn now(&mut self, at_us: u64) -> Instant {
        self.latest = self.latest.max(self.origin + Duration::from_micros(at_us));
        self.latest
    }
}

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

/// What the connections share: the store's figures and its clock.
#[derive(Debug)]
struct Served {
    figures: ServeFigures,
    clock: StormClock,
}

/// Applies one message at its time on the storm's clock, after the write of any window that closed by then;
/// returns its acknowledgement and whether it asked for shutdown.
fn apply_message(store: &SharedStore, line: &str, served: &mut Served) -> (HookAck, bool) {
    let refused = |error: String| HookAck {
        ok: false,
        seq: None,
        error: Some(error),
    };
    let message: HookMessage = match serde_json::from_str(line) {
        Ok(message) => message,
        Err(error) => return (refused(format!("not a hook message: {error}")), false),
    };
    let now = served.clock.now(message.at_us());
    if let Err(error) = lock(store).persist_if_due(now) {
        // The store stays dirty and tries again at the next message, as it would at its timer's next turn.
        eprintln!("hook-storm store: a debounced write failed: {error}");
    }
    let figures = &mut served.figures;
    let outcome = match message {
        HookMessage::Shutdown { .. } => {
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
        HookMessage::Open { session, .. } => lock(store).open_session(&session, now).map(|()| None),
        HookMessage::Event {
            session,
            hook,
            body,
            ..
        } => lock(store)
            .append_event(&session, &hook, &body, now)
            .map(Some),
        HookMessage::End {
            session, status, ..
        } => match parse_status(&status) {
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

/// Serves hook messages on `listener` until a shutdown message arrives or `stop` resolves (the sender is gone),
/// on the storm's clock started at `clock_origin` (the instant the store was opened with). Does not flush: the
/// caller decides how the store ends.
pub async fn serve_hook_events(
    store: SharedStore,
    listener: UnixListener,
    clock_origin: Instant,
    stop: impl std::future::Future<Output = ()>,
) -> ServeFigures {
    let served = Arc::new(Mutex::new(Served {
        figures: ServeFigures::default(),
        clock: StormClock::starting_at(clock_origin),
    }));
    let shutdown = Arc::new(tokio::sync::Notify::new());
    let accept_loop = {
        let store = store.clone();
        let served = served.clone();
        let shutdown = shutdown.clone();
        async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let store = store.clone();
                let served = served.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    let (reader, mut writer) = stream.into_split();
                    let mut lines = BufReader::new(reader).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let (ack, stop_now) = {
                            let mut served = served.lock().unwrap_or_else(|p| p.into_inner());
                            apply_message(&store, &line, &mut served)
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
    served.lock().unwrap_or_else(|p| p.into_inner()).figures
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook_storm::{StoreSettings, tokio_runtime};
    use memproof::session_store::StoreTechnique;

    const WINDOW_MS: u64 = 50;

    /// Serves a debounced store over a real socket while a client sends `times_us` as one session's events,
    /// sleeping `real_gap` between them, then shuts down; returns the store's whole-state writes during the storm.
    fn writes_during_storm(times_us: &[u64], real_gap: Duration) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let settings = StoreSettings {
            max_events_per_session: 1000,
            debounce_ms: WINDOW_MS,
            max_event_bytes: 1 << 20,
            compact_min_journal_bytes: 1 << 20,
            undone: None,
            keep_ended_sessions_at_load: false,
            keep_every_event: false,
        };
        let opened_at = Instant::now();
        let store = StoreTechnique::from_name("debounced_snapshot")
            .unwrap()
            .open(
                &dir.path().join("sessions.json"),
                settings.config(),
                opened_at,
            )
            .unwrap();
        let store: SharedStore = Arc::new(Mutex::new(store));
        let socket = dir.path().join("store.sock");
        let listener = {
            let _guard = tokio_runtime().unwrap();
            std::os::unix::net::UnixListener::bind(&socket).unwrap()
        };
        let runtime = tokio_runtime().unwrap();
        let times = times_us.to_vec();
        runtime.block_on(async {
            listener.set_nonblocking(true).unwrap();
            let listener = UnixListener::from_std(listener).unwrap();
            let client = tokio::spawn(async move {
                let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
                let (reader, mut writer) = stream.into_split();
                let mut acks = BufReader::new(reader).lines();
                let mut messages = vec![HookMessage::Open {
                    at_us: 0,
                    session: "s".into(),
                }];
                messages.extend(times.iter().map(|&at_us| HookMessage::Event {
                    at_us,
                    session: "s".into(),
                    hook: "Stop".into(),
                    body: "{}".into(),
                }));
                let last = times.last().copied().unwrap_or(0);
                messages.push(HookMessage::Shutdown { at_us: last });
                for message in messages {
                    let mut text = serde_json::to_vec(&message).unwrap();
                    text.push(b'\n');
                    writer.write_all(&text).await.unwrap();
                    let ack: HookAck =
                        serde_json::from_str(&acks.next_line().await.unwrap().unwrap()).unwrap();
                    assert!(ack.ok, "{message:?}: {ack:?}");
                    tokio::time::sleep(real_gap).await;
                }
            });
            serve_hook_events(store.clone(), listener, opened_at, std::future::pending()).await;
            client.await.unwrap();
        });
        lock(&store).persist_stats().n_snapshot_writes
    }

    #[test]
    fn the_store_writes_on_the_storm_clock_whatever_the_machine_clock_does() {
        // Three windows of the storm's clock played as fast as the machine goes: a write at each of the two
        // messages past a deadline (the third window is left to the caller's flush).
        let spread: Vec<u64> = (0..12).map(|n| n * WINDOW_MS * 1000 / 4).collect();
        assert_eq!(writes_during_storm(&spread, Duration::ZERO), 2);
        // The same schedule played slowly (each message two windows after the last on the machine's clock):
        // the same writes.
        assert_eq!(
            writes_during_storm(&spread, Duration::from_millis(2 * WINDOW_MS)),
            2
        );
        // A burst (every event at time 0) played slowly: one window, no write before the flush, however long
        // the machine took.
        assert_eq!(
            writes_during_storm(&[0; 6], Duration::from_millis(2 * WINDOW_MS)),
            0
        );
    }

    #[test]
    fn the_storm_clock_counts_from_its_origin_and_never_goes_back() {
        let origin = Instant::now();
        let mut clock = StormClock::starting_at(origin);
        assert_eq!(clock.now(0), origin);
        assert_eq!(clock.now(53_000), origin + Duration::from_millis(53));
        // A message of another connection, scheduled earlier, arriving late.
        assert_eq!(clock.now(40_000), origin + Duration::from_millis(53));
        assert_eq!(clock.now(106_000), origin + Duration::from_millis(106));
    }
}
