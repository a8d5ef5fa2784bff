//! Measures two allocator facts memproof's design rests on (docs/measured.md), on this machine, in one process:
//!
//! 1. dhat's allocator has no zeroed path: a zeroed buffer made through it is written page by page, so all of it
//!    becomes resident, where the system allocator hands back untouched zero pages. This is why a case's RSS comes
//!    from its timeline run (counting allocator) and never from its dhat profile run.
//! 2. glibc keeps fragmented memory: freeing all but a few small blocks leaves most of the pages resident, and
//!    `malloc_trim(0)` gives back only part. Heap and RSS tell different stories, so reports show both.
//!
//! `cargo run --release -p memproof-meter --example allocator_traps`

use std::alloc::{GlobalAlloc, Layout, System};

const MIB: u64 = 1024 * 1024;

fn rss_mib() -> u64 {
    let mut buffer = Vec::with_capacity(4096);
    meter::procfs::memory_of(std::process::id(), &mut buffer)
        .expect("this process's /proc status")
        .rss_bytes
        / MIB
}

fn zeroed_buffer(name: &str, allocator: &impl GlobalAlloc) {
    // Alignment 8: above 16, Rust's `System` allocates and writes zeroes instead of calling `calloc`.
    let layout = Layout::from_size_align(300 * MIB as usize, 8).unwrap();
    let before = rss_mib();
    // SAFETY: a non-zero layout; freed below with the same layout.
    let block = unsafe { allocator.alloc_zeroed(layout) };
    assert!(!block.is_null());
    std::hint::black_box(block);
    let after = rss_mib();
    // SAFETY: allocated just above with `layout`.
    unsafe { allocator.dealloc(block, layout) };
    println!(
        "300 MiB zeroed through {name}: resident grew by {} MiB",
        after - before
    );
}

fn fragmentation() {
    let before = rss_mib();
    let blocks: Vec<Box<[u8; 200]>> = (0..300 * MIB / 200).map(|_| Box::new([1u8; 200])).collect();
    let full = rss_mib();
    let kept: Vec<Box<[u8; 200]>> = blocks.into_iter().step_by(32).collect();
    let live_mib = kept.len() as u64 * 200 / MIB;
    let after_free = rss_mib();
    // SAFETY: malloc_trim only walks glibc's own free lists.
    unsafe { libc::malloc_trim(0) };
    let after_trim = rss_mib();
    println!(
        "300 MiB of 200-byte boxes ({} MiB resident), all freed but every 32nd ({live_mib} MiB live): {} MiB \
         resident; after malloc_trim(0): {} MiB",
        full - before,
        after_free - before,
        after_trim - before
    );
    drop(kept);
}

fn main() {
    zeroed_buffer("the system allocator", &System);
    zeroed_buffer("dhat::Alloc", &dhat::Alloc);
    fragmentation();
}
