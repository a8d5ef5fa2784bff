//! `memproof-launch PROGRAM [ARGS...]`: starts a program, waits for it, and reports its kernel high-water mark.
//!
//! Why a launcher: `wait4`'s `ru_maxrss` is the truest peak RSS there is, but exec carries the high-water mark of
//! the process that forked over into the new program, so a large parent inflates it (measured here: a 500 MB parent
//! saw 512 MB for a 10 MB child). This process is a few MB, so the figure it reports is the program's own.
//!
//! It tells the runner, on the probe pipe (`MEMPROOF_PROBE_FD`), the program's pid as soon as it runs, so the runner
//! can sample and, if need be, kill it; and once it ends, how it ended and its `ru_maxrss`. The program inherits the
//! pipe too: a memproof case writes its own lines on it.

use harness::probe::PROBE_FD_ENV;
use harness::wire::ChildLine;
use std::io::Write as _;
use std::os::fd::FromRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let Some(fd) = std::env::var(PROBE_FD_ENV)
        .ok()
        .and_then(|fd| fd.parse::<i32>().ok())
    else {
        eprintln!(
            "memproof-launch: {PROBE_FD_ENV} is not set: this program is started by memproof's runner"
        );
        return ExitCode::from(2);
    };
    // SAFETY: the runner opened this descriptor for us; nothing else in this process uses it.
    let mut probe = std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    let mut send = |line: &ChildLine| {
        let mut text = serde_json::to_vec(line).expect("launcher lines serialise");
        text.push(b'\n');
        let _ = probe.write_all(&text);
    };
    let Some((program, rest)) = args.split_first() else {
        send(&ChildLine::LaunchFailed {
            message: "no command given".into(),
        });
        return ExitCode::from(2);
    };
    // The program gets its own process group, so the runner can kill it together with anything it starts.
    let child = match Command::new(program).args(rest).process_group(0).spawn() {
        Ok(child) => child,
        Err(error) => {
            send(&ChildLine::LaunchFailed {
                message: format!("cannot run {}: {error}", program.to_string_lossy()),
            });
            return ExitCode::from(127);
        }
    };
    let pid = child.id();
    send(&ChildLine::Launched { pid });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our child; status and usage are valid out-pointers.
        let waited = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if waited == pid as libc::pid_t {
            break;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            send(&ChildLine::LaunchFailed {
                message: format!("wait4 failed: {}", std::io::Error::last_os_error()),
            });
            return ExitCode::from(2);
        }
    }
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    // Linux reports ru_maxrss in KiB.
    send(&ChildLine::Exited {
        code,
        signal,
        maxrss_bytes: usage.ru_maxrss as u64 * 1024,
    });
    match (code, signal) {
        (Some(code), _) => ExitCode::from(code as u8),
        (_, Some(signal)) => ExitCode::from(128u8.wrapping_add(signal as u8)),
        _ => ExitCode::from(1),
    }
}
