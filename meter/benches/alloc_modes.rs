//! What each heap-metering mode costs against the plain system allocator, on allocation-heavy work.
//!
//! The timeline run's counting allocator must cost at most 1.05x the system allocator, also with two threads
//! churning at once (a single shared atomic counter measured 3.8x there). dhat, the profile run's meter, is shown
//! for contrast.
//!
//! The allocators are called through `GlobalAlloc` directly, so one binary can compare them all; criterion's own
//! allocations go to the system allocator and are not counted.
//!
//! Time is the process's CPU time (`CLOCK_PROCESS_CPUTIME_ID`, every thread's), not wall-clock time: on a machine
//! shared with other work, time spent waiting for a core is not the allocator's cost, and wall-clock ratios there
//! wandered from 0.95x to 1.38x between runs of the same two binaries. Cache-line ping-pong between the two
//! churning threads is CPU time and still counts.

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meter::alloc::CountingAlloc;
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

/// The CPU time of every thread of this process, in nanoseconds.
fn process_cpu_ns() -> u64 {
    meter::probe::clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// Criterion's measurement of process CPU time.
struct ProcessCpuTime;

impl Measurement for ProcessCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        process_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        process_cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Shows CPU nanoseconds as CPU milliseconds.
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v /= 1e6);
        "ms cpu"
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        _throughput: &Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        "(no throughput)"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns cpu"
    }
}

fn single_thread(c: &mut Criterion<ProcessCpuTime>) {
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

fn two_threads(c: &mut Criterion<ProcessCpuTime>) {
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
    config = Criterion::default()
        .with_measurement(ProcessCpuTime)
        .sample_size(20)
        .measurement_time(std::time::Duration::from_secs(3));
    targets = single_thread, two_threads
}
criterion_main!(modes);
