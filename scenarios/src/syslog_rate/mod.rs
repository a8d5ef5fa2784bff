//! `syslog-rate`: seed A replayed. A driver process sends RFC 5424 lines over UDP on loopback at a set rate; the
//! measured process receives them (tokio), writes one execution record per message to a real SQLite file, and
//! fires a trim every 5th record of a workflow. In the seed the records were several hundred KB, the table grew
//! past 3 GB, each trim JSON-parsed all of it, several ran at once, and RSS reached 20 GB.
//!
//! A case starts from a table of the case's size (records, spread over the workflows, older than anything the
//! stream brings): a shared fixture, populated once per size and record shape by `memproof-case fixture` and copied
//! into the case's work directory, so that neither its inserts nor their time are in any case's figures (at the
//! seed's sizes it is 1 to 3 GB, written once instead of once per case). Phase `stream` receives the driver's
//! messages, phase `drain` waits for every trim in flight. Each workflow keeps `records / workflows` executions, so
//! the table stays at its size while the stream runs and every trim scans a table of the size the sweep asks for.
//! Populated inside the case, the table's inserts were half of best's total allocation (129.5 MB at 200
//! records against 65.7 MB since) and SQLite's page cache from them was in every case's peak.
//!
//! Techniques (the spec maps them to roles): `parse_all_fire_and_forget`, `raw_prefix_scan_single_flight`,
//! `indexed_columns_delete_single_flight`.

pub mod driver;
pub mod receiver;
pub mod record_shapes;
pub mod rfc5424;

use crate::{CaseContext, Scenario};
use anyhow::{Context as _, bail};
use driver::{DriverArgs, DriverFigures};
use memproof::exec_history::store::{ExecutionStore, InsertedFields};
use memproof::exec_history::trim::TrimTechnique;
use memproof::exec_history::trim_dispatch::{DispatchPolicy, TrimDispatcher, TrimFigures};
use meter::probe;
use record_shapes::RecordShapes;
use serde::{Deserialize, Serialize};
use std::sync::mpsc;
use std::time::Duration;

/// The scenario.
pub struct SyslogRate;

/// The timestamp of the stream's first message: the seed PR's date (2026-06-02T12:56:00Z). Populated records are
/// stamped one second apart before it.
const STREAM_START_NS: i64 = 1_780_404_960_000_000_000;

/// The techniques, in the order `techniques()` lists them. The last two are counterfactuals (`load-test --prove`):
/// the merged fix with one of its two changes undone, the guard (`raw_prefix_scan_fire_and_forget`) or the prefix
/// scan (`parse_all_single_flight`).
const TECHNIQUE_NAMES: [&str; 5] = [
    "parse_all_fire_and_forget",
    "raw_prefix_scan_single_flight",
    "indexed_columns_delete_single_flight",
    "raw_prefix_scan_fire_and_forget",
    "parse_all_single_flight",
];

/// What each technique (by its index in [`TECHNIQUE_NAMES`]) runs: the trim and the dispatch policy.
const TECHNIQUE_PARTS: [(TrimTechnique, DispatchPolicy); 5] = [
    (TrimTechnique::ParseAll, DispatchPolicy::FireAndForget),
    (
        TrimTechnique::RawPrefixScan,
        DispatchPolicy::SingleFlightCoalescing,
    ),
    (
        TrimTechnique::IndexedColumnsDelete,
        DispatchPolicy::SingleFlightCoalescing,
    ),
    (TrimTechnique::RawPrefixScan, DispatchPolicy::FireAndForget),
    (
        TrimTechnique::ParseAll,
        DispatchPolicy::SingleFlightCoalescing,
    ),
];

impl Scenario for SyslogRate {
    fn name(&self) -> &'static str {
        "syslog-rate"
    }

    fn techniques(&self) -> Vec<&'static str> {
        TECHNIQUE_NAMES.to_vec()
    }

    fn run_case(&self, case: &CaseContext) -> anyhow::Result<()> {
        run_syslog_case(case)
    }

    fn check_params(
        &self,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<()> {
        crate::params::read::<SyslogRateParams>(params).map(drop)
    }

    fn fixture_key(&self, case: &CaseContext) -> anyhow::Result<Option<serde_json::Value>> {
        let params = case_params(case)?;
        Ok(Some(serde_json::to_value(TableKey {
            records: params.records,
            workflows: params.workflows,
            record_bytes: params.record_bytes,
            odd_records_every: params.odd_records_every,
        })?))
    }

    fn make_fixture(
        &self,
        key: &serde_json::Value,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<serde_json::Value> {
        let key: TableKey = serde_json::from_value(key.clone())
            .with_context(|| format!("syslog-rate fixture: key {key}: expected a table key"))?;
        Ok(serde_json::to_value(populate(
            &key,
            &data_dir.join(DATABASE_FILE),
        )?)?)
    }

    fn run_driver(&self, args: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let args: DriverArgs = serde_json::from_value(args.clone())
            .context("syslog-rate driver: --args does not match DriverArgs")?;
        Ok(serde_json::to_value(driver::send_stream(&args)?)?)
    }
}

/// The table a case starts from, in the fixture and then in the case's work directory.
const DATABASE_FILE: &str = "executions.db";

/// Everything that decides the starting table's bytes, and nothing else: cases of every technique at one size
/// share it.
#[derive(Serialize, Deserialize)]
struct TableKey {
    records: u64,
    workflows: u64,
    record_bytes: usize,
    odd_records_every: u64,
}

/// What populating the starting table found, kept in the fixture's manifest and reported by each case.
#[derive(Serialize, Deserialize)]
struct PopulatedTable {
    records_populated: u64,
    table_value_bytes: u64,
    database_bytes_populated: u64,
    /// Records whose two fields the insert's prefix read could not find (the odd shapes), read by a full parse.
    fast_path_misses_at_insert: u64,
}

/// Writes the starting table at `path`: `key.records` records spread over the workflows, stamped one second apart
/// before the stream starts. The store is closed at the end, so SQLite folds its write-ahead log into the file.
fn populate(key: &TableKey, path: &std::path::Path) -> anyhow::Result<PopulatedTable> {
    let shapes = RecordShapes {
        record_bytes: key.record_bytes,
        odd_records_every: key.odd_records_every,
    };
    // Opening the store routes SQLite's allocator before SQLite initialises.
    let store = ExecutionStore::open(path)?;
    let mut fast_path_misses_at_insert = 0u64;
    for index in 0..key.records {
        let record_key = format!("workflow_execution/p{index:010}");
        let workflow_id = driver::workflow_of(index, key.workflows);
        let started_at_ns = STREAM_START_NS - (key.records - index) as i64 * 1_000_000_000;
        let value = shapes.record_json(&record_key, &workflow_id, started_at_ns, index);
        if store.insert(&record_key, &value)? != InsertedFields::Prefix {
            fast_path_misses_at_insert += 1;
        }
    }
    Ok(PopulatedTable {
        records_populated: key.records,
        table_value_bytes: store.value_bytes()?,
        database_bytes_populated: store.database_bytes()?,
        fast_path_misses_at_insert,
    })
}

/// The scenario's parameters as the spec writes them; a key it does not read is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogRateParams {
    /// Each record's size.
    #[serde(deserialize_with = "crate::params::size")]
    pub record_bytes: usize,
    /// Workflows the records and the stream's messages spread over.
    pub workflows: u64,
    /// Messages the driver sends.
    pub messages: u64,
    /// The driver's send rate.
    pub rate_per_second: f64,
    /// Every this many messages one is not RFC 5424.
    pub invalid_every: u64,
    /// Every this many records one has an odd shape the prefix read misses.
    pub odd_records_every: u64,
    /// How long a trim stays in flight at least (optional, default none).
    #[serde(default, deserialize_with = "crate::params::duration")]
    pub min_trim_duration: Duration,
}

/// The case's parameters, checked.
struct CaseParams {
    records: u64,
    record_bytes: usize,
    workflows: u64,
    messages: u64,
    rate_per_second: f64,
    invalid_every: u64,
    odd_records_every: u64,
    /// How long a trim stays in flight at least (`min_trim_duration`, optional, default none).
    min_trim_duration: Duration,
}

fn case_params(case: &CaseContext) -> anyhow::Result<CaseParams> {
    let written: SyslogRateParams = case.read_params()?;
    let params = CaseParams {
        records: case.size_u64(),
        record_bytes: written.record_bytes,
        workflows: written.workflows,
        messages: written.messages,
        rate_per_second: written.rate_per_second,
        invalid_every: written.invalid_every,
        odd_records_every: written.odd_records_every,
        min_trim_duration: written.min_trim_duration,
    };
    if params.workflows == 0 || params.records < params.workflows {
        bail!(
            "syslog-rate: size {} records and workflows = {}: expected at least one record per workflow",
            params.records,
            params.workflows
        );
    }
    if params.rate_per_second <= 0.0 {
        bail!(
            "syslog-rate: rate_per_second = {}: expected a positive rate",
            params.rate_per_second
        );
    }
    Ok(params)
}

fn run_syslog_case(case: &CaseContext) -> anyhow::Result<()> {
    let (technique, policy) = TECHNIQUE_NAMES
        .iter()
        .position(|name| *name == case.technique)
        .map(|index| &TECHNIQUE_PARTS[index])
        .with_context(|| format!("syslog-rate: unknown technique {:?}", case.technique))?;
    let params = case_params(case)?;
    let keep_per_workflow = (params.records / params.workflows) as usize;
    std::fs::create_dir_all(&case.work_dir)
        .with_context(|| format!("{}: cannot create the work dir", case.work_dir.display()))?;
    let store_path = case.work_dir.join(DATABASE_FILE);
    let shapes = RecordShapes {
        record_bytes: params.record_bytes,
        odd_records_every: params.odd_records_every,
    };

    // The starting table is the fixture every technique at this size starts from; the trims delete from it, so
    // each case gets a copy of its own.
    probe::phase("copy the starting table");
    let populated: PopulatedTable = case.copy_of_fixture(DATABASE_FILE, &store_path)?;
    // Opening the store routes SQLite's allocator before SQLite initialises.
    let store = ExecutionStore::open(&store_path)?;
    probe::metric("records_populated", populated.records_populated);
    probe::metric("table_value_bytes", populated.table_value_bytes);
    probe::metric(
        "database_bytes_populated",
        populated.database_bytes_populated,
    );
    probe::metric("keep_per_workflow", keep_per_workflow);

    probe::phase("stream");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the receiver's tokio runtime")?;
    let dispatcher = TrimDispatcher::new(
        store_path.clone(),
        *technique,
        *policy,
        keep_per_workflow,
        runtime.handle().clone(),
    )
    .with_min_trim_duration(params.min_trim_duration);
    let driver_args = DriverArgs {
        target: String::new(),
        messages: params.messages,
        rate_per_second: params.rate_per_second,
        workflows: params.workflows,
        invalid_every: params.invalid_every,
        start_ns: STREAM_START_NS,
    };
    // The trim figures are also reported while the stream runs, so that a case killed at its memory limit (the
    // parse-all trim at the seed's table sizes) still leaves how far its trims got and what they cost.
    let (trims_settled, settled) = mpsc::channel::<()>();
    let received = std::thread::scope(|scope| {
        let dispatcher = &dispatcher;
        scope.spawn(move || report_running_trim_figures(dispatcher, &settled));
        let received = runtime.block_on(receiver::receive_stream(
            &store,
            dispatcher,
            &shapes,
            driver_args,
            |args| {
                let args = serde_json::to_value(args)?;
                let driver = crate::spawn_driver(&SyslogRate, &args)?;
                Ok(Box::new(move || {
                    let figures: DriverFigures = serde_json::from_value(driver.wait()?)
                        .context("the syslog-rate driver's figures do not match DriverFigures")?;
                    Ok(figures)
                }))
            },
        ));
        probe::phase("drain");
        dispatcher.wait_until_idle();
        drop(trims_settled);
        received
    })?;
    drop(runtime);

    probe::phase("report");
    let trims = dispatcher.figures();
    let sent = received.driver.messages_sent;
    probe::metric("messages_sent", sent);
    probe::metric("messages_received", received.messages_received);
    probe::metric(
        "messages_dropped",
        sent.saturating_sub(received.messages_received),
    );
    probe::metric("messages_invalid", received.messages_invalid);
    probe::metric("send_errors", received.driver.send_errors);
    if let Some(example) = &received.first_invalid_error {
        probe::metric("invalid_datagram_example", example);
    }
    probe::metric("records_written", received.records_written);
    probe::metric("records_in_table", store.n_records()?);
    probe::metric("table_value_bytes_end", store.value_bytes()?);
    probe::metric("database_bytes", store.database_bytes()?);
    probe::metric("trims_triggered", trims.trims_triggered);
    probe::metric("trims_started", trims.trims_started);
    probe::metric("trims_completed", trims.trims_completed);
    probe::metric("trims_coalesced", trims.trims_coalesced);
    probe::metric("trims_failed", trims.trims_failed);
    probe::metric("max_trims_in_flight", trims.max_trims_in_flight);
    probe::metric(
        "max_trims_in_flight_per_workflow",
        trims.max_trims_in_flight_per_workflow,
    );
    probe::metric("records_deleted", trims.records_deleted);
    probe::metric("records_listed_by_trims", trims.records_listed);
    probe::metric("fast_path_misses_in_trims", trims.prefix_misses);
    report_extraction_cost(&trims);
    probe::metric(
        "fast_path_misses_at_insert",
        populated.fast_path_misses_at_insert + received.fast_path_misses_at_insert,
    );
    probe::metric("records_unreadable", trims.unreadable_keys.len());
    probe::metric("unreadable_record_keys", &trims.unreadable_keys);
    if let Some(error) = trims.first_error {
        bail!(
            "syslog-rate: {} of {} trims failed; the first: {error}",
            trims.trims_failed,
            trims.trims_started
        );
    }
    Ok(())
}

/// The cost of reading the two fields, per record listed by the trims. Thread CPU time, so trims sharing the two
/// cores do not inflate it; the fallbacks' full parses are included.
fn report_extraction_cost(trims: &TrimFigures) {
    if trims.records_listed > 0 {
        probe::metric(
            "field_extraction_cpu_ns_per_record",
            trims.extraction_cpu_ns as f64 / trims.records_listed as f64,
        );
    }
}

/// Reports the trims' running figures every quarter second until the trims have settled; the final report
/// replaces them.
fn report_running_trim_figures(dispatcher: &TrimDispatcher, settled: &mpsc::Receiver<()>) {
    // Woken as soon as the trims settle (the sender is dropped), not at its next tick: a sleeping reporter held
    // every case up to 250 ms past its drain, 11 s of ci's 66.
    while let Err(mpsc::RecvTimeoutError::Timeout) =
        settled.recv_timeout(Duration::from_millis(250))
    {
        let trims = dispatcher.figures();
        report_extraction_cost(&trims);
        probe::metric("records_listed_by_trims", trims.records_listed);
        probe::metric("trims_completed", trims.trims_completed);
        probe::metric("max_trims_in_flight", trims.max_trims_in_flight);
        probe::metric(
            "max_trims_in_flight_per_workflow",
            trims.max_trims_in_flight_per_workflow,
        );
    }
}
