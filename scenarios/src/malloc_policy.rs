//! The allocator policy every case process runs under: glibc's mmap threshold pinned at its default, 128 KiB.
//!
//! By default glibc raises its mmap threshold each time a block it had mmapped is freed, to that block's size (up to
//! 32 MiB on 64-bit), and from then on serves blocks of that size from a heap, whose memory goes back to the kernel
//! only when the heap's top is free. So the resident set of the same allocations depends on which large block happens
//! to be freed first, and with two threads that is a matter of scheduling: large-session's streaming server, whose
//! peak heap repeats to the byte (a reader thread's 64 KiB chunks, 300 KB snapshots and a 1.5 MB line freed by the
//! HTTP thread), peaked at 13.8 to 15.9 MiB RSS on the 3 MiB log over seven ci runs (1.155x), and 13.5 to 14.9 MiB on
//! the 6 MiB one. Setting `M_MMAP_THRESHOLD` turns the adjustment off (mallopt(3)); pinned at the default, six runs
//! gave 12.2 to 12.5 MiB (1.025x) and 12.3 to 12.8 MiB (1.033x). To measure it again, with the pin taken out:
//! `cargo xtask load-test --scenario large-session --dhat none`, several times, with and without
//! `MALLOC_MMAP_THRESHOLD_=131072` in the environment (glibc's tunable for the same setting).
//!
//! Only memproof's own case processes are pinned: a spec's external program runs under whatever allocator policy
//! its environment gives it (the same variable pins glibc there).

/// glibc's default mmap threshold (`DEFAULT_MMAP_THRESHOLD_MIN`), in bytes.
pub const MMAP_THRESHOLD_BYTES: usize = 128 * 1024;

/// Pins glibc's mmap threshold at [`MMAP_THRESHOLD_BYTES`], which turns off its dynamic adjustment. Called first
/// thing in a case process, before its first large block is freed.
pub fn pin_mmap_threshold() -> anyhow::Result<()> {
    // SAFETY: mallopt(3) only sets a malloc parameter; it returns 0 when the value is refused.
    let accepted =
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES as libc::c_int) };
    anyhow::ensure!(
        accepted != 0,
        "mallopt(M_MMAP_THRESHOLD, {MMAP_THRESHOLD_BYTES}) was refused"
    );
    Ok(())
}
