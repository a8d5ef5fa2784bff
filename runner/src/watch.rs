//! The parent's side of a case: start one process tree, watch it, and record how it went.
//!
//! The program is started through `memproof-launch`, which says on its own control pipe (close-on-exec in the
//! launcher, so the program never holds it) when the program started and ended, how, with which `ru_maxrss`, and
//! what it left running. A memproof case binary also gets the probe pipe for its heap samples, phases, metrics and
//! final figures; any other program gets it only when asked for ([`ProbeAccess`]), and even then nothing it writes
//! there can change a memory figure, an outcome or the wall time.
//!
//! While the tree runs, the runner walks it every interval ([`crate::process_tree`]): the sum of its processes'
//! proportional set sizes is the timeline; what the memory limit is checked against is what a container could not
//! reclaim: anonymous and shared memory (`Pss_Anon` + `Pss_Shmem`, an address space shared by several processes
//! once), the shared memory the tree holds that nothing maps, and the System V segments it created that nobody
//! attaches ([`crate::shared_memory`]); clean file pages, which a container reclaims rather than kill, are reported
//! beside it. Each process's kernel high-water mark is kept; one that falls under the same program was reset
//! (`clear_refs`), and the result says the peak is a lower bound. Every exiting process's high-water mark comes from
//! the kernel's exit records ([`crate::exit_records`]), so a child the kernel reaps between two polls (its parent
//! ignores SIGCHLD) is counted; without the records, the result says such children make the peak a lower bound. Proportional set sizes cost a walk of every page table (measured:
//! 0.2 ms a poll for a few small processes, 19 ms for one 1 GiB process on a loaded machine), so they are read at
//! most a tenth of the time; every interval, the anonymous and shared resident sets' sum (cheap, and never below
//! the proportional figure of the limit's mapped part) is read, and when it is over the limit the proportional sizes
//! are read at once to decide. Over the limit, or past the timeout, or on SIGINT/SIGTERM
//! ([`crate::interrupt`]), the whole tree is killed. The process's stdout and stderr go to files
//! ([`crate::output_capture`]), so the runner's own memory stays bounded whatever the program prints; everything
//! read from the probe pipe is bounded too (lines, samples, stray text).
//!
//! The program may turn on its launcher. Every catchable signal is caught there (see `memproof-launch`); SIGKILL
//! leaves the launcher's orphans to the runner, which is their subreaper too and names, kills and reaps them
//! ([`crate::orphans`]); SIGSTOP is undone at the next poll (the runner continues a stopped launcher). Every kill is
//! the runner's own, from its view of `/proc`, and a launcher that has not exited [`LAUNCHER_GRACE`] after it is
//! killed as well, so the timeout bounds the run whatever the launcher's state. If the runner itself does not run
//! (the program stopped it), nothing can be checked meanwhile: on resume it polls at once and says for how long it
//! did not watch; the kernel's high-water marks still judge over-limit.
//!
//! Which figure is the peak RSS (always a kernel high-water mark, never a polled sample, which misses spikes): for a
//! memproof case, its own `VmHWM` as its last act, or the highest the runner read if it died first; for any other
//! program, the largest single process of the tree: the highest `VmHWM` polled and `ru_maxrss` the launcher got
//! from `wait4` for each process it reaped. The tree's total is beside it (`tree.peak_pss_bytes`).
//!
//! The loop is a value of its own, one turn at a time ([`poll_loop`]), so that the states it can be in have names;
//! how a run is judged once it is over is a set of pure tables ([`verdict`]), so that each row can be tested without
//! running a process tree into it.

mod poll_loop;
mod verdict;

use crate::output_capture::Capture;
use anyhow::Context as _;
use meter::procfs;
use meter::wire::{ChildLine, FinalFigures, LauncherLine};
use poll_loop::Step;
use schema::results::{
    Exit, LeftRunning, LimitReport, Outcome, Phase, ProcessPeak, Sample, TreeReport,
};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead as _, BufReader};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The most timeline points kept per case; longer timelines are thinned by keeping each bucket's highest values.
pub const MAX_TIMELINE_POINTS: usize = 2000;
/// The environment variable naming the launcher's control pipe (fd 3 of the launcher, never the program's).
pub const LAUNCH_FD_ENV: &str = "MEMPROOF_LAUNCH_FD";
/// `LD_PRELOAD` of [`Launch::env`] reaches the launcher under this name, and the program under its own: a library
/// preloaded into the launcher would run there too.
pub const PROGRAM_PRELOAD_ENV: &str = "MEMPROOF_LAUNCH_LD_PRELOAD";
/// The longest probe line read; a longer one is dropped (counted as stray), so a program cannot grow the runner.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Samples held while a process runs before they are thinned (each bucket's highest kept), to bound the runner.
const MAX_HELD_SAMPLES: usize = 100_000;
/// Stray probe lines kept as text; the rest are only counted.
const MAX_STRAY_LINES: usize = 100;
/// Phases and metrics kept from the probe, and the longest phase name kept (in bytes; a longer one is cut): every
/// phase is drawn on the charts, a name as text (100 phases of 30 KB names took 19 to 26 s to render, 10,000 of them
/// over 15 minutes).
const MAX_PHASES: usize = 100;
const MAX_PHASE_NAME: usize = 64;
const MAX_METRICS: usize = 1_000;
/// The runner spends at most 1 / this of the elapsed time reading proportional set sizes.
const PSS_TIME_SHARE_INVERSE: f64 = 10.0;
/// How often the runner looks for an interrupt while it waits for the next poll.
const INTERRUPT_CHECK: Duration = Duration::from_millis(20);
/// How long the launcher has, once the runner killed the tree, to reap it and exit before the runner kills it too.
const LAUNCHER_GRACE: Duration = Duration::from_secs(2);
/// A pause this long between two turns of the runner's loop (it turns every [`INTERRUPT_CHECK`]) means the runner
/// did not run: it was stopped (SIGSTOP, perhaps by the program) or starved of CPU. The limit was not checked then.
const UNWATCHED_GAP: Duration = Duration::from_secs(1);

/// Who gets the probe pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeAccess {
    /// Nobody: the program cannot reach the runner at all.
    Off,
    /// A memproof case binary (`memproof-case`, `memproof-dhat`, `memproof-testbed`): its final report's own
    /// `VmHWM` is its peak RSS.
    MemproofCase,
    /// Any other program that asked for it (`measure --probe`): its heap samples, phases and metrics are kept,
    /// but no figure it sends is taken for a peak RSS.
    Program,
}

/// What to run and under which limits.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `memproof-launch` binary.
    pub launcher: PathBuf,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub current_dir: Option<PathBuf>,
    /// The memory limit, in bytes of the tree's total proportional set size.
    pub limit_bytes: Option<u64>,
    /// The whole measurement's bound: the program and everything it started.
    pub timeout: Duration,
    /// How often the tree is polled and the limit checked.
    pub interval: Duration,
    pub probe: ProbeAccess,
    /// The program's stdout and stderr go to `<stem>.stdout` and `<stem>.stderr`; `None`: to `/dev/null` and an
    /// unnamed file read back for the message.
    pub output_stem: Option<PathBuf>,
}

/// Everything the runner learned about one process tree.
#[derive(Debug, Clone)]
pub struct Measured {
    pub outcome: Outcome,
    pub exit: Exit,
    /// From the program's spawn to its exit, as the launcher timed them.
    pub wall_ms: f64,
    /// The peak resident set (see the module's doc for which figure it is).
    pub peak_rss_bytes: Option<u64>,
    /// `ru_maxrss` of the program from the launcher's `wait4`.
    pub maxrss_bytes: Option<u64>,
    /// The highest tree total the polls saw.
    pub sampled_peak_rss_bytes: Option<u64>,
    pub timeline: Vec<Sample>,
    pub phases: Vec<Phase>,
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// The case's final report, when it made one.
    pub final_figures: Option<FinalFigures>,
    pub limit: Option<LimitReport>,
    pub tree: TreeReport,
    /// The last lines the process wrote to stderr.
    pub stderr_tail: String,
    /// The output files that were written to (empty ones are removed).
    pub stdout_file: Option<PathBuf>,
    pub stderr_file: Option<PathBuf>,
    /// Lines on the probe pipe that were not protocol lines (the first [`MAX_STRAY_LINES`], kept, not dropped).
    pub stray_lines: Vec<String>,
    /// Descendants left running when the program exited: all of them, where `tree.left_running` names at most
    /// [`MAX_STRAY_LINES`].
    pub left_running_count: usize,
    /// Milliseconds the runner did not run while the tree did (stopped, or starved of CPU): the limit was not
    /// checked then.
    pub unwatched_ms: f64,
    /// The highest total a poll saw of what a container could not reclaim (the limit's figure:
    /// [`crate::process_tree::TreeMemory::charged_bytes`]), and the most file pages a poll saw beside it.
    pub peak_charged_bytes: Option<u64>,
    pub peak_file_bytes: Option<u64>,
    /// Why the peaks are lower bounds of what the tree held, when the kernel gave no way to see all of it.
    pub lower_bound: Vec<String>,
    /// Shared memory the run left behind, named.
    pub left_behind: Vec<String>,
}

/// What the runner reports while a process runs, for a live progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub elapsed: Duration,
    pub rss_bytes: Option<u64>,
    pub heap_bytes: Option<u64>,
}

enum Event {
    Launcher(LauncherLine),
    Probe(ChildLine),
    Stray(String),
    ControlClosed,
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot create a pipe");
    }
    // SAFETY: pipe2 just opened both descriptors and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads lines of at most [`MAX_LINE_BYTES`]; a longer one is skipped to its end and reported by its length.
fn for_each_line(reader: impl std::io::Read, mut each: impl FnMut(Result<&str, usize>) -> bool) {
    let mut reader = BufReader::with_capacity(MAX_LINE_BYTES, reader);
    let mut line: Vec<u8> = Vec::new();
    let mut dropped = 0usize;
    loop {
        let (used, ended) = match reader.fill_buf() {
            Ok([]) | Err(_) => return,
            Ok(buffer) => match buffer.iter().position(|&b| b == b'\n') {
                Some(at) => {
                    take(&mut line, &mut dropped, &buffer[..at]);
                    (at + 1, true)
                }
                None => {
                    take(&mut line, &mut dropped, buffer);
                    (buffer.len(), false)
                }
            },
        };
        reader.consume(used);
        if ended {
            let keep_going = if dropped > 0 {
                each(Err(dropped))
            } else {
                each(Ok(String::from_utf8_lossy(&line).trim_end()))
            };
            line.clear();
            dropped = 0;
            if !keep_going {
                return;
            }
        }
    }
}

fn take(line: &mut Vec<u8>, dropped: &mut usize, bytes: &[u8]) {
    if *dropped == 0 && line.len() + bytes.len() <= MAX_LINE_BYTES {
        line.extend_from_slice(bytes);
    } else {
        *dropped += line.len() + bytes.len();
        line.clear();
    }
}

/// Kills the tree from the runner's own view of `/proc`, whatever the launcher's state: everything under the
/// launcher, the program's process group, and the run's orphans re-parented to the runner (a dead launcher's). The
/// launcher is continued, in case the program stopped it, so it can reap and report.
fn kill_tree(launcher_pid: u32, program_pid: Option<u32>, belonging: &crate::orphans::Belonging) {
    crate::process_tree::kill_descendants(launcher_pid);
    if let Some(pid) = program_pid {
        // SAFETY: kill(2) on the group the launcher made for the program; at worst it is gone (ESRCH).
        unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
    }
    for orphan in belonging.orphans() {
        crate::process_tree::kill_descendants(orphan);
        // SAFETY: kill(2) on this process's own child, not reaped yet, so its pid cannot have been reused.
        unsafe { libc::kill(orphan as libc::pid_t, libc::SIGKILL) };
    }
    // SAFETY: kill(2) on the launcher, this process's child, not reaped yet.
    unsafe { libc::kill(launcher_pid as libc::pid_t, libc::SIGCONT) };
}

/// Why the runner killed the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    Limit,
    Timeout,
    Interrupt(i32),
    /// The caller asked (a command scenario's driver failed, or finished long before the technique): a failure.
    Requested,
}

/// Runs one process tree to its end and measures it. Only an error of memproof's own (the launcher cannot be
/// started, an output file cannot be created) is an `Err`; anything the program does is an outcome.
pub fn run(launch: &Launch, on_progress: impl FnMut(Progress)) -> anyhow::Result<Measured> {
    run_until(launch, None, on_progress)
}

/// [`run`], also killing the tree (a failure) when `stop` is asked for: by a command scenario's driver
/// (`crate::driver`), whose case must not wait for its timeout once the load is gone.
pub fn run_until(
    launch: &Launch,
    stop: Option<&crate::driver::StopRequest>,
    mut on_progress: impl FnMut(Progress),
) -> anyhow::Result<Measured> {
    check_timeout(launch.timeout)?;
    let spawned = spawn(launch)?;
    let mut watch = poll_loop::Watch::new(
        launch,
        stop,
        spawned.launcher_pid,
        spawned.started,
        spawned.started_ns,
    );
    let events = &spawned.events;
    while let Step::Continue | Step::KillDecided(_) = watch.step(events, &mut on_progress) {}
    let (state, kill) = watch.finish();
    spawned.drain(launch, state, kill)
}

/// A launcher just started, with what the run needs of its start once the watch loop is over.
struct Spawned {
    launcher: std::process::Child,
    launcher_pid: u32,
    /// Registered while the run is under way, for the whole run.
    _registered: crate::orphans::LauncherGuard,
    /// When the launcher was spawned, on the runner's clock and on the monotonic clock the probe's times are in.
    started: Instant,
    started_ns: u64,
    /// The control pipe's and the probe pipe's lines, from their reader threads.
    events: mpsc::Receiver<Event>,
    control_thread: std::thread::JoinHandle<()>,
    probe_thread: Option<std::thread::JoinHandle<()>>,
    capture: Capture,
    /// `/dev/shm` before the run, to name what appeared in it.
    dev_shm_before: std::collections::HashMap<(u64, u64), (String, u64)>,
    exit_records: Result<crate::exit_records::Listener, String>,
}

/// Starts `launch`'s program through its launcher, with the control pipe and (when given) the probe pipe, and the
/// threads that read them.
fn spawn(launch: &Launch) -> anyhow::Result<Spawned> {
    let (control_read, control_write) = pipe()?;
    let probe = match launch.probe {
        ProbeAccess::Off => None,
        _ => Some(pipe()?),
    };
    let capture = Capture::open(launch.output_stem.as_deref())?;
    let mut command = Command::new(&launch.launcher);
    command
        .arg(&launch.program)
        .args(&launch.args)
        .env_remove(meter::probe::PROBE_FD_ENV)
        .env(LAUNCH_FD_ENV, "3")
        .stdin(Stdio::null())
        .stdout(
            capture
                .stdout
                .try_clone()
                .context("cannot share the stdout file")?,
        )
        .stderr(
            capture
                .stderr
                .try_clone()
                .context("cannot share the stderr file")?,
        )
        // Its own process group: a terminal's Ctrl-C reaches memproof, which kills the tree and records it.
        .process_group(0);
    if probe.is_some() {
        command.env(meter::probe::PROBE_FD_ENV, "4");
    }
    for (key, value) in &launch.env {
        if key == "LD_PRELOAD" {
            command.env(PROGRAM_PRELOAD_ENV, value);
        } else {
            command.env(key, value);
        }
    }
    if let Some(dir) = &launch.current_dir {
        command.current_dir(dir);
    }
    let control_raw = control_write.as_raw_fd();
    let probe_raw = probe.as_ref().map(|(_, write)| write.as_raw_fd());
    // SAFETY: only async-signal-safe calls (fcntl, dup2, close, close_range, prctl) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // Move both ends out of the way first, so neither dup2 overwrites the other.
            let control = libc::fcntl(control_raw, libc::F_DUPFD, 10);
            let probe = probe_raw.map(|fd| libc::fcntl(fd, libc::F_DUPFD, 10));
            if control < 0 || probe.is_some_and(|fd| fd < 0) {
                return Err(std::io::Error::last_os_error());
            }
            if libc::dup2(control, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(control);
            let mut first_closed = 4;
            if let Some(probe) = probe {
                if libc::dup2(probe, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(probe);
                first_closed = 5;
            }
            // Nothing else of this process's reaches the program: not a descriptor some library left open without
            // close-on-exec (a test harness's jobserver pipes, say).
            if libc::syscall(libc::SYS_close_range, first_closed, libc::c_uint::MAX, 0) != 0 {
                for fd in first_closed..1024 {
                    libc::close(fd);
                }
            }
            // If memproof dies, the launcher kills the tree and exits.
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            );
            Ok(())
        });
    }
    crate::orphans::become_subreaper();
    let dev_shm_before = crate::shared_memory::dev_shm_files();
    let exit_records = crate::exit_records::listen();
    let started = Instant::now();
    let started_ns = meter::probe::monotonic_ns();
    let launcher = command
        .spawn()
        .with_context(|| format!("cannot start the launcher {}", launch.launcher.display()))?;
    drop(control_write);
    let launcher_pid = launcher.id();
    let _registered = crate::orphans::LauncherGuard::register(launcher_pid);

    // Bounded, so a program flooding the probe pipe is slowed down rather than growing the runner.
    let (sender, events) = mpsc::sync_channel::<Event>(4096);
    let control_sender = sender.clone();
    let control_thread = std::thread::spawn(move || {
        for_each_line(std::fs::File::from(control_read), |line| {
            let event = match line.map(serde_json::from_str::<LauncherLine>) {
                Ok(Ok(parsed)) => Event::Launcher(parsed),
                Ok(Err(_)) | Err(_) => return true,
            };
            control_sender.send(event).is_ok()
        });
        let _ = control_sender.send(Event::ControlClosed);
    });
    let probe_thread = probe.map(|(read_end, write_end)| {
        drop(write_end);
        let sender = sender.clone();
        std::thread::spawn(move || {
            for_each_line(std::fs::File::from(read_end), |line| {
                let event = match line {
                    Ok(text) => match serde_json::from_str::<ChildLine>(text) {
                        Ok(parsed) => Event::Probe(parsed),
                        Err(_) => Event::Stray(text.to_string()),
                    },
                    Err(length) => Event::Stray(format!("<a line of {length} bytes, dropped>")),
                };
                sender.send(event).is_ok()
            });
        })
    });
    drop(sender);
    Ok(Spawned {
        launcher,
        launcher_pid,
        _registered,
        started,
        started_ns,
        events,
        control_thread,
        probe_thread,
        capture,
        dev_shm_before,
        exit_records,
    })
}

impl Spawned {
    /// After the loop: reaps the launcher and the orphans it left, takes the pipes' last lines, the wall time, the
    /// shared memory left behind and the kernel's exit records, and judges the run.
    fn drain(
        self,
        launch: &Launch,
        mut state: State,
        kill: Option<Kill>,
    ) -> anyhow::Result<Measured> {
        let Spawned {
            mut launcher,
            launcher_pid: _,
            _registered,
            started,
            started_ns,
            events,
            control_thread,
            probe_thread,
            mut capture,
            dev_shm_before,
            exit_records,
        } = self;
        let t_ms = |mono_ns: u64| since_start_ms(started_ns, mono_ns);
        // The control pipe closes when the launcher exits, after it killed and reaped whatever the program left.
        let launcher_status = launcher.wait().context("cannot wait for the launcher")?;
        // A launcher killed by the program left its orphans to this process: name, kill and reap them.
        for swept in crate::orphans::sweep(&mut state.belonging) {
            match swept {
                crate::orphans::Swept::Killed { pid, command } => {
                    state.left_running(LeftRunning { pid, command })
                }
                crate::orphans::Swept::Reaped { pid, maxrss_bytes } => {
                    state.note_process_peak(pid, maxrss_bytes, false)
                }
            }
        }
        let _ = control_thread.join();
        // Every holder of the probe pipe is dead now: drain what is left, for at most two seconds.
        let drain_until = Instant::now() + Duration::from_secs(2);
        while let Ok(event) =
            events.recv_timeout(drain_until.saturating_duration_since(Instant::now()))
        {
            state.take(event, &t_ms);
        }
        drop(events);
        if let Some(thread) = probe_thread
            && thread.is_finished()
        {
            let _ = thread.join();
        }
        let wall_ms = match (state.launched_ns, state.exited.as_ref()) {
            (Some(launched), Some(exited)) => exited.mono_ns.saturating_sub(launched) as f64 / 1e6,
            _ => started.elapsed().as_secs_f64() * 1e3,
        };
        state.left_behind = left_behind(&state.belonging, &dev_shm_before);
        match exit_records {
            Ok(listener) => {
                let (records, lost) = listener.finish();
                let belonging = &state.belonging;
                for record in crate::exit_records::of_tree(&records, |pid| belonging.knows(pid)) {
                    state.note_process_peak(record.pid, record.hiwater_rss_bytes, false);
                }
                state.exit_records_lost = lost;
            }
            Err(why) => state.exit_records_unavailable = Some(why),
        }
        let stderr_tail = capture.stderr_tail();
        let (stdout_file, stderr_file) = capture.keep_non_empty();
        let mut measured = state.into_measured(launch, launcher_status, wall_ms, kill, stderr_tail);
        measured.stdout_file = stdout_file;
        measured.stderr_file = stderr_file;
        Ok(measured)
    }
}

/// Milliseconds from the launcher's spawn (`started_ns`) to `mono_ns`, both on the monotonic clock: a time on the
/// timeline of something the probe sent.
fn since_start_ms(started_ns: u64, mono_ns: u64) -> f64 {
    mono_ns.saturating_sub(started_ns) as f64 / 1e6
}

/// Shared memory the run left behind, which outlives it and is charged to whoever created it: System V segments a
/// process of the tree created, and files that appeared in `/dev/shm` while it ran (by any process on the machine:
/// the file does not say who made it).
fn left_behind(
    belonging: &crate::orphans::Belonging,
    dev_shm_before: &std::collections::HashMap<(u64, u64), (String, u64)>,
) -> Vec<String> {
    let mut left: Vec<String> = crate::shared_memory::segments()
        .into_iter()
        .filter(|segment| belonging.knows(segment.creator))
        .map(|segment| {
            format!(
                "System V segment {} (key {}, {}, created by pid {})",
                segment.id,
                segment.key,
                schema::units::format_bytes(segment.size_bytes as f64),
                segment.creator
            )
        })
        .collect();
    left.extend(
        crate::shared_memory::dev_shm_files()
            .into_iter()
            .filter(|(id, _)| !dev_shm_before.contains_key(id))
            .map(|(_, (name, bytes))| {
                format!(
                    "/dev/shm/{name} ({}, appeared during the run)",
                    schema::units::format_bytes(bytes as f64)
                )
            }),
    );
    left.sort();
    left
}

/// How the program ended, as the launcher saw it.
struct Exited {
    code: Option<i32>,
    signal: Option<i32>,
    maxrss_bytes: u64,
    mono_ns: u64,
}

#[derive(Default)]
struct State {
    pid: Option<u32>,
    launched_ns: Option<u64>,
    exited: Option<Exited>,
    control_closed: bool,
    launch_failed: Option<String>,
    rss: Vec<Sample>,
    heap: Vec<Sample>,
    phases: Vec<Phase>,
    metrics: BTreeMap<String, serde_json::Value>,
    final_figures: Option<FinalFigures>,
    /// The highest `VmHWM` polled of the program itself.
    program_hwm: Option<u64>,
    tree: TreeReport,
    kill_t_ms: Option<f64>,
    /// The runner has decided to kill the tree.
    killing: bool,
    stray: Vec<String>,
    stray_count: usize,
    /// What the run knows of its tree, to find its orphans if the launcher dies.
    belonging: crate::orphans::Belonging,
    /// Descendants left running when the program exited, named or not.
    left_running_count: usize,
    /// Phases past [`MAX_PHASES`], not kept.
    phases_dropped: usize,
    /// How many `hello`s the probe pipe carried: above one, the process exec'd a new image that reported afresh.
    images: u32,
    /// The final figures of the images before the last one, folded ([`FinalFigures::then`]).
    earlier_images: Option<FinalFigures>,
    /// Processes of the tree that ran with the preload library but are not the measured one (pid, peak heap when
    /// their own), the first [`MAX_STRAY_LINES`]; and how many in all.
    unmeasured: BTreeMap<u32, Option<u64>>,
    unmeasured_count: usize,
    /// How often a poll found the launcher stopped and continued it.
    launcher_stops: u32,
    /// The runner killed the launcher, which did not exit within [`LAUNCHER_GRACE`] of the tree's kill.
    launcher_killed: bool,
    /// Each process's highest `VmHWM` (polled or reaped), its most file pages polled, and its program (`exe`),
    /// at most [`MAX_KNOWN_PROCESSES`].
    processes: std::collections::HashMap<u32, ProcessSeen>,
    /// Processes whose high-water mark fell between two polls with the same program: reset through `clear_refs`.
    hwm_resets: Vec<String>,
    /// Processes seen ignoring SIGCHLD (their children are reaped by the kernel), named.
    sigchld_ignorers: BTreeMap<u32, String>,
    /// Why the kernel's exit records could not be read, or whether some were lost: then a child that lived between
    /// two polls and was reaped by the kernel is in no figure.
    exit_records_unavailable: Option<String>,
    exit_records_lost: bool,
    /// Shared memory left behind after the run ([`left_behind`]).
    left_behind: Vec<String>,
    /// The highest unreclaimable total a poll saw, and the most file pages a poll saw beside it.
    peak_charged_bytes: Option<u64>,
    peak_file_bytes: Option<u64>,
    /// Time the runner's loop did not run (see [`UNWATCHED_GAP`]), and the longest such pause.
    unwatched: Duration,
    longest_unwatched: Duration,
    /// A `hello` spoke a newer probe protocol than this build: what it sends may mean something else, so none of
    /// it is taken.
    unsupported_protocol: Option<u32>,
}

/// What the runner keeps of one process of the tree.
#[derive(Default)]
struct ProcessSeen {
    /// The highest high-water mark it showed, and the one the last poll read, under which program name.
    hwm_bytes: u64,
    last_hwm_bytes: u64,
    name: procfs::ProgramName,
    most_file_bytes: u64,
    /// A fall seen at the last poll, confirmed when the next poll finds the same program name: a read inside an
    /// exec can see the new address space under the old name.
    falling_from: Option<u64>,
}

/// How far a process's `VmHWM` can fall between two reads without a reset: the kernel shows the larger of its
/// recorded mark and the resident set now, and keeps the resident set in per-CPU counters read without summing, each
/// of three (file, anonymous, shared) off by up to its batch (`max(32, 2 x CPUs)` pages) on every CPU. Measured: a
/// `hook-storm` case's mark fell by up to 0.32 MiB between polls, many times, on 2 CPUs (bound 768 KiB here); a reset
/// after holding 200 MiB falls by nearly all of it. At least 4 MiB.
fn hwm_jitter_bytes() -> u64 {
    static JITTER: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *JITTER.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) }.max(1) as u64;
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
        (3 * 32u64.max(2 * cpus) * cpus * page).max(4 * 1024 * 1024)
    })
}

/// Processes whose figures a run keeps (a fork storm's are many; beyond this, new ones are not followed).
const MAX_KNOWN_PROCESSES: usize = 100_000;

impl State {
    /// Follows each process's high-water mark: one that fell while its program name stayed the same (read in the
    /// same `status` as the mark) was reset (`echo 5 > /proc/self/clear_refs` resets `VmHWM` and `ru_maxrss` alike);
    /// an exec starts a new address space with its own mark (the old one kept by `ru_maxrss`) and a new name.
    fn follow_process(&mut self, process: &crate::process_tree::ProcessMemory) {
        let known = self.processes.len() < MAX_KNOWN_PROCESSES;
        let seen = match self.processes.entry(process.pid) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) if known => {
                entry.insert(ProcessSeen {
                    last_hwm_bytes: process.hwm_bytes,
                    name: process.name,
                    ..ProcessSeen::default()
                })
            }
            std::collections::hash_map::Entry::Vacant(_) => return,
        };
        let same_program = process.name == seen.name;
        if let Some(from) = seen.falling_from.take()
            && same_program
            && self.hwm_resets.len() < MAX_STRAY_LINES
        {
            self.hwm_resets.push(format!(
                "{} ({}) from {} to {}",
                process.pid,
                procfs::command_of(process.pid).unwrap_or_else(|| "?".into()),
                schema::units::format_bytes(from as f64),
                schema::units::format_bytes(seen.last_hwm_bytes as f64)
            ));
        }
        if process.hwm_bytes + hwm_jitter_bytes() < seen.last_hwm_bytes && same_program {
            seen.falling_from = Some(seen.last_hwm_bytes);
        }
        seen.last_hwm_bytes = process.hwm_bytes;
        seen.name = process.name;
        seen.hwm_bytes = process.hwm_bytes.max(seen.hwm_bytes);
        seen.most_file_bytes = seen.most_file_bytes.max(process.file_bytes);
        if process.ignores_sigchld
            && !self.sigchld_ignorers.contains_key(&process.pid)
            && self.sigchld_ignorers.len() < MAX_STRAY_LINES
        {
            self.sigchld_ignorers.insert(
                process.pid,
                procfs::command_of(process.pid).unwrap_or_else(|| "?".into()),
            );
        }
    }

    /// True when a kernel high-water mark shows more than `limit` a container could not have reclaimed: a
    /// process's highest mark less the most file pages a poll saw in it (file pages are in the mark, and a
    /// container reclaims clean ones rather than kill).
    fn high_water_over(&self, limit: u64, reported: Option<u64>) -> bool {
        let program_file = self
            .pid
            .and_then(|pid| self.processes.get(&pid))
            .map_or(0, |p| p.most_file_bytes);
        reported.is_some_and(|peak| peak.saturating_sub(program_file) > limit)
            || self
                .processes
                .values()
                .any(|p| p.hwm_bytes.saturating_sub(p.most_file_bytes) > limit)
    }

    fn take_tree(&mut self, tree: &crate::process_tree::TreeMemory, now_ms: f64) {
        if let Some(total) = tree.pss_bytes {
            push_bounded(
                &mut self.rss,
                Sample {
                    t_ms: now_ms,
                    rss_bytes: Some(total),
                    heap_bytes: None,
                },
            );
            self.tree.peak_pss_bytes = self.tree.peak_pss_bytes.max(Some(total));
        }
        self.tree.most_processes = self.tree.most_processes.max(tree.processes.len() as u32);
        self.peak_charged_bytes = self.peak_charged_bytes.max(tree.charged_bytes);
        self.peak_file_bytes = self.peak_file_bytes.max(tree.file_bytes);
        for process in &tree.processes {
            self.belonging.note(process.pid);
            self.follow_process(process);
            if Some(process.pid) == self.pid {
                self.program_hwm = self.program_hwm.max(Some(process.hwm_bytes));
            }
            self.note_process_peak(process.pid, process.hwm_bytes, true);
        }
    }

    /// A descendant still running when the program exited (the first [`MAX_STRAY_LINES`] named, all counted), unless
    /// the runner was killing the tree.
    fn left_running(&mut self, left: LeftRunning) {
        if self.killing {
            return;
        }
        self.left_running_count += 1;
        if self.tree.left_running.len() < MAX_STRAY_LINES {
            self.tree.left_running.push(left);
        }
    }

    fn note_process_peak(&mut self, pid: u32, peak_rss_bytes: u64, alive: bool) {
        if let Some(seen) = self.processes.get_mut(&pid) {
            seen.hwm_bytes = seen.hwm_bytes.max(peak_rss_bytes);
        } else if self.processes.len() < MAX_KNOWN_PROCESSES {
            self.processes.insert(
                pid,
                ProcessSeen {
                    hwm_bytes: peak_rss_bytes,
                    ..ProcessSeen::default()
                },
            );
        }
        let largest = &mut self.tree.largest_process;
        match largest {
            Some(known) if known.pid == pid => {
                known.peak_rss_bytes = known.peak_rss_bytes.max(peak_rss_bytes);
                // Read again while it lives: first seen between fork and exec, it still bore its parent's command
                // line (the launcher's, in 2 runs of 8). Only a command line replaces it: a process already exiting
                // has none left, and its bare `comm` name would replace the one read while it ran.
                if alive && let Some(command) = procfs::command_line_of(pid) {
                    known.command = Some(command);
                }
            }
            Some(known) if known.peak_rss_bytes >= peak_rss_bytes => {}
            _ => {
                *largest = Some(ProcessPeak {
                    pid,
                    command: if alive { procfs::command_of(pid) } else { None },
                    peak_rss_bytes,
                })
            }
        }
    }

    fn take(&mut self, event: Event, t_ms: &impl Fn(u64) -> f64) {
        match event {
            Event::ControlClosed => self.control_closed = true,
            Event::Stray(line) => {
                self.stray_count += 1;
                if self.stray.len() < MAX_STRAY_LINES {
                    self.stray.push(line);
                }
            }
            Event::Launcher(line) => match line {
                LauncherLine::Launched { pid, mono_ns } => {
                    self.pid = Some(pid);
                    // The launcher made the program a process group of its own.
                    self.belonging.note(pid);
                    self.belonging.note_group(pid);
                    self.launched_ns = Some(mono_ns);
                }
                LauncherLine::Exited {
                    code,
                    signal,
                    maxrss_bytes,
                    mono_ns,
                } => {
                    if let Some(pid) = self.pid {
                        self.note_process_peak(pid, maxrss_bytes, false);
                    }
                    self.exited = Some(Exited {
                        code,
                        signal,
                        maxrss_bytes,
                        mono_ns,
                    });
                }
                LauncherLine::LeftRunning { pid, command } => {
                    self.left_running(LeftRunning { pid, command })
                }
                LauncherLine::Reaped { pid, maxrss_bytes } => {
                    self.note_process_peak(pid, maxrss_bytes, false)
                }
                LauncherLine::LaunchFailed { message } => self.launch_failed = Some(message),
            },
            Event::Probe(ChildLine::Hello { protocol, .. })
                if protocol > meter::wire::PROTOCOL_VERSION =>
            {
                // What it sent may mean something else: none of its lines are taken, those before this one too.
                self.unsupported_protocol = Some(protocol);
                self.heap.clear();
                self.phases.clear();
                self.metrics.clear();
                self.final_figures = None;
                self.earlier_images = None;
                self.unmeasured.clear();
                self.unmeasured_count = 0;
            }
            Event::Probe(_) if self.unsupported_protocol.is_some() => {}
            Event::Probe(line) => match line {
                ChildLine::Hello { .. } => {
                    // A new image of the process (it exec'd): the earlier one's final figures are kept and folded.
                    self.images += 1;
                    if let Some(earlier) = self.final_figures.take() {
                        self.earlier_images = Some(match self.earlier_images.take() {
                            Some(before) => before.then(&earlier),
                            None => earlier,
                        });
                    }
                }
                ChildLine::Metric { name, value }
                    if name.starts_with(meter::wire::UNMEASURED_METRIC) =>
                {
                    // One line per image of that process (it names itself before an exec too): its highest.
                    if let Ok(pid) = name[meter::wire::UNMEASURED_METRIC.len()..].parse::<u32>() {
                        if !self.unmeasured.contains_key(&pid) {
                            self.unmeasured_count += 1;
                        }
                        if self.unmeasured.len() < MAX_STRAY_LINES
                            || self.unmeasured.contains_key(&pid)
                        {
                            let peak = self.unmeasured.entry(pid).or_default();
                            *peak = (*peak).max(value.as_u64());
                        }
                    }
                }
                ChildLine::Heap {
                    mono_ns,
                    heap_bytes,
                } => push_bounded(
                    &mut self.heap,
                    Sample {
                        t_ms: t_ms(mono_ns),
                        rss_bytes: None,
                        heap_bytes: Some(heap_bytes),
                    },
                ),
                ChildLine::Phase {
                    name,
                    mono_ns,
                    heap_bytes,
                } => {
                    if self.phases.len() < MAX_PHASES {
                        self.phases.push(Phase {
                            name: cut_name(name),
                            t_ms: t_ms(mono_ns),
                            heap_bytes,
                        });
                    } else {
                        self.phases_dropped += 1;
                    }
                }
                ChildLine::Metric { name, value } => {
                    if self.metrics.len() < MAX_METRICS || self.metrics.contains_key(&name) {
                        self.metrics.insert(name, value);
                    }
                }
                ChildLine::Final(figures) => self.final_figures = Some(figures),
            },
        }
    }

    /// The final figures over every image of the process: the earlier images' folded with the last one's (none when
    /// the last image never reported). A program's image that exec'd without a final report (through a call the
    /// preload library does not see) still has its heap samples: the peak is at least the highest of them.
    fn fold_images(&mut self, launch: &Launch) {
        self.final_figures = match (self.earlier_images.take(), self.final_figures.take()) {
            (Some(earlier), Some(last)) => Some(earlier.then(&last)),
            (None, last) => last,
            (Some(_), None) => None,
        };
        if self.images > 1 && launch.probe == ProbeAccess::Program {
            let highest_sample = self.heap.iter().filter_map(|s| s.heap_bytes).max();
            if let Some(figures) = &mut self.final_figures {
                figures.peak_heap_bytes = figures.peak_heap_bytes.max(highest_sample);
            }
        }
    }

    /// What the run measured: the state's figures, judged by [`verdict`]'s tables.
    fn into_measured(
        mut self,
        launch: &Launch,
        launcher_status: std::process::ExitStatus,
        wall_ms: f64,
        kill: Option<Kill>,
        stderr_tail: String,
    ) -> Measured {
        self.fold_images(launch);
        let (code, signal, maxrss) = match &self.exited {
            Some(exited) => (exited.code, exited.signal, Some(exited.maxrss_bytes)),
            None => (launcher_status.code(), launcher_status.signal(), None),
        };
        let is_case = launch.probe == ProbeAccess::MemproofCase;
        let peak_rss_bytes = verdict::peak_source(
            is_case,
            self.final_figures.as_ref().and_then(|f| f.vm_hwm_bytes),
            self.program_hwm,
            maxrss,
            self.tree.largest_process.as_ref().map(|p| p.peak_rss_bytes),
        )
        .bytes();
        let sampled_peak_rss_bytes = self.tree.peak_pss_bytes;
        let over_limit = launch
            .limit_bytes
            .is_some_and(|limit| self.high_water_over(limit, peak_rss_bytes));
        // Only a memproof case's own report can fail it; a program given the probe cannot change its outcome.
        let case_error = self
            .final_figures
            .as_ref()
            .and_then(|f| f.error.as_deref())
            .filter(|_| is_case);
        let reported = self.final_figures.is_some() || !is_case;
        let outcome = verdict::outcome(kill, over_limit, code, case_error.is_some(), reported);
        let left_note =
            verdict::left_running_note(&self.tree.left_running, self.left_running_count);
        let ending = verdict::Ending {
            kill,
            code,
            signal,
            timeout: launch.timeout,
            limit_bytes: launch.limit_bytes,
            peak_rss_bytes,
            peak_charged_bytes: self.peak_charged_bytes,
            peak_file_bytes: self.peak_file_bytes,
            launch_failed: self.launch_failed.as_deref(),
            case_error,
            launcher_lost: self.exited.is_none() && self.launch_failed.is_none(),
            stderr_tail: &stderr_tail,
        };
        let headline = verdict::headline(outcome, &ending, left_note.as_ref());
        let lower_bound = verdict::lower_bound_reasons(&verdict::Blind {
            hwm_resets: &self.hwm_resets,
            exit_records_unavailable: self.exit_records_unavailable.as_deref(),
            exit_records_lost: self.exit_records_lost,
            sigchld_ignorers: &self.sigchld_ignorers,
            never_polled: self.tree.most_processes == 0
                && self.exited.is_some()
                && launch.limit_bytes.is_some(),
            interval: launch.interval,
        });
        let notes = verdict::notes(
            outcome,
            left_note,
            &verdict::Remarks {
                phases_dropped: self.phases_dropped,
                launcher_killed: self.launcher_killed,
                launcher_stops: self.launcher_stops,
                lower_bound: &lower_bound,
                left_behind: &self.left_behind,
                unmeasured: &self.unmeasured,
                unmeasured_count: self.unmeasured_count,
                unwatched: self.unwatched,
                longest_unwatched: self.longest_unwatched,
            },
        );
        let message = verdict::message(headline, &notes);
        let limit = verdict::limit_report(
            launch.limit_bytes,
            launch.interval,
            peak_rss_bytes,
            self.tree.peak_pss_bytes,
            kill == Some(Kill::Limit),
        );
        let mut timeline = merge_timeline(self.rss, self.heap);
        thin_timeline(&mut timeline, MAX_TIMELINE_POINTS);
        let mut phases = self.phases;
        if let Some(kill_t_ms) = self.kill_t_ms {
            phases.push(Phase {
                name: "oom-kill".to_string(),
                t_ms: kill_t_ms,
                heap_bytes: None,
            });
        }
        let stray_lines =
            verdict::stray_lines(self.stray, self.stray_count, self.unsupported_protocol);
        Measured {
            outcome,
            exit: Exit {
                code,
                signal,
                message,
            },
            wall_ms,
            peak_rss_bytes,
            maxrss_bytes: maxrss,
            sampled_peak_rss_bytes,
            timeline,
            phases,
            metrics: self.metrics,
            final_figures: self.final_figures,
            limit,
            tree: self.tree,
            stderr_tail,
            stdout_file: None,
            stderr_file: None,
            stray_lines,
            left_running_count: self.left_running_count,
            unwatched_ms: self.unwatched.as_secs_f64() * 1e3,
            peak_charged_bytes: self.peak_charged_bytes,
            peak_file_bytes: self.peak_file_bytes,
            lower_bound,
            left_behind: self.left_behind,
        }
    }
}

/// A phase name of at most [`MAX_PHASE_NAME`] bytes: a longer one is cut at a character boundary and marked.
fn cut_name(mut name: String) -> String {
    if name.len() > MAX_PHASE_NAME {
        let mut end = MAX_PHASE_NAME;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
        name.push('…');
    }
    name
}

/// The longest timeout a run takes: 100 years, far from where the monotonic clock would overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Checks a timeout is one the runner can keep: at most [`MAX_TIMEOUT`].
pub fn check_timeout(timeout: Duration) -> anyhow::Result<()> {
    if timeout > MAX_TIMEOUT {
        anyhow::bail!(
            "a timeout of {} s is too long: expected at most 100 years ({} s)",
            timeout.as_secs(),
            MAX_TIMEOUT.as_secs()
        );
    }
    Ok(())
}

/// Appends a sample, thinning the list (each bucket's highest kept) when it reaches [`MAX_HELD_SAMPLES`].
fn push_bounded(samples: &mut Vec<Sample>, sample: Sample) {
    samples.push(sample);
    if samples.len() >= MAX_HELD_SAMPLES {
        thin_timeline(samples, MAX_HELD_SAMPLES / 2);
    }
}

/// One time-ordered list of RSS samples (parent) and heap samples (child).
fn merge_timeline(rss: Vec<Sample>, heap: Vec<Sample>) -> Vec<Sample> {
    let mut all: Vec<Sample> = rss.into_iter().chain(heap).collect();
    all.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    all
}

/// Thins a timeline to at most `max_points`, keeping in each time bucket the highest RSS and the highest heap seen,
/// so that no peak is thinned away.
pub fn thin_timeline(timeline: &mut Vec<Sample>, max_points: usize) {
    if timeline.len() <= max_points || max_points < 2 {
        return;
    }
    let buckets = max_points / 2;
    let start = timeline.first().map_or(0.0, |s| s.t_ms);
    let end = timeline.last().map_or(0.0, |s| s.t_ms);
    let width = ((end - start) / buckets as f64).max(f64::MIN_POSITIVE);
    let mut thinned: Vec<Sample> = Vec::with_capacity(max_points);
    let mut index = 0;
    while index < timeline.len() {
        let bucket_of = |t_ms: f64| ((t_ms - start) / width).floor().min((buckets - 1) as f64);
        let bucket = bucket_of(timeline[index].t_ms);
        let mut best_rss: Option<&Sample> = None;
        let mut best_heap: Option<&Sample> = None;
        while index < timeline.len() && bucket_of(timeline[index].t_ms) == bucket {
            let sample = &timeline[index];
            if sample.rss_bytes.is_some() && best_rss.is_none_or(|b| sample.rss_bytes > b.rss_bytes)
            {
                best_rss = Some(sample);
            }
            if sample.heap_bytes.is_some()
                && best_heap.is_none_or(|b| sample.heap_bytes > b.heap_bytes)
            {
                best_heap = Some(sample);
            }
            index += 1;
        }
        let mut kept: Vec<Sample> = best_rss.into_iter().chain(best_heap).cloned().collect();
        kept.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
        thinned.extend(kept);
    }
    *timeline = thinned;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output_capture::show_tail;

    fn rss(t_ms: f64, bytes: u64) -> Sample {
        Sample {
            t_ms,
            rss_bytes: Some(bytes),
            heap_bytes: None,
        }
    }

    fn heap(t_ms: f64, bytes: u64) -> Sample {
        Sample {
            t_ms,
            rss_bytes: None,
            heap_bytes: Some(bytes),
        }
    }

    #[test]
    fn thinning_keeps_every_bucket_peak() {
        let mut timeline: Vec<Sample> = (0..10_000)
            .map(|i| {
                if i % 2 == 0 {
                    rss(i as f64, i)
                } else {
                    heap(i as f64, 1)
                }
            })
            .collect();
        timeline[5001] = heap(5001.0, 1_000_000);
        thin_timeline(&mut timeline, 100);
        assert!(timeline.len() <= 100, "{} points", timeline.len());
        assert!(
            timeline.iter().any(|s| s.heap_bytes == Some(1_000_000)),
            "the heap spike survives thinning"
        );
        assert!(
            timeline.iter().any(|s| s.rss_bytes == Some(9998)),
            "the RSS peak survives thinning"
        );
        assert!(timeline.windows(2).all(|w| w[0].t_ms <= w[1].t_ms));
    }

    #[test]
    fn merged_timelines_are_in_time_order() {
        let merged = merge_timeline(
            vec![rss(1.0, 1), rss(3.0, 3)],
            vec![heap(2.0, 2), heap(0.5, 0)],
        );
        let times: Vec<f64> = merged.iter().map(|s| s.t_ms).collect();
        assert_eq!(times, vec![0.5, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn an_empty_stderr_says_so() {
        assert_eq!(show_tail(""), "<stderr is empty>");
        assert_eq!(
            show_tail("boom\n"),
            "--------------------\nboom\n--------------------"
        );
    }
}
