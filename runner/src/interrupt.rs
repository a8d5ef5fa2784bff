//! SIGINT and SIGTERM turned into a flag the runner polls, so that an interrupted run kills everything it started,
//! records the interrupted case as `interrupted`, keeps the cases that finished, and exits 130 or 143.
//!
//! Without it, Ctrl-C killed memproof at once and left the measured command running, orphaned, with no limit and
//! no timeout, and no results.json. The handler is `signal-hook`'s: it only stores the signal number in an atomic,
//! the one thing a signal handler may safely do.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

static RECEIVED: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// Catches SIGINT and SIGTERM from now on (idempotent). After this, the process no longer dies of them: whoever
/// installs it must check [`received`] and stop.
pub fn install() -> anyhow::Result<()> {
    let flag = RECEIVED.get_or_init(|| Arc::new(AtomicUsize::new(0)));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_usize(signal, Arc::clone(flag), signal as usize)
            .map_err(|error| anyhow::anyhow!("cannot catch signal {signal}: {error}"))?;
    }
    Ok(())
}

/// From now on, SIGINT or SIGTERM ends the process at once with 130 or 143 (`signal-hook`'s conditional
/// shutdown: `_exit`, the one way out a handler may take). For the work after a run whose results are written, such
/// as rendering the reports: an interrupt there must not wait for it to finish.
pub fn end_promptly() -> anyhow::Result<()> {
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(true));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(
            signal,
            i32::from(exit_status(signal)),
            Arc::clone(&armed),
        )
        .map_err(|error| anyhow::anyhow!("cannot catch signal {signal}: {error}"))?;
    }
    Ok(())
}

/// The signal received since [`install`], if any.
pub fn received() -> Option<i32> {
    let signal = RECEIVED.get()?.load(Ordering::SeqCst);
    (signal != 0).then_some(signal as i32)
}

/// The exit status of a process that stops on `signal`: 128 + its number (130 for SIGINT, 143 for SIGTERM).
pub fn exit_status(signal: i32) -> u8 {
    128u8.wrapping_add(signal as u8)
}

/// The signal's name for messages.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
