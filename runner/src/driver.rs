//! The load side of a command scenario: the spec's `[driver]`, a program of the user's started beside the measured
//! technique, outside the measurement, in the same work directory.
//!
//! A driver that cannot do its work must end its case at once, in its own words: one that fails (a wrong script
//! path, a refused connection) stops the technique it drives, and its case fails with the tail of the driver's
//! stderr; one that finishes while the technique runs on gives the technique [`TECHNIQUE_GRACE`] to exit, then
//! stops it. Neither waits for the case's timeout. Everything the driver wrote is kept in the case's directory
//! (`driver.stdout`, `driver.stderr`); what it prints on stdout, one JSON object, joins the case's metrics.

use crate::output_capture::Capture;
use anyhow::Context as _;
use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a technique may run on after its driver finished its work, before it is stopped.
pub const TECHNIQUE_GRACE: Duration = Duration::from_secs(10);
/// How long a driver may run on after the technique it drives has ended, before it is killed.
pub const DRIVER_GRACE: Duration = Duration::from_secs(10);
/// The most of a driver's stdout read back as its figures.
const FIGURES_BYTES: u64 = 1024 * 1024;

/// What the driver's side tells the runner: set when the technique must be stopped, with the reason.
#[derive(Debug, Default)]
pub struct StopRequest {
    stop: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl StopRequest {
    /// Asks for the technique to be stopped, for `reason` (the first reason given is kept).
    pub fn request(&self, reason: String) {
        let mut kept = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if kept.is_none() {
            *kept = Some(reason);
        }
        self.stop.store(true, Ordering::Release);
    }

    /// Whether a stop was asked for: the runner's watch loop reads it every turn.
    pub fn requested(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Why the stop was asked for.
    pub fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A running driver.
pub struct Driver {
    pid: u32,
    waiter: std::thread::JoinHandle<Option<std::process::ExitStatus>>,
    technique_ended: Arc<AtomicBool>,
    capture: Capture,
    shown: String,
}

impl Driver {
    /// Starts the driver (its own process group, no probe channel, output to `<output_stem>.stdout` and
    /// `.stderr`) and a thread that watches it: when it exits while the technique runs, `stop` is asked.
    pub fn start(
        command: &[String],
        env: &[(OsString, OsString)],
        dir: &Path,
        output_stem: &Path,
        stop: Arc<StopRequest>,
    ) -> anyhow::Result<Driver> {
        use std::os::unix::process::CommandExt as _;
        let shown = command.join(" ");
        let capture = Capture::open(Some(output_stem))?;
        let mut child = std::process::Command::new(&command[0])
            .args(&command[1..])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env_remove(meter::probe::PROBE_FD_ENV)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(capture.stdout.try_clone()?)
            .stderr(capture.stderr.try_clone()?)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start the driver {shown}"))?;
        let pid = child.id();
        let technique_ended = Arc::new(AtomicBool::new(false));
        let ended = Arc::clone(&technique_ended);
        let waiter = std::thread::spawn(move || {
            let status = child.wait().ok();
            if ended.load(Ordering::Acquire) {
                return status;
            }
            match status {
                Some(status) if status.success() => {
                    // Its work is done: the technique should exit on its own now.
                    let until = Instant::now() + TECHNIQUE_GRACE;
                    while Instant::now() < until {
                        if ended.load(Ordering::Acquire) {
                            return Some(status);
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    stop.request(format!(
                        "the technique was still running {:.0} s after its driver finished, stopped",
                        TECHNIQUE_GRACE.as_secs_f64()
                    ));
                }
                Some(status) => stop.request(format!("its driver failed ({status})")),
                None => stop.request("its driver could not be waited for".into()),
            }
            status
        });
        Ok(Driver {
            pid,
            waiter,
            technique_ended,
            capture,
            shown,
        })
    }

    /// After the technique ended: waits for the driver (killing it, with anything it started, after `grace`) and
    /// returns the figures it printed, or why there are none, quoting the tail of its stderr.
    pub fn finish(
        self,
        grace: Duration,
    ) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        let Driver {
            pid,
            waiter,
            technique_ended,
            mut capture,
            shown,
        } = self;
        technique_ended.store(true, Ordering::Release);
        let deadline = Instant::now() + grace;
        let mut killed = false;
        while !waiter.is_finished() {
            if Instant::now() >= deadline {
                // SAFETY: kill(2) on the driver's own process group.
                unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
                killed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let status = waiter.join().ok().flatten();
        // Anything the driver left behind in its group goes with it.
        // SAFETY: kill(2) on the driver's own process group; at worst it is gone (ESRCH).
        unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
        let stderr = capture.stderr_tail();
        let files = kept_files(&capture);
        let failed = |how: String| {
            format!(
                "the driver {shown} {how}{files}\n{}",
                crate::output_capture::show_tail(&stderr)
            )
        };
        if killed {
            return Err(failed(format!(
                "was still running {:.0} s after the technique ended, killed",
                grace.as_secs_f64()
            )));
        }
        match status {
            Some(status) if status.success() => {}
            Some(status) => return Err(failed(format!("failed ({status})"))),
            None => return Err(failed("could not be waited for".into())),
        }
        let mut stdout = Vec::new();
        let read = capture.stdout_path.as_ref().map(|path| {
            std::fs::File::open(path).and_then(|f| f.take(FIGURES_BYTES).read_to_end(&mut stdout))
        });
        match (read, serde_json::from_slice::<serde_json::Value>(&stdout)) {
            (Some(Ok(_)), Ok(serde_json::Value::Object(figures))) => Ok(figures),
            _ => Err(failed(
                "printed no figures: expected one JSON object on stdout".into(),
            )),
        }
    }
}

/// Where the driver's whole output is, for a failure message: `(all of its output in …)`.
fn kept_files(capture: &Capture) -> String {
    let (stdout, stderr) = capture.keep_non_empty();
    let kept: Vec<String> = [stdout, stderr]
        .into_iter()
        .flatten()
        .map(|path: PathBuf| path.display().to_string())
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!(" (all of its output in {})", kept.join(" and "))
    }
}
