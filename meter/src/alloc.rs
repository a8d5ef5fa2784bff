//! The counting allocator: the heap meter of a case's timeline run.
//!
//! Why not dhat for everything: dhat serialises every allocation on one lock (19x the system allocator's CPU time
//! on one thread, docs/measured.md), and its allocator has no zeroed path, so 300 MiB zeroed becomes
//! 300 MiB resident instead of none (docs/measured.md). The timeline run must cost little and leave RSS alone, so it counts here and
//! forwards every call, `alloc_zeroed` and `realloc` included, to the system allocator unchanged. (Measure the
//! costs with `cargo bench -p memproof-meter --bench alloc_modes`.)
//!
//! Sizes are the sizes requested (the `Layout`), as dhat counts them, not what glibc rounds them up to.
//!
//! # Exact with any number of threads, cheap in the common case
//!
//! Every figure is exact, whatever the number of threads: live bytes, total bytes and count at any read, and the
//! peak, "the most bytes live at once" over one linear order of all allocations and frees. A shared atomic counter
//! bumped on every call would be exact, but costs 3.8x on a two-thread churn (the cache line ping-pongs between
//! the cores). Instead:
//!
//! * **Counts.** Each thread owns a [`Slot`]: its own live bytes (net of what it allocated and freed), bytes and
//!   count, written by that thread alone with plain stores. A read sums the slots plus a retired total into which
//!   a thread's slot folds when the thread ends. Nothing is held back, so the sum is exact: when the threads are
//!   quiet (the final figures, read after the case joined its threads), it is the byte-exact truth.
//! * **Peak: lazy epochs.** Time is split into epochs (the [`Meter::epoch`] number): *lazy* (even) and *exact*
//!   (odd). In a lazy epoch each thread `k` may move its live bytes freely between a `low_k` and a `high_k` without
//!   telling anyone; the bound `B = retired + Σ high_k` is kept, under the lock, at or below the peak so far `P`.
//!   Since every thread's live is at most its `high_k`, **every** state of a lazy epoch, in whatever order its
//!   calls interleave, is at most `B <= P`: no call of a lazy epoch can make a new peak, so `P` stays exact
//!   without being touched. A thread that would leave its range checks in under the lock: it gets a new range
//!   with half the slack left (`P - B`, at most [`MAX_SLACK`]), and if less than [`MIN_SLACK`] is left the meter
//!   turns exact.
//! * **Exact epochs.** When the live heap is within reach of the peak, every call adds to one shared live counter
//!   (`fetch_add`, whose modification order *is* the linear order) and raises the peak to each value it returns:
//!   exact by construction, at the price of the shared cache line, paid only near the peak. When the live heap
//!   falls far enough below the peak again (each thread could get at least [`EXIT_SLACK`]), the meter turns lazy.
//! * **The switch** between epochs must leave no call of the old epoch unaccounted. A thread marks its slot
//!   `busy` around each fast-path call and checks the epoch inside that mark; the switching thread, holding the
//!   lock, stores the new epoch, issues `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` (a memory barrier on every
//!   running thread of the process, so the callers' side needs only a compiler fence: the fast path has no atomic
//!   read-modify-write and no fence), then waits for every `busy` mark to clear. After that, each call either
//!   finished in the old epoch (its store is visible and counted) or saw the new epoch and went the slow way
//!   under the lock. Turning exact, it sums the slots into the live counter; turning lazy, it hands every thread a
//!   range around its exact live bytes. Where `membarrier` is unavailable, every call takes the lock: still exact,
//!   slower.
//!
//! So the linear order is: the calls of each lazy epoch (any interleaving: all are at most `P`), then those of
//! the following exact epoch in the order of the shared counter, and so on. The peak is the highest value the
//! shared counter took, or the figure at the last reset: exactly what dhat's `max_bytes` reports when its order
//! is the same, byte for byte (the calibration's threaded case checks this on every load test).
//!
//! The timeline's envelope ([`take_window_peak`]) is exact in exact epochs; in a lazy one a rise that stays below
//! the peak can go unseen by up to [`MAX_SLACK`] per thread. The peak, the live bytes and the totals never do.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU64,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
    compiler_fence,
};
use std::sync::{Mutex, MutexGuard};

/// The most a thread may move above its last check-in, in a lazy epoch, without telling anyone.
pub const MAX_SLACK: i64 = 64 * 1024;
/// A check-in that would get less room than this turns the meter exact instead.
pub const MIN_SLACK: i64 = 1024;
/// The meter turns lazy again only when every thread can get at least this much room.
pub const EXIT_SLACK: i64 = 4 * 1024;
/// Threads with a slot of their own at once; more go the slow way, under the lock (exact, slower).
pub const SLOTS: usize = 256;

/// One thread's figures, written by that thread alone (`live`, `bytes`, `count`) or under the lock.
#[repr(align(128))]
struct Slot {
    /// Set by the owner around each fast-path call; an epoch switch waits for it to clear.
    busy: AtomicBool,
    /// Under the lock: the slot belongs to a thread.
    in_use: AtomicBool,
    /// Net bytes the owner allocated minus those it freed (can be negative: it may free what others allocated).
    live: AtomicI64,
    bytes: AtomicU64,
    count: AtomicU64,
    /// Under the lock: the owner's range in the current lazy epoch.
    high: AtomicI64,
    low: AtomicI64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            busy: AtomicBool::new(false),
            in_use: AtomicBool::new(false),
            live: AtomicI64::new(0),
            bytes: AtomicU64::new(0),
            count: AtomicU64::new(0),
            high: AtomicI64::new(0),
            low: AtomicI64::new(0),
        }
    }
}

/// No slot claimed yet.
const NO_SLOT: usize = usize::MAX;
/// Every slot was taken: this thread's calls go under the lock.
const OVERFLOW: usize = usize::MAX - 1;
/// An epoch no thread's cached epoch matches: its next call takes the slow path.
const NO_EPOCH: u64 = u64::MAX;

/// A thread's view of its slot: which one, and the epoch and range it last took up. Its figures live in the slot
/// itself (the owner alone writes them, so reading them back costs no more than a thread-local).
pub struct Local {
    slot: Cell<usize>,
    epoch: Cell<u64>,
    high: Cell<i64>,
    low: Cell<i64>,
}

impl Local {
    pub const fn new() -> Local {
        Local {
            slot: Cell::new(NO_SLOT),
            epoch: Cell::new(NO_EPOCH),
            high: Cell::new(0),
            low: Cell::new(0),
        }
    }
}

impl Slot {
    /// The owner's new figures.
    #[inline]
    fn publish(&self, live: i64, requested: Option<u64>) {
        self.live.store(live, Relaxed);
        if let Some(bytes) = requested {
            self.bytes.store(self.bytes.load(Relaxed) + bytes, Relaxed);
            self.count.store(self.count.load(Relaxed) + 1, Relaxed);
        }
    }
}

impl Default for Local {
    fn default() -> Self {
        Local::new()
    }
}

/// Whether `membarrier` works here, found out on the first call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Barrier {
    Unknown,
    Membarrier,
    Missing,
}

/// What the lock guards.
struct Shared {
    /// In a lazy epoch: `retired_live - offset_live + Σ high_k` over the slots in use, at most the peak.
    bound: i64,
    retired_live: i64,
    retired_bytes: u64,
    retired_count: u64,
    /// The figures at the last reset, subtracted from every read.
    offset_live: i64,
    offset_bytes: u64,
    offset_count: u64,
    /// Slots `0..slots_used` may be in use.
    slots_used: usize,
    in_use: i64,
    barrier: Barrier,
}

/// Even epochs are lazy, odd ones exact.
#[inline]
fn is_lazy(epoch: u64) -> bool {
    epoch.is_multiple_of(2)
}

/// The counting allocator's bookkeeping. The global allocator uses one; tests make their own.
pub struct Meter {
    /// Odd: exact epoch; even: lazy epoch. Changed only under the lock.
    epoch: AtomicU64,
    /// In exact epochs: the live bytes since the last reset.
    live: AtomicI64,
    peak: AtomicI64,
    window_peak: AtomicI64,
    /// In exact epochs, a call that leaves the live bytes this far below the peak tries to turn lazy.
    exit_margin: AtomicI64,
    max_slack: i64,
    min_slack: i64,
    exit_slack: i64,
    /// Called at a thread's first call, before it claims a slot: arranges for the slot to be retired when the thread
    /// ends. `false` (the thread is already ending) leaves the thread without a slot.
    thread_start: fn() -> bool,
    shared: Mutex<Shared>,
    slots: [Slot; SLOTS],
}

/// The counting allocator's figures at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub live_bytes: u64,
    pub peak_bytes: u64,
    pub total_bytes: u64,
    pub total_count: u64,
}

impl Meter {
    /// A meter with the slacks of the global allocator.
    pub const fn new() -> Meter {
        Meter::with_slack(MAX_SLACK, MIN_SLACK, EXIT_SLACK)
    }

    /// A meter with other slacks (tests use small ones, to switch epochs often).
    pub const fn with_slack(max_slack: i64, min_slack: i64, exit_slack: i64) -> Meter {
        Meter::with_thread_start(max_slack, min_slack, exit_slack, || true)
    }

    /// A meter that calls `thread_start` at each thread's first call (the global one registers the thread's retiring
    /// there; tests retire their own `Local`s).
    const fn with_thread_start(
        max_slack: i64,
        min_slack: i64,
        exit_slack: i64,
        thread_start: fn() -> bool,
    ) -> Meter {
        Meter {
            epoch: AtomicU64::new(1),
            live: AtomicI64::new(0),
            peak: AtomicI64::new(0),
            window_peak: AtomicI64::new(0),
            exit_margin: AtomicI64::new(i64::MAX),
            max_slack,
            min_slack,
            exit_slack,
            thread_start,
            shared: Mutex::new(Shared {
                bound: 0,
                retired_live: 0,
                retired_bytes: 0,
                retired_count: 0,
                offset_live: 0,
                offset_bytes: 0,
                offset_count: 0,
                slots_used: 0,
                in_use: 0,
                barrier: Barrier::Unknown,
            }),
            slots: [const { Slot::new() }; SLOTS],
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Records `grown` new bytes (negative for a free) and, for an allocation, one more block of `requested` bytes,
    /// on behalf of the thread whose view is `local`.
    ///
    /// Only the lazy epoch's in-range call is inlined into the allocator's callers: a few loads and stores on the
    /// thread's own cache line. Everything else (the exact epoch's shared counter, check-ins, the first call) is a
    /// call away. Inlined whole, the exact path's registers made every call save and restore five of them, which
    /// was most of the fast path's cost (`alloc_modes`).
    #[inline(always)]
    pub fn record(&self, local: &Local, grown: i64, requested: Option<u64>) {
        let index = local.slot.get();
        if index < SLOTS {
            let slot = &self.slots[index];
            let epoch = self.enter(slot);
            if epoch == local.epoch.get() && is_lazy(epoch) {
                let live = slot.live.load(Relaxed) + grown;
                if live <= local.high.get() && live >= local.low.get() {
                    slot.publish(live, requested);
                    slot.busy.store(false, Release);
                    return;
                }
            }
            slot.busy.store(false, Release);
        }
        self.record_elsewhere(local, grown, requested);
    }

    /// Marks `slot` busy for a fast-path call and returns the epoch the call runs in; the caller clears the mark.
    #[inline(always)]
    fn enter(&self, slot: &Slot) -> u64 {
        slot.busy.store(true, Relaxed);
        // The other half of the switch's `membarrier`: the busy mark is not moved after the epoch's load.
        compiler_fence(SeqCst);
        self.epoch.load(Relaxed)
    }

    /// Every call but a lazy epoch's in-range one: the exact epoch's shared counter, or the slow path.
    #[inline(never)]
    fn record_elsewhere(&self, local: &Local, grown: i64, requested: Option<u64>) {
        let index = local.slot.get();
        if index < SLOTS {
            let slot = &self.slots[index];
            let epoch = self.enter(slot);
            if epoch == local.epoch.get() && !is_lazy(epoch) {
                let live = slot.live.load(Relaxed) + grown;
                let after = self.live.fetch_add(grown, Relaxed) + grown;
                self.raise_peak(after);
                slot.publish(live, requested);
                slot.busy.store(false, Release);
                if after <= self.peak.load(Relaxed) - self.exit_margin.load(Relaxed) {
                    self.try_turn_lazy();
                }
                return;
            }
            slot.busy.store(false, Release);
        }
        self.record_slow(local, grown, requested);
    }

    #[inline]
    fn raise_peak(&self, after: i64) {
        if after > self.peak.load(Relaxed) {
            self.peak.fetch_max(after, Relaxed);
        }
        if after > self.window_peak.load(Relaxed) {
            self.window_peak.fetch_max(after, Relaxed);
        }
    }

    /// The slow path, under the lock: a first call, an epoch switch seen, a check-in, or a thread without a slot.
    #[cold]
    #[inline(never)]
    fn record_slow(&self, local: &Local, grown: i64, requested: Option<u64>) {
        // Outside the lock: registering may allocate.
        if local.slot.get() == NO_SLOT && !(self.thread_start)() {
            local.slot.set(OVERFLOW);
        }
        let mut shared = self.lock();
        if shared.barrier == Barrier::Unknown {
            shared.barrier = register_membarrier();
        }
        if local.slot.get() == NO_SLOT {
            self.claim_slot(&mut shared, local);
        }
        let index = local.slot.get();
        if index >= SLOTS {
            self.record_unowned_locked(&mut shared, grown, requested);
            return;
        }
        let slot = &self.slots[index];
        let live = slot.live.load(Relaxed) + grown;
        if shared.barrier == Barrier::Missing {
            // Every call comes here, under the lock: one order, exact.
            self.add_exact(grown);
            slot.publish(live, requested);
            return;
        }
        let mut epoch = self.epoch.load(Relaxed);
        if local.epoch.get() != epoch {
            local.epoch.set(epoch);
            local.high.set(slot.high.load(Relaxed));
            local.low.set(slot.low.load(Relaxed));
        }
        if is_lazy(epoch) {
            if live <= local.high.get() && live >= local.low.get() {
                slot.publish(live, requested);
                return;
            }
            // Check in: a new range around the new live bytes, from what is left below the peak.
            let rest = shared.bound - local.high.get();
            let room = self.peak.load(Relaxed) - rest - live;
            let give = (room / 2).min(self.max_slack);
            if give >= self.min_slack {
                let high = live + give;
                let low = live - self.max_slack;
                shared.bound = rest + high;
                slot.high.store(high, Relaxed);
                slot.low.store(low, Relaxed);
                local.high.set(high);
                local.low.set(low);
                slot.publish(live, requested);
                return;
            }
            self.turn_exact(&mut shared);
            epoch = self.epoch.load(Relaxed);
            local.epoch.set(epoch);
        }
        self.add_exact(grown);
        slot.publish(live, requested);
    }

    /// A call of the exact epoch, made under the lock.
    fn add_exact(&self, grown: i64) {
        let after = self.live.fetch_add(grown, Relaxed) + grown;
        self.raise_peak(after);
    }

    fn claim_slot(&self, shared: &mut Shared, local: &Local) {
        let Some(index) = self
            .slots
            .iter()
            .position(|slot| !slot.in_use.load(Relaxed))
        else {
            local.slot.set(OVERFLOW);
            return;
        };
        let slot = &self.slots[index];
        slot.in_use.store(true, Relaxed);
        slot.live.store(0, Relaxed);
        slot.bytes.store(0, Relaxed);
        slot.count.store(0, Relaxed);
        // A new thread's range is empty (live 0, high 0): the bound does not move.
        slot.high.store(0, Relaxed);
        slot.low.store(0, Relaxed);
        shared.slots_used = shared.slots_used.max(index + 1);
        shared.in_use += 1;
        self.set_exit_margin(shared);
        local.slot.set(index);
        local.epoch.set(NO_EPOCH);
        local.high.set(0);
        local.low.set(0);
    }

    fn set_exit_margin(&self, shared: &Shared) {
        let margin = if shared.barrier == Barrier::Membarrier {
            2 * shared.in_use.max(1) * self.exit_slack
        } else {
            i64::MAX / 2
        };
        self.exit_margin.store(margin, Relaxed);
    }

    /// A call of a thread without a slot of its own (its thread-local is gone, or every slot is taken), under the
    /// lock: its bytes go straight to the retired figures.
    fn record_unowned_locked(&self, shared: &mut Shared, grown: i64, requested: Option<u64>) {
        let lazy = is_lazy(self.epoch.load(Relaxed)) && shared.barrier == Barrier::Membarrier;
        if lazy && shared.bound + grown > self.peak.load(Relaxed) && grown > 0 {
            self.turn_exact(shared);
        }
        if is_lazy(self.epoch.load(Relaxed)) && shared.barrier == Barrier::Membarrier {
            shared.bound += grown;
        } else {
            self.add_exact(grown);
        }
        shared.retired_live += grown;
        if let Some(bytes) = requested {
            shared.retired_bytes += bytes;
            shared.retired_count += 1;
        }
    }

    /// Stores `epoch` and waits until no call of the old epoch is in flight. Under the lock.
    fn switch_epoch(&self, shared: &Shared, epoch: u64) {
        self.epoch.store(epoch, SeqCst);
        if shared.barrier == Barrier::Membarrier {
            membarrier();
        }
        for slot in &self.slots[..shared.slots_used] {
            while slot.busy.load(Acquire) {
                std::thread::yield_now();
            }
        }
    }

    /// The live bytes since the last reset, summed from the slots (exact once no lazy call is in flight).
    fn sum_live(&self, shared: &Shared) -> i64 {
        let slots: i64 = self.slots[..shared.slots_used]
            .iter()
            .filter(|slot| slot.in_use.load(Relaxed))
            .map(|slot| slot.live.load(Relaxed))
            .sum();
        shared.retired_live - shared.offset_live + slots
    }

    /// From a lazy epoch to an exact one: the shared counter starts at the exact sum of the slots.
    fn turn_exact(&self, shared: &mut Shared) {
        let epoch = self.epoch.load(Relaxed);
        debug_assert!(is_lazy(epoch));
        self.switch_epoch(shared, epoch + 1);
        self.live.store(self.sum_live(shared), Relaxed);
    }

    /// From an exact epoch to a lazy one, if every thread can get at least the exit slack.
    #[cold]
    fn try_turn_lazy(&self) {
        let Ok(mut shared) = self.shared.try_lock() else {
            return;
        };
        let epoch = self.epoch.load(Relaxed);
        if is_lazy(epoch) || shared.barrier != Barrier::Membarrier {
            return;
        }
        self.switch_epoch(&shared, epoch + 1);
        let live = self.live.load(Relaxed);
        if cfg!(debug_assertions) && live != self.sum_live(&shared) {
            broken("the exact counter is not the slots' sum");
        }
        let threads = shared.in_use.max(1);
        let give = ((self.peak.load(Relaxed) - live) / (2 * threads)).min(self.max_slack);
        if give < self.exit_slack {
            // The heap rose again meanwhile: stay exact. No thread took up the lazy epoch (that needs the lock),
            // so no call of it happened and the counter is still exact.
            self.epoch.store(epoch + 2, SeqCst);
            return;
        }
        let mut bound = shared.retired_live - shared.offset_live;
        for slot in &self.slots[..shared.slots_used] {
            if slot.in_use.load(Relaxed) {
                let slot_live = slot.live.load(Relaxed);
                slot.high.store(slot_live + give, Relaxed);
                slot.low.store(slot_live - self.max_slack, Relaxed);
                bound += slot_live + give;
            }
        }
        shared.bound = bound;
        drop(shared);
    }

    /// Folds a thread's slot into the retired figures when the thread ends.
    pub fn retire(&self, local: &Local) {
        let index = local.slot.get();
        local.slot.set(OVERFLOW);
        if index >= SLOTS {
            return;
        }
        let mut shared = self.lock();
        let slot = &self.slots[index];
        let live = slot.live.load(Relaxed);
        shared.retired_live += live;
        shared.retired_bytes += slot.bytes.load(Relaxed);
        shared.retired_count += slot.count.load(Relaxed);
        if is_lazy(self.epoch.load(Relaxed)) {
            // Its range's unused room returns: the bound only falls.
            shared.bound -= slot.high.load(Relaxed) - live;
        }
        slot.live.store(0, Relaxed);
        slot.bytes.store(0, Relaxed);
        slot.count.store(0, Relaxed);
        slot.in_use.store(false, Relaxed);
        shared.in_use -= 1;
        self.set_exit_margin(&shared);
    }

    /// The figures now. The live bytes, totals and count are each thread's exact figures summed; the peak is exact.
    pub fn counts(&self) -> Counts {
        let shared = self.lock();
        let slots = &self.slots[..shared.slots_used];
        let in_use = || slots.iter().filter(|slot| slot.in_use.load(Relaxed));
        let bytes: u64 = in_use().map(|slot| slot.bytes.load(Relaxed)).sum();
        let count: u64 = in_use().map(|slot| slot.count.load(Relaxed)).sum();
        Counts {
            live_bytes: self.sum_live(&shared).max(0) as u64,
            peak_bytes: self.peak.load(Relaxed).max(0) as u64,
            total_bytes: (shared.retired_bytes + bytes).wrapping_sub(shared.offset_bytes),
            total_count: (shared.retired_count + count).wrapping_sub(shared.offset_count),
        }
    }

    /// The live bytes now, exact (each thread's figure summed): cheap enough to call at every phase mark.
    pub fn live_bytes(&self) -> u64 {
        let shared = self.lock();
        self.sum_live(&shared).max(0) as u64
    }

    /// The highest live figure since the last call, and starts a new window at the live figure now.
    pub fn take_window_peak(&self) -> u64 {
        let shared = self.lock();
        let live = self.sum_live(&shared);
        self.window_peak.swap(live, Relaxed).max(live).max(0) as u64
    }

    /// Starts the figures afresh: live, peak and totals drop to zero, and the meter turns exact (the heap is at
    /// its peak). No call is in flight while it does: the switch waits them out.
    pub fn reset(&self) {
        let mut shared = self.lock();
        if shared.barrier == Barrier::Unknown {
            shared.barrier = register_membarrier();
        }
        let epoch = self.epoch.load(Relaxed);
        self.switch_epoch(&shared, if is_lazy(epoch) { epoch + 1 } else { epoch + 2 });
        let slots = &self.slots[..shared.slots_used];
        let in_use = || slots.iter().filter(|slot| slot.in_use.load(Relaxed));
        shared.offset_live =
            shared.retired_live + in_use().map(|s| s.live.load(Relaxed)).sum::<i64>();
        shared.offset_bytes =
            shared.retired_bytes + in_use().map(|s| s.bytes.load(Relaxed)).sum::<u64>();
        shared.offset_count =
            shared.retired_count + in_use().map(|s| s.count.load(Relaxed)).sum::<u64>();
        self.live.store(0, Relaxed);
        self.peak.store(0, Relaxed);
        self.window_peak.store(0, Relaxed);
    }
}

impl Default for Meter {
    fn default() -> Self {
        Meter::new()
    }
}

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

/// Registers the process for expedited private barriers; `Missing` where the kernel refuses.
fn register_membarrier() -> Barrier {
    // SAFETY: a plain system call with integer arguments.
    let result = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
            0,
            0,
        )
    };
    if result == 0 {
        Barrier::Membarrier
    } else {
        Barrier::Missing
    }
}

/// A memory barrier on every running thread of this process.
fn membarrier() {
    // SAFETY: a plain system call with integer arguments; registered before the first use.
    let result =
        unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) };
    if result != 0 {
        // The kernel promised it at registration; without it no figure could be trusted.
        broken("membarrier failed after it was registered");
    }
}

/// Ends the process with one line on standard error, allocating nothing: a panic inside the allocator would
/// allocate, and under the meter's lock would wait on itself for ever.
#[cold]
fn broken(why: &str) -> ! {
    for part in ["memproof counting allocator: ", why, "\n"] {
        // SAFETY: writes a valid buffer of its own length; a failed write changes nothing here.
        unsafe { libc::write(libc::STDERR_FILENO, part.as_ptr().cast(), part.len()) };
    }
    std::process::abort();
}

static METER: Meter =
    Meter::with_thread_start(MAX_SLACK, MIN_SLACK, EXIT_SLACK, retire_at_thread_end);

thread_local! {
    /// The calling thread's view of its slot. It has no destructor, so reaching it is an offset from the thread
    /// pointer with no state to check on every call; it stays reachable while the thread ends, when its slot is
    /// already retired and its calls go the locked way.
    static LOCAL: Local = const { Local::new() };
    /// Registered at the thread's first call: folds the thread's slot into the retired figures when it ends.
    static RETIRE: Retire = const { Retire };
}

struct Retire;

impl Drop for Retire {
    fn drop(&mut self) {
        LOCAL.with(|local| METER.retire(local));
    }
}

/// The global meter's `thread_start`: registers the thread's [`Retire`]; `false` once its destructors have run.
fn retire_at_thread_end() -> bool {
    RETIRE.try_with(|_| ()).is_ok()
}

#[inline(always)]
fn record(grown: i64, requested: Option<u64>) {
    LOCAL.with(|local| METER.record(local, grown, requested));
}

/// Counts a block [`System`] handed out for `layout` (one more block, that many more live bytes) and passes it on; a
/// failed allocation (null) counts nothing. One place for `alloc` and `alloc_zeroed`, which count alike.
#[inline]
fn record_new_block(ptr: *mut u8, layout: Layout) -> *mut u8 {
    if !ptr.is_null() {
        record(layout.size() as i64, Some(layout.size() as u64));
    }
    ptr
}

/// A global allocator that counts what it forwards to [`System`]. Install it with `#[global_allocator]`.
pub struct CountingAlloc;

unsafe impl GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record_new_block(unsafe { System.alloc(layout) }, layout)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Forwarded, not emulated: glibc hands out fresh pages for large zeroed blocks without touching them.
        record_new_block(unsafe { System.alloc_zeroed(layout) }, layout)
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

/// The global meter's figures now: each exact (see the module doc).
pub fn counts() -> Counts {
    METER.counts()
}

/// The live bytes now, exact: what a phase mark can record as the heap at that moment.
pub fn live_bytes() -> u64 {
    METER.live_bytes()
}

/// The highest live figure since the last call (the envelope between two timeline samples), and starts a new
/// window at the live figure now.
pub fn take_window_peak() -> u64 {
    METER.take_window_peak()
}

/// Starts the figures afresh: the peak drops to what is live now and the totals to zero. A case calls this
/// when its measurement starts, so that its figures cover what dhat's profiler would cover.
///
/// What was live before the reset is forgotten (live drops to zero), as dhat's profiler never sees blocks allocated
/// before it started. Should such a block be freed later, live dips below the truth by its size; the process's
/// runtime holds a few hundred bytes from before `main` and keeps them to the end.
pub fn reset() {
    METER.reset()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Barrier as ThreadBarrier;

    /// What the bookkeeping must agree with: one counter, one order.
    #[derive(Default)]
    struct Reference {
        live: i64,
        peak: i64,
        bytes: u64,
        count: u64,
    }

    impl Reference {
        fn apply(&mut self, grown: i64, requested: Option<u64>) {
            self.live += grown;
            self.peak = self.peak.max(self.live);
            if let Some(bytes) = requested {
                self.bytes += bytes;
                self.count += 1;
            }
        }

        fn counts(&self) -> Counts {
            Counts {
                live_bytes: self.live as u64,
                peak_bytes: self.peak as u64,
                total_bytes: self.bytes,
                total_count: self.count,
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Thread `thread` allocates `size` bytes.
        Alloc { thread: usize, size: u64 },
        /// Thread `thread` frees the live block at `pick` (modulo the number of live blocks), whoever allocated it.
        Free { thread: usize, pick: usize },
        /// Thread `thread` grows or shrinks the live block at `pick` to `size` bytes.
        Realloc {
            thread: usize,
            pick: usize,
            size: u64,
        },
        /// Thread `thread` ends; a new thread takes its place.
        Exit { thread: usize },
        /// The measurement starts afresh.
        Reset,
    }

    fn op(threads: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..threads, 1..400u64).prop_map(|(thread, size)| Op::Alloc { thread, size }),
            3 => (0..threads, any::<usize>()).prop_map(|(thread, pick)| Op::Free { thread, pick }),
            1 => (0..threads, any::<usize>(), 1..400u64)
                .prop_map(|(thread, pick, size)| Op::Realloc { thread, pick, size }),
            1 => (0..threads).prop_map(|thread| Op::Exit { thread }),
            1 => Just(Op::Reset),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Any sequence of calls from several threads, any thread freeing any block, through lazy and exact epochs
        /// (small slacks switch often): the meter agrees with one plain counter on every figure after every call.
        #[test]
        fn the_bookkeeping_agrees_with_one_counter(ops in prop::collection::vec(op(4), 1..300)) {
            let meter = Box::new(Meter::with_slack(256, 16, 32));
            let mut locals: Vec<Local> = (0..4).map(|_| Local::new()).collect();
            let mut reference = Reference::default();
            let mut blocks: Vec<u64> = Vec::new();
            for op in ops {
                match op {
                    Op::Alloc { thread, size } => {
                        meter.record(&locals[thread], size as i64, Some(size));
                        reference.apply(size as i64, Some(size));
                        blocks.push(size);
                    }
                    Op::Free { thread, pick } => {
                        if blocks.is_empty() {
                            continue;
                        }
                        let size = blocks.swap_remove(pick % blocks.len());
                        meter.record(&locals[thread], -(size as i64), None);
                        reference.apply(-(size as i64), None);
                    }
                    Op::Realloc { thread, pick, size } => {
                        if blocks.is_empty() {
                            continue;
                        }
                        let index = pick % blocks.len();
                        let grown = size as i64 - blocks[index] as i64;
                        blocks[index] = size;
                        meter.record(&locals[thread], grown, Some(size));
                        reference.apply(grown, Some(size));
                    }
                    Op::Exit { thread } => {
                        meter.retire(&locals[thread]);
                        // A thread's last destructors still allocate and free once its slot is retired.
                        meter.record(&locals[thread], 48, Some(48));
                        meter.record(&locals[thread], -48, None);
                        meter.record(&locals[thread], 16, Some(16));
                        reference.apply(48, Some(48));
                        reference.apply(-48, None);
                        reference.apply(16, Some(16));
                        blocks.push(16);
                        locals[thread] = Local::new();
                    }
                    Op::Reset => {
                        meter.reset();
                        reference = Reference::default();
                        // Blocks from before the reset are forgotten: freeing one would dip below zero.
                        blocks.clear();
                    }
                }
                prop_assert_eq!(meter.counts(), reference.counts());
            }
        }
    }

    /// Runs `work` on `threads` real threads, each given its index and its own `Local`, retired when `work`
    /// returns: the scaffolding of every test on real threads, so that each says only what its threads do.
    fn on_threads(meter: &Meter, threads: usize, work: impl Fn(usize, &Local) + Sync) {
        std::thread::scope(|scope| {
            for thread in 0..threads {
                let work = &work;
                scope.spawn(move || {
                    let local = Local::new();
                    work(thread, &local);
                    meter.retire(&local);
                });
            }
        });
    }

    /// Allocates and at once frees a block of each size: churn that never moves the live figure.
    fn churn(meter: &Meter, local: &Local, sizes: impl Iterator<Item = i64>) {
        for size in sizes {
            meter.record(local, size, Some(size as u64));
            meter.record(local, -size, None);
        }
    }

    /// Threads with a known pattern, on real threads: each allocates its share, all hold at a barrier (the peak),
    /// then each frees and allocates a smaller block. The peak is the sum of the shares, to the byte.
    #[test]
    fn real_threads_reach_the_known_peak_exactly() {
        const THREADS: usize = 4;
        const SHARE: i64 = 3 * MAX_SLACK + 123;
        let meter = Meter::new();
        meter.reset();
        let barrier = ThreadBarrier::new(THREADS);
        on_threads(&meter, THREADS, |thread, local| {
            // Churn below the peak first: many small calls in lazy epochs once a peak is set.
            churn(
                &meter,
                local,
                (0..2000).map(|round| 16 + (round * 7 + thread * 13) as i64 % 500),
            );
            for _ in 0..3 {
                meter.record(local, SHARE / 3, Some((SHARE / 3) as u64));
            }
            meter.record(local, SHARE % 3, Some((SHARE % 3) as u64));
            barrier.wait();
            meter.record(local, -SHARE, None);
            meter.record(local, 100, Some(100));
            barrier.wait();
        });
        let counts = meter.counts();
        assert_eq!(counts.peak_bytes, (THREADS as i64 * SHARE) as u64);
        assert_eq!(counts.live_bytes, THREADS as u64 * 100);
        assert_eq!(counts.total_count, THREADS as u64 * (2000 + 4 + 1));
    }

    /// A peak made by two threads at once, while others churn in lazy epochs far below: with a meter that had set
    /// a high peak before, the churn stays lazy, and the new peak above it is still caught exactly.
    #[test]
    fn a_new_peak_after_lazy_churn_is_exact() {
        const THREADS: usize = 3;
        let meter = Meter::new();
        let main = Local::new();
        meter.record(&main, 10 * MAX_SLACK, Some(10 * MAX_SLACK as u64));
        meter.record(&main, -10 * MAX_SLACK, None);
        let barrier = ThreadBarrier::new(THREADS);
        on_threads(&meter, THREADS, |thread, local| {
            churn(
                &meter,
                local,
                (0..5000).map(|round| 8 + (round + thread) as i64 % 4000),
            );
            barrier.wait();
            meter.record(local, 4 * MAX_SLACK + 1, Some(1));
            barrier.wait();
            meter.record(local, -(4 * MAX_SLACK + 1), None);
        });
        let counts = meter.counts();
        assert_eq!(
            counts.peak_bytes,
            (THREADS as i64 * (4 * MAX_SLACK + 1)) as u64
        );
        assert_eq!(counts.live_bytes, 0);
    }
}
