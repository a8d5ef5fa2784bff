//! `memproof-testbed`: a program with known memory behaviour, for the spine's tests and `cargo xtask cross-check`.
//! It is measured the way a case is
//! (counting allocator, probe) and does one thing whose figures are known in advance.
//!
//! `memproof-testbed touch BYTES HOLD_MS`    allocate BYTES, touch every page, hold, exit 0
//! `memproof-testbed grow STEP_BYTES STEP_MS` allocate and touch STEP_BYTES every STEP_MS, forever
//! `memproof-testbed sleep MS`               sleep, exit 0
//! `memproof-testbed panic MESSAGE`          panic with MESSAGE
//! `memproof-testbed zeroed BYTES TOUCHED HOLD_MS` allocate BYTES zeroed, touch only the first TOUCHED bytes, hold
//! `memproof-testbed shell SCRIPT`            run `sh -c SCRIPT` as a child (as a case runs a program), exit with its status

use meter::probe::{self, HeapMeter, Probe};
use std::time::Duration;

#[global_allocator]
static ALLOC: meter::alloc::CountingAlloc = meter::alloc::CountingAlloc;

const PAGE: usize = 4096;

fn touch(block: &mut [u8], bytes: usize) {
    for offset in (0..bytes.min(block.len())).step_by(PAGE) {
        block[offset] = 1;
    }
}

fn number(args: &[String], index: usize) -> u64 {
    args.get(index)
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("argument {index} must be a number"))
}

fn main() {
    let probe = Probe::start(HeapMeter::Counting);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("touch") => {
            let bytes = number(&args, 1) as usize;
            probe::phase("allocate");
            let mut block = vec![0u8; bytes];
            touch(&mut block, bytes);
            probe::phase("hold");
            std::thread::sleep(Duration::from_millis(number(&args, 2)));
            std::hint::black_box(&block);
        }
        Some("grow") => {
            let step = number(&args, 1) as usize;
            let mut held = Vec::new();
            probe::phase("grow");
            loop {
                let mut block = vec![0u8; step];
                touch(&mut block, step);
                held.push(block);
                probe::metric("blocks", held.len());
                std::thread::sleep(Duration::from_millis(number(&args, 2)));
            }
        }
        Some("sleep") => std::thread::sleep(Duration::from_millis(number(&args, 1))),
        Some("panic") => {
            let message = args.get(1).cloned().unwrap_or_default();
            std::panic::set_hook(Box::new(|info| eprintln!("testbed: {info}")));
            // The panic leaves no final report, as a real crash would not.
            panic!("{message}");
        }
        Some("zeroed") => {
            let bytes = number(&args, 1) as usize;
            let touched = number(&args, 2) as usize;
            let mut block = vec![0u8; bytes];
            touch(&mut block, touched);
            std::thread::sleep(Duration::from_millis(number(&args, 3)));
            std::hint::black_box(&block);
        }
        Some("shell") => {
            let script = args.get(1).cloned().unwrap_or_default();
            let status = std::process::Command::new("sh")
                .args(["-c", &script])
                .status()
                .expect("run sh");
            if !status.success() {
                std::process::exit(status.code().unwrap_or(1));
            }
        }
        other => panic!("unknown testbed mode {other:?}"),
    }
    probe.finish(None);
}
