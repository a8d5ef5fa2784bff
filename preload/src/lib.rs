//! `libmemproof_preload.so`: the heap of a C, C++ or other malloc-using program, without changing it.
//!
//! `cargo xtask measure --heap preload -- CMD` loads this library into CMD with `LD_PRELOAD`. It replaces `malloc`,
//! `calloc`, `realloc`, `reallocarray`, `free`, `posix_memalign`, `aligned_alloc`, `memalign`, `valloc` and
//! `pvalloc` (glibc routes its own internal allocations through the replaced functions too), forwards each to
//! glibc's implementation (`__libc_malloc` and friends, which glibc exports for exactly this: no `dlsym` at start-up,
//! so no allocation before the library can serve one), and counts as memproof's counting allocator does:
//! - sizes are the sizes asked for, not what glibc rounds them up to (a side table keeps them, see `table`);
//! - each allocation, and each `realloc`, is one more block of its (new) size towards the total;
//! - live bytes move by the difference on `realloc`; the peak is the highest live figure;
//! - every thread counts, exactly (the figures are shared atomics, updated under no lock of glibc's).
//!
//! It reports on memproof's probe protocol (version 1) through the channel the runner names in `MEMPROOF_PROBE_FD`,
//! moved to a high descriptor and checked to still be that pipe before every line, so nothing is ever written into
//! a descriptor the program owns (see `report::connect`). A program the measured process execs under its own pid
//! takes over the channel after the image before it sent its final report (`execve`, `execv`, `execvp`, `execvpe`
//! and `fexecve` are wrapped for that; the runner keeps the highest peak over the images). A forked child stops
//! reporting (its figures are a copy of its parent's), and every other process of the tree that loaded the library
//! names itself once at its exit with its own peak, so the result says the heap is one process's and names the rest.
//! What it cannot see: a static binary (no dynamic loader, so no preload) and a runtime with an allocator of its own
//! (Go's heap never goes through malloc). `measure` checks for both and says so.

mod report;
mod table;

use libc::{c_char, c_int, c_void, size_t};
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

unsafe extern "C" {
    fn __libc_malloc(size: size_t) -> *mut c_void;
    fn __libc_calloc(count: size_t, size: size_t) -> *mut c_void;
    fn __libc_realloc(ptr: *mut c_void, size: size_t) -> *mut c_void;
    fn __libc_free(ptr: *mut c_void);
    fn __libc_memalign(align: size_t, size: size_t) -> *mut c_void;
}

static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);
/// The highest live figure since the last heap sample: the envelope of the timeline.
static WINDOW_PEAK: AtomicI64 = AtomicI64::new(0);
static TOTAL_BYTES: AtomicU64 = AtomicU64::new(0);
static TOTAL_COUNT: AtomicU64 = AtomicU64::new(0);
/// True while the library itself allocates (its `setenv` calls while it connects): those blocks are not the
/// program's. The loader runs constructors on one thread, so no allocation of the program's can fall in it.
static OWN_ALLOCATIONS: AtomicBool = AtomicBool::new(false);

fn grow(bytes: i64) {
    let live = LIVE.fetch_add(bytes, Relaxed) + bytes;
    if bytes > 0 {
        PEAK.fetch_max(live, Relaxed);
        WINDOW_PEAK.fetch_max(live, Relaxed);
    }
    if report::sample_due() {
        let live = LIVE.load(Relaxed);
        report::heap(WINDOW_PEAK.swap(live, Relaxed).max(live).max(0) as u64);
    }
}

/// Counts a new block of `size` bytes at `ptr` (nothing when the allocation failed).
fn allocated(ptr: *mut c_void, size: usize) -> *mut c_void {
    if !ptr.is_null() && !OWN_ALLOCATIONS.load(Relaxed) && table::insert(ptr as usize, size) {
        TOTAL_BYTES.fetch_add(size as u64, Relaxed);
        TOTAL_COUNT.fetch_add(1, Relaxed);
        grow(size as i64);
    }
    ptr
}

/// Forgets the block at `ptr` and returns the size it was asked for (0 when it was not counted).
fn released(ptr: *mut c_void) -> usize {
    if ptr.is_null() {
        return 0;
    }
    match table::remove(ptr as usize) {
        Some(size) => {
            grow(-(size as i64));
            size
        }
        None => 0,
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).max(1) as usize
}

/// # Safety
/// As C's `malloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: size_t) -> *mut c_void {
    allocated(unsafe { __libc_malloc(size) }, size)
}

/// # Safety
/// As C's `calloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(count: size_t, size: size_t) -> *mut c_void {
    // glibc checks the product for overflow and fails; a failed call is not counted.
    let ptr = unsafe { __libc_calloc(count, size) };
    allocated(ptr, count.wrapping_mul(size))
}

/// # Safety
/// As C's `free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    released(ptr);
    unsafe { __libc_free(ptr) };
}

/// # Safety
/// As C's `realloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: size_t) -> *mut c_void {
    if ptr.is_null() {
        return unsafe { malloc(size) };
    }
    if OWN_ALLOCATIONS.load(Relaxed) {
        return unsafe { __libc_realloc(ptr, size) };
    }
    // The old block is forgotten before glibc may hand its address to another thread, and put back if glibc fails
    // (the old block is then still the program's).
    let old = table::remove(ptr as usize);
    let new = unsafe { __libc_realloc(ptr, size) };
    if new.is_null() {
        if size == 0 {
            // realloc(ptr, 0) frees the block and returns null.
            if let Some(old) = old {
                grow(-(old as i64));
            }
        } else if let Some(old) = old {
            table::insert(ptr as usize, old);
        }
        return new;
    }
    match old {
        Some(old) if table::insert(new as usize, size) => {
            // As the counting allocator (and dhat) count it: one more block of the new size.
            TOTAL_BYTES.fetch_add(size as u64, Relaxed);
            TOTAL_COUNT.fetch_add(1, Relaxed);
            grow(size as i64 - old as i64);
        }
        Some(old) => grow(-(old as i64)),
        // A block the table never saw (allocated before the library was loaded): count it from here on.
        None => {
            allocated(new, size);
        }
    }
    new
}

/// # Safety
/// As glibc's `reallocarray`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reallocarray(
    ptr: *mut c_void,
    count: size_t,
    size: size_t,
) -> *mut c_void {
    match count.checked_mul(size) {
        Some(bytes) => unsafe { realloc(ptr, bytes) },
        None => {
            // SAFETY: errno is this thread's.
            unsafe { *libc::__errno_location() = libc::ENOMEM };
            std::ptr::null_mut()
        }
    }
}

/// # Safety
/// As glibc's `memalign`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memalign(align: size_t, size: size_t) -> *mut c_void {
    allocated(unsafe { __libc_memalign(align, size) }, size)
}

/// # Safety
/// As C's `aligned_alloc` (glibc 2.36 accepts any power of two as the alignment).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aligned_alloc(align: size_t, size: size_t) -> *mut c_void {
    if !align.is_power_of_two() {
        // SAFETY: errno is this thread's.
        unsafe { *libc::__errno_location() = libc::EINVAL };
        return std::ptr::null_mut();
    }
    unsafe { memalign(align, size) }
}

/// # Safety
/// As POSIX's `posix_memalign`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(
    out: *mut *mut c_void,
    align: size_t,
    size: size_t,
) -> c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(std::mem::size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    let ptr = unsafe { memalign(align, size) };
    if ptr.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller passes a valid out-pointer.
    unsafe { *out = ptr };
    0
}

/// # Safety
/// As glibc's `valloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn valloc(size: size_t) -> *mut c_void {
    unsafe { memalign(page_size(), size) }
}

/// # Safety
/// As glibc's `pvalloc`: the size asked for is counted, as for every other call, not the page it is rounded to.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pvalloc(size: size_t) -> *mut c_void {
    let page = page_size();
    let rounded = size.div_ceil(page).max(1) * page;
    allocated(unsafe { __libc_memalign(page, rounded) }, size)
}

extern "C" fn before_fork() {
    table::lock_all();
}

extern "C" fn after_fork_in_parent() {
    table::unlock_all();
}

extern "C" fn after_fork_in_child() {
    table::unlock_all();
    report::stop_reporting();
}

extern "C" fn on_load() {
    OWN_ALLOCATIONS.store(true, Relaxed);
    // SAFETY: three valid handlers; registration may allocate, which the library can already serve.
    unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_in_parent),
            Some(after_fork_in_child),
        )
    };
    report::connect();
    OWN_ALLOCATIONS.store(false, Relaxed);
}

/// This image's figures so far.
fn figures() -> report::Final {
    report::Final {
        peak: PEAK.load(Relaxed).max(0) as u64,
        total: TOTAL_BYTES.load(Relaxed),
        count: TOTAL_COUNT.load(Relaxed),
        end: LIVE.load(Relaxed).max(0) as u64,
    }
}

extern "C" fn on_unload() {
    report::finish(&figures());
}

/// The next definition of `name` after this library's (glibc's), as a function pointer of type `F`.
///
/// # Safety
/// `F` must be the function's true type.
unsafe fn next_definition<F: Copy>(name: &std::ffi::CStr) -> Option<F> {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name; a null result is handled.
    let symbol = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    // SAFETY: a non-null symbol of the type the caller names.
    (!symbol.is_null()).then(|| unsafe { std::mem::transmute_copy::<*mut c_void, F>(&symbol) })
}

/// An exec replaces the image without running its exit handlers: its final report goes first, or its heap would
/// be lost (a program that allocated 200 MiB and exec'd reported a peak heap of 0).
macro_rules! exec_after_final_report {
    ($name:ident, $symbol:literal, ($($arg:ident: $type:ty),*)) => {
        /// # Safety
        #[doc = concat!("As glibc's `", $symbol, "`.")]
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $type),*) -> c_int {
            report::before_exec(&figures());
            type Real = unsafe extern "C" fn($($type),*) -> c_int;
            // SAFETY: glibc's definition has exactly this type.
            match unsafe { next_definition::<Real>(CStr::from_bytes_with_nul_unchecked(concat!($symbol, "\0").as_bytes())) } {
                // SAFETY: the caller's arguments, passed on unchanged.
                Some(real) => unsafe { real($($arg),*) },
                None => {
                    // SAFETY: errno is this thread's.
                    unsafe { *libc::__errno_location() = libc::ENOSYS };
                    -1
                }
            }
        }
    };
}

type Strings = *const *const c_char;
exec_after_final_report!(execve, "execve", (path: *const c_char, argv: Strings, envp: Strings));
exec_after_final_report!(execv, "execv", (path: *const c_char, argv: Strings));
exec_after_final_report!(execvp, "execvp", (file: *const c_char, argv: Strings));
exec_after_final_report!(execvpe, "execvpe", (file: *const c_char, argv: Strings, envp: Strings));
exec_after_final_report!(fexecve, "fexecve", (fd: c_int, argv: Strings, envp: Strings));

/// Runs when the dynamic loader has loaded the library, before the program's `main`.
#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;

/// Runs at `exit`, after the program's own `atexit` handlers and destructors.
#[used]
#[unsafe(link_section = ".fini_array")]
static ON_UNLOAD: extern "C" fn() = on_unload;
