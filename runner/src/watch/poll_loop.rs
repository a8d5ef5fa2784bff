//! The watch loop between a program's start and its launcher's exit, as a value: [`Watch`] holds what the loop
//! keeps from one turn to the next, and [`Watch::step`] is one turn.
//!
//! The loop's state was a handful of locals whose combinations meant different things: whether a kill was decided
//! and whether the program had exited decide what a turn does (count the time the runner did not run, poll, decide a
//! kill, kill again). Each combination is a [`Phase`] here, named, with its transitions, so that what a turn may do
//! in it can be read and tested apart from the process tree it acts on.

use super::{
    Event, INTERRUPT_CHECK, Kill, LAUNCHER_GRACE, Launch, PSS_TIME_SHARE_INVERSE, Progress, State,
    UNWATCHED_GAP, kill_tree, since_start_ms,
};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What one turn of the loop did, for the loop to know whether to turn again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Nothing ended: turn again.
    Continue,
    /// A kill was decided on this turn (and the tree's first kill sent). The loop must turn again: the tree is
    /// killed on every turn until the launcher exits, and the launcher too if it outlives its grace.
    KillDecided(Kill),
    /// The launcher closed its control pipe (it exited, having killed and reaped what the program left): the loop
    /// is over.
    TreeEnded,
}

/// A kill the runner decided, and when it first killed the tree (the launcher's grace runs from there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Killing {
    why: Kill,
    since: Instant,
}

/// Where the run is, which decides what a turn does: whether the program still runs (its launcher has not said it
/// exited) and whether a kill is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The program runs and no kill is decided: a pause of the runner counts as unwatched time, the tree is polled,
    /// and an interrupt, the timeout, a stop request or the limit can each decide a kill.
    Watching,
    /// The program exited and no kill is decided: its launcher kills and reaps what the program left. Nothing is
    /// polled; an interrupt, the timeout or a stop request can still decide a kill.
    Reaping,
    /// A kill is decided and the program has not exited: the tree is killed on every turn, and still polled (its
    /// timeline and peaks go on until it is gone).
    Killing(Killing),
    /// A kill is decided and the program exited: the tree is killed on every turn until the launcher exits.
    KillingAfterExit(Killing),
}

impl Phase {
    /// The phase once the launcher said the program exited.
    fn program_exited(self) -> Phase {
        match self {
            Phase::Watching | Phase::Reaping => Phase::Reaping,
            Phase::Killing(killing) | Phase::KillingAfterExit(killing) => {
                Phase::KillingAfterExit(killing)
            }
        }
    }

    /// The phase once a kill is decided; a phase already killing keeps its first kill.
    fn kill_decided(self, killing: Killing) -> Phase {
        match self {
            Phase::Watching => Phase::Killing(killing),
            Phase::Reaping => Phase::KillingAfterExit(killing),
            Phase::Killing(_) | Phase::KillingAfterExit(_) => self,
        }
    }

    /// The kill decided, if any.
    fn killing(self) -> Option<Killing> {
        match self {
            Phase::Watching | Phase::Reaping => None,
            Phase::Killing(killing) | Phase::KillingAfterExit(killing) => Some(killing),
        }
    }

    /// Whether the tree is polled: while the program runs, killed or not.
    fn polls(self) -> bool {
        matches!(self, Phase::Watching | Phase::Killing(_))
    }

    /// Whether a long pause of the runner counts as unwatched time: only while the limit was to be checked.
    fn counts_unwatched(self) -> bool {
        self == Phase::Watching
    }
}

/// The kill an interrupt, the timeout or a stop request decides, in that order of precedence.
fn kill_due(interrupt: Option<i32>, past_deadline: bool, stop_requested: bool) -> Option<Kill> {
    if let Some(signal) = interrupt {
        Some(Kill::Interrupt(signal))
    } else if past_deadline {
        Some(Kill::Timeout)
    } else if stop_requested {
        Some(Kill::Requested)
    } else {
        None
    }
}

/// Whether this poll reads the proportional set sizes: they cost a walk of every page table (19 ms for a 1 GiB
/// process on a loaded machine), so only while that stays within a tenth of the time, and at once after the runner
/// did not run.
fn pss_affordable(resumed: bool, pss_time: Duration, elapsed: Duration) -> bool {
    resumed || pss_time.as_secs_f64() * PSS_TIME_SHARE_INVERSE <= elapsed.as_secs_f64()
}

/// The watch loop's state from one turn to the next.
pub(super) struct Watch<'a> {
    launch: &'a Launch,
    stop: Option<&'a crate::driver::StopRequest>,
    launcher_pid: u32,
    /// When the launcher was spawned, on the runner's clock and on the monotonic clock the probe's times are in.
    started: Instant,
    started_ns: u64,
    deadline: Instant,
    next_poll: Instant,
    /// When the last turn began: a long gap since means the runner did not run.
    last_turn: Instant,
    /// The time spent reading proportional set sizes, held within a share of the elapsed time.
    pss_time: Duration,
    phase: Phase,
    /// The buffer every poll reads `/proc` files into.
    buffer: Vec<u8>,
    /// Everything the run learns of its tree, which outlives the loop.
    state: State,
}

impl<'a> Watch<'a> {
    /// The loop's state just after the launcher was spawned at `started` (`started_ns` on the monotonic clock).
    pub(super) fn new(
        launch: &'a Launch,
        stop: Option<&'a crate::driver::StopRequest>,
        launcher_pid: u32,
        started: Instant,
        started_ns: u64,
    ) -> Watch<'a> {
        Watch {
            launch,
            stop,
            launcher_pid,
            started,
            started_ns,
            deadline: started + launch.timeout,
            next_poll: Instant::now(),
            // From the spawn, not from now: a program that stops the runner before its first turn (while it waits
            // for the launcher's first line) must count as unwatched too, or the first poll after the resume
            // would look like any other.
            last_turn: started,
            pss_time: Duration::ZERO,
            phase: Phase::Watching,
            buffer: Vec::with_capacity(4096),
            state: State::default(),
        }
    }

    /// One turn: count a pause of the runner, decide a kill, poll the tree when a poll is due, kill the tree when a
    /// kill is decided, then wait for the next event (at most until the next poll, the next interrupt check or the
    /// deadline) and take it.
    pub(super) fn step(
        &mut self,
        events: &mpsc::Receiver<Event>,
        on_progress: &mut impl FnMut(Progress),
    ) -> Step {
        let now = Instant::now();
        let gap = now.duration_since(self.last_turn);
        self.last_turn = now;
        let mut resumed = false;
        let watching = self.phase.counts_unwatched();
        if gap >= UNWATCHED_GAP && watching {
            // The runner did not run (stopped, or starved): poll at once, proportional sizes included.
            self.state.unwatched += gap;
            self.state.longest_unwatched = self.state.longest_unwatched.max(gap);
            self.next_poll = now;
            resumed = true;
        }
        let mut decided = None;
        if self.phase.killing().is_none() {
            decided = kill_due(
                crate::interrupt::received(),
                now >= self.deadline,
                self.stop.is_some_and(|stop| stop.requested()),
            );
        }
        if now >= self.next_poll && self.phase.polls() {
            let over_limit_at = self.poll(resumed, on_progress);
            if let Some(t_ms) = over_limit_at
                && decided.is_none()
                && self.phase.killing().is_none()
            {
                decided = Some(Kill::Limit);
                self.state.kill_t_ms = Some(t_ms);
            }
        }
        if decided.is_some() || self.phase.killing().is_some() {
            self.kill(decided);
        }
        // A runner stopped within this turn, after the clock was read above (the program stopped it while it polled),
        // did not watch for as long as the turn took: counted too, and the next gap is measured from here.
        let busy = Instant::now().duration_since(now);
        if busy >= UNWATCHED_GAP && watching {
            self.state.unwatched += busy;
            self.state.longest_unwatched = self.state.longest_unwatched.max(busy);
            self.last_turn = Instant::now();
        }
        let mut wake = self.next_poll.min(Instant::now() + INTERRUPT_CHECK);
        if self.phase.killing().is_none() {
            wake = wake.min(self.deadline);
        }
        match events.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(event) => {
                let started_ns = self.started_ns;
                self.state
                    .take(event, &|mono_ns| since_start_ms(started_ns, mono_ns));
                if self.state.exited.is_some() {
                    self.phase = self.phase.program_exited();
                }
                if self.state.control_closed {
                    return Step::TreeEnded;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Step::TreeEnded,
        }
        decided.map_or(Step::Continue, Step::KillDecided)
    }

    /// Reads the tree once, takes what it shows, reports progress and continues a stopped launcher. Returns when
    /// (ms since the start) the poll found the tree over the limit.
    fn poll(&mut self, resumed: bool, on_progress: &mut impl FnMut(Progress)) -> Option<f64> {
        let launch = self.launch;
        let elapsed = self.started.elapsed();
        // Only the proportional set sizes can tell whether the limit was crossed: whenever the cheap sum of the
        // resident sets says it may have been, they are read at once.
        let pss_affordable = pss_affordable(resumed, self.pss_time, elapsed);
        let poll_started = Instant::now();
        let mut tree = crate::process_tree::memory_of_descendants(
            self.launcher_pid,
            &mut self.buffer,
            pss_affordable,
        );
        if !pss_affordable
            && launch
                .limit_bytes
                .is_some_and(|limit| tree.unreclaimable_rss_bytes > limit)
        {
            tree = crate::process_tree::memory_of_descendants(
                self.launcher_pid,
                &mut self.buffer,
                true,
            );
        }
        if let Some(charged) = &mut tree.charged_bytes {
            // System V segments the tree created and nobody attaches are in no process's memory.
            *charged += crate::shared_memory::segments()
                .iter()
                .filter(|s| s.attached == 0 && self.state.belonging.knows(s.creator))
                .map(|s| s.resident_bytes)
                .sum::<u64>();
        }
        if tree.pss_bytes.is_some() {
            self.pss_time += poll_started.elapsed();
            self.state.tree.pss_polls += 1;
        }
        self.state.tree.polls += 1;
        let now_ms = self.started.elapsed().as_secs_f64() * 1e3;
        let mut over_limit_at = None;
        if !tree.processes.is_empty() {
            self.state.take_tree(&tree, now_ms);
            if let Some(limit) = launch.limit_bytes
                && tree.charged_bytes.is_some_and(|total| total > limit)
            {
                over_limit_at = Some(now_ms);
            }
        }
        on_progress(Progress {
            elapsed: self.started.elapsed(),
            rss_bytes: self.state.rss.last().and_then(|s| s.rss_bytes),
            heap_bytes: self.state.heap.last().and_then(|s| s.heap_bytes),
        });
        self.next_poll = (self.next_poll + launch.interval).max(Instant::now());
        // The program may have stopped its launcher (`kill -STOP $PPID`): it could not reap or report.
        if meter::procfs::state_of(self.launcher_pid) == Some('T') {
            self.state.launcher_stops += 1;
            // SAFETY: kill(2) on the launcher, this process's child, not reaped yet.
            unsafe { libc::kill(self.launcher_pid as libc::pid_t, libc::SIGCONT) };
        }
        over_limit_at
    }

    /// Kills the tree, on the turn a kill is `decided` and on every turn after, until the launcher exits; the
    /// launcher too once it has outlived its grace.
    fn kill(&mut self, decided: Option<Kill>) {
        // What the launcher finds alive after this is dying of the runner's kill, not left behind by the program.
        self.state.killing = true;
        // Again on every turn until the launcher is gone: a process forked during one pass dies in the next.
        kill_tree(self.launcher_pid, self.state.pid, &self.state.belonging);
        let killing = match (self.phase.killing(), decided) {
            (Some(killing), _) => killing,
            (None, Some(why)) => {
                let killing = Killing {
                    why,
                    since: Instant::now(),
                };
                self.phase = self.phase.kill_decided(killing);
                killing
            }
            (None, None) => return,
        };
        if killing.since.elapsed() >= LAUNCHER_GRACE && !self.state.launcher_killed {
            // Stopped again and again, or stuck: the run ends without its report, bounded all the same.
            self.state.launcher_killed = true;
            // SAFETY: kill(2) on the launcher, this process's child, not reaped yet.
            unsafe { libc::kill(self.launcher_pid as libc::pid_t, libc::SIGKILL) };
        }
    }

    /// The loop is over: what the run learned of its tree, and the kill decided, if any.
    pub(super) fn finish(mut self) -> (State, Option<Kill>) {
        self.state.tree.mean_pss_poll_ms = if self.state.tree.pss_polls > 0 {
            self.pss_time.as_secs_f64() * 1e3 / self.state.tree.pss_polls as f64
        } else {
            0.0
        };
        (self.state, self.phase.killing().map(|killing| killing.why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn killing(why: Kill) -> Killing {
        Killing {
            why,
            since: Instant::now(),
        }
    }

    #[test]
    fn the_programs_exit_ends_watching_and_keeps_a_decided_kill() {
        let timeout = killing(Kill::Timeout);
        assert_eq!(Phase::Watching.program_exited(), Phase::Reaping);
        assert_eq!(Phase::Reaping.program_exited(), Phase::Reaping);
        assert_eq!(
            Phase::Killing(timeout).program_exited(),
            Phase::KillingAfterExit(timeout)
        );
        assert_eq!(
            Phase::KillingAfterExit(timeout).program_exited(),
            Phase::KillingAfterExit(timeout)
        );
    }

    #[test]
    fn a_kill_is_decided_once_and_the_first_one_stays() {
        let limit = killing(Kill::Limit);
        let interrupt = killing(Kill::Interrupt(libc::SIGINT));
        assert_eq!(Phase::Watching.kill_decided(limit), Phase::Killing(limit));
        assert_eq!(
            Phase::Reaping.kill_decided(limit),
            Phase::KillingAfterExit(limit)
        );
        assert_eq!(
            Phase::Killing(limit).kill_decided(interrupt),
            Phase::Killing(limit)
        );
        assert_eq!(
            Phase::KillingAfterExit(limit).kill_decided(interrupt),
            Phase::KillingAfterExit(limit)
        );
    }

    #[test]
    fn each_phase_says_what_a_turn_does() {
        let requested = killing(Kill::Requested);
        // (phase, polls, counts unwatched time, kill decided)
        let rows = [
            (Phase::Watching, true, true, None),
            (Phase::Reaping, false, false, None),
            (Phase::Killing(requested), true, false, Some(requested)),
            (
                Phase::KillingAfterExit(requested),
                false,
                false,
                Some(requested),
            ),
        ];
        for (phase, polls, counts_unwatched, decided) in rows {
            assert_eq!(phase.polls(), polls, "{phase:?}");
            assert_eq!(phase.counts_unwatched(), counts_unwatched, "{phase:?}");
            assert_eq!(phase.killing(), decided, "{phase:?}");
        }
    }

    #[test]
    fn an_interrupt_comes_before_the_timeout_which_comes_before_a_stop_request() {
        let sigterm = libc::SIGTERM;
        assert_eq!(kill_due(None, false, false), None);
        assert_eq!(
            kill_due(Some(sigterm), true, true),
            Some(Kill::Interrupt(sigterm))
        );
        assert_eq!(
            kill_due(Some(sigterm), false, false),
            Some(Kill::Interrupt(sigterm))
        );
        assert_eq!(kill_due(None, true, true), Some(Kill::Timeout));
        assert_eq!(kill_due(None, true, false), Some(Kill::Timeout));
        assert_eq!(kill_due(None, false, true), Some(Kill::Requested));
    }

    #[test]
    fn proportional_sizes_are_read_within_a_tenth_of_the_time_or_after_a_pause() {
        let ms = Duration::from_millis;
        assert!(pss_affordable(false, Duration::ZERO, Duration::ZERO));
        assert!(pss_affordable(false, ms(100), ms(1000)));
        assert!(!pss_affordable(false, ms(101), ms(1000)));
        assert!(pss_affordable(true, ms(900), ms(1000)));
    }
}
