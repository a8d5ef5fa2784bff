//! The child's side of a case: it reads its own heap, marks phases, reports its figures, and streams all of it to
//! the parent as JSON lines on the probe pipe while it runs, so that a case killed mid-run still leaves what it
//! produced up to the kill.
//!
//! The pipe is the file descriptor named by `MEMPROOF_PROBE_FD`, set up by the runner. Without it (a unit test, a
//! model run by hand) every call here does nothing, so model code can mark phases unconditionally.
//!
//! The sampler thread's loop allocates nothing: it formats into a stack buffer and writes with one `write(2)`. A
//! sampler that allocated would count itself, at times that differ between the fast counting run and the slow dhat
//! run, and the two runs of a deterministic case would no longer agree to the byte.

use crate::wire::{ChildLine, FinalFigures};
use std::io::Write as _;
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The environment variable that carries the probe pipe's file descriptor to a child.
pub const PROBE_FD_ENV: &str = "MEMPROOF_PROBE_FD";
/// The environment variable that sets the child's heap sampling interval, in milliseconds.
pub const SAMPLE_MS_ENV: &str = "MEMPROOF_SAMPLE_MS";
/// The environment variable that names the dhat profile file of a profile run.
pub const DHAT_FILE_ENV: &str = "MEMPROOF_DHAT_FILE";
/// Default heap sampling interval.
pub const DEFAULT_SAMPLE_MS: u64 = 10;

/// Which meter reads the heap of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeapMeter {
    /// [`crate::alloc::CountingAlloc`] is the global allocator: cheap, leaves RSS alone; the timeline run.
    Counting,
    /// `dhat::Alloc` is the global allocator and a `dhat::Profiler` runs: exact, slow; the profile run.
    Dhat,
    /// Nothing counts the heap (the probe only passes phases and metrics on).
    None,
}

impl HeapMeter {
    /// The meter's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            HeapMeter::Counting => "counting",
            HeapMeter::Dhat => "dhat",
            HeapMeter::None => "none",
        }
    }
}

/// The heap figures of this process at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeapFigures {
    pub live_bytes: u64,
    pub peak_bytes: u64,
    pub total_bytes: u64,
    pub total_count: u64,
}

struct Channel {
    fd: RawFd,
    meter: HeapMeter,
    /// One line at a time: lines from several threads never interleave.
    lock: Mutex<()>,
}

static CHANNEL: OnceLock<Channel> = OnceLock::new();

/// Nanoseconds on `CLOCK_MONOTONIC`, which parent and child share, so their samples merge on one time axis.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Nanoseconds on `clock` (`CLOCK_MONOTONIC`, `CLOCK_PROCESS_CPUTIME_ID`, …): the one `clock_gettime` wrapper of the
/// harness. Through libc, not rustix: rustix's own vDSO path crashed the case under Valgrind (signal 11 in the
/// probe's thread, the cross-check's massif run), and the cases must run under Valgrind.
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn write_fd(fd: RawFd, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: `rest` is a valid buffer of `rest.len()` bytes.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return; // The parent is gone; nobody is listening.
        }
        rest = &rest[n as usize..];
    }
}

fn send(line: &ChildLine) {
    let Some(channel) = CHANNEL.get() else { return };
    let mut text = serde_json::to_vec(line).expect("probe lines serialise");
    text.push(b'\n');
    let _guard = channel
        .lock
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    write_fd(channel.fd, &text);
}

/// Reads the heap figures of this process from its meter; `None` when nothing meters the heap.
pub fn heap_figures() -> Option<HeapFigures> {
    let meter = CHANNEL
        .get()
        .map(|channel| channel.meter)
        .unwrap_or(HeapMeter::None);
    read_meter(meter)
}

/// What is live on the heap now, by the meter that counts it. Allocation-free, so a phase mark can carry it.
fn live_heap_bytes() -> Option<u64> {
    read_meter(CHANNEL.get()?.meter).map(|figures| figures.live_bytes)
}

fn read_meter(meter: HeapMeter) -> Option<HeapFigures> {
    match meter {
        HeapMeter::Counting => {
            let counts = crate::alloc::counts();
            Some(HeapFigures {
                live_bytes: counts.live_bytes,
                peak_bytes: counts.peak_bytes,
                total_bytes: counts.total_bytes,
                total_count: counts.total_count,
            })
        }
        HeapMeter::Dhat => {
            let stats = dhat::HeapStats::get();
            Some(HeapFigures {
                live_bytes: stats.curr_bytes as u64,
                peak_bytes: stats.max_bytes as u64,
                total_bytes: stats.total_bytes,
                total_count: stats.total_blocks,
            })
        }
        HeapMeter::None => None,
    }
}

/// Marks the start of a phase ("load", "trim", "wait for triggers", …). It lasts until the next mark.
///
/// A mark allocates nothing (the line is built on the stack), so marking a phase at the peak does not move it. It
/// carries the bytes live at the mark, which leak verdicts compare between phases (`phases.NAME.heap_bytes`).
pub fn phase(name: &str) {
    let Some(channel) = CHANNEL.get() else { return };
    let mono_ns = monotonic_ns();
    let mut buffer = [0u8; 512];
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    let mut written = write!(cursor, "{{\"type\":\"phase\",\"name\":\"").is_ok();
    for c in name.chars() {
        written &= match c {
            '"' => write!(cursor, "\\\""),
            '\\' => write!(cursor, "\\\\"),
            c if (c as u32) < 0x20 => write!(cursor, "\\u{:04x}", c as u32),
            c => write!(cursor, "{c}"),
        }
        .is_ok();
    }
    let heap_bytes = live_heap_bytes();
    written &= match heap_bytes {
        Some(live) => writeln!(cursor, "\",\"mono_ns\":{mono_ns},\"heap_bytes\":{live}}}"),
        None => writeln!(cursor, "\",\"mono_ns\":{mono_ns}}}"),
    }
    .is_ok();
    if written {
        let len = cursor.position() as usize;
        let _guard = channel
            .lock
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        write_fd(channel.fd, &buffer[..len]);
    } else {
        // A name too long for the stack line still gets through, at the cost of an allocation.
        send(&ChildLine::Phase {
            name: name.to_string(),
            mono_ns,
            heap_bytes,
        });
    }
}

/// Reports one of the scenario's own figures. A later report of the same name replaces an earlier one.
pub fn metric(name: &str, value: impl serde::Serialize) {
    let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    send(&ChildLine::Metric {
        name: name.to_string(),
        value,
    });
}

/// The live probe of a case: its sampler thread and, in the profile run, dhat's profiler.
pub struct Probe {
    stop: &'static AtomicBool,
    sampler: Option<JoinHandle<()>>,
    started: bool,
}

static SAMPLER_STOP: AtomicBool = AtomicBool::new(false);
static SAMPLER_READY: AtomicBool = AtomicBool::new(false);

impl Probe {
    /// Connects to the probe pipe (if the runner gave one), starts the heap figures afresh and starts the sampler.
    /// Call it first thing in the case's `main`, with everything allocated before it already freed: the counting
    /// run and the dhat run then cover the same allocations.
    pub fn start(meter: HeapMeter) -> Probe {
        // Start the figures first, so that the counting run and the dhat run (whose profiler is already running)
        // count the same allocations from here on.
        if meter == HeapMeter::Counting {
            crate::alloc::reset();
        }
        let fd = std::env::var(PROBE_FD_ENV)
            .ok()
            .and_then(|text| text.parse::<RawFd>().ok());
        let interval_ms = std::env::var(SAMPLE_MS_ENV)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .unwrap_or(DEFAULT_SAMPLE_MS)
            .max(1);
        let Some(fd) = fd else {
            return Probe {
                stop: &SAMPLER_STOP,
                sampler: None,
                started: false,
            };
        };
        // SAFETY: the fd came from the runner; marking it close-on-exec keeps it out of programs the case runs.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        // SAFETY: called first thing in the case's main, before any other thread of ours exists (the sampler
        // starts below). The variable goes too, so no program the case runs is told of a descriptor it lacks.
        unsafe { std::env::remove_var(PROBE_FD_ENV) };
        let _ = CHANNEL.set(Channel {
            fd,
            meter,
            lock: Mutex::new(()),
        });
        send(&ChildLine::Hello {
            protocol: crate::wire::PROTOCOL_VERSION,
            pid: std::process::id(),
            meter: std::borrow::Cow::Borrowed(meter.name()),
        });
        let sampler = std::thread::Builder::new()
            .name("memproof-sampler".into())
            .spawn(move || sample_heap(fd, meter, Duration::from_millis(interval_ms)))
            .expect("spawn the heap sampler");
        // Wait for the sampler's first sample: by then its own start-up has allocated and freed what it does, so the
        // case starts from settled figures (the calibration case reads its baseline right away).
        while !SAMPLER_READY.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        Probe {
            stop: &SAMPLER_STOP,
            sampler: Some(sampler),
            started: true,
        }
    }

    /// Stops the sampler and reports the case's final figures: its heap (from the meter, before anything of the
    /// probe's own is torn down) and its own kernel high-water mark. `error` is the case's failure, if any.
    pub fn finish(mut self, error: Option<String>) {
        if !self.started {
            return;
        }
        self.stop.store(true, Ordering::SeqCst);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
        let meter = CHANNEL
            .get()
            .map(|channel| channel.meter)
            .unwrap_or(HeapMeter::None);
        let heap = read_meter(meter);
        if let Some(heap) = heap {
            // The last point of the heap timeline: what is live now, after the case let go of its data.
            send(&ChildLine::Heap {
                mono_ns: monotonic_ns(),
                heap_bytes: heap.live_bytes,
            });
        }
        let figures = FinalFigures {
            peak_heap_bytes: heap.map(|h| h.peak_bytes),
            total_alloc_bytes: heap.map(|h| h.total_bytes),
            alloc_count: heap.map(|h| h.total_count),
            end_heap_bytes: heap.map(|h| h.live_bytes),
            vm_hwm_bytes: crate::procfs::own_vm_hwm_bytes(),
            error,
            mono_ns: monotonic_ns(),
        };
        send(&ChildLine::Final(figures));
    }
}

/// The sampler loop: every interval, one heap sample line, formatted on the stack.
fn sample_heap(fd: RawFd, meter: HeapMeter, interval: Duration) {
    let mut buffer = [0u8; 128];
    while !SAMPLER_STOP.load(Ordering::SeqCst) {
        let heap = match meter {
            HeapMeter::Counting => Some(crate::alloc::take_window_peak()),
            HeapMeter::Dhat => Some(dhat::HeapStats::get().curr_bytes as u64),
            HeapMeter::None => None,
        };
        if let Some(heap) = heap {
            let mut cursor = std::io::Cursor::new(&mut buffer[..]);
            let _ = writeln!(
                cursor,
                "{{\"type\":\"heap\",\"mono_ns\":{},\"heap_bytes\":{heap}}}",
                monotonic_ns()
            );
            let len = cursor.position() as usize;
            if let Some(channel) = CHANNEL.get() {
                let _guard = channel
                    .lock
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner());
                write_fd(fd, &buffer[..len]);
            }
        }
        SAMPLER_READY.store(true, Ordering::SeqCst);
        std::thread::sleep(interval);
    }
}
