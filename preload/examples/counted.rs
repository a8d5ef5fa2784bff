//! A Rust program on the system allocator, metered by memproof's own counting allocator, for the preload library's
//! cross-check: growing vectors (realloc), zeroed and over-aligned blocks, boxes churned on two threads. It writes
//! its counting allocator's figures to the file named by its first argument, as `peak total count end`.

use meter::alloc::{CountingAlloc, counts, reset};
use std::alloc::{Layout, alloc_zeroed, dealloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn churn(seed: usize) -> usize {
    let mut kept: Vec<Box<[u8]>> = Vec::new();
    for i in 0..3000 {
        let size = 32 + (seed * 7919 + i * 104_729) % 4000;
        kept.push(vec![1u8; size].into_boxed_slice());
        if i % 4 == 0 {
            kept.swap_remove(i % kept.len());
        }
    }
    kept.iter().map(|b| b.len()).sum()
}

fn main() {
    let out = std::env::args().nth(1).expect("usage: counted OUT_FILE");
    reset();
    let mut grown: Vec<u64> = Vec::new();
    for i in 0..1_000_000 {
        grown.push(i);
    }
    let zeroed = vec![0u8; 4 << 20];
    let layout = Layout::from_size_align(1 << 20, 4096).unwrap();
    // SAFETY: a non-zero size; freed below with the same layout.
    let aligned = unsafe { alloc_zeroed(layout) };
    let threads: Vec<_> = (0..2)
        .map(|seed| std::thread::spawn(move || churn(seed)))
        .collect();
    let held: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    // SAFETY: allocated above with this layout.
    unsafe { dealloc(aligned, layout) };
    let checksum = grown.len() + zeroed.len() + held;
    drop(grown);
    drop(zeroed);
    let figures = counts();
    std::fs::write(
        out,
        format!(
            "{} {} {} {} {checksum}",
            figures.peak_bytes, figures.total_bytes, figures.total_count, figures.live_bytes
        ),
    )
    .unwrap();
}
