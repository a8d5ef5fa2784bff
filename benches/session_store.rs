//! The cost of one appended hook event per technique, at the seed's state size (8,614 events across 359 sessions,
//! about 22 MB): the seed's store clones, serialises and rewrites all of it; the merged fix appends in memory and
//! leaves the write to its window (not measured here: the window is set longer than the benchmark); the journal
//! appends one line.

use criterion::{Criterion, criterion_group, criterion_main};
use memproof::payload::Rng;
use memproof::session_store::atomic_replace::replace_file_atomically;
use memproof::session_store::state_file::serialize_state_streaming;
use memproof::session_store::synthetic_state::{StateShape, generate_state, hook_body};
use memproof::session_store::{StoreConfig, StoreTechnique};
use std::time::{Duration, Instant};

const SEED_EVENTS: usize = 8_614;

fn one_append_at_seed_state_size(criterion: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let state = generate_state(&mut Rng::new(4032), StateShape::seed_like(SEED_EVENTS));
    let active = state
        .sessions
        .iter()
        .find(|(_, session)| !session.status.is_terminal())
        .map(|(id, _)| id.clone())
        .expect("an active session");
    let mut group = criterion.benchmark_group("session_store_append_22MB");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for technique in StoreTechnique::ALL {
        let path = dir.path().join(format!("{}.json", technique.name()));
        replace_file_atomically(&path, |out| serialize_state_streaming(&state, out)).unwrap();
        let config = StoreConfig {
            debounce_window: Duration::from_secs(3600),
            ..StoreConfig::default()
        };
        let mut store = technique.open(&path, config, Instant::now()).unwrap();
        let body = hook_body(&mut Rng::new(1), 2_500);
        group.bench_function(technique.name(), |bench| {
            bench.iter(|| {
                store
                    .append_event(&active, "PostToolUse", &body, Instant::now())
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, one_append_at_seed_state_size);
criterion_main!(benches);
