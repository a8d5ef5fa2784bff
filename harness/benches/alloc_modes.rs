//! What each heap-metering mode costs against the plain system allocator, on allocation-heavy work.
//!
//! The timeline run's counting allocator must cost at most 1.15x the system allocator, also with two threads
//! churning at once (a single shared atomic counter measured 3.8x there). dhat, the profile run's meter, is shown
//! for contrast: MEASURED.md found 12x single-threaded and 172x with two threads.
//!
//! The allocators are called through `GlobalAlloc` directly, so one binary can compare them all; criterion's own
//! allocations go to the system allocator and are not counted.

use criterion::{Criterion, criterion_group, criterion_main};
use harness::alloc::CountingAlloc;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

/// Blocks of varied sizes (16 B to 4 KiB), 64 live at a time, each freed 64 allocations after it was made: the
/// shape of a parser building and dropping small values.
fn churn(allocator: &impl GlobalAlloc, operations: usize) {
    const LIVE: usize = 64;
    let mut ring: [(*mut u8, usize); LIVE] = [(std::ptr::null_mut(), 0); LIVE];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..operations {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let size = 16 + (state % 4080) as usize;
        let slot = i % LIVE;
        let (old, old_size) = ring[slot];
        // SAFETY: every pointer in the ring came from this allocator with the layout rebuilt here.
        unsafe {
            if !old.is_null() {
                allocator.dealloc(old, Layout::from_size_align_unchecked(old_size, 8));
            }
            let block = allocator.alloc(Layout::from_size_align_unchecked(size, 8));
            block.write(i as u8);
            ring[slot] = (black_box(block), size);
        }
    }
    for (block, size) in ring {
        if !block.is_null() {
            // SAFETY: as above.
            unsafe { allocator.dealloc(block, Layout::from_size_align_unchecked(size, 8)) };
        }
    }
}

fn churn_on_two_threads(allocator: &(impl GlobalAlloc + Sync), operations: usize) {
    std::thread::scope(|scope| {
        scope.spawn(|| churn(allocator, operations));
        churn(allocator, operations);
    });
}

const OPERATIONS: usize = 100_000;

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("single_thread");
    group.bench_function("system", |b| b.iter(|| churn(&System, OPERATIONS)));
    group.bench_function("counting", |b| b.iter(|| churn(&CountingAlloc, OPERATIONS)));
    group.bench_function("dhat_alloc_no_profiler", |b| {
        b.iter(|| churn(&dhat::Alloc, OPERATIONS))
    });
    group.bench_function("dhat_profiling", |b| {
        let profiler = dhat::Profiler::builder().testing().build();
        b.iter(|| churn(&dhat::Alloc, OPERATIONS));
        drop(profiler);
    });
    group.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("two_threads");
    group.bench_function("system", |b| {
        b.iter(|| churn_on_two_threads(&System, OPERATIONS))
    });
    group.bench_function("counting", |b| {
        b.iter(|| churn_on_two_threads(&CountingAlloc, OPERATIONS))
    });
    group.bench_function("dhat_profiling", |b| {
        let profiler = dhat::Profiler::builder().testing().build();
        b.iter(|| churn_on_two_threads(&dhat::Alloc, OPERATIONS / 10));
        drop(profiler);
    });
    group.finish();
}

criterion_group! {
    name = modes;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = single_thread, two_threads
}
criterion_main!(modes);
