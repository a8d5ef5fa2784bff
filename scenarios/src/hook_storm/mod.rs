//! The `hook-storm` scenario (seed D): a session store that persists to disk, under a storm of hook events, with
//! three endings.
//!
//! The seed's store held 8,614 events across 359 sessions (22 MB on disk) and rewrote all of it on every event,
//! about 110 MB allocated per mutation; hooks fired across ~220 sessions, the heap reached 4 GB and the process was
//! restarted 595 times. Here a driver process plays such a storm over a Unix domain socket against the store, which
//! starts from a seed-shaped state of `size` events (the scenario's shared fixture: written once per size and seed
//! by a process of its own, copied into each case's work directory), and the case ends in one of these ways (the
//! role's `ending` param: a spec declares it on the role, `params = { ending = "sigkill_restart" }`, beside the
//! store technique that plays it):
//! - `graceful_shutdown`: the store is this (measured) process; after the storm it flushes, then restarts (loads
//!   its file again) and counts what it finds.
//! - `sigkill_restart`: the store is a subprocess the driver SIGKILLs right after a seeded number of acknowledged
//!   events; this process then restarts the store from its files and counts. Measured memory is the restart's.
//! - `pruned_restart`: the store subprocess shuts down gracefully; this process restarts it with the startup prune
//!   and persists the pruned state. Measured memory is the restart's.
//! - `one_long_session`: as `graceful_shutdown`, but the storm is `long_session_events` events into one new session,
//!   a burst (each sent as soon as the previous one is acknowledged, all at time 0 on the storm's clock, so all in
//!   one debounce window, written once by the flush): past the merged fix's cap of 1000 events per session, where
//!   the cap, the O(1) numbering and the serialisation without the clone each change a figure (a `ci` session of
//!   the ordinary storm holds about 24 events, never near the cap).
//!
//! The store's clock is the storm's schedule, not the machine's (`wire`, `server`): its writes, and so every heap
//! figure of the debounced store, do not depend on how fast the machine plays the storm.

pub mod accounting;
pub mod driver;
pub mod server;
pub mod wire;

use crate::{CaseContext, Scenario};
use accounting::{LossAccount, account_for_restart};
use anyhow::{Context as _, bail};
use driver::{
    KillPlan, SeedStateArgs, SeededState, ServerFigures, StoreServerArgs, StormFigures, StormPlan,
};
use memproof::payload::Rng;
use memproof::session_store::journal_with_snapshot::journal_path_for;
use memproof::session_store::state::RetentionRules;
use memproof::session_store::{StoreConfig, StoreTechnique, UndoneChange};
use meter::probe;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `hook-storm` scenario.
pub struct HookStorm;

/// How a case ends: the `ending` param.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    GracefulShutdown,
    OneLongSession,
    SigkillRestart,
    PrunedRestart,
}

/// The starting state's file, in the fixture and in each case's work directory.
const STATE_FILE: &str = "sessions.json";

/// The store techniques a role may name: the three stores, then the counterfactuals (`load-test --prove`), each a
/// fix with one change undone ([`STORE_COUNTERFACTUALS`]).
const TECHNIQUES: [&str; 11] = [
    "clone_all_sync_write",
    "debounced_snapshot",
    "journal_with_snapshot",
    "debounced_snapshot_never_flushes",
    "debounced_snapshot_without_startup_prune",
    "journal_with_snapshot_never_writes",
    "journal_with_snapshot_without_journal",
    "debounced_snapshot_without_debounce",
    "debounced_snapshot_without_cap",
    "debounced_snapshot_with_seq_scan",
    "debounced_snapshot_with_clone",
];

/// The counterfactual store techniques: the fix's store, and the one change of it that is undone.
const STORE_COUNTERFACTUALS: [(&str, StoreTechnique, StoreCounterfactual); 8] = [
    (
        "debounced_snapshot_without_debounce",
        StoreTechnique::DebouncedSnapshot,
        StoreCounterfactual::NoDebounce,
    ),
    (
        "debounced_snapshot_never_flushes",
        StoreTechnique::DebouncedSnapshot,
        StoreCounterfactual::Undone(UndoneChange::Persist),
    ),
    (
        "debounced_snapshot_without_startup_prune",
        StoreTechnique::DebouncedSnapshot,
        StoreCounterfactual::KeepEndedSessionsAtLoad,
    ),
    (
        "journal_with_snapshot_never_writes",
        StoreTechnique::JournalWithSnapshot,
        StoreCounterfactual::Undone(UndoneChange::Persist),
    ),
    (
        "journal_with_snapshot_without_journal",
        StoreTechnique::JournalWithSnapshot,
        StoreCounterfactual::Undone(UndoneChange::Journal),
    ),
    (
        "debounced_snapshot_without_cap",
        StoreTechnique::DebouncedSnapshot,
        StoreCounterfactual::NoCap,
    ),
    (
        "debounced_snapshot_with_seq_scan",
        StoreTechnique::DebouncedSnapshot,
        StoreCounterfactual::Undone(UndoneChange::SeqRecord),
    ),
    (
        "debounced_snapshot_with_clone",
        StoreTechnique::DebouncedSnapshot,
        StoreCounterfactual::Undone(UndoneChange::SerialiseWithoutClone),
    ),
];

/// What a counterfactual store technique changes in the store's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreCounterfactual {
    None,
    Undone(UndoneChange),
    /// The startup prune of ended sessions' events undone.
    KeepEndedSessionsAtLoad,
    /// The debounce undone: a window of zero, so every mutation is written as soon as the loop sees it due.
    NoDebounce,
    /// The cap of events per session undone: every event of every session kept.
    NoCap,
}

impl StoreCounterfactual {
    fn apply(self, settings: &mut StoreSettings) {
        match self {
            StoreCounterfactual::None => {}
            StoreCounterfactual::Undone(change) => settings.undone = Some(change),
            StoreCounterfactual::KeepEndedSessionsAtLoad => {
                settings.keep_ended_sessions_at_load = true
            }
            StoreCounterfactual::NoDebounce => settings.debounce_ms = 0,
            StoreCounterfactual::NoCap => settings.keep_every_event = true,
        }
    }
}

fn parse_technique(store: &str) -> anyhow::Result<(StoreTechnique, StoreCounterfactual)> {
    match StoreTechnique::from_name(store) {
        Some(technique) => Ok((technique, StoreCounterfactual::None)),
        None => STORE_COUNTERFACTUALS
            .iter()
            .find(|(name, _, _)| *name == store)
            .map(|(_, technique, counterfactual)| (*technique, *counterfactual))
            .with_context(|| format!("unknown store technique {store:?}")),
    }
}

/// The store's settings, from the profile's params.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StoreSettings {
    pub max_events_per_session: usize,
    pub debounce_ms: u64,
    pub max_event_bytes: usize,
    pub compact_min_journal_bytes: u64,
    /// Counterfactuals only: one change of the fix undone.
    #[serde(default)]
    pub undone: Option<UndoneChange>,
    /// Counterfactual only: the startup prune of ended sessions' events undone.
    #[serde(default)]
    pub keep_ended_sessions_at_load: bool,
    /// Counterfactual only: the cap of events per session undone.
    #[serde(default)]
    pub keep_every_event: bool,
}

impl StoreSettings {
    pub fn config(&self) -> StoreConfig {
        StoreConfig {
            rules: RetentionRules {
                max_events_per_session: (!self.keep_every_event)
                    .then_some(self.max_events_per_session),
                prune_ended_sessions_at_load: !self.keep_ended_sessions_at_load,
            },
            debounce_window: Duration::from_millis(self.debounce_ms),
            max_event_bytes: self.max_event_bytes,
            compact_min_journal_bytes: self.compact_min_journal_bytes,
            undone: self.undone,
        }
    }
}

/// A current-thread tokio runtime: one thread, as the seed's Node.js store had.
pub fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
}

/// The scenario's parameters: the store's settings and the storm's shape; a key it does not read is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookStormParams {
    /// The merged fix's cap of events kept per session.
    pub max_events_per_session: usize,
    /// The debounced store's write window.
    #[serde(deserialize_with = "crate::params::duration")]
    pub debounce: Duration,
    /// The largest event the store accepts (the storm sends one byte more once).
    #[serde(deserialize_with = "crate::params::size")]
    pub max_event_bytes: usize,
    /// The journal size below which the store does not compact.
    #[serde(deserialize_with = "crate::params::size")]
    pub compact_min_journal_bytes: u64,
    /// Events the storm sends.
    pub storm_events: usize,
    /// Sessions the storm's events go to.
    pub storm_sessions: usize,
    /// Sessions the storm starts.
    pub new_sessions: usize,
    /// Sessions the storm ends.
    pub ended_sessions: usize,
    /// Connections the driver sends over.
    pub connections: usize,
    /// The storm's rate on its own clock.
    pub events_per_second: f64,
    /// The smallest event body.
    #[serde(deserialize_with = "crate::params::size")]
    pub min_body_bytes: usize,
    /// The largest event body.
    #[serde(deserialize_with = "crate::params::size")]
    pub max_body_bytes: usize,
    /// Events of the `one_long_session` storm.
    pub long_session_events: usize,
    /// How the case ends: each role declares its own (`graceful_shutdown`, `sigkill_restart`, `pruned_restart`,
    /// `one_long_session`); the profile's params hold what every ending shares.
    pub ending: Ending,
}

/// Everything a case needs from its params.
struct CaseSetup {
    settings: StoreSettings,
    /// Where the store's socket lives: a short directory of its own under the system's temp directory, because a
    /// Unix socket path may not exceed 107 bytes and a case's work directory under a deep output directory can
    /// (it did: `target/memproof/full-hook-storm/work/hook-storm_before_killed_…/store.sock`).
    socket_dir: tempfile::TempDir,
    storm_events: usize,
    storm_sessions: usize,
    new_sessions: usize,
    ended_sessions: usize,
    connections: usize,
    events_per_second: f64,
    min_body_bytes: usize,
    max_body_bytes: usize,
    /// Events of the `one_long_session` storm.
    long_session_events: usize,
}

impl CaseSetup {
    /// The case's setup, and how it ends.
    fn from_case(case: &CaseContext) -> anyhow::Result<(CaseSetup, Ending)> {
        let params: HookStormParams = case.read_params()?;
        let setup = CaseSetup {
            socket_dir: tempfile::Builder::new()
                .prefix("memproof-hook-storm")
                .tempdir()
                .context("cannot create a directory for the store's socket")?,
            settings: StoreSettings {
                max_events_per_session: params.max_events_per_session,
                debounce_ms: params.debounce.as_millis() as u64,
                max_event_bytes: params.max_event_bytes,
                compact_min_journal_bytes: params.compact_min_journal_bytes,
                undone: None,
                keep_ended_sessions_at_load: false,
                keep_every_event: false,
            },
            storm_events: params.storm_events,
            storm_sessions: params.storm_sessions,
            new_sessions: params.new_sessions,
            ended_sessions: params.ended_sessions,
            connections: params.connections,
            events_per_second: params.events_per_second,
            min_body_bytes: params.min_body_bytes,
            max_body_bytes: params.max_body_bytes,
            long_session_events: params.long_session_events,
        };
        Ok((setup, params.ending))
    }

    fn socket(&self) -> PathBuf {
        self.socket_dir.path().join("store.sock")
    }

    fn storm_plan(
        &self,
        case: &CaseContext,
        seeded: &SeededState,
        kill: Option<KillPlan>,
    ) -> StormPlan {
        StormPlan {
            socket: self.socket(),
            seed: case.seed,
            storm_events: self.storm_events,
            storm_sessions: self.storm_sessions,
            new_sessions: self.new_sessions,
            ended_sessions: self.ended_sessions,
            connections: self.connections,
            events_per_second: self.events_per_second,
            min_body_bytes: self.min_body_bytes,
            max_body_bytes: self.max_body_bytes,
            oversized_event_bytes: self.settings.max_event_bytes + 1,
            active_initial_sessions: seeded
                .sessions
                .iter()
                .filter(|session| !session.ended)
                .map(|session| session.id.clone())
                .collect(),
            kill,
        }
    }

    /// The `one_long_session` storm: every event into one new session, over one connection, a burst: each sent as
    /// soon as the previous one is acknowledged, all at time 0 on the storm's clock. Played on the machine's clock,
    /// the burst took 34 to 43 ms of `ci`'s 100 ms window on the machine that measured the noise, and more than a
    /// window on a slower CI machine, which then wrote the state twice (36.9 against 44.9 MiB allocated).
    fn long_session_plan(&self, case: &CaseContext, seeded: &SeededState) -> StormPlan {
        StormPlan {
            storm_events: self.long_session_events,
            storm_sessions: 1,
            new_sessions: 1,
            ended_sessions: 0,
            connections: 1,
            events_per_second: 0.0,
            ..self.storm_plan(case, seeded, None)
        }
    }
}

fn driver_args<T: Serialize>(mode: &str, args: &T) -> anyhow::Result<serde_json::Value> {
    let mut value = serde_json::to_value(args)?;
    value
        .as_object_mut()
        .context("driver arguments are an object")?
        .insert("mode".into(), mode.into());
    Ok(value)
}

fn run_in_driver<T: Serialize, R: for<'de> Deserialize<'de>>(
    mode: &str,
    args: &T,
) -> anyhow::Result<R> {
    let figures = crate::spawn_driver(&HookStorm, &driver_args(mode, args)?)?.wait()?;
    serde_json::from_value(figures).with_context(|| format!("the {mode} driver's figures"))
}

/// Bytes of the store's files (snapshot and journal) now.
fn store_file_bytes(state_path: &Path) -> u64 {
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |meta| meta.len());
    size(state_path) + size(&journal_path_for(state_path))
}

fn report_account(account: &LossAccount, storm: &StormFigures, debounce_ms: u64) {
    probe::metric("events_acknowledged", storm.acked_appends);
    probe::metric("events_expected_after_restart", account.expected_events);
    probe::metric("events_found_after_restart", account.found_events);
    probe::metric("events_lost", account.lost_events);
    probe::metric(
        "events_found_unacknowledged",
        account.found_unacknowledged_events,
    );
    probe::metric("session_ends_lost", account.lost_ends);
    if let Some(reach) = account.loss_reach_ms {
        probe::metric("loss_reach_ms", reach);
        probe::metric("loss_reach_windows", reach / debounce_ms.max(1) as f64);
    }
    probe::metric("append_latency_p50_us", storm.latency_p50_us);
    probe::metric("append_latency_p99_us", storm.latency_p99_us);
    probe::metric("refused_bad_inputs", storm.refused_bad_inputs);
    probe::metric("unexpected_refusals", storm.unexpected_refusals);
    probe::metric("storm_ms", storm.storm_ms);
}

impl Scenario for HookStorm {
    fn name(&self) -> &'static str {
        "hook-storm"
    }

    fn techniques(&self) -> Vec<&'static str> {
        TECHNIQUES.to_vec()
    }

    fn check_params(
        &self,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<()> {
        crate::params::read::<HookStormParams>(params).map(drop)
    }

    fn fixture_key(&self, case: &CaseContext) -> anyhow::Result<Option<serde_json::Value>> {
        Ok(Some(serde_json::json!({
            "seed": case.seed,
            "n_events": case.size_u64(),
        })))
    }

    fn make_fixture(
        &self,
        key: &serde_json::Value,
        data_dir: &Path,
    ) -> anyhow::Result<serde_json::Value> {
        let field = |name: &str| {
            key[name].as_u64().with_context(|| {
                format!(
                    "hook-storm fixture: {name} = {}: expected a whole number",
                    key[name]
                )
            })
        };
        let seeded = driver::write_seed_state(&SeedStateArgs {
            path: data_dir.join(STATE_FILE),
            seed: field("seed")?,
            n_events: field("n_events")? as usize,
        })?;
        Ok(serde_json::to_value(seeded)?)
    }

    fn run_case(&self, case: &CaseContext) -> anyhow::Result<()> {
        let (technique, counterfactual) = parse_technique(&case.technique)?;
        let (mut setup, ending) = CaseSetup::from_case(case)?;
        counterfactual.apply(&mut setup.settings);
        let state_path = case.work_dir.join(STATE_FILE);
        // The starting state is the fixture every ending at this size starts from; the store rewrites its file,
        // so each case gets a copy of its own.
        let seeded: SeededState = case.copy_of_fixture(STATE_FILE, &state_path)?;
        probe::metric("starting_state_file_bytes", seeded.file_bytes);
        probe::metric("starting_events", seeded.n_events);
        probe::metric("starting_sessions", seeded.sessions.len());
        probe::metric("debounce_window_ms", setup.settings.debounce_ms);
        match ending {
            Ending::GracefulShutdown => {
                let plan = setup.storm_plan(case, &seeded, None);
                graceful_shutdown(&setup, plan, technique, &state_path, &seeded)
            }
            Ending::OneLongSession => {
                let plan = setup.long_session_plan(case, &seeded);
                graceful_shutdown(&setup, plan, technique, &state_path, &seeded)
            }
            Ending::SigkillRestart | Ending::PrunedRestart => {
                restart_after_server(case, &setup, technique, ending, &state_path, &seeded)
            }
        }
    }

    fn run_driver(&self, args: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let mode = args
            .get("mode")
            .and_then(|mode| mode.as_str())
            .unwrap_or("");
        Ok(match mode {
            "storm" => {
                serde_json::to_value(driver::run_storm(&serde_json::from_value(args.clone())?)?)?
            }
            "store_server" => serde_json::to_value(driver::run_store_server(
                &serde_json::from_value(args.clone())?,
            )?)?,
            other => {
                bail!("hook-storm driver: unknown mode {other:?}: expected storm or store_server")
            }
        })
    }
}

/// The graceful ending, with the store in this process, under the storm `plan`.
fn graceful_shutdown(
    setup: &CaseSetup,
    plan: StormPlan,
    technique: StoreTechnique,
    state_path: &Path,
    seeded: &SeededState,
) -> anyhow::Result<()> {
    let config = setup.settings.config();
    probe::phase("load");
    let opened_at = Instant::now();
    let store = technique.open(state_path, config, opened_at)?;
    probe::metric(
        "events_dropped_at_load",
        store.load_report().n_events_dropped_at_load,
    );
    let stats_at_storm_start = store.persist_stats();
    let scanned_at_storm_start = store.seq_entries_scanned();
    let store = Arc::new(Mutex::new(store));
    let runtime = tokio_runtime()?;
    probe::phase("storm");
    let heap_at_storm_start = probe::heap_figures();
    let (served, storm) = runtime.block_on(async {
        let listener = tokio::net::UnixListener::bind(&plan.socket)
            .with_context(|| format!("{}: cannot listen", plan.socket.display()))?;
        let driver = crate::spawn_driver(&HookStorm, &driver_args("storm", &plan)?)?;
        let driver_done = Arc::new(tokio::sync::Notify::new());
        let waiter = {
            let driver_done = driver_done.clone();
            std::thread::spawn(move || {
                let result = driver.wait();
                driver_done.notify_one();
                result
            })
        };
        let served =
            server::serve_hook_events(store.clone(), listener, opened_at, driver_done.notified())
                .await;
        let storm = waiter
            .join()
            .map_err(|_| anyhow::anyhow!("the driver waiter panicked"))??;
        anyhow::Ok((served, serde_json::from_value::<StormFigures>(storm)?))
    })?;
    let heap_at_storm_end = probe::heap_figures();
    drop(runtime);
    probe::phase("flush");
    let mut store = Arc::try_unwrap(store)
        .map_err(|_| anyhow::anyhow!("the store is still shared after the storm"))?
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    store.flush()?;
    let stats = store.persist_stats().since(stats_at_storm_start);
    let state_file_bytes = store_file_bytes(state_path);
    if let (Some(start), Some(end)) = (heap_at_storm_start, heap_at_storm_end)
        && served.n_appends_ok > 0
    {
        let per_append = (end.total_bytes - start.total_bytes) as f64 / served.n_appends_ok as f64;
        probe::metric("alloc_bytes_per_append", per_append);
        probe::metric(
            "alloc_per_append_as_state_multiple",
            per_append / seeded.file_bytes as f64,
        );
        // What the storm left live: the events the store kept.
        probe::metric(
            "storm_live_heap_growth_bytes",
            end.live_bytes as f64 - start.live_bytes as f64,
        );
    }
    // The most held at once up to the end of the flush, whose write of the whole final state is the largest of the
    // case's writes, against the content (hook names and bodies) that state holds: not against the file, which a
    // write that did not happen would leave stale.
    if let Some(flushed) = probe::heap_figures() {
        probe::metric(
            "peak_heap_as_state_content_multiple",
            flushed.peak_bytes as f64 / store.state().content_bytes().max(1) as f64,
        );
    }
    if served.n_appends_ok > 0 {
        probe::metric(
            "seq_entries_scanned_per_append",
            (store.seq_entries_scanned() - scanned_at_storm_start) as f64
                / served.n_appends_ok as f64,
        );
    }
    probe::metric(
        "largest_session_events_held",
        store
            .state()
            .sessions
            .values()
            .map(|session| session.events.len())
            .max()
            .unwrap_or(0),
    );
    probe::metric("whole_state_writes", stats.n_snapshot_writes);
    probe::metric("journal_appends", stats.n_journal_appends);
    probe::metric("bytes_written", stats.bytes_written);
    probe::metric("write_amplification", stats.write_amplification());
    probe::metric("state_file_bytes", state_file_bytes);
    drop(store);
    probe::phase("restart");
    let restarted = technique.open(state_path, config, Instant::now())?;
    let account = account_for_restart(
        seeded,
        &storm,
        restarted.state(),
        technique.effective_rules(&config),
    );
    report_account(&account, &storm, setup.settings.debounce_ms);
    if served.n_appends_ok != storm.acked_appends {
        bail!(
            "the store accepted {} events but the sender counted {} acknowledgements",
            served.n_appends_ok,
            storm.acked_appends
        );
    }
    Ok(())
}

/// The store as a subprocess of this case, started as this binary's `driver` in `store_server` mode.
fn spawn_store_server(args: &StoreServerArgs) -> anyhow::Result<std::process::Child> {
    let exe = std::env::current_exe().context("cannot find the case binary to start the store")?;
    let child = Command::new(exe)
        .args([
            "driver",
            "--scenario",
            HookStorm.name(),
            "--args",
            &driver_args("store_server", args)?.to_string(),
        ])
        .env_remove(meter::probe::PROBE_FD_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the store server")?;
    // Ready once its socket accepts a connection (it loads its state first).
    let mut child = child;
    let started = Instant::now();
    loop {
        if std::os::unix::net::UnixStream::connect(&args.socket).is_ok() {
            return Ok(child);
        }
        if let Some(status) = child.try_wait()? {
            let output = child.wait_with_output()?;
            bail!(
                "the store server ended ({status}) before it listened on {}\n{}",
                args.socket.display(),
                crate::show_stderr(&output.stderr)
            );
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "the store server did not listen on {} within 60 s",
                args.socket.display()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The SIGKILL and pruned endings: the store runs in a subprocess; this process restarts it from its files.
fn restart_after_server(
    case: &CaseContext,
    setup: &CaseSetup,
    technique: StoreTechnique,
    ending: Ending,
    state_path: &Path,
    seeded: &SeededState,
) -> anyhow::Result<()> {
    use std::os::unix::process::ExitStatusExt as _;
    let config = setup.settings.config();
    let socket = setup.socket();
    probe::phase("storm against the store server");
    let server = spawn_store_server(&StoreServerArgs {
        technique: technique.name().to_string(),
        state_path: state_path.to_path_buf(),
        socket: socket.clone(),
        settings: setup.settings,
    })?;
    let kill = (ending == Ending::SigkillRestart).then(|| {
        // A seeded point between 30% and 80% of the storm.
        let mut rng = Rng::new(case.seed ^ 0x0005_EEDD);
        let low = (setup.storm_events as u64 * 3 / 10).max(1);
        let high = (setup.storm_events as u64 * 8 / 10).max(low);
        KillPlan {
            pid: server.id() as i32,
            after_acks: rng.between(low, high),
        }
    });
    let storm: StormFigures = run_in_driver("storm", &setup.storm_plan(case, seeded, kill))?;
    let output = server.wait_with_output()?;
    match ending {
        Ending::SigkillRestart => {
            if output.status.signal() != Some(libc::SIGKILL) {
                bail!(
                    "the store server was to be killed by SIGKILL but ended with {}\n{}",
                    output.status,
                    crate::show_stderr(&output.stderr)
                );
            }
            probe::metric("killed_after_acks", kill.map_or(0, |k| k.after_acks));
        }
        _ => {
            if !output.status.success() {
                bail!(
                    "the store server failed ({})\n{}",
                    output.status,
                    crate::show_stderr(&output.stderr)
                );
            }
            let figures: ServerFigures = serde_json::from_slice(&output.stdout)
                .context("the store server printed no figures")?;
            probe::metric("whole_state_writes", figures.whole_state_writes);
            probe::metric("journal_appends", figures.journal_appends);
            probe::metric("bytes_written", figures.bytes_written);
            probe::metric("write_amplification", figures.write_amplification);
        }
    }
    let files_before_restart = store_file_bytes(state_path);
    probe::metric("state_file_bytes_before_restart", files_before_restart);
    probe::phase("restart");
    let mut restarted = technique.open(state_path, config, Instant::now())?;
    let load = restarted.load_report();
    probe::metric("events_in_files_at_restart", load.n_events_in_files);
    probe::metric("events_dropped_at_load", load.n_events_dropped_at_load);
    probe::metric("torn_journal_tail_bytes", load.torn_journal_tail_bytes);
    let account = account_for_restart(
        seeded,
        &storm,
        restarted.state(),
        technique.effective_rules(&config),
    );
    report_account(&account, &storm, setup.settings.debounce_ms);
    if ending == Ending::PrunedRestart {
        probe::phase("persist the pruned state");
        restarted.flush()?;
        probe::metric(
            "state_file_bytes_after_restart",
            store_file_bytes(state_path),
        );
    }
    Ok(())
}
