//! The side table: the size each live block was asked for, keyed by its address.
//!
//! Why a side table and not a header in front of each block: a header moves every pointer the program sees, so a
//! block from anywhere else (the dynamic loader, a library that calls `__libc_malloc`) handed to our `free` would be
//! read as a header and corrupt the heap, `malloc_usable_size` would have to be faked, and every aligned block would
//! need room for a header before it. With a side table the program's pointers are glibc's own; a pointer the table
//! does not know is passed to glibc untouched and not counted.
//!
//! The table lives in anonymous `mmap` memory, never on the heap it measures (an allocation from inside `malloc`
//! would recurse). It is split into [`SHARDS`] open-addressing tables with linear probing and backward-shift
//! deletion (no tombstones, so a program that churns does not fill it), each behind its own spin lock, so threads
//! rarely wait on each other. A shard doubles when it is three quarters full.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// How many independent tables the addresses are spread over.
pub const SHARDS: usize = 64;
/// Slots in a shard's first table.
/// (Eight in unit tests, so that they collide and grow.)
const FIRST_SLOTS: usize = if cfg!(test) { 8 } else { 4096 };

#[derive(Clone, Copy)]
#[repr(C)]
struct Slot {
    /// The block's address; 0 marks an empty slot (malloc never returns address 0 for a live block).
    addr: usize,
    size: usize,
}

struct Table {
    slots: *mut Slot,
    /// Slot count minus one (the count is a power of two); 0 before the first insert.
    mask: usize,
    len: usize,
}

struct Shard {
    locked: AtomicBool,
    table: UnsafeCell<Table>,
}

// SAFETY: `table` is only touched while `locked` is held (see `Shard::with`).
unsafe impl Sync for Shard {}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SHARD: Shard = Shard {
    locked: AtomicBool::new(false),
    table: UnsafeCell::new(Table {
        slots: std::ptr::null_mut(),
        mask: 0,
        len: 0,
    }),
};

static TABLE: [Shard; SHARDS] = [EMPTY_SHARD; SHARDS];

fn hash(addr: usize) -> u64 {
    // Blocks are 16-byte aligned: the low bits carry nothing. Fibonacci hashing spreads the rest.
    ((addr as u64) >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn shard_of(addr: usize) -> &'static Shard {
    &TABLE[(hash(addr) >> 58) as usize % SHARDS]
}

impl Shard {
    fn lock(&self) {
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
    }

    fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    fn with<R>(&self, f: impl FnOnce(&mut Table) -> R) -> R {
        self.lock();
        // SAFETY: the lock is held, so no other thread touches the table.
        let result = f(unsafe { &mut *self.table.get() });
        self.unlock();
        result
    }
}

/// Maps `slots` empty slots; null when the kernel refuses.
fn map_slots(slots: usize) -> *mut Slot {
    // SAFETY: an anonymous private mapping; the kernel zero-fills it, and a zero slot is empty.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            slots * std::mem::size_of::<Slot>(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        ptr.cast()
    }
}

impl Table {
    fn slot(&self, index: usize) -> Slot {
        // SAFETY: every index is masked to the table's size, and the table is only used under its shard's lock.
        unsafe { *self.slots.add(index & self.mask) }
    }

    fn set(&mut self, index: usize, slot: Slot) {
        // SAFETY: as in `slot`; `&mut self` means this thread holds the shard's lock.
        unsafe { *self.slots.add(index & self.mask) = slot };
    }

    fn home(&self, addr: usize) -> usize {
        hash(addr) as usize & self.mask
    }

    fn place(&mut self, addr: usize, size: usize) {
        let mut index = self.home(addr);
        loop {
            let found = self.slot(index).addr;
            if found == 0 || found == addr {
                self.set(index, Slot { addr, size });
                if found == 0 {
                    self.len += 1;
                }
                return;
            }
            index = (index + 1) & self.mask;
        }
    }

    /// Makes room for one more entry; false when no memory could be mapped.
    fn reserve_one(&mut self) -> bool {
        let slots = self.mask + 1;
        if !self.slots.is_null() && (self.len + 1) * 4 < slots * 3 {
            return true;
        }
        let new_slots = if self.slots.is_null() {
            FIRST_SLOTS
        } else {
            slots * 2
        };
        let fresh = map_slots(new_slots);
        if fresh.is_null() {
            return false;
        }
        let old = Table {
            slots: self.slots,
            mask: self.mask,
            len: self.len,
        };
        *self = Table {
            slots: fresh,
            mask: new_slots - 1,
            len: 0,
        };
        if !old.slots.is_null() {
            for index in 0..slots {
                let slot = old.slot(index);
                if slot.addr != 0 {
                    self.place(slot.addr, slot.size);
                }
            }
            // SAFETY: the old table was mapped by `map_slots` with this many slots and nothing refers to it now.
            unsafe { libc::munmap(old.slots.cast(), slots * std::mem::size_of::<Slot>()) };
        }
        true
    }

    fn take(&mut self, addr: usize) -> Option<usize> {
        if self.slots.is_null() {
            return None;
        }
        let mut index = self.home(addr);
        loop {
            let slot = self.slot(index);
            if slot.addr == 0 {
                return None;
            }
            if slot.addr == addr {
                break;
            }
            index = (index + 1) & self.mask;
        }
        let size = self.slot(index).size;
        // Backward-shift deletion: pull later entries of the same probe run into the hole.
        let mut hole = index;
        let mut next = index;
        loop {
            next = (next + 1) & self.mask;
            let entry = self.slot(next);
            if entry.addr == 0 {
                break;
            }
            let home = self.home(entry.addr);
            let stays = if hole <= next {
                hole < home && home <= next
            } else {
                hole < home || home <= next
            };
            if !stays {
                self.set(hole, entry);
                hole = next;
            }
        }
        self.set(hole, Slot { addr: 0, size: 0 });
        self.len -= 1;
        Some(size)
    }
}

/// Records that the block at `addr` was asked for with `size` bytes; false when the table could not grow (the
/// block is then not counted, and its free will not be either).
pub fn insert(addr: usize, size: usize) -> bool {
    shard_of(addr).with(|table| {
        if !table.reserve_one() {
            return false;
        }
        table.place(addr, size);
        true
    })
}

/// Forgets the block at `addr` and returns the size it was asked for, or `None` when the table never saw it.
pub fn remove(addr: usize) -> Option<usize> {
    shard_of(addr).with(|table| table.take(addr))
}

/// Takes every shard's lock: `fork` must not happen while another thread holds one, or the child would wait on it
/// forever.
pub fn lock_all() {
    for shard in &TABLE {
        shard.lock();
    }
}

/// Releases what [`lock_all`] took.
pub fn unlock_all() {
    for shard in &TABLE {
        shard.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// The table agrees with a `HashMap` over any sequence of inserts and removes, colliding addresses and
        /// growth included (the addresses are crowded into a few shards' worth of slots).
        #[test]
        fn the_table_agrees_with_a_hash_map(ops in proptest::collection::vec((any::<bool>(), 1usize..20_000, 0usize..1000), 1..6000)) {
            // Addresses far from any the test binary's own heap uses (its allocations go through this table too).
            let base = 0x7000_0000_0000usize;
            let mut model: HashMap<usize, usize> = HashMap::new();
            for (is_insert, slot, size) in ops {
                let addr = base + slot * 16;
                if is_insert {
                    prop_assert!(insert(addr, size));
                    model.insert(addr, size);
                } else {
                    prop_assert_eq!(remove(addr), model.remove(&addr));
                }
            }
            for (addr, size) in model {
                prop_assert_eq!(remove(addr), Some(size));
            }
        }
    }
}
