//! The counting allocator as the global allocator, with threads coming and going: every figure exact after the
//! threads joined, whichever thread allocated or freed a block, across more threads than the meter has slots, and
//! with allocations made by a thread-local's destructor after the thread's own slot was retired.
//!
//! No test runner (`harness = false`): its threads and output capture would allocate beside the figures.

use meter::alloc::{self, CountingAlloc, SLOTS};
use std::cell::RefCell;
use std::sync::mpsc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// In a thread-local's destructor, allocates and frees a block and leaks another of `bytes`: calls made while the
/// thread ends, before or after its slot is retired (the order of thread-local destructors is the runtime's).
struct LeakOnExit(usize);

impl Drop for LeakOnExit {
    fn drop(&mut self) {
        drop(std::hint::black_box(vec![0u8; 100]));
        std::mem::forget(vec![0u8; self.0]);
    }
}

thread_local! {
    static ON_EXIT: RefCell<Option<LeakOnExit>> = const { RefCell::new(None) };
}

fn main() {
    // Warm up what the standard library allocates once per process for spawning threads.
    std::thread::spawn(|| ()).join().unwrap();
    alloc::reset();
    let start = alloc::counts();
    assert_eq!(start.live_bytes, 0);

    // More threads than slots, one after another and two at a time: each leaks 1000 + i bytes in its body and
    // 7 bytes from a destructor, and hands a 333-byte block to the main thread, which frees it.
    let threads = SLOTS + 44;
    let (send, receive) = mpsc::sync_channel::<Vec<u8>>(threads);
    let mut leaked = 0u64;
    for pair in (0..threads).collect::<Vec<_>>().chunks(2) {
        let handles: Vec<_> = pair
            .iter()
            .map(|&i| {
                let send = send.clone();
                std::thread::spawn(move || {
                    ON_EXIT.with(|cell| *cell.borrow_mut() = Some(LeakOnExit(7)));
                    std::mem::forget(vec![1u8; 1000 + i]);
                    send.send(vec![2u8; 333]).unwrap();
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        for &i in pair {
            leaked += 1000 + i as u64 + 7;
        }
    }
    drop(send);
    let before_frees = alloc::counts();
    let handed: Vec<Vec<u8>> = receive.iter().collect();
    assert_eq!(handed.len(), threads);
    drop(handed);
    drop(receive);
    let after = alloc::counts();
    assert_eq!(
        after.live_bytes, leaked,
        "live bytes after every thread ended: the leaks exactly (before the frees: {})",
        before_frees.live_bytes
    );
    assert!(after.peak_bytes >= leaked + 333 * threads as u64);
    println!(
        "global meter: {threads} threads, {leaked} bytes leaked, live {} peak {} total {} in {} blocks: ok",
        after.live_bytes, after.peak_bytes, after.total_bytes, after.total_count
    );
}
