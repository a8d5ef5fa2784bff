//! Seed A in time: the seed's fix claims its regex on a 400-byte prefix is "~100x cheaper than a full parse".
//! `field_extraction` measures the per-record cost of reading `workflowId` and `startedAt` by each technique at
//! the ci record size (32 KiB) and the seed's (256 KiB); `whole_trim` measures one trim of a 200-record table
//! (32 KiB records, 2 workflows) by each technique, each iteration on a fresh copy of the same SQLite file.
//!
//! Run: `CARGO_TARGET_DIR=… cargo bench --bench exec_history`.

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use memproof::exec_history::record::{ExecutionRecordSpec, FieldPlacement, execution_record_json};
use memproof::exec_history::store::ExecutionStore;
use memproof::exec_history::trim::{TrimTechnique, trim_workflow};
use memproof::exec_history::trim_fields;
use std::hint::black_box;
use std::time::Duration;

fn record(index: u64, workflow_id: &str, target_bytes: usize) -> String {
    execution_record_json(&ExecutionRecordSpec {
        execution_id: format!("e{index}"),
        workflow_id: workflow_id.to_string(),
        started_at_ns: 1_780_404_960_000_000_000 + index as i64,
        target_bytes,
        placement: FieldPlacement::Front,
        payload_seed: index,
    })
}

fn field_extraction(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("field_extraction");
    group.measurement_time(Duration::from_secs(3));
    for record_bytes in [32 * 1024, 256 * 1024] {
        let value = record(1, "wf-0", record_bytes);
        group.bench_with_input(
            BenchmarkId::new("full_parse", record_bytes),
            &value,
            |b, value| b.iter(|| trim_fields::by_full_parse(black_box(value)).unwrap()),
        );
        group.bench_with_input(
            BenchmarkId::new("prefix_regex", record_bytes),
            &value,
            |b, value| b.iter(|| trim_fields::by_prefix_regex(black_box(value)).unwrap()),
        );
        // The index technique reads no value at trim time: its per-record cost is the two indexed columns.
        let store =
            ExecutionStore::open(&dir.path().join(format!("fields-{record_bytes}.db"))).unwrap();
        store.insert("k", &value).unwrap();
        group.bench_function(BenchmarkId::new("indexed_columns", record_bytes), |b| {
            b.iter(|| store.trim_columns(black_box("k")).unwrap().unwrap())
        });
    }
    group.finish();
}

fn whole_trim(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.db");
    {
        let store = ExecutionStore::open(&template).unwrap();
        for index in 0..200u64 {
            let workflow_id = format!("wf-{}", index % 2);
            store
                .insert(
                    &format!("workflow_execution/{index:06}"),
                    &record(index, &workflow_id, 32 * 1024),
                )
                .unwrap();
        }
        // Fold the WAL into the file so one copy holds the whole table.
        store
            .connection()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let mut group = c.benchmark_group("whole_trim_200_records_32KiB");
    group.sample_size(10);
    for (name, technique) in [
        ("parse_all", TrimTechnique::ParseAll),
        ("raw_prefix_scan", TrimTechnique::RawPrefixScan),
        (
            "indexed_columns_delete",
            TrimTechnique::IndexedColumnsDelete,
        ),
    ] {
        let mut copies = 0u64;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    copies += 1;
                    let path = dir.path().join(format!("{name}-{copies}.db"));
                    std::fs::copy(&template, &path).unwrap();
                    ExecutionStore::open(&path).unwrap()
                },
                |mut store| {
                    // Keep 50 of wf-0's 100: every technique deletes the same 50 rows.
                    let report = trim_workflow(&mut store, technique, "wf-0", 50).unwrap();
                    assert_eq!(report.deleted_keys.len(), 50);
                    let path = store.path().to_path_buf();
                    drop(store);
                    let _ = std::fs::remove_file(path);
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, field_extraction, whole_trim);
criterion_main!(benches);
