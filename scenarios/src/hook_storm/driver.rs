//! The processes around the measured store: the hook sender that plays the storm (`storm`) and the store itself as
//! a subprocess (`store_server`) for the endings that SIGKILL or restart it, both this same binary's `driver`
//! subcommand told apart by the `mode` of their arguments; and the writer of the seed-shaped starting state
//! ([`write_seed_state`]), which runs as the scenario's fixture (`memproof-case fixture`), so that generating it
//! never counts against the store.
//!
//! The storm's shape follows the seed: hooks firing across hundreds of sessions (~220 in the seed), some sessions
//! new, some ending along the way, bodies of varied size; several connections each send one message and wait for
//! its acknowledgement, as hook scripts do. Under a `kill` plan the sender itself SIGKILLs the store right after
//! a seeded number of acknowledged events, so it knows exactly what was acknowledged before the kill.

use super::server::serve_hook_events;
use super::wire::{HookAck, HookMessage};
use super::{StoreSettings, tokio_runtime};
use memproof::payload::Rng;
use memproof::session_store::StoreTechnique;
use memproof::session_store::atomic_replace::replace_file_atomically;
use memproof::session_store::state_file::serialize_state_streaming;
use memproof::session_store::synthetic_state::{
    StateShape, generate_state, hook_body, random_body_bytes, random_hook_name,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixStream;

/// Arguments of the `seed_state` mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedStateArgs {
    pub path: PathBuf,
    pub seed: u64,
    pub n_events: usize,
}

/// One session of the starting state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeededSession {
    pub id: String,
    pub n_events: u64,
    pub ended: bool,
}

/// What `seed_state` wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeededState {
    pub file_bytes: u64,
    pub n_events: u64,
    pub sessions: Vec<SeededSession>,
}

/// Writes the seed-shaped starting state to `args.path`.
pub fn write_seed_state(args: &SeedStateArgs) -> anyhow::Result<SeededState> {
    let state = generate_state(
        &mut Rng::new(args.seed),
        StateShape::seed_like(args.n_events),
    );
    let file_bytes =
        replace_file_atomically(&args.path, |out| serialize_state_streaming(&state, out))?;
    Ok(SeededState {
        file_bytes,
        n_events: state.n_events() as u64,
        sessions: state
            .sessions
            .iter()
            .map(|(id, session)| SeededSession {
                id: id.clone(),
                n_events: session.events.len() as u64,
                ended: session.status.is_terminal(),
            })
            .collect(),
    })
}

/// When the sender kills the store.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct KillPlan {
    pub pid: i32,
    /// SIGKILL right after this many acknowledged events.
    pub after_acks: u64,
}

/// Arguments of the `storm` mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StormPlan {
    pub socket: PathBuf,
    pub seed: u64,
    pub storm_events: usize,
    /// Sessions the storm's events go to.
    pub storm_sessions: usize,
    /// Of those, how many the storm opens (the rest are active sessions of the starting state).
    pub new_sessions: usize,
    /// Of those, how many end once their last event is acknowledged.
    pub ended_sessions: usize,
    pub connections: usize,
    /// The storm's pace over all connections: connection c's n-th event is sent at (n x connections + c) /
    /// events_per_second, on the machine's clock and on the storm's (the store's clock, see `super::wire`). 0 is a
    /// burst: every event at the storm's time 0, each sent as soon as the previous one is acknowledged.
    pub events_per_second: f64,
    pub min_body_bytes: usize,
    pub max_body_bytes: usize,
    /// An event this large is sent once and must be refused (0: no bad inputs are sent).
    pub oversized_event_bytes: usize,
    /// Active sessions of the starting state.
    pub active_initial_sessions: Vec<String>,
    pub kill: Option<KillPlan>,
}

/// What the sender saw.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StormFigures {
    pub acked_appends: u64,
    /// Bytes of hook names and bodies of the acknowledged events.
    pub acked_content_bytes: u64,
    pub acked_per_session: BTreeMap<String, u64>,
    /// Each acknowledged event's time on the storm's clock (µs), per session, in order.
    pub ack_at_us_per_session: BTreeMap<String, Vec<u64>>,
    /// Sessions whose end was acknowledged.
    pub acked_ends: Vec<String>,
    /// Bad inputs refused, as they must be.
    pub refused_bad_inputs: u64,
    /// Good messages refused (must stay 0).
    pub unexpected_refusals: u64,
    /// Round trip of an event, send to acknowledgement, as the hook sender sees it.
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    /// Under a kill plan, the storm's clock (µs) at the kill: the time of the event whose acknowledgement set it off.
    pub kill_at_us: Option<u64>,
    pub storm_ms: f64,
}

/// One session's part of the storm.
struct SessionScript {
    id: String,
    is_new: bool,
    ends: bool,
    n_events: usize,
}

/// The store's figures when a `store_server` shuts down gracefully.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerFigures {
    pub n_appends_ok: u64,
    pub whole_state_writes: u64,
    pub journal_appends: u64,
    pub bytes_written: u64,
    pub write_amplification: f64,
}

/// Arguments of the `store_server` mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreServerArgs {
    pub technique: String,
    pub state_path: PathBuf,
    pub socket: PathBuf,
    pub settings: StoreSettings,
}

/// Runs a store on a socket until a shutdown message (then flushes and reports) or until it is killed.
pub fn run_store_server(args: &StoreServerArgs) -> anyhow::Result<ServerFigures> {
    let technique = StoreTechnique::from_name(&args.technique)
        .ok_or_else(|| anyhow::anyhow!("unknown store technique {:?}", args.technique))?;
    let opened_at = Instant::now();
    let store = technique.open(&args.state_path, args.settings.config(), opened_at)?;
    let stats_at_storm_start = store.persist_stats();
    let store = Arc::new(std::sync::Mutex::new(store));
    let runtime = tokio_runtime()?;
    let served = runtime.block_on(async {
        let listener = tokio::net::UnixListener::bind(&args.socket)?;
        anyhow::Ok(
            serve_hook_events(store.clone(), listener, opened_at, std::future::pending()).await,
        )
    })?;
    drop(runtime);
    let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
    store.flush()?;
    let stats = store.persist_stats().since(stats_at_storm_start);
    Ok(ServerFigures {
        n_appends_ok: served.n_appends_ok,
        whole_state_writes: stats.n_snapshot_writes,
        journal_appends: stats.n_journal_appends,
        bytes_written: stats.bytes_written,
        write_amplification: stats.write_amplification(),
    })
}

/// Deals the storm out: which sessions, how many events each, which end.
fn script_sessions(plan: &StormPlan, rng: &mut Rng) -> Vec<SessionScript> {
    let mut initial = plan.active_initial_sessions.clone();
    // A seeded shuffle, so the storm picks different initial sessions per seed.
    for i in (1..initial.len()).rev() {
        initial.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let n_from_initial = plan
        .storm_sessions
        .saturating_sub(plan.new_sessions)
        .min(initial.len());
    let mut scripts: Vec<SessionScript> = initial
        .into_iter()
        .take(n_from_initial)
        .map(|id| SessionScript {
            id,
            is_new: false,
            ends: false,
            n_events: 0,
        })
        .collect();
    for n in 0..plan.storm_sessions - n_from_initial {
        scripts.push(SessionScript {
            id: format!("storm-{n:05}"),
            is_new: true,
            ends: false,
            n_events: 0,
        });
    }
    for _ in 0..plan.storm_events {
        let at = rng.below(scripts.len() as u64) as usize;
        scripts[at].n_events += 1;
    }
    for n in 0..plan.ended_sessions.min(scripts.len()) {
        // Every third session ends, spread across connections and across old and new sessions.
        let at = (n * 3) % scripts.len();
        scripts[at].ends = true;
    }
    scripts
}

/// What one connection saw.
#[derive(Default)]
struct ConnectionFigures {
    acked_per_session: BTreeMap<String, u64>,
    ack_at_us_per_session: BTreeMap<String, Vec<u64>>,
    acked_ends: Vec<String>,
    acked_content_bytes: u64,
    refused_bad_inputs: u64,
    unexpected_refusals: u64,
    latencies_us: Vec<u64>,
    /// The connection's last time on the storm's clock.
    last_at_us: u64,
}

/// Shared between connections: the acknowledged-event count and the kill.
struct KillSwitch {
    acked: AtomicU64,
    kill: Option<KillPlan>,
    /// Set once, when the kill is sent: the storm's time of the event that set it off.
    kill_at_us: OnceLock<u64>,
}

impl KillSwitch {
    fn new(kill: Option<KillPlan>) -> KillSwitch {
        KillSwitch {
            acked: AtomicU64::new(0),
            kill,
            kill_at_us: OnceLock::new(),
        }
    }

    /// Counts one acknowledged event, sent at `at_us` on the storm's clock, and kills the store if this was the
    /// planned one.
    fn count_ack(&self, at_us: u64) {
        let acked = self.acked.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(kill) = self.kill
            && acked == kill.after_acks
        {
            // SAFETY: kill(2) with a pid the case gave us and a constant signal.
            unsafe { libc::kill(kill.pid, libc::SIGKILL) };
            let _ = self.kill_at_us.set(at_us);
        }
    }

    fn killed(&self) -> bool {
        self.kill_at_us.get().is_some()
    }

    fn kill_at_us(&self) -> Option<u64> {
        self.kill_at_us.get().copied()
    }
}

struct Connection {
    lines: tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
    writer: tokio::net::unix::OwnedWriteHalf,
}

impl Connection {
    async fn open(socket: &std::path::Path) -> anyhow::Result<Connection> {
        let stream = UnixStream::connect(socket).await?;
        let (reader, writer) = stream.into_split();
        Ok(Connection {
            lines: BufReader::new(reader).lines(),
            writer,
        })
    }

    /// Sends one message and reads its acknowledgement; `None` when the store has gone away.
    async fn send(&mut self, message: &HookMessage) -> Option<HookAck> {
        let mut text = serde_json::to_vec(message).expect("a message serialises");
        text.push(b'\n');
        self.writer.write_all(&text).await.ok()?;
        let line = self.lines.next_line().await.ok()??;
        serde_json::from_str(&line).ok()
    }
}

/// When each event of a connection is due: the connections take turns at the storm's pace, so the events of all
/// of them are sent one at a time in a fixed order. When every connection sent at once at the same instant (each at
/// its share of the pace), the order in which the store applied them was the scheduler's, and with it which events
/// of the instant a kill caught (best_killed's peak heap 1.091x, 1.000x since). The seed store, slower than the
/// pace, still applies what queued up in an order of its own (its total allocation at 400 events 1.029x).
#[derive(Debug, Clone, Copy)]
struct Turns {
    /// The storm's time 0 on the machine's clock, the same for every connection.
    origin: tokio::time::Instant,
    /// Between two events of the storm (0 for a burst).
    gap: std::time::Duration,
    connections: u32,
}

impl Turns {
    fn new(plan: &StormPlan, origin: tokio::time::Instant) -> Turns {
        Turns {
            origin,
            gap: if plan.events_per_second > 0.0 {
                std::time::Duration::from_secs_f64(1.0 / plan.events_per_second)
            } else {
                std::time::Duration::ZERO
            },
            connections: plan.connections.max(1) as u32,
        }
    }

    /// When connection `connection`'s `n`-th event is due, from the storm's start.
    fn due(&self, connection: u32, n: u32) -> std::time::Duration {
        self.gap * (n * self.connections + connection)
    }

    /// Waits until that time on the machine's clock; returns it on the storm's clock, in µs.
    async fn wait_for(&self, connection: u32, n: u32) -> u64 {
        let due = self.due(connection, n);
        if !due.is_zero() {
            tokio::time::sleep_until(self.origin + due).await;
        }
        due.as_micros() as u64
    }
}

/// One connection's share of the storm: its sessions' events, round-robin, each on its turn, then their ends.
async fn run_connection(
    plan: Arc<StormPlan>,
    scripts: Vec<SessionScript>,
    connection_number: u32,
    turns: Turns,
    switch: Arc<KillSwitch>,
) -> anyhow::Result<ConnectionFigures> {
    let seed = plan.seed ^ (u64::from(connection_number) + 1).wrapping_mul(0x9E37_79B9);
    let send_bad_inputs = connection_number == 0;
    let mut figures = ConnectionFigures::default();
    let mut rng = Rng::new(seed);
    let mut connection = Connection::open(&plan.socket).await?;
    for script in scripts.iter().filter(|script| script.is_new) {
        let Some(ack) = connection
            .send(&HookMessage::Open {
                at_us: 0,
                session: script.id.clone(),
            })
            .await
        else {
            return Ok(figures);
        };
        figures.unexpected_refusals += u64::from(!ack.ok);
    }
    if send_bad_inputs && plan.oversized_event_bytes > 0 {
        let bad = [
            HookMessage::Event {
                at_us: 0,
                session: "ghost-session".into(),
                hook: "Stop".into(),
                body: "{}".into(),
            },
            HookMessage::Event {
                at_us: 0,
                session: scripts.first().map_or_else(String::new, |s| s.id.clone()),
                hook: "PostToolUse".into(),
                body: "x".repeat(plan.oversized_event_bytes),
            },
        ];
        for message in &bad {
            let Some(ack) = connection.send(message).await else {
                return Ok(figures);
            };
            if ack.ok {
                anyhow::bail!("the store accepted a bad input it must refuse: {message:?}");
            }
            figures.refused_bad_inputs += 1;
        }
    }
    let mut remaining: Vec<usize> = scripts.iter().map(|script| script.n_events).collect();
    // A store slower than the pace simply falls behind it.
    let mut n_sent = 0u32;
    let mut ended = vec![false; scripts.len()];
    loop {
        let mut sent_any = false;
        for (at, script) in scripts.iter().enumerate() {
            if remaining[at] > 0 {
                remaining[at] -= 1;
                sent_any = true;
                let at_us = turns.wait_for(connection_number, n_sent).await;
                n_sent += 1;
                figures.last_at_us = at_us;
                let bytes = random_body_bytes(&mut rng, plan.min_body_bytes, plan.max_body_bytes);
                let hook = random_hook_name(&mut rng).to_string();
                let body = hook_body(&mut rng, bytes);
                let content_bytes = (hook.len() + body.len()) as u64;
                let started = Instant::now();
                let message = HookMessage::Event {
                    at_us,
                    session: script.id.clone(),
                    hook,
                    body,
                };
                let Some(ack) = connection.send(&message).await else {
                    return Ok(figures);
                };
                if !ack.ok {
                    figures.unexpected_refusals += 1;
                    continue;
                }
                figures
                    .latencies_us
                    .push(started.elapsed().as_micros() as u64);
                *figures
                    .acked_per_session
                    .entry(script.id.clone())
                    .or_default() += 1;
                figures
                    .ack_at_us_per_session
                    .entry(script.id.clone())
                    .or_default()
                    .push(at_us);
                figures.acked_content_bytes += content_bytes;
                switch.count_ack(at_us);
                if switch.killed() {
                    return Ok(figures);
                }
            } else if script.ends && !ended[at] {
                ended[at] = true;
                sent_any = true;
                let Some(ack) = connection
                    .send(&HookMessage::End {
                        at_us: figures.last_at_us,
                        session: script.id.clone(),
                        status: "completed".into(),
                    })
                    .await
                else {
                    return Ok(figures);
                };
                if ack.ok {
                    figures.acked_ends.push(script.id.clone());
                } else {
                    figures.unexpected_refusals += 1;
                }
            }
        }
        if !sent_any {
            return Ok(figures);
        }
    }
}

fn percentile(sorted: &[u64], fraction: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let at = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// Plays the storm against the store on `plan.socket`.
pub fn run_storm(plan: &StormPlan) -> anyhow::Result<StormFigures> {
    let mut rng = Rng::new(plan.seed);
    let scripts = script_sessions(plan, &mut rng);
    let switch = Arc::new(KillSwitch::new(plan.kill));
    let shared_plan = Arc::new(plan.clone());
    let n_connections = plan.connections.max(1);
    let runtime = tokio_runtime()?;
    let started = Instant::now();
    let results = runtime.block_on(async {
        let mut per_connection: Vec<Vec<SessionScript>> =
            (0..n_connections).map(|_| Vec::new()).collect();
        for (n, script) in scripts.into_iter().enumerate() {
            per_connection[n % n_connections].push(script);
        }
        let turns = Turns::new(plan, tokio::time::Instant::now());
        let mut tasks = Vec::new();
        for (c, mine) in per_connection.into_iter().enumerate() {
            tasks.push(tokio::spawn(run_connection(
                shared_plan.clone(),
                mine,
                c as u32,
                turns,
                switch.clone(),
            )));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await?);
        }
        if plan.kill.is_none() {
            // At the storm's last time: every connection has played its schedule.
            let last_at_us = results
                .iter()
                .filter_map(|result| result.as_ref().ok())
                .map(|connection| connection.last_at_us)
                .max()
                .unwrap_or(0);
            let mut connection = Connection::open(&plan.socket).await?;
            connection
                .send(&HookMessage::Shutdown { at_us: last_at_us })
                .await
                .ok_or_else(|| anyhow::anyhow!("the store did not acknowledge the shutdown"))?;
        }
        anyhow::Ok(results)
    })?;
    let storm_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut figures = StormFigures {
        storm_ms,
        ..StormFigures::default()
    };
    let mut latencies = Vec::new();
    for result in results {
        let connection = result?;
        for (id, n) in connection.acked_per_session {
            *figures.acked_per_session.entry(id).or_default() += n;
        }
        figures
            .ack_at_us_per_session
            .extend(connection.ack_at_us_per_session);
        figures.acked_ends.extend(connection.acked_ends);
        figures.acked_content_bytes += connection.acked_content_bytes;
        figures.refused_bad_inputs += connection.refused_bad_inputs;
        figures.unexpected_refusals += connection.unexpected_refusals;
        latencies.extend(connection.latencies_us);
    }
    figures.acked_appends = figures.acked_per_session.values().sum();
    latencies.sort_unstable();
    figures.latency_p50_us = percentile(&latencies, 0.50);
    figures.latency_p99_us = percentile(&latencies, 0.99);
    figures.kill_at_us = switch.kill_at_us();
    if plan.kill.is_some() && figures.kill_at_us.is_none() {
        anyhow::bail!(
            "the storm ended after {} acknowledged events, before the planned kill",
            figures.acked_appends
        );
    }
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_take_turns_at_the_storm_pace() {
        let plan = StormPlan {
            socket: PathBuf::new(),
            seed: 1,
            storm_events: 60,
            storm_sessions: 40,
            new_sessions: 15,
            ended_sessions: 8,
            connections: 8,
            events_per_second: 200.0,
            min_body_bytes: 200,
            max_body_bytes: 10_000,
            oversized_event_bytes: 0,
            active_initial_sessions: Vec::new(),
            kill: None,
        };
        let turns = Turns::new(&plan, tokio::time::Instant::now());
        let mut due: Vec<u128> = (0..8)
            .flat_map(|c| (0..3).map(move |n| turns.due(c, n).as_micros()))
            .collect();
        due.sort_unstable();
        // 24 events, one every 5 ms, no two at once.
        assert_eq!(due, (0..24).map(|k| k * 5_000).collect::<Vec<_>>());
        let burst = Turns::new(
            &StormPlan {
                events_per_second: 0.0,
                ..plan
            },
            tokio::time::Instant::now(),
        );
        assert!(burst.due(3, 7).is_zero());
    }
}
