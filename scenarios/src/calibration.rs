//! The calibration case: the harness checking its own meters on every run.
//!
//! It allocates a known number of bytes in known steps, touching every page, holds them, and frees them. The
//! heap meter must then report a peak of exactly what was live before plus the known bytes, and the kernel's
//! high-water mark must be at least the known bytes. `cargo xtask load-test` runs it first and fails the run when
//! either is off, because every other figure in the report comes from the same meters.

use crate::{CaseContext, Scenario};
use anyhow::bail;
use harness::probe;

/// The calibration scenario. Its size is the known number of bytes; `steps` parameter splits it.
pub struct Calibration;

/// One page; touching a byte per page makes the whole block resident.
const PAGE: usize = 4096;

impl Scenario for Calibration {
    fn name(&self) -> &'static str {
        "calibration"
    }

    fn techniques(&self) -> &'static [&'static str] {
        &["touch_known_steps"]
    }

    fn run_case(&self, case: &CaseContext) -> anyhow::Result<()> {
        let known_bytes = case.size_u64() as usize;
        let steps = case.param_u64("steps")?.max(1) as usize;
        let hold = case.param_duration("hold")?;
        if !known_bytes.is_multiple_of(steps) {
            bail!("calibration: {known_bytes} bytes do not split into {steps} equal steps");
        }
        let step_bytes = known_bytes / steps;
        // The holder is allocated before the baseline is read, so the known figure is the blocks alone.
        let mut blocks: Vec<Vec<u8>> = Vec::with_capacity(steps);
        let baseline = probe::heap_figures().map(|heap| heap.live_bytes);
        probe::phase("allocate");
        for _ in 0..steps {
            // Zeroed blocks come as fresh pages; writing one byte per page makes every page resident.
            let mut block = vec![0u8; step_bytes];
            for offset in (0..step_bytes).step_by(PAGE) {
                block[offset] = 1;
            }
            if let Some(last) = block.last_mut() {
                *last = 1;
            }
            blocks.push(block);
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
}
