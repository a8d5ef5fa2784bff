//! The case process's allocator policy, checked in a process of its own (this test binary holds one test, so no other
//! thread allocates while it looks at glibc's counters).

use scenarios::malloc_policy::{MMAP_THRESHOLD_BYTES, pin_mmap_threshold};

/// Bytes glibc holds in mmapped blocks.
fn mmapped_bytes() -> usize {
    // SAFETY: mallinfo2(3) only reads malloc's statistics.
    unsafe { libc::mallinfo2() }.hblkhd
}

#[test]
fn a_block_over_the_threshold_is_mmapped_after_a_larger_one_was_freed() {
    pin_mmap_threshold().unwrap();
    // Unpinned, freeing this 4 MiB block raises the threshold to 4 MiB ...
    let large = vec![1u8; 4 << 20];
    assert!(mmapped_bytes() >= 4 << 20, "a 4 MiB block is mmapped");
    drop(std::hint::black_box(large));
    // ... and this 1 MiB block would then come from the heap.
    let before = mmapped_bytes();
    let block = vec![1u8; 1 << 20];
    let after = mmapped_bytes();
    drop(std::hint::black_box(block));
    assert!(
        after >= before + (1 << 20),
        "a 1 MiB block (over the pinned {MMAP_THRESHOLD_BYTES} B) was not mmapped: {before} -> {after} B mmapped"
    );
}
