//! The library's side of the probe protocol (version 1): `hello` when the program starts, a `heap` sample at most
//! every sampling interval while it allocates, and a `final` report when it exits.
//!
//! Every line is formatted in a stack buffer and written with one `write(2)`: this code runs inside `malloc`, where
//! an allocation would recurse. A line is far shorter than `PIPE_BUF` (4096 bytes), so lines from several threads
//! never interleave.

use std::sync::atomic::Ordering::{self, Relaxed};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64};

/// The protocol version this library speaks (memproof's `harness::wire::PROTOCOL_VERSION`).
pub const PROTOCOL_VERSION: u32 = 1;
const PROBE_FD_ENV: &[u8] = b"MEMPROOF_PROBE_FD\0";
const SAMPLE_MS_ENV: &[u8] = b"MEMPROOF_SAMPLE_MS\0";
const DEFAULT_SAMPLE_MS: u64 = 10;

static FD: AtomicI32 = AtomicI32::new(-1);
/// False in a forked child: its figures are a copy of its parent's and would be reported as if they were the
/// parent's.
static REPORTING: AtomicBool = AtomicBool::new(false);
static INTERVAL_NS: AtomicU64 = AtomicU64::new(DEFAULT_SAMPLE_MS * 1_000_000);
static NEXT_SAMPLE_NS: AtomicU64 = AtomicU64::new(0);

/// A line being built on the stack.
pub struct Line {
    buffer: [u8; 320],
    len: usize,
}

impl Line {
    pub fn new() -> Line {
        Line {
            buffer: [0; 320],
            len: 0,
        }
    }

    pub fn text(&mut self, text: &[u8]) -> &mut Line {
        let end = (self.len + text.len()).min(self.buffer.len());
        let taken = end - self.len;
        self.buffer[self.len..end].copy_from_slice(&text[..taken]);
        self.len = end;
        self
    }

    pub fn number(&mut self, mut value: u64) -> &mut Line {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.text(&digits[at..])
    }

    fn send(&self) {
        let fd = FD.load(Relaxed);
        if fd < 0 || !REPORTING.load(Relaxed) {
            return;
        }
        let mut rest = &self.buffer[..self.len];
        while !rest.is_empty() {
            // SAFETY: `rest` is a valid buffer of `rest.len()` bytes.
            let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
            if n < 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return; // Nobody is listening any more.
            }
            rest = &rest[n as usize..];
        }
    }
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `CLOCK_MONOTONIC`, the clock the runner puts every line on.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// An environment variable's value as a number, read without allocating.
fn env_number(name: &[u8]) -> Option<u64> {
    // SAFETY: `name` is NUL-terminated; getenv returns null or a NUL-terminated string it owns.
    let value = unsafe { libc::getenv(name.as_ptr().cast()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: getenv's result is a valid C string.
    let bytes = unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes();
    if bytes.is_empty() || bytes.len() > 18 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0u64, |n, digit| n * 10 + u64::from(digit - b'0')),
    )
}

/// Where the library keeps the channel for the next image of the measured process, out of sight of probe clients.
const PRELOAD_FD_ENV: &[u8] = b"MEMPROOF_PRELOAD_FD\0";
/// The measured process's pid: an image that loads the library with another pid is a child, and stays quiet.
const PRELOAD_PID_ENV: &[u8] = b"MEMPROOF_PRELOAD_PID\0";

/// Sets an environment variable to a number. `setenv` may allocate, which the library can already serve.
fn set_env_number(name: &[u8], value: u64) {
    let mut line = Line::new();
    line.number(value).text(b"\0");
    // SAFETY: both strings are NUL-terminated; nothing else in the process reads the environment during start-up.
    unsafe { libc::setenv(name.as_ptr().cast(), line.buffer.as_ptr().cast(), 1) };
}

/// Connects to the probe channel, if the runner gave one, and says hello.
///
/// The first image of the measured process takes the channel from `MEMPROOF_PROBE_FD` and moves it to a variable of
/// its own, with its pid beside it, so that:
/// - a program it execs under the same pid (a wrapper such as `env`, a shell's last command, a pyenv shim) loads the
///   library again and takes over the channel, with figures starting afresh: its final report is the last;
/// - a child it starts (another pid) finds the variables but stays quiet;
/// - a probe client inside the program finds no `MEMPROOF_PROBE_FD`, so exactly one meter speaks for the process.
pub fn connect() {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u64;
    let fd = match env_number(PRELOAD_FD_ENV) {
        Some(fd) if env_number(PRELOAD_PID_ENV) == Some(pid) => fd,
        Some(_) => return,
        None => {
            let Some(fd) = env_number(PROBE_FD_ENV) else {
                return;
            };
            set_env_number(PRELOAD_FD_ENV, fd);
            set_env_number(PRELOAD_PID_ENV, pid);
            // SAFETY: the name is NUL-terminated.
            unsafe { libc::unsetenv(PROBE_FD_ENV.as_ptr().cast()) };
            fd
        }
    };
    let Ok(fd) = i32::try_from(fd) else { return };
    // SAFETY: fcntl on a descriptor number is harmless even when it is not open (EBADF).
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return;
    }
    if let Some(ms) = env_number(SAMPLE_MS_ENV) {
        INTERVAL_NS.store(ms.max(1) * 1_000_000, Relaxed);
    }
    FD.store(fd, Relaxed);
    REPORTING.store(true, Ordering::SeqCst);
    Line::new()
        .text(b"{\"type\":\"hello\",\"protocol\":")
        .number(u64::from(PROTOCOL_VERSION))
        .text(b",\"pid\":")
        .number(pid)
        .text(b",\"meter\":\"preload\"}\n")
        .send();
}

/// Stops a forked child from reporting.
pub fn stop_reporting() {
    REPORTING.store(false, Relaxed);
}

/// True when a heap sample is due; at most one caller per interval gets true.
pub fn sample_due() -> bool {
    if !REPORTING.load(Relaxed) {
        return false;
    }
    let now = clock_ns(libc::CLOCK_MONOTONIC_COARSE);
    let due = NEXT_SAMPLE_NS.load(Relaxed);
    now >= due
        && NEXT_SAMPLE_NS
            .compare_exchange(due, now + INTERVAL_NS.load(Relaxed), Relaxed, Relaxed)
            .is_ok()
}

/// Sends one heap sample.
pub fn heap(heap_bytes: u64) {
    Line::new()
        .text(b"{\"type\":\"heap\",\"mono_ns\":")
        .number(monotonic_ns())
        .text(b",\"heap_bytes\":")
        .number(heap_bytes)
        .text(b"}\n")
        .send();
}

/// The figures of the final report.
pub struct Final {
    pub peak: u64,
    pub total: u64,
    pub count: u64,
    pub end: u64,
}

/// Sends the last heap sample and the final report.
pub fn finish(figures: &Final) {
    heap(figures.end);
    Line::new()
        .text(b"{\"type\":\"final\",\"peak_heap_bytes\":")
        .number(figures.peak)
        .text(b",\"total_alloc_bytes\":")
        .number(figures.total)
        .text(b",\"alloc_count\":")
        .number(figures.count)
        .text(b",\"end_heap_bytes\":")
        .number(figures.end)
        .text(b",\"mono_ns\":")
        .number(monotonic_ns())
        .text(b"}\n")
        .send();
    REPORTING.store(false, Relaxed);
}
