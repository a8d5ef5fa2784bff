//! The library's side of the probe protocol (version 1): `hello` when the program starts, a `heap` sample at most
//! every sampling interval while it allocates, and a `final` report when it exits.
//!
//! Every line is formatted in a stack buffer and written with one `write(2)`: this code runs inside `malloc`, where
//! an allocation would recurse. A line is far shorter than `PIPE_BUF` (4096 bytes), so lines from several threads
//! never interleave.

use std::sync::atomic::Ordering::{self, Relaxed};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64};

/// The protocol version this library speaks (memproof's `meter::wire::PROTOCOL_VERSION`).
pub const PROTOCOL_VERSION: u32 = 1;
const PROBE_FD_ENV: &[u8] = b"MEMPROOF_PROBE_FD\0";
const SAMPLE_MS_ENV: &[u8] = b"MEMPROOF_SAMPLE_MS\0";
const DEFAULT_SAMPLE_MS: u64 = 10;

static FD: AtomicI32 = AtomicI32::new(-1);
/// The probe pipe's identity (`st_dev`, `st_ino`), recorded when the channel was taken: before each line the
/// descriptor is checked to still be that pipe, so a program that closed it and opened a file of its own under the
/// same number never gets a line written into it.
static PIPE_DEV: AtomicU64 = AtomicU64::new(0);
static PIPE_INO: AtomicU64 = AtomicU64::new(0);
/// False in a forked child: its figures are a copy of its parent's and would be reported as if they were the
/// parent's.
static REPORTING: AtomicBool = AtomicBool::new(false);
/// A process of the tree that is not the measured one (a child, forked or started): its heap is not counted, and it
/// says so once, at its exit, so that the result can name it rather than let it vanish.
static UNMEASURED: AtomicBool = AtomicBool::new(false);
/// This image was started by exec, so its figures are its own (a forked child's are a copy of its parent's).
static FRESH_IMAGE: AtomicBool = AtomicBool::new(false);
/// The channel is moved to the first free descriptor from this number, out of the way of the program's own.
const HIGH_FD: i32 = 900;
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
        if !REPORTING.load(Relaxed) {
            return;
        }
        self.send_to_pipe();
    }

    /// Writes the line if the channel's descriptor is still the probe pipe; if it is not, stops reporting for good.
    fn send_to_pipe(&self) {
        let fd = FD.load(Relaxed);
        if fd < 0 {
            return;
        }
        if pipe_identity(fd) != Some((PIPE_DEV.load(Relaxed), PIPE_INO.load(Relaxed))) {
            REPORTING.store(false, Relaxed);
            FD.store(-1, Relaxed);
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

/// `st_dev` and `st_ino` of `fd` when it is a pipe; `None` for anything else (a file, a socket, a closed number).
fn pipe_identity(fd: i32) -> Option<(u64, u64)> {
    // SAFETY: an all-zero stat is a valid value for fstat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on a descriptor number with a valid out-pointer; EBADF at worst.
    if unsafe { libc::fstat(fd, &mut stat) } != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return None;
    }
    Some((stat.st_dev, stat.st_ino))
}

/// Where the library keeps the channel for the next image of the measured process, out of sight of probe clients.
const PRELOAD_FD_ENV: &[u8] = b"MEMPROOF_PRELOAD_FD\0";
/// The pipe's identity beside it, so that the next image checks the number still names the pipe.
const PRELOAD_DEV_ENV: &[u8] = b"MEMPROOF_PRELOAD_DEV\0";
const PRELOAD_INO_ENV: &[u8] = b"MEMPROOF_PRELOAD_INO\0";
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
///
/// The first image moves the channel to a high descriptor ([`HIGH_FD`] or above) and closes the number the runner
/// gave, so the program's descriptors are what they would be without memproof; it stays open across exec, for the
/// next image. Every image checks the descriptor is still the pipe it was (`st_dev`, `st_ino`) before each line.
pub fn connect() {
    FRESH_IMAGE.store(true, Relaxed);
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u64;
    let fd = match env_number(PRELOAD_FD_ENV) {
        Some(fd) => {
            let Ok(fd) = i32::try_from(fd) else { return };
            let expected = (env_number(PRELOAD_DEV_ENV), env_number(PRELOAD_INO_ENV));
            let Some(identity) = pipe_identity(fd) else {
                return;
            };
            if (Some(identity.0), Some(identity.1)) != expected {
                return;
            }
            PIPE_DEV.store(identity.0, Relaxed);
            PIPE_INO.store(identity.1, Relaxed);
            FD.store(fd, Relaxed);
            if env_number(PRELOAD_PID_ENV) != Some(pid) {
                UNMEASURED.store(true, Relaxed);
                return;
            }
            fd
        }
        None => {
            let Some(fd) = env_number(PROBE_FD_ENV).and_then(|fd| i32::try_from(fd).ok()) else {
                return;
            };
            let Some(identity) = pipe_identity(fd) else {
                return;
            };
            // SAFETY: fcntl and close on the channel's descriptor, which this library takes for itself.
            let fd = match unsafe { libc::fcntl(fd, libc::F_DUPFD, HIGH_FD) } {
                high if high >= 0 => {
                    unsafe { libc::close(fd) };
                    high
                }
                _ => fd,
            };
            PIPE_DEV.store(identity.0, Relaxed);
            PIPE_INO.store(identity.1, Relaxed);
            set_env_number(PRELOAD_FD_ENV, fd as u64);
            set_env_number(PRELOAD_PID_ENV, pid);
            set_env_number(PRELOAD_DEV_ENV, identity.0);
            set_env_number(PRELOAD_INO_ENV, identity.1);
            // SAFETY: the name is NUL-terminated.
            unsafe { libc::unsetenv(PROBE_FD_ENV.as_ptr().cast()) };
            fd
        }
    };
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

/// Stops a forked child from reporting: it is a process of the tree that is not measured.
pub fn stop_reporting() {
    REPORTING.store(false, Relaxed);
    UNMEASURED.store(true, Relaxed);
    FRESH_IMAGE.store(false, Relaxed);
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

/// Sends the last heap sample and the final report; or, from a process of the tree that is not the measured one,
/// the one line that names it ([`UNMEASURED_METRIC`]).
pub fn finish(figures: &Final) {
    if UNMEASURED.load(Relaxed) {
        unmeasured(figures);
        return;
    }
    final_report(figures);
    REPORTING.store(false, Relaxed);
}

/// The final report of this image, which keeps reporting: an image about to exec sends it, so that its figures are
/// not lost if the exec succeeds (the next image says hello and starts afresh; the runner keeps the highest peak
/// over the images), and are superseded by the exit's if it fails.
pub fn final_report(figures: &Final) {
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
}

/// Before an exec: the measured image sends its final report ([`final_report`]); a process of the tree that is
/// not measured names itself with its own figures so far, which the next image's line does not carry.
pub fn before_exec(figures: &Final) {
    if REPORTING.load(Relaxed) {
        final_report(figures);
    } else if UNMEASURED.load(Relaxed) && FRESH_IMAGE.load(Relaxed) {
        unmeasured(figures);
    }
}

/// The metric name a process of the tree that is not measured reports itself under, followed by its pid; its
/// value is its peak heap, or `null` for a forked child whose figures are a copy of its parent's
/// (`meter::wire::UNMEASURED_METRIC`).
pub const UNMEASURED_METRIC: &[u8] = b"memproof.preload.unmeasured.";

fn unmeasured(figures: &Final) {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u64;
    let mut line = Line::new();
    line.text(b"{\"type\":\"metric\",\"name\":\"")
        .text(UNMEASURED_METRIC)
        .number(pid)
        .text(b"\",\"value\":");
    if FRESH_IMAGE.load(Relaxed) {
        line.number(figures.peak);
    } else {
        line.text(b"null");
    }
    line.text(b"}\n").send_to_pipe();
}
