//! The counting allocator: the heap meter of a case's timeline run.
//!
//! Why not dhat for everything: dhat serialises every allocation on one lock (12x on a single-threaded mixed
//! workload, 172x on a two-thread churn, MEASURED.md), and its allocator has no zeroed path, so `vec![0u8; 300 MB]`
//! becomes 309 MB resident instead of 2 MB. The timeline run must cost little and leave RSS alone, so it counts
//! here and forwards every call, `alloc_zeroed` and `realloc` included, to the system allocator unchanged.
//!
//! Why not one shared atomic counter: it costs 3.8x on a two-thread churn (cache-line ping-pong). Instead each
//! thread keeps its own running delta in a thread-local and folds it into the shared figures only when it has moved
//! by [`FLUSH_BYTES`] or after [`FLUSH_OPS`] calls. Along with the delta the thread keeps the highest value the delta
//! reached since its last fold, so at the fold the shared peak learns `live before the fold + that highest delta`.
//! With one allocating thread that is the exact peak, byte for byte what dhat's `max_bytes` reports; with several
//! it can be off by at most `FLUSH_BYTES` per other thread (their unfolded deltas are unseen at that moment).
//!
//! Sizes are the sizes requested (the `Layout`), as dhat counts them, not what glibc rounds them up to.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// A thread folds its delta into the shared figures once it has moved this far from its last fold.
pub const FLUSH_BYTES: i64 = 64 * 1024;
/// … or after this many calls, so totals of a thread that churns small blocks do not stay hidden.
pub const FLUSH_OPS: u32 = 4096;

/// Live bytes, as folded in so far (can be briefly negative: a thread may free what another allocated).
static LIVE: AtomicI64 = AtomicI64::new(0);
/// The highest live figure seen since the meter was last reset.
static PEAK: AtomicI64 = AtomicI64::new(0);
/// The highest live figure since the timeline sampler last took it: the envelope of the timeline.
static WINDOW_PEAK: AtomicI64 = AtomicI64::new(0);
static TOTAL_BYTES: AtomicU64 = AtomicU64::new(0);
static TOTAL_COUNT: AtomicU64 = AtomicU64::new(0);

/// A thread's unfolded share of the figures.
struct Local {
    delta: Cell<i64>,
    delta_high: Cell<i64>,
    bytes: Cell<u64>,
    count: Cell<u64>,
    ops: Cell<u32>,
}

impl Local {
    fn fold(&self) {
        let delta = self.delta.replace(0);
        let high = self.delta_high.replace(0);
        let before = LIVE.fetch_add(delta, Relaxed);
        let candidate = before + high;
        PEAK.fetch_max(candidate, Relaxed);
        WINDOW_PEAK.fetch_max(candidate, Relaxed);
        TOTAL_BYTES.fetch_add(self.bytes.replace(0), Relaxed);
        TOTAL_COUNT.fetch_add(self.count.replace(0), Relaxed);
        self.ops.set(0);
    }
}

impl Drop for Local {
    /// A thread that ends folds in what it still holds, so its totals are not lost.
    fn drop(&mut self) {
        self.fold();
    }
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            delta: Cell::new(0),
            delta_high: Cell::new(0),
            bytes: Cell::new(0),
            count: Cell::new(0),
            ops: Cell::new(0),
        }
    };
}

/// Records `grown` new bytes (negative for a free) and, for an allocation, one more block of `requested` bytes.
#[inline]
fn record(grown: i64, requested: Option<u64>) {
    let recorded = LOCAL.try_with(|local| {
        let delta = local.delta.get() + grown;
        local.delta.set(delta);
        if delta > local.delta_high.get() {
            local.delta_high.set(delta);
        }
        if let Some(bytes) = requested {
            local.bytes.set(local.bytes.get() + bytes);
            local.count.set(local.count.get() + 1);
        }
        let ops = local.ops.get() + 1;
        local.ops.set(ops);
        if !(-FLUSH_BYTES..FLUSH_BYTES).contains(&delta) || ops >= FLUSH_OPS {
            local.fold();
        }
    });
    if recorded.is_err() {
        // The thread-local is gone (thread teardown): go straight to the shared figures.
        let before = LIVE.fetch_add(grown, Relaxed);
        PEAK.fetch_max(before + grown.max(0), Relaxed);
        WINDOW_PEAK.fetch_max(before + grown.max(0), Relaxed);
        if let Some(bytes) = requested {
            TOTAL_BYTES.fetch_add(bytes, Relaxed);
            TOTAL_COUNT.fetch_add(1, Relaxed);
        }
    }
}

/// A global allocator that counts what it forwards to [`System`]. Install it with `#[global_allocator]`.
pub struct CountingAlloc;

unsafe impl GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            record(layout.size() as i64, Some(layout.size() as u64));
        }
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Forwarded, not emulated: glibc hands out fresh pages for large zeroed blocks without touching them.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            record(layout.size() as i64, Some(layout.size() as u64));
        }
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        record(-(layout.size() as i64), None);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_ptr = unsafe { System.realloc(ptr, layout, new_size) };
        if !new_ptr.is_null() {
            // As dhat counts it: one more block of the new size; live bytes move by the difference.
            record(
                new_size as i64 - layout.size() as i64,
                Some(new_size as u64),
            );
        }
        new_ptr
    }
}

/// The counting allocator's figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub live_bytes: u64,
    pub peak_bytes: u64,
    pub total_bytes: u64,
    pub total_count: u64,
}

/// Folds in the calling thread's delta and reads the shared figures. Other threads' unfolded deltas (at most
/// [`FLUSH_BYTES`] each) are not in them.
pub fn counts() -> Counts {
    let _ = LOCAL.try_with(Local::fold);
    Counts {
        live_bytes: LIVE.load(Relaxed).max(0) as u64,
        peak_bytes: PEAK.load(Relaxed).max(0) as u64,
        total_bytes: TOTAL_BYTES.load(Relaxed),
        total_count: TOTAL_COUNT.load(Relaxed),
    }
}

/// The highest live figure since the last call (the envelope between two timeline samples), and starts a new
/// window at the live figure now.
///
/// The sampler thread folds its own delta here: the start-up block its spawn handed it is freed on its side.
pub fn take_window_peak() -> u64 {
    let _ = LOCAL.try_with(Local::fold);
    let live = LIVE.load(Relaxed);
    WINDOW_PEAK.swap(live, Relaxed).max(live).max(0) as u64
}

/// Starts the figures afresh: the peak drops to what is live now and the totals to zero. A case calls this
/// when its measurement starts, so that its figures cover what dhat's profiler would cover.
///
/// What was live before the reset is forgotten (live drops to zero), as dhat's profiler never sees blocks allocated
/// before it started. Should such a block be freed later, live dips below the truth by its size; the process's
/// runtime holds a few hundred bytes from before `main` and keeps them to the end.
pub fn reset() {
    let _ = LOCAL.try_with(Local::fold);
    LIVE.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    WINDOW_PEAK.store(0, Relaxed);
    TOTAL_BYTES.store(0, Relaxed);
    TOTAL_COUNT.store(0, Relaxed);
}
