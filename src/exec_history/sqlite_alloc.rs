//! Routes SQLite's own allocations through Rust's global allocator, so that whatever meters the heap of a case
//! (the counting allocator, dhat) also sees SQLite's page cache, statement buffers and the value strings it hands
//! back. Left alone, the bundled SQLite calls libc `malloc` directly and all of that stays invisible: in seed A
//! the table reached 3+ GB and every byte of it passed through SQLite's buffers on each trim.
//!
//! SQLite takes a table of allocation functions (`SQLITE_CONFIG_MALLOC`) only before it initialises, which happens
//! when the first connection opens. [`route_sqlite_through_global_allocator`] installs ours once per process; call
//! it before opening any connection (the store's `open` does).

use rusqlite::ffi;
use std::alloc::Layout;
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

/// Every block carries its size in a header in front of it, so `xSize` and `xFree` know it.
const HEADER_BYTES: usize = 8;
/// SQLite asks for 8-byte alignment.
const ALIGN: usize = 8;

fn block_layout(payload_bytes: usize) -> Option<Layout> {
    Layout::from_size_align(payload_bytes.checked_add(HEADER_BYTES)?, ALIGN).ok()
}

unsafe extern "C" fn route_malloc(bytes: c_int) -> *mut c_void {
    let Ok(payload_bytes) = usize::try_from(bytes) else {
        return std::ptr::null_mut();
    };
    let Some(layout) = block_layout(payload_bytes) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the layout has a non-zero size (the header).
    let base = unsafe { std::alloc::alloc(layout) };
    if base.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: `base` is valid for the header's 8 bytes and 8-aligned.
    unsafe {
        base.cast::<usize>().write(payload_bytes);
        base.add(HEADER_BYTES).cast()
    }
}

/// The start of the block and its payload size, from a pointer SQLite holds.
///
/// # Safety
/// `payload` must come from [`route_malloc`] or [`route_realloc`] and not be freed yet.
unsafe fn block_of(payload: *mut c_void) -> (*mut u8, usize) {
    // SAFETY: the caller's contract: the header sits right in front of the payload.
    unsafe {
        let base = payload.cast::<u8>().sub(HEADER_BYTES);
        (base, base.cast::<usize>().read())
    }
}

unsafe extern "C" fn route_free(payload: *mut c_void) {
    if payload.is_null() {
        return;
    }
    // SAFETY: SQLite only frees what our xMalloc/xRealloc returned.
    let (base, payload_bytes) = unsafe { block_of(payload) };
    let layout = block_layout(payload_bytes).expect("the layout was valid when allocated");
    // SAFETY: `base` was allocated with this very layout.
    unsafe { std::alloc::dealloc(base, layout) };
}

unsafe extern "C" fn route_realloc(payload: *mut c_void, bytes: c_int) -> *mut c_void {
    if payload.is_null() {
        // SAFETY: a realloc of nothing is a malloc.
        return unsafe { route_malloc(bytes) };
    }
    let Ok(new_payload_bytes) = usize::try_from(bytes) else {
        return std::ptr::null_mut();
    };
    if block_layout(new_payload_bytes).is_none() {
        return std::ptr::null_mut();
    }
    // SAFETY: SQLite only reallocates what our xMalloc/xRealloc returned.
    let (base, old_payload_bytes) = unsafe { block_of(payload) };
    let old_layout = block_layout(old_payload_bytes).expect("the layout was valid when allocated");
    // SAFETY: `base` was allocated with `old_layout`; the new size is non-zero and checked above.
    let new_base =
        unsafe { std::alloc::realloc(base, old_layout, new_payload_bytes + HEADER_BYTES) };
    if new_base.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: `new_base` is valid for the header and 8-aligned.
    unsafe {
        new_base.cast::<usize>().write(new_payload_bytes);
        new_base.add(HEADER_BYTES).cast()
    }
}

unsafe extern "C" fn route_size(payload: *mut c_void) -> c_int {
    if payload.is_null() {
        return 0;
    }
    // SAFETY: SQLite only asks the size of what our xMalloc/xRealloc returned.
    let (_, payload_bytes) = unsafe { block_of(payload) };
    c_int::try_from(payload_bytes).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn route_roundup(bytes: c_int) -> c_int {
    (bytes.max(0).saturating_add(ALIGN as c_int - 1)) & !(ALIGN as c_int - 1)
}

unsafe extern "C" fn route_init(_app_data: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn route_shutdown(_app_data: *mut c_void) {}

static ROUTED: OnceLock<Result<(), String>> = OnceLock::new();

/// Installs the global allocator as SQLite's allocator, once per process; later calls return the first outcome.
///
/// If SQLite has already initialised (a connection was opened before this call), it is shut down and configured
/// again; that fails when connections are still open, and the error says so.
pub fn route_sqlite_through_global_allocator() -> anyhow::Result<()> {
    let outcome = ROUTED.get_or_init(|| {
        let methods = ffi::sqlite3_mem_methods {
            xMalloc: Some(route_malloc),
            xFree: Some(route_free),
            xRealloc: Some(route_realloc),
            xSize: Some(route_size),
            xRoundup: Some(route_roundup),
            xInit: Some(route_init),
            xShutdown: Some(route_shutdown),
            pAppData: std::ptr::null_mut(),
        };
        // SAFETY: SQLITE_CONFIG_MALLOC takes a pointer to a mem_methods struct, which SQLite copies.
        let mut code = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods) };
        if code == ffi::SQLITE_MISUSE {
            // Already initialised: shut down (returns SQLITE_OK unless connections are open) and retry.
            // SAFETY: sqlite3_shutdown is safe to call; with open connections the retry below fails.
            unsafe { ffi::sqlite3_shutdown() };
            code = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods) };
        }
        if code == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(format!(
                "sqlite3_config(SQLITE_CONFIG_MALLOC) returned {code}: SQLite was initialised before its \
                 allocator could be routed (open no connection before calling this)"
            ))
        }
    });
    outcome.clone().map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_installs_and_sqlite_still_works_with_large_values() {
        route_sqlite_through_global_allocator().unwrap();
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        let big = "é".repeat(300_000);
        let echoed: String = connection
            .query_row("SELECT ?1 || 'x'", [&big], |row| row.get(0))
            .unwrap();
        assert_eq!(echoed.len(), big.len() + 1);
        // A second call reports the first outcome rather than reconfiguring a running SQLite.
        route_sqlite_through_global_allocator().unwrap();
    }

    #[test]
    fn roundup_is_a_multiple_of_eight_not_below_the_request() {
        for bytes in [0, 1, 7, 8, 9, 4095] {
            // SAFETY: a pure function.
            let rounded = unsafe { route_roundup(bytes) };
            assert!(rounded >= bytes && rounded % 8 == 0, "{bytes} -> {rounded}");
        }
    }
}
