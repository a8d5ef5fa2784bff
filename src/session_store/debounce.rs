//! The merged fix's debounced persist: a mutation marks the state dirty and opens a persist window (3 s by
//! default); every mutation inside the window rides on the one write at its end; `flush` (shutdown) writes at once
//! if anything is dirty; and whoever asked to be told when their change is on disk is told, by that write or by
//! the flush. In the seed every one of ~8,614 events paid a whole-state write of 22 MB; with the window, a storm of
//! hooks pays one write per 3 s.
//!
//! The window opens at the first mutation after a write and is **not** pushed back by later ones: a window that
//! restarted on every mutation would never close during a storm that never pauses, and a crash would then lose the
//! whole storm instead of at most one window. Time is passed in (`now`), never read here, so the tests drive the
//! window without sleeping.

use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The outcome a waiter receives: the number of the persist that made its change durable, or why it failed.
pub type PersistOutcome = Result<u64, String>;

/// A promise that the store's state, as it was when the waiter was taken, is on disk.
#[derive(Debug)]
pub struct PersistWaiter {
    receiver: oneshot::Receiver<PersistOutcome>,
}

impl PersistWaiter {
    /// A waiter that is already resolved (the change is already durable as far as the technique promises).
    pub fn resolved(outcome: PersistOutcome) -> PersistWaiter {
        let (sender, receiver) = oneshot::channel();
        let _ = sender.send(outcome);
        PersistWaiter { receiver }
    }

    /// The outcome if the waiter is resolved, `None` while the write is still pending.
    pub fn try_outcome(&mut self) -> Option<PersistOutcome> {
        match self.receiver.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(
                "the store was dropped before the change was persisted".to_string(),
            )),
        }
    }

    /// Waits for the outcome.
    pub async fn wait(self) -> PersistOutcome {
        self.receiver.await.unwrap_or_else(|_| {
            Err("the store was dropped before the change was persisted".to_string())
        })
    }
}

/// The dirty flag, the persist window and the pending waiters of a debounced store.
#[derive(Debug)]
pub struct DebouncedPersist {
    window: Duration,
    dirty: bool,
    deadline: Option<Instant>,
    waiters: Vec<oneshot::Sender<PersistOutcome>>,
}

impl DebouncedPersist {
    /// A clean state with no window open; `window` of zero persists at the first check after each mutation.
    pub fn new(window: Duration) -> DebouncedPersist {
        DebouncedPersist {
            window,
            dirty: false,
            deadline: None,
            waiters: Vec::new(),
        }
    }

    /// Records a mutation at `now`: the state is dirty, and a window opens unless one is already open.
    pub fn schedule(&mut self, now: Instant) {
        self.dirty = true;
        if self.deadline.is_none() {
            self.deadline = Some(now + self.window);
        }
    }

    /// A waiter resolved by the next write (or at once if nothing is dirty).
    pub fn waiter(&mut self, last_persist_number: u64) -> PersistWaiter {
        if !self.dirty {
            return PersistWaiter::resolved(Ok(last_persist_number));
        }
        let (sender, receiver) = oneshot::channel();
        self.waiters.push(sender);
        PersistWaiter { receiver }
    }

    /// When the open window closes, if one is open.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Whether a write is due at `now`: dirty, and the window has closed.
    pub fn is_due(&self, now: Instant) -> bool {
        self.dirty && self.deadline.is_some_and(|deadline| deadline <= now)
    }

    /// How many waiters are pending.
    pub fn n_pending_waiters(&self) -> usize {
        self.waiters.len()
    }

    /// Starts a write: clears the flag and the window, and hands over the waiters the write must resolve.
    pub fn begin_write(&mut self) -> Vec<oneshot::Sender<PersistOutcome>> {
        self.dirty = false;
        self.deadline = None;
        std::mem::take(&mut self.waiters)
    }

    /// Puts the state back to dirty after a failed write, so the next check tries again.
    pub fn write_failed(&mut self, now: Instant) {
        self.schedule(now);
    }
}

/// Resolves every waiter a write took with the write's outcome.
pub fn resolve_waiters(waiters: Vec<oneshot::Sender<PersistOutcome>>, outcome: &PersistOutcome) {
    for waiter in waiters {
        let _ = waiter.send(outcome.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_opens_at_the_first_mutation_and_is_not_pushed_back() {
        let start = Instant::now();
        let mut persist = DebouncedPersist::new(Duration::from_secs(3));
        persist.schedule(start);
        persist.schedule(start + Duration::from_secs(2));
        assert_eq!(persist.deadline(), Some(start + Duration::from_secs(3)));
        assert!(!persist.is_due(start + Duration::from_millis(2999)));
        assert!(persist.is_due(start + Duration::from_secs(3)));
    }

    #[test]
    fn a_clean_state_resolves_a_waiter_at_once() {
        let mut persist = DebouncedPersist::new(Duration::from_secs(3));
        assert_eq!(persist.waiter(4).try_outcome(), Some(Ok(4)));
    }
}
