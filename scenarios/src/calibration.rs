//! The calibration cases: the harness checking its own meters on every run.
//!
//! `touch_known_steps` allocates a known number of bytes in known steps on one thread, touching every page, holds
//! them, and frees them. The heap meter must then report a peak of exactly what was live before plus the known
//! bytes, and the kernel's high-water mark must be at least the known bytes. `cargo xtask load-test` runs it first
//! and fails the run when either is off, because every other figure in the report comes from the same meters.
//!
//! `threads_known_pattern` does the same on several threads at once, in barrier-separated phases, so that its
//! true peak is known exactly whatever the threads' timing: the counting allocator's peak once could be off by up
//! to 64 KiB per other thread, and a leak of about 16 KiB on another thread moved `end_heap_bytes` by 26 bytes.
//! Each thread also churns small blocks below the peak, the calls a lazily counting meter could lose.

use crate::params::required;
use crate::{CaseContext, Scenario};
use anyhow::bail;
use meter::probe;
use serde::Deserialize;
use std::time::Duration;

/// The calibration scenario. Its size is the known number of bytes; `steps` parameter splits it.
pub struct Calibration;

/// The calibration's parameters: one table for both techniques, each reading its own (a missing one is an error of
/// the technique that needs it); a key neither reads is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationParams {
    /// `touch_known_steps`: the equal steps the known bytes are allocated in (at least 1).
    pub steps: Option<u64>,
    /// `touch_known_steps`: how long the blocks are held, and spread over the steps.
    #[serde(default, deserialize_with = "crate::params::optional_duration")]
    pub hold: Option<Duration>,
    /// `threads_known_pattern`: the threads (at least 1).
    pub threads: Option<u64>,
    /// `threads_known_pattern`: the bytes each thread leaks (the leak test's; 0 when absent).
    #[serde(default, deserialize_with = "crate::params::size")]
    pub leak: u64,
}

/// One page; touching a byte per page makes the whole block resident.
const PAGE: usize = 4096;

impl Scenario for Calibration {
    fn name(&self) -> &'static str {
        "calibration"
    }

    fn techniques(&self) -> Vec<&'static str> {
        vec!["touch_known_steps", "threads_known_pattern"]
    }

    fn run_case(&self, case: &CaseContext) -> anyhow::Result<()> {
        let params: CalibrationParams = case.read_params()?;
        match case.technique.as_str() {
            "threads_known_pattern" => threads_known_pattern(case, &params),
            _ => touch_known_steps(case, &params),
        }
    }

    fn check_params(
        &self,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<()> {
        crate::params::read::<CalibrationParams>(params).map(drop)
    }
}

/// A block of `bytes` zeroed bytes with every page made resident.
fn touched_block(bytes: usize) -> Vec<u8> {
    // Zeroed blocks come as fresh pages; writing one byte per page makes every page resident.
    let mut block = vec![0u8; bytes];
    for offset in (0..bytes).step_by(PAGE) {
        block[offset] = 1;
    }
    if let Some(last) = block.last_mut() {
        *last = 1;
    }
    block
}

fn touch_known_steps(case: &CaseContext, params: &CalibrationParams) -> anyhow::Result<()> {
    let known_bytes = case.size_u64() as usize;
    let steps = required(params.steps, "calibration", "steps")?.max(1) as usize;
    let hold = required(params.hold, "calibration", "hold")?;
    if !known_bytes.is_multiple_of(steps) {
        bail!("calibration: {known_bytes} bytes do not split into {steps} equal steps");
    }
    let step_bytes = known_bytes / steps;
    // The holder is allocated before the baseline is read, so the known figure is the blocks alone.
    let mut blocks: Vec<Vec<u8>> = Vec::with_capacity(steps);
    let baseline = probe::heap_figures().map(|heap| heap.live_bytes);
    probe::phase("allocate");
    for _ in 0..steps {
        blocks.push(touched_block(step_bytes));
        std::thread::sleep(hold / steps as u32);
    }
    probe::phase("hold");
    std::thread::sleep(hold);
    let touched: usize = blocks
        .iter()
        .map(|block| {
            block
                .iter()
                .step_by(PAGE)
                .map(|&b| b as usize)
                .sum::<usize>()
        })
        .sum();
    probe::phase("free");
    drop(blocks);
    probe::metric("known_bytes", known_bytes);
    probe::metric("steps", steps);
    probe::metric("pages_touched", touched);
    if let Some(baseline) = baseline {
        probe::metric("baseline_live_bytes", baseline);
        probe::metric("expected_peak_heap_bytes", baseline + known_bytes as u64);
    }
    Ok(())
}

/// Small blocks a thread allocates and frees one by one, below the peak: `CHURN` of them, of known sizes.
const CHURN: usize = 2000;

fn churn_size(thread: usize, round: usize) -> usize {
    16 + (round * 61 + thread * 17) % 4000
}

/// The bytes and blocks `churn` allocates on thread `thread`.
fn churn_figures(thread: usize) -> (u64, u64) {
    let bytes = (0..CHURN)
        .map(|round| churn_size(thread, round) as u64)
        .sum();
    (bytes, CHURN as u64)
}

fn churn(thread: usize) {
    for round in 0..CHURN {
        let block = vec![1u8; churn_size(thread, round)];
        std::hint::black_box(&block);
    }
}

/// `threads` threads, each in barrier-separated phases: churn; allocate A (the known bytes over `2 * threads`);
/// allocate B (as big) — all hold A and B at once, the peak; free A; churn; allocate C (half of A), free all. Each
/// thread then leaks `leak` bytes (0 but in the leak test). Every phase waits for every thread, so the peak is
/// the same in any order of the calls: what was live before plus the known bytes.
fn threads_known_pattern(case: &CaseContext, params: &CalibrationParams) -> anyhow::Result<()> {
    let known_bytes = case.size_u64() as usize;
    let threads = required(params.threads, "calibration", "threads")?.max(1) as usize;
    let leak = params.leak as usize;
    if !known_bytes.is_multiple_of(2 * threads) {
        bail!(
            "calibration: {known_bytes} bytes do not split into 2 equal blocks on each of {threads} threads"
        );
    }
    let block_bytes = known_bytes / (2 * threads);
    // Every thread and the main one meet at each phase boundary.
    let barrier = std::sync::Barrier::new(threads + 1);
    let phases = [
        "churn",
        "allocate A",
        "allocate B",
        "free A and churn",
        "free and leak",
    ];
    let mut before = None;
    let mut after = None;
    let mut kept: Vec<Vec<u8>> = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait(); // spawned: the main thread reads the baseline
                    barrier.wait(); // go
                    churn(thread);
                    barrier.wait();
                    let a = touched_block(block_bytes);
                    barrier.wait();
                    let b = touched_block(block_bytes);
                    barrier.wait(); // the peak: every thread holds A and B
                    drop(a);
                    churn(thread);
                    let c = touched_block(block_bytes / 2);
                    barrier.wait();
                    drop(b);
                    drop(c);
                    let leaked = vec![1u8; leak];
                    barrier.wait();
                    // The main thread reads the totals before any thread begins to end (a thread's end frees
                    // what its start allocated).
                    barrier.wait();
                    leaked
                })
            })
            .collect();
        barrier.wait();
        // Every thread is spawned and waits: nothing of the case moves the heap until the next barrier.
        before = probe::heap_figures();
        barrier.wait();
        for phase in phases {
            probe::phase(phase);
            barrier.wait();
        }
        after = probe::heap_figures();
        barrier.wait();
        probe::phase("join");
        for handle in handles {
            match handle.join() {
                Ok(leaked) => kept.push(leaked),
                Err(_) => {
                    return Err(anyhow::anyhow!(
                        "calibration: a thread of the case panicked"
                    ));
                }
            }
        }
        Ok(())
    })?;
    // The leaked blocks stay live to the end, as a leak would.
    std::mem::forget(kept);
    let (churn_bytes, churn_count) = (0..threads)
        .map(churn_figures)
        .fold((0, 0), |(b, c), (tb, tc)| (b + tb, c + tc));
    // Two rounds of churn, A, B and C on each thread, and the leaked block (an empty `Vec` allocates nothing).
    let known_total =
        2 * churn_bytes + (threads * (2 * block_bytes + block_bytes / 2 + leak)) as u64;
    let known_count = 2 * churn_count + threads as u64 * (3 + u64::from(leak > 0));
    probe::metric("known_bytes", known_bytes);
    probe::metric("threads", threads);
    probe::metric("known_alloc_bytes", known_total);
    probe::metric("known_alloc_count", known_count);
    probe::metric("known_leak_bytes", threads * leak);
    if let (Some(before), Some(after)) = (before, after) {
        probe::metric("baseline_live_bytes", before.live_bytes);
        probe::metric(
            "expected_peak_heap_bytes",
            before.live_bytes + known_bytes as u64,
        );
        probe::metric(
            "measured_alloc_bytes",
            after.total_bytes - before.total_bytes,
        );
        probe::metric(
            "measured_alloc_count",
            after.total_count - before.total_count,
        );
        probe::metric(
            "measured_leak_bytes",
            after.live_bytes as i64 - before.live_bytes as i64,
        );
    }
    Ok(())
}
