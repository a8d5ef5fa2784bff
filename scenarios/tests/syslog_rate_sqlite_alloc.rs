//! SQLite's own memory shows in the counted heap: with its allocator routed through Rust's global allocator
//! (`memproof::exec_history::sqlite_alloc`), a large `SELECT` that builds its result inside SQLite and hands only an
//! integer to Rust still moves the heap figure by at least the bytes it built. Without the routing SQLite would
//! call libc `malloc` and the counted peak would stay near zero. (The page cache is not the evidence here: SQLite
//! reads overflow pages of large values straight into the value's buffer, bypassing the cache.) One heap test per file: the meter is
//! process-wide.

#[global_allocator]
static ALLOC: meter::alloc::CountingAlloc = meter::alloc::CountingAlloc;

use memproof::exec_history::record::{ExecutionRecordSpec, FieldPlacement, execution_record_json};
use memproof::exec_history::store::ExecutionStore;

#[test]
fn a_large_select_moves_the_counted_heap_by_the_bytes_sqlite_cached() {
    let dir = std::env::temp_dir().join(format!("memproof-sqlite-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.db");
    let record_bytes = 64 * 1024;
    {
        let store = ExecutionStore::open(&path).unwrap();
        for index in 0..200u64 {
            let value = execution_record_json(&ExecutionRecordSpec {
                execution_id: format!("e{index}"),
                workflow_id: "wf".into(),
                started_at_ns: index as i64,
                target_bytes: record_bytes,
                placement: FieldPlacement::Front,
                payload_seed: index,
            });
            store.insert(&format!("k{index:05}"), &value).unwrap();
        }
    }
    let store = ExecutionStore::open(&path).unwrap();
    let value_bytes = store.value_bytes().unwrap();
    assert!(value_bytes >= 200 * record_bytes as u64);
    // From here the meter starts afresh: the peak below is what the SELECT made live.
    meter::alloc::reset();
    // SQLite concatenates every value in its own buffer; only one integer comes back to Rust.
    let concatenated: i64 = store
        .connection()
        .query_row(
            "SELECT octet_length(group_concat(value, '')) FROM workflow_execution",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let counts = meter::alloc::counts();
    assert_eq!(concatenated as u64, value_bytes);
    assert!(
        counts.peak_bytes >= value_bytes,
        "the counted heap peaked at {} bytes over a SELECT that built {value_bytes} bytes inside SQLite",
        counts.peak_bytes
    );
    // And SQLite gave it back: what stays live is small next to the table.
    assert!(
        counts.live_bytes < value_bytes / 10,
        "{} bytes still live",
        counts.live_bytes
    );
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}
