//! `memproof-launch PROGRAM [ARGS...]`: starts a program, waits for it, kills and reaps whatever it left running,
//! and reports the kernel's figures for all of it.
//!
//! Why a launcher: `wait4`'s `ru_maxrss` is the truest peak RSS there is, but exec carries the high-water mark of
//! the process that forked over into the new program, so a large parent inflates it (measured here: a 500 MB parent
//! saw 512 MB for a 10 MB child). This process is a few MB, so the figure it reports is the program's own.
//!
//! It talks to the runner on its **control pipe** (`MEMPROOF_LAUNCH_FD`), which it marks close-on-exec first thing:
//! the program never holds it, so no program can forge what is said there. It says the program's pid and spawn time
//! as soon as it runs; once it ends, how it ended, when, and its `ru_maxrss`; then each descendant still running
//! (killed, and named), and the `ru_maxrss` of every orphan it reaped. The probe pipe (`MEMPROOF_PROBE_FD`), when
//! the runner gives one, is passed on to the program untouched: it is the program's to write.
//!
//! The launcher is the tree's child subreaper, so an orphaned descendant is re-parented to it, not to init: nothing
//! the program started outlives the measurement. On SIGTERM, SIGINT or SIGHUP from the runner (which sets SIGTERM
//! as its parent-death signal), it kills the whole tree and reaps it before it exits; every other catchable signal,
//! and those three from anyone else (the program signalling `$PPID`), is caught and ignored. What it cannot catch,
//! SIGKILL and SIGSTOP, the runner covers: it is the subreaper above the launcher and kills the tree itself, from its
//! own view of `/proc` (see `runner`).

use meter::procfs;
use meter::wire::LauncherLine;
use runner::process_tree;
use std::io::Write as _;
use std::os::fd::FromRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The environment variable naming the control pipe's descriptor.
const LAUNCH_FD_ENV: &str = runner::LAUNCH_FD_ENV;

static STOP: AtomicBool = AtomicBool::new(false);
/// The runner's pid, read before anything can re-parent this process: only it (or the kernel, whose parent-death
/// signal names the dying runner) may stop the launcher.
static RUNNER: AtomicI32 = AtomicI32::new(0);

/// Every catchable signal lands here, so none of them can end the launcher and orphan the tree under it
/// (`kill -USR1 $PPID` from the program would, with the default action). SIGTERM, SIGINT and SIGHUP from the
/// runner (or the kernel) mean "kill the tree"; from anyone else, and every other signal, they are ignored. A fault
/// the kernel raised (a real SIGSEGV, not one sent with kill) restores the default action, so it kills as it should.
extern "C" fn on_signal(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, sender) = unsafe { ((*info).si_code, (*info).si_pid()) };
    let sent = code <= 0;
    if !sent {
        if matches!(
            signal,
            libc::SIGSEGV
                | libc::SIGBUS
                | libc::SIGILL
                | libc::SIGFPE
                | libc::SIGTRAP
                | libc::SIGSYS
        ) {
            // SAFETY: signal(2) is async-signal-safe; the faulting instruction runs again and kills the launcher.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
        return;
    }
    let from_runner = sender == 0 || sender == RUNNER.load(Ordering::SeqCst);
    if from_runner && matches!(signal, libc::SIGTERM | libc::SIGINT | libc::SIGHUP) {
        STOP.store(true, Ordering::SeqCst);
    }
}

/// Installs [`on_signal`] for every catchable signal but SIGCHLD (whose default is to ignore it) and SIGCONT. The
/// stop signals go without `SA_RESTART`, so a blocked `wait4` returns `EINTR` and the tree gets killed. A handler, not
/// `SIG_IGN`: an ignored signal stays ignored across exec, and the program must start with the dispositions it
/// would have without memproof.
fn install_signal_handlers() {
    for signal in 1..libc::SIGRTMAX() {
        if matches!(
            signal,
            libc::SIGKILL | libc::SIGSTOP | libc::SIGCHLD | libc::SIGCONT
        ) {
            continue;
        }
        let stops = matches!(signal, libc::SIGTERM | libc::SIGINT | libc::SIGHUP);
        // SAFETY: a zeroed sigaction with a handler that only reads its siginfo, stores to atomics and calls
        // signal(2), all async-signal-safe. Signals glibc reserves (32, 33) refuse it, harmlessly.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | if stops { 0 } else { libc::SA_RESTART };
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let Some(fd) = std::env::var(LAUNCH_FD_ENV)
        .ok()
        .and_then(|fd| fd.parse::<i32>().ok())
    else {
        eprintln!(
            "memproof-launch: {LAUNCH_FD_ENV} is not set: this program is started by memproof's runner"
        );
        return ExitCode::from(2);
    };
    // SAFETY: fcntl on the descriptor the runner opened for us; close-on-exec keeps it from the program.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: the runner opened this descriptor for us; nothing else in this process uses it.
    let mut control = std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    let mut send = |line: &LauncherLine| {
        let mut text = serde_json::to_vec(line).expect("launcher lines serialise");
        text.push(b'\n');
        let _ = control.write_all(&text);
    };
    // SAFETY: getppid has no preconditions.
    RUNNER.store(unsafe { libc::getppid() }, Ordering::SeqCst);
    install_signal_handlers();
    // SAFETY: plain prctl calls on this process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let Some((program, rest)) = args.split_first() else {
        send(&LauncherLine::LaunchFailed {
            message: "no command given".into(),
        });
        return ExitCode::from(2);
    };
    let spawned_ns = meter::probe::monotonic_ns();
    // The program gets its own process group, so a terminal's Ctrl-C reaches memproof, which decides.
    let mut command = Command::new(program);
    command
        .args(rest)
        .env_remove(LAUNCH_FD_ENV)
        .process_group(0);
    // A library to preload into the program, set on its own exec: not through `env`, which would take a program
    // path holding `=` for an assignment, and not in this process, which it would load into too.
    if let Some(library) = std::env::var_os(runner::PROGRAM_PRELOAD_ENV) {
        command
            .env_remove(runner::PROGRAM_PRELOAD_ENV)
            .env("LD_PRELOAD", library);
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            send(&LauncherLine::LaunchFailed {
                message: format!("cannot run {}: {error}", program.to_string_lossy()),
            });
            return ExitCode::from(127);
        }
    };
    let pid = child.id();
    send(&LauncherLine::Launched {
        pid,
        mono_ns: spawned_ns,
    });
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        if STOP.load(Ordering::SeqCst) {
            process_tree::kill_descendants(std::process::id());
        }
        // SAFETY: pid is our child; status and usage are valid out-pointers.
        let waited = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if waited == pid as libc::pid_t {
            break;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            send(&LauncherLine::LaunchFailed {
                message: format!("wait4 failed: {}", std::io::Error::last_os_error()),
            });
            sweep(&mut send);
            return ExitCode::from(2);
        }
    }
    let exited_ns = meter::probe::monotonic_ns();
    let (code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else if libc::WIFSIGNALED(status) {
        (None, Some(libc::WTERMSIG(status)))
    } else {
        (None, None)
    };
    // Linux reports ru_maxrss in KiB.
    send(&LauncherLine::Exited {
        code,
        signal,
        maxrss_bytes: usage.ru_maxrss as u64 * 1024,
        mono_ns: exited_ns,
    });
    sweep(&mut send);
    match (code, signal) {
        (Some(code), _) => ExitCode::from(code as u8),
        (_, Some(signal)) => ExitCode::from(128u8.wrapping_add(signal as u8)),
        _ => ExitCode::from(1),
    }
}

/// Reaps every exited descendant, names and kills every living one, and repeats until none is left: a process
/// forked during a pass is re-parented here when its parent dies, and the next pass gets it.
fn sweep(send: &mut impl FnMut(&LauncherLine)) {
    let me = std::process::id();
    let mut named: Vec<u32> = Vec::new();
    loop {
        reap(send, libc::WNOHANG);
        let living = process_tree::descendants(me);
        if living.is_empty() {
            // Nothing left but, at most, zombies not yet re-parented: reap until wait4 says there are no children.
            if reap(send, 0) {
                return;
            }
            continue;
        }
        for &pid in &living {
            if named.contains(&pid) || process_tree::is_zombie(pid) {
                continue;
            }
            named.push(pid);
            send(&LauncherLine::LeftRunning {
                pid,
                command: procfs::command_of(pid).unwrap_or_else(|| "?".into()),
            });
        }
        for &pid in &living {
            // SAFETY: kill(2) on our own descendant.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        reap(send, 0);
    }
}

/// Reaps children (`flags` 0 blocks for one, `WNOHANG` takes those already exited), reporting each one's
/// `ru_maxrss`. True when there are no children left at all.
fn reap(send: &mut impl FnMut(&LauncherLine), flags: i32) -> bool {
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid out-pointers; -1 waits for any child.
        let pid = unsafe { libc::wait4(-1, &mut status, flags, &mut usage) };
        if pid > 0 {
            send(&LauncherLine::Reaped {
                pid: pid as u32,
                maxrss_bytes: usage.ru_maxrss as u64 * 1024,
            });
            if flags == 0 {
                return false;
            }
            continue;
        }
        let error = std::io::Error::last_os_error();
        if pid < 0 && error.kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return pid < 0 && error.raw_os_error() == Some(libc::ECHILD);
    }
}
