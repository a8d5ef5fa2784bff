//! Seed B's verdicts at a small size, with the counting allocator metering the heap of this test process: before's
//! pinned multiple grows with the concurrency by about 3x the compressed module per waiting init; after's and
//! best's do not (they add only a compiled form and a task frame per init); best's peak heap is below after's; and
//! corrupt specs fail alone. One heap test in this file, so no other test allocates while it measures.

use memproof::workflow_init::{
    InitTechnique, StartupObserver, StartupReport, StartupSettings, initialise_all,
};
use scenarios::startup::{StoreRequest, store_workflows};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static ALLOC: meter::alloc::CountingAlloc = meter::alloc::CountingAlloc;

struct CountingObserver;

impl StartupObserver for CountingObserver {
    fn live_heap_bytes(&self) -> Option<u64> {
        Some(meter::alloc::counts().live_bytes)
    }
    fn resident_bytes(&self) -> Option<u64> {
        None
    }
    fn phase(&self, _name: &str) {}
}

/// Runs one startup on a current-thread runtime, as the scenario does; returns its report and the peak heap.
fn measured_startup(
    paths: &[std::path::PathBuf],
    technique: InitTechnique,
    concurrency: usize,
) -> (StartupReport, u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // The wait must outlast `concurrency` compiles (a debug build on a busy machine included) for all of them to be
    // waiting at once; at concurrency 1 any wait will do.
    let trigger_wait = Duration::from_millis(if concurrency == 1 { 10 } else { 1000 });
    let settings = StartupSettings::for_technique(technique, concurrency, trigger_wait);
    meter::alloc::reset();
    let report = runtime.block_on(initialise_all(paths, &settings, Arc::new(CountingObserver)));
    let peak = meter::alloc::counts().peak_bytes;
    (report, peak)
}

#[test]
fn pinned_heap_grows_with_concurrency_only_for_the_holding_technique() {
    let dir = tempfile::tempdir().unwrap();
    let request = StoreRequest {
        dir: dir.path().join("specs"),
        workflows: 14,
        module_bytes: 64 * 1024,
        size_spread: 0.0,
        data_fraction: 0.25,
        corrupt_workflows: 2,
        seed: 3,
    };
    store_workflows(&request).unwrap();
    let paths = memproof::workflow_init::spec_store::list_specs(&request.dir).unwrap();

    let mut pinned = BTreeMap::new();
    let mut peak = BTreeMap::new();
    for technique in InitTechnique::ALL {
        for concurrency in [1usize, 8] {
            let (report, peak_heap) = measured_startup(&paths, technique, concurrency);
            assert_eq!(
                report.failures.len(),
                2,
                "{}: {:?}",
                technique.name(),
                report.failures
            );
            assert_eq!(report.initialised.len(), 12);
            pinned.insert(
                (technique.name(), concurrency),
                (
                    report.pinned_multiple().unwrap(),
                    report.pinned_peak_heap_bytes.unwrap(),
                    report.mean_compressed_module_bytes(),
                ),
            );
            peak.insert((technique.name(), concurrency), peak_heap);
        }
    }
    let growth = |name: &str| pinned[&(name, 8)].0 - pinned[&(name, 1)].0;
    // 7 more waiting inits: before adds about 3x the compressed module each.
    let before = growth("hold_through_trigger_wait");
    assert!(
        (19.0..24.0).contains(&before),
        "before grew by {before}: {pinned:?}"
    );
    assert!(
        pinned[&("hold_through_trigger_wait", 8)].0 >= 22.0,
        "{pinned:?}"
    );
    // After and best add a compiled form (about 1 KB) and a task frame per waiting init, nothing module-sized:
    // under 4 KiB per init, where before adds 3x a ~25 KB compressed module.
    for name in ["release_after_compile", "stream_hex_to_validator"] {
        let per_init = (pinned[&(name, 8)].1 as f64 - pinned[&(name, 1)].1 as f64) / 7.0;
        assert!(
            per_init < 4096.0,
            "{name} grew by {per_init} bytes per init: {pinned:?}"
        );
        assert!(growth(name) * 20.0 < before, "{name}: {pinned:?}");
    }
    for concurrency in [1usize, 8] {
        let after = peak[&("release_after_compile", concurrency)];
        let best = peak[&("stream_hex_to_validator", concurrency)];
        // With 64 KiB modules best's fixed buffers (file, inflate window, parse buffer: ~120 KB) are much of its
        // peak; the verdict is only that it is below after's.
        assert!(
            best < after,
            "c={concurrency}: best {best} vs after {after}: {peak:?}"
        );
    }
}
