//! The parent's side of a case: start one process, watch it, and record how it went.
//!
//! The process is started through `memproof-launch` with the probe pipe as its fd 3. While it runs, the runner
//! polls its `/proc/PID/status` every interval for the resident set (the timeline) and the kernel's high-water mark,
//! kills it when it goes over its memory limit (as the kernel's OOM killer would) or past its timeout, and collects
//! whatever the process streamed: heap samples, phases, metrics, final figures. A process that is killed still
//! leaves everything it streamed up to the kill.
//!
//! Which figure is the peak RSS: the process's own `VmHWM` when it reported one as its last act (a memproof case),
//! otherwise `ru_maxrss` as the launcher got it from `wait4` (an external command; it covers the command's waited-for
//! children too, as `/usr/bin/time` does), otherwise the last high-water mark the runner read before the process
//! died. The polled samples never stand in for the peak: polling misses short spikes.

use crate::procfs;
use crate::results::{Exit, LimitReport, Outcome, Phase, Sample};
use crate::wire::{ChildLine, FinalFigures};
use anyhow::Context as _;
use std::collections::{BTreeMap, VecDeque};
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
/// How many of the last stderr lines a failure message quotes.
const STDERR_TAIL_LINES: usize = 20;

/// What to run and under which limits.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `memproof-launch` binary.
    pub launcher: PathBuf,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub current_dir: Option<PathBuf>,
    /// The memory limit, in bytes of resident set.
    pub limit_bytes: Option<u64>,
    pub timeout: Duration,
    /// How often the resident set is polled and the limit checked.
    pub interval: Duration,
    /// Pass the program's stdout and stderr through to ours (and keep the stderr tail) instead of capturing them.
    pub pass_output_through: bool,
}

/// Everything the runner learned about one process.
#[derive(Debug, Clone)]
pub struct Measured {
    pub outcome: Outcome,
    pub exit: Exit,
    pub wall_ms: f64,
    /// The peak resident set (see the module's doc for which figure it is).
    pub peak_rss_bytes: Option<u64>,
    /// `ru_maxrss` from the launcher's `wait4`.
    pub maxrss_bytes: Option<u64>,
    /// The highest `VmRSS` the polls saw.
    pub sampled_peak_rss_bytes: Option<u64>,
    pub timeline: Vec<Sample>,
    pub phases: Vec<Phase>,
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// The case's final report, when it made one.
    pub final_figures: Option<FinalFigures>,
    pub limit: Option<LimitReport>,
    /// The last lines the process wrote to stderr.
    pub stderr_tail: String,
    /// Lines on the probe pipe that were not protocol lines (kept, not dropped).
    pub stray_lines: Vec<String>,
}

/// What the runner reports while a process runs, for a live progress line.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub elapsed: Duration,
    pub rss_bytes: Option<u64>,
    pub heap_bytes: Option<u64>,
}

enum Event {
    Line(ChildLine, u64),
    Stray(String),
}

fn pipe() -> anyhow::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot create the probe pipe");
    }
    // SAFETY: pipe2 just opened both descriptors and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Keeps the last lines of a stream.
fn tail_lines(reader: impl std::io::Read, echo: bool) -> String {
    let mut lines: VecDeque<String> = VecDeque::new();
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if echo {
                    eprint!("{}", String::from_utf8_lossy(&line));
                }
                lines.push_back(String::from_utf8_lossy(&line).trim_end().to_string());
                if lines.len() > STDERR_TAIL_LINES {
                    lines.pop_front();
                }
            }
        }
    }
    Vec::from(lines).join("\n")
}

/// Sends `signal` to the process group the launcher put `pid` in, and to `pid` itself.
fn kill_group(pid: u32, signal: i32) {
    // SAFETY: plain kill(2) calls; a stale pid at worst gets ESRCH.
    unsafe {
        libc::kill(-(pid as libc::pid_t), signal);
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Runs one process to its end and measures it. Only an error of memproof's own (the launcher cannot be started)
/// is an `Err`; anything the process does is an outcome.
pub fn run(launch: &Launch, mut on_progress: impl FnMut(Progress)) -> anyhow::Result<Measured> {
    let (read_end, write_end) = pipe()?;
    let write_raw = write_end.as_raw_fd();
    let mut command = Command::new(&launch.launcher);
    command
        .arg(&launch.program)
        .args(&launch.args)
        .env(crate::probe::PROBE_FD_ENV, "3")
        .stdin(Stdio::null());
    for (key, value) in &launch.env {
        command.env(key, value);
    }
    if let Some(dir) = &launch.current_dir {
        command.current_dir(dir);
    }
    if launch.pass_output_through {
        command.stdout(Stdio::inherit()).stderr(Stdio::piped());
    } else {
        command.stdout(Stdio::null()).stderr(Stdio::piped());
    }
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            if write_raw == 3 {
                if libc::fcntl(3, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(write_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let started_ns = crate::probe::monotonic_ns();
    let mut launcher = command
        .spawn()
        .with_context(|| format!("cannot start the launcher {}", launch.launcher.display()))?;
    drop(write_end);

    let stderr = launcher.stderr.take().context("launcher stderr")?;
    let echo = launch.pass_output_through;
    let stderr_thread = std::thread::spawn(move || tail_lines(stderr, echo));

    let (sender, events) = mpsc::channel::<Event>();
    let reader_thread = std::thread::spawn(move || {
        let mut reader = BufReader::new(std::fs::File::from(read_end));
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let received_ns = crate::probe::monotonic_ns();
                    let event = match serde_json::from_str::<ChildLine>(line.trim_end()) {
                        Ok(parsed) => Event::Line(parsed, received_ns),
                        Err(_) => Event::Stray(line.trim_end().to_string()),
                    };
                    if sender.send(event).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let t_ms = |mono_ns: u64| mono_ns.saturating_sub(started_ns) as f64 / 1e6;
    let mut state = State::default();
    let mut status_buffer = Vec::with_capacity(2048);
    let mut next_poll = Instant::now();
    let mut timed_out = false;
    let exit_status = loop {
        // Take in whatever the process streamed until the next poll is due.
        loop {
            let wait = next_poll.saturating_duration_since(Instant::now());
            match events.recv_timeout(wait) {
                Ok(event) => state.take(event, &t_ms),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(wait);
                    break;
                }
            }
        }
        next_poll = (next_poll + launch.interval).max(Instant::now());
        if let Some(pid) = state.pid.filter(|_| state.exited.is_none())
            && let Some(memory) = procfs::memory_of(pid, &mut status_buffer)
        {
            let now_ms = started.elapsed().as_secs_f64() * 1e3;
            state.rss.push(Sample {
                t_ms: now_ms,
                rss_bytes: Some(memory.rss_bytes),
                heap_bytes: None,
            });
            state.last_hwm = state.last_hwm.max(Some(memory.hwm_bytes));
            if let Some(limit) = launch.limit_bytes
                && memory.rss_bytes > limit
                && !state.killed_by_watchdog
            {
                kill_group(pid, libc::SIGKILL);
                state.killed_by_watchdog = true;
                state.kill_t_ms = Some(now_ms);
            }
        }
        on_progress(Progress {
            elapsed: started.elapsed(),
            rss_bytes: state.rss.last().and_then(|s| s.rss_bytes),
            heap_bytes: state.heap.last().and_then(|s| s.heap_bytes),
        });
        if started.elapsed() > launch.timeout && !timed_out {
            timed_out = true;
            match state.pid {
                Some(pid) => kill_group(pid, libc::SIGKILL),
                None => {
                    let _ = launcher.kill();
                }
            }
        }
        if let Some(status) = launcher.try_wait()? {
            break status;
        }
    };
    let wall_ms = started.elapsed().as_secs_f64() * 1e3;
    // The launcher is gone; the pipe closes once the program (and anything it left running) has let go of it.
    let drain_until = Instant::now() + Duration::from_secs(2);
    while let Ok(event) = events.recv_timeout(drain_until.saturating_duration_since(Instant::now()))
    {
        state.take(event, &t_ms);
    }
    drop(events);
    if reader_thread.is_finished() {
        let _ = reader_thread.join();
    }
    let stderr_tail = stderr_thread.join().unwrap_or_default();

    Ok(state.into_measured(launch, exit_status, wall_ms, timed_out, stderr_tail))
}

#[derive(Default)]
struct State {
    pid: Option<u32>,
    exited: Option<(Option<i32>, Option<i32>, u64)>,
    launch_failed: Option<String>,
    rss: Vec<Sample>,
    heap: Vec<Sample>,
    phases: Vec<Phase>,
    metrics: BTreeMap<String, serde_json::Value>,
    final_figures: Option<FinalFigures>,
    last_hwm: Option<u64>,
    killed_by_watchdog: bool,
    kill_t_ms: Option<f64>,
    stray: Vec<String>,
}

impl State {
    fn take(&mut self, event: Event, t_ms: &impl Fn(u64) -> f64) {
        match event {
            Event::Stray(line) => self.stray.push(line),
            Event::Line(line, _received_ns) => match line {
                ChildLine::Launched { pid } => self.pid = Some(pid),
                ChildLine::Exited {
                    code,
                    signal,
                    maxrss_bytes,
                } => self.exited = Some((code, signal, maxrss_bytes)),
                ChildLine::LaunchFailed { message } => self.launch_failed = Some(message),
                ChildLine::Hello { .. } => {}
                ChildLine::Heap {
                    mono_ns,
                    heap_bytes,
                } => self.heap.push(Sample {
                    t_ms: t_ms(mono_ns),
                    rss_bytes: None,
                    heap_bytes: Some(heap_bytes),
                }),
                ChildLine::Phase {
                    name,
                    mono_ns,
                    heap_bytes,
                } => self.phases.push(Phase {
                    name,
                    t_ms: t_ms(mono_ns),
                    heap_bytes,
                }),
                ChildLine::Metric { name, value } => {
                    self.metrics.insert(name, value);
                }
                ChildLine::Final(figures) => self.final_figures = Some(figures),
            },
        }
    }

    fn into_measured(
        self,
        launch: &Launch,
        launcher_status: std::process::ExitStatus,
        wall_ms: f64,
        timed_out: bool,
        stderr_tail: String,
    ) -> Measured {
        let (code, signal, maxrss) = match self.exited {
            Some((code, signal, maxrss)) => (code, signal, Some(maxrss)),
            None => (launcher_status.code(), launcher_status.signal(), None),
        };
        let own_hwm = self.final_figures.as_ref().and_then(|f| f.vm_hwm_bytes);
        let is_case = self.final_figures.is_some() || !self.heap.is_empty();
        let peak_rss_bytes = if let Some(own) = own_hwm {
            Some(own)
        } else if !is_case {
            maxrss.or(self.last_hwm)
        } else {
            // A case that died before its last report: the last kernel high-water mark read before it died. Its
            // ru_maxrss could include a driver process it had waited for.
            self.last_hwm.or(maxrss)
        };
        let sampled_peak_rss_bytes = self.rss.iter().filter_map(|s| s.rss_bytes).max();
        let over_limit = launch
            .limit_bytes
            .is_some_and(|limit| peak_rss_bytes.is_some_and(|peak| peak > limit));
        let case_error = self.final_figures.as_ref().and_then(|f| f.error.clone());
        let outcome = if timed_out {
            Outcome::TimedOut
        } else if self.killed_by_watchdog || over_limit {
            Outcome::OomKilled
        } else if code == Some(0)
            && case_error.is_none()
            && (self.final_figures.is_some() || !is_case)
        {
            Outcome::Ok
        } else {
            Outcome::Failed
        };
        let message = match outcome {
            Outcome::Ok => None,
            Outcome::TimedOut => Some(format!(
                "still running after {:.1} s, killed",
                launch.timeout.as_secs_f64()
            )),
            Outcome::OomKilled => Some(format!(
                "went over its memory limit of {} (peak RSS {}){}",
                crate::units::format_bytes(launch.limit_bytes.unwrap_or(0) as f64),
                peak_rss_bytes.map_or("unknown".into(), |p| crate::units::format_bytes(p as f64)),
                if self.killed_by_watchdog {
                    ", killed by the watchdog"
                } else {
                    ""
                }
            )),
            Outcome::Failed => Some(
                self.launch_failed
                    .clone()
                    .or(case_error)
                    .map(|error| format!("{error}\n{}", show_tail(&stderr_tail)))
                    .unwrap_or_else(|| {
                        let how = match (code, signal) {
                            (_, Some(signal)) => format!("killed by signal {signal}"),
                            (Some(code), _) if code != 0 => format!("exited with status {code}"),
                            _ => "exited without reporting its final figures".to_string(),
                        };
                        format!("{how}\n{}", show_tail(&stderr_tail))
                    }),
            ),
        };
        let limit = launch.limit_bytes.map(|limit| LimitReport {
            mechanism: "watchdog".to_string(),
            poll_interval_ms: launch.interval.as_secs_f64() * 1e3,
            overshoot_bytes: peak_rss_bytes.map_or(0, |peak| peak.saturating_sub(limit)),
            killed_by_watchdog: self.killed_by_watchdog,
        });
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
            stderr_tail,
            stray_lines: self.stray,
        }
    }
}

/// A child's stderr between two divider lines, or `<stderr is empty>`.
pub fn show_tail(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        "<stderr is empty>".to_string()
    } else {
        let divider = "-".repeat(20);
        format!("{divider}\n{}\n{divider}", stderr.trim_end())
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
