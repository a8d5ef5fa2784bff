//! How a watched run is judged once it is over, one question to a function: which figure is the peak RSS, which
//! [`Outcome`] it ends in, what its message says and why its peaks are lower bounds.
//!
//! These answers were one function of the runner's whole state, where a row of one table (a peak source, an
//! outcome, a message) could only be tested by running a real process tree into it. Here each is a pure function of
//! the few facts it needs, so every row has a unit test of its own; the runner's state only gathers the facts
//! ([`super::State`]'s `into_measured`).

use super::{Kill, LAUNCHER_GRACE, MAX_PHASES};
use crate::output_capture::show_tail;
use schema::results::{LeftRunning, LimitReport, Outcome};
use schema::units::format_bytes;
use std::collections::BTreeMap;
use std::time::Duration;

/// Which figure the peak RSS is, named so the choice's rows can be told apart (each is a kernel high-water mark of
/// some kind, never a polled sample, which misses spikes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PeakSource {
    /// A memproof case's own `VmHWM`, read as its last act (when a poll saw the case higher, that poll wins).
    CaseReport(u64),
    /// The highest `VmHWM` the runner polled of a memproof case: above its report, or the case died before it.
    CasePolled(u64),
    /// A memproof case's `ru_maxrss` from the launcher's `wait4`: no report and no poll saw the case. Last, because
    /// it could be a driver's the case had waited for.
    CaseMaxrss(u64),
    /// Any other program: its tree's largest single process (the highest `VmHWM` polled or `ru_maxrss` reaped).
    LargestProcess(u64),
    /// Nothing saw the program's memory.
    Unknown,
}

impl PeakSource {
    /// The peak RSS it reports.
    pub(super) fn bytes(self) -> Option<u64> {
        match self {
            PeakSource::CaseReport(bytes)
            | PeakSource::CasePolled(bytes)
            | PeakSource::CaseMaxrss(bytes)
            | PeakSource::LargestProcess(bytes) => Some(bytes),
            PeakSource::Unknown => None,
        }
    }
}

/// Which figure is the peak RSS: for a memproof case (`is_case`), the higher of its own reported `VmHWM` and the
/// highest polled, else its `ru_maxrss`; for any other program, the largest process of its tree (what it reports is
/// never taken: `own_hwm` is ignored).
pub(super) fn peak_source(
    is_case: bool,
    own_hwm: Option<u64>,
    polled_hwm: Option<u64>,
    maxrss: Option<u64>,
    largest_process: Option<u64>,
) -> PeakSource {
    if !is_case {
        return largest_process.map_or(PeakSource::Unknown, PeakSource::LargestProcess);
    }
    match (own_hwm, polled_hwm, maxrss) {
        (Some(own), Some(polled), _) if polled > own => PeakSource::CasePolled(polled),
        (Some(own), _, _) => PeakSource::CaseReport(own),
        (None, Some(polled), _) => PeakSource::CasePolled(polled),
        (None, None, Some(maxrss)) => PeakSource::CaseMaxrss(maxrss),
        (None, None, None) => PeakSource::Unknown,
    }
}

/// The outcome: the runner's kill, when it killed, names it; otherwise a kernel high-water mark over the limit
/// makes it over-limit; otherwise it is ok only when the program exited 0 and, for a memproof case, reported its
/// final figures (`reported`) without an error (`case_failed`).
pub(super) fn outcome(
    kill: Option<Kill>,
    over_limit: bool,
    code: Option<i32>,
    case_failed: bool,
    reported: bool,
) -> Outcome {
    match kill {
        Some(Kill::Interrupt(_)) => Outcome::Interrupted,
        Some(Kill::Timeout) => Outcome::TimedOut,
        Some(Kill::Limit) => Outcome::OomKilled,
        Some(Kill::Requested) => Outcome::Failed,
        None if over_limit => Outcome::OverLimit,
        None if code == Some(0) && !case_failed && reported => Outcome::Ok,
        None => Outcome::Failed,
    }
}

/// How the run ended, as far as its message needs to know.
pub(super) struct Ending<'a> {
    pub kill: Option<Kill>,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub timeout: Duration,
    pub limit_bytes: Option<u64>,
    pub peak_rss_bytes: Option<u64>,
    pub peak_charged_bytes: Option<u64>,
    pub peak_file_bytes: Option<u64>,
    /// Why the launcher could not start the program.
    pub launch_failed: Option<&'a str>,
    /// A memproof case's own error.
    pub case_error: Option<&'a str>,
    /// The launcher ended without saying the program had (and not because it could not start it).
    pub launcher_lost: bool,
    pub stderr_tail: &'a str,
}

/// The note naming the descendants left running when the program exited (`left`, the first few of `count`).
pub(super) fn left_running_note(left: &[LeftRunning], count: usize) -> Option<String> {
    (!left.is_empty()).then(|| {
        let names: Vec<String> = left
            .iter()
            .map(|l| format!("{} ({})", l.pid, l.command))
            .collect();
        let more = match count.saturating_sub(left.len()) {
            0 => String::new(),
            more => format!(" and {more} more ({count} in all)"),
        };
        format!(
            "left running when it exited, killed: {}{more}",
            names.join(", ")
        )
    })
}

/// The message's first part, one row per outcome: an ok run has none but the descendants it left running.
pub(super) fn headline(
    outcome: Outcome,
    ending: &Ending,
    left_note: Option<&String>,
) -> Option<String> {
    let limit_text = || format_bytes(ending.limit_bytes.unwrap_or(0) as f64);
    let peak_text = || {
        ending
            .peak_rss_bytes
            .map_or("unknown".into(), |p| format_bytes(p as f64))
    };
    match outcome {
        Outcome::Ok => left_note.cloned(),
        Outcome::Interrupted => Some(format!(
            "interrupted by {}: the whole process tree was killed",
            match ending.kill {
                Some(Kill::Interrupt(signal)) => crate::interrupt::name(signal),
                _ => "a signal",
            }
        )),
        Outcome::TimedOut => Some(format!(
            "still running after {:.1} s, killed with its whole process tree",
            ending.timeout.as_secs_f64()
        )),
        Outcome::OomKilled => Some(format!(
            "killed at its memory limit of {}: what the process tree held that a container could not reclaim \
             (anonymous and shared memory) reached {}; file pages beside it, the most a poll saw: {} (largest process {})",
            limit_text(),
            format_bytes(ending.peak_charged_bytes.unwrap_or(0) as f64),
            format_bytes(ending.peak_file_bytes.unwrap_or(0) as f64),
            peak_text()
        )),
        Outcome::OverLimit => Some(format!(
            "went over its memory limit of {} between two polls (kernel high-water mark {}), so it was not killed",
            limit_text(),
            peak_text()
        )),
        Outcome::Failed => Some(failure(ending)),
    }
}

/// Why a failed run failed: the launcher's or the case's own words when there are any, else how the launcher or
/// the program ended; each with the tail of stderr.
pub(super) fn failure(ending: &Ending) -> String {
    let tail = show_tail(ending.stderr_tail);
    if let Some(error) = ending.launch_failed.or(ending.case_error) {
        return format!("{error}\n{tail}");
    }
    if ending.launcher_lost {
        let how = match (ending.code, ending.signal) {
            (_, Some(signal)) => format!("killed by signal {signal}"),
            (code, _) => format!("exited with status {}", code.unwrap_or(-1)),
        };
        return format!(
            "memproof-launch was {how} before the program ended (a process of the tree signalled it): the runner \
             killed what it had started; the program's exit status and ru_maxrss are unknown\n{tail}"
        );
    }
    let how = match (ending.code, ending.signal) {
        (_, Some(signal)) => format!("killed by signal {signal}"),
        (Some(code), _) if code != 0 => format!("exited with status {code}"),
        _ => "exited without reporting its final figures".to_string(),
    };
    format!("{how}\n{tail}")
}

/// What the runner could not see of the tree, each making its peaks lower bounds.
pub(super) struct Blind<'a> {
    /// Processes whose high-water mark was reset, named with how far it fell.
    pub hwm_resets: &'a [String],
    /// Why the kernel's exit records could not be read, if they could not.
    pub exit_records_unavailable: Option<&'a str>,
    pub exit_records_lost: bool,
    /// Processes seen ignoring SIGCHLD, by pid, with their commands.
    pub sigchld_ignorers: &'a BTreeMap<u32, String>,
    /// The program exited under a limit, and no poll saw its tree.
    pub never_polled: bool,
    pub interval: Duration,
}

/// Why the peaks are lower bounds: a reset high-water mark; children the kernel reaped unseen (a process ignores
/// SIGCHLD and the exit records are missing); a limit judged without a single poll.
pub(super) fn lower_bound_reasons(blind: &Blind) -> Vec<String> {
    let mut reasons: Vec<String> = Vec::new();
    if !blind.hwm_resets.is_empty() {
        reasons.push(format!(
            "a process reset its kernel high-water mark (/proc/PID/clear_refs), which resets ru_maxrss too, so what \
             it held before the last poll that saw it is unknown: {}",
            blind.hwm_resets.join(", ")
        ));
    }
    let blind_to_exits = blind
        .exit_records_unavailable
        .map(str::to_string)
        .or_else(|| {
            blind
                .exit_records_lost
                .then(|| "some of the kernel's exit records were lost".to_string())
        });
    if let Some(why) = blind_to_exits
        && !blind.sigchld_ignorers.is_empty()
    {
        let names: Vec<String> = blind
            .sigchld_ignorers
            .iter()
            .map(|(pid, command)| format!("{pid} ({command})"))
            .collect();
        reasons.push(format!(
            "the kernel reaps the children of a process that ignores SIGCHLD, and nobody can read their \
             ru_maxrss ({why}): a child that lived between two polls ({} ms apart) is not in the peaks: {}",
            blind.interval.as_millis(),
            names.join(", ")
        ));
    }
    if blind.never_polled {
        reasons.push(format!(
            "no poll saw the tree while it ran (polled every {} ms): the total is unknown, and the limit was \
             judged on the kernel's high-water marks alone",
            blind.interval.as_millis()
        ));
    }
    reasons
}

/// What else happened in the run that its reader should know, beside the outcome.
pub(super) struct Remarks<'a> {
    pub phases_dropped: usize,
    pub launcher_killed: bool,
    pub launcher_stops: u32,
    pub lower_bound: &'a [String],
    pub left_behind: &'a [String],
    /// Other processes of the tree that ran with the preload library: the first few (pid, peak heap when their
    /// own), and how many in all.
    pub unmeasured: &'a BTreeMap<u32, Option<u64>>,
    pub unmeasured_count: usize,
    pub unwatched: Duration,
    pub longest_unwatched: Duration,
}

/// The notes after the headline, in their order: the descendants left running (unless an ok run's headline already
/// says so), dropped phases, the launcher's troubles, the lower bounds, shared memory left behind, unmeasured
/// processes, and the time the runner did not watch.
pub(super) fn notes(outcome: Outcome, left_note: Option<String>, remarks: &Remarks) -> Vec<String> {
    let mut notes: Vec<String> = Vec::new();
    if outcome != Outcome::Ok {
        notes.extend(left_note);
    }
    if remarks.phases_dropped > 0 {
        notes.push(format!(
            "{} phases past the first {MAX_PHASES} were not kept",
            remarks.phases_dropped
        ));
    }
    if remarks.launcher_killed {
        notes.push(format!(
            "memproof-launch did not exit within {} s of the kill (stopped again and again, or stuck), so the \
             runner killed it too",
            LAUNCHER_GRACE.as_secs()
        ));
    }
    if remarks.launcher_stops > 0 {
        notes.push(format!(
            "the launcher was found stopped {} time(s) (a process of the tree sent it SIGSTOP) and continued",
            remarks.launcher_stops
        ));
    }
    for reason in remarks.lower_bound {
        notes.push(format!("lower bound: {reason}"));
    }
    if !remarks.left_behind.is_empty() {
        notes.push(format!(
            "shared memory left behind after the run: {}",
            remarks.left_behind.join(", ")
        ));
    }
    if remarks.unmeasured_count > 0 {
        let names: Vec<String> = remarks
            .unmeasured
            .iter()
            .map(|(pid, peak)| match peak {
                Some(peak) => format!("{pid} (peak heap {})", format_bytes(*peak as f64)),
                None => format!("{pid} (a forked copy)"),
            })
            .collect();
        notes.push(format!(
            "the heap figures are the measured process's only: {} other process(es) of the tree ran with the \
             preload library and are not counted: {}",
            remarks.unmeasured_count,
            names.join(", ")
        ));
    }
    if !remarks.unwatched.is_zero() {
        notes.push(format!(
            "memproof did not run for {:.1} s in all (longest pause {:.1} s: it was stopped, or got no CPU): the \
             limit was not checked then; the kernel's high-water marks still judge over-limit",
            remarks.unwatched.as_secs_f64(),
            remarks.longest_unwatched.as_secs_f64()
        ));
    }
    notes
}

/// The whole message: the headline, then each note on a line of its own.
pub(super) fn message(headline: Option<String>, notes: &[String]) -> Option<String> {
    match (headline, notes.is_empty()) {
        (headline, true) => headline,
        (Some(headline), false) => Some(format!("{headline}\n{}", notes.join("\n"))),
        (None, false) => Some(notes.join("\n")),
    }
}

/// The limit's report: how far the higher of the peak RSS and the tree's sampled total went past it, and whether
/// the watchdog killed.
pub(super) fn limit_report(
    limit_bytes: Option<u64>,
    interval: Duration,
    peak_rss_bytes: Option<u64>,
    sampled_peak_bytes: Option<u64>,
    killed_at_limit: bool,
) -> Option<LimitReport> {
    limit_bytes.map(|limit| LimitReport {
        mechanism: "watchdog".to_string(),
        poll_interval_ms: interval.as_secs_f64() * 1e3,
        overshoot_bytes: peak_rss_bytes
            .max(sampled_peak_bytes)
            .map_or(0, |peak| peak.saturating_sub(limit)),
        killed_by_watchdog: killed_at_limit,
    })
}

/// The stray probe lines as reported: first why none of the probe was taken (a newer protocol), then the lines
/// kept, then how many more there were.
pub(super) fn stray_lines(
    kept: Vec<String>,
    count: usize,
    unsupported_protocol: Option<u32>,
) -> Vec<String> {
    let mut lines = kept;
    if let Some(protocol) = unsupported_protocol {
        lines.insert(
            0,
            format!(
                "hello spoke probe protocol {protocol}, this memproof speaks {}: none of its lines were taken",
                meter::wire::PROTOCOL_VERSION
            ),
        );
    }
    if count > lines.len() {
        lines.push(format!("<{} more stray lines>", count - lines.len()));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn a_program_not_a_case_reports_its_largest_process_and_never_its_own_figure() {
        // (own hwm, polled hwm, maxrss, largest process) -> source
        let rows = [
            (None, None, None, Some(7), PeakSource::LargestProcess(7)),
            (
                Some(99),
                Some(98),
                Some(97),
                Some(7),
                PeakSource::LargestProcess(7),
            ),
            (Some(99), Some(98), Some(97), None, PeakSource::Unknown),
            (None, None, None, None, PeakSource::Unknown),
        ];
        for (own, polled, maxrss, largest, source) in rows {
            assert_eq!(
                peak_source(false, own, polled, maxrss, largest),
                source,
                "{own:?} {polled:?} {maxrss:?} {largest:?}"
            );
        }
    }

    #[test]
    fn a_case_reports_the_higher_of_its_own_and_the_polled_mark_else_its_maxrss() {
        // (own hwm, polled hwm, maxrss) -> source; the largest process never counts for a case
        let rows = [
            (Some(10), Some(5), Some(50), PeakSource::CaseReport(10)),
            (Some(10), Some(10), None, PeakSource::CaseReport(10)),
            (Some(10), Some(11), None, PeakSource::CasePolled(11)),
            (Some(10), None, Some(50), PeakSource::CaseReport(10)),
            (None, Some(11), Some(50), PeakSource::CasePolled(11)),
            (None, None, Some(50), PeakSource::CaseMaxrss(50)),
            (None, None, None, PeakSource::Unknown),
        ];
        for (own, polled, maxrss, source) in rows {
            assert_eq!(
                peak_source(true, own, polled, maxrss, Some(1_000)),
                source,
                "{own:?} {polled:?} {maxrss:?}"
            );
        }
    }

    #[test]
    fn each_peak_source_reports_its_figure() {
        assert_eq!(PeakSource::CaseReport(1).bytes(), Some(1));
        assert_eq!(PeakSource::CasePolled(2).bytes(), Some(2));
        assert_eq!(PeakSource::CaseMaxrss(3).bytes(), Some(3));
        assert_eq!(PeakSource::LargestProcess(4).bytes(), Some(4));
        assert_eq!(PeakSource::Unknown.bytes(), None);
    }

    #[test]
    fn the_runners_kill_names_the_outcome_whatever_the_program_did() {
        let rows = [
            (Kill::Interrupt(libc::SIGINT), Outcome::Interrupted),
            (Kill::Timeout, Outcome::TimedOut),
            (Kill::Limit, Outcome::OomKilled),
            (Kill::Requested, Outcome::Failed),
        ];
        for (kill, expected) in rows {
            for over_limit in [false, true] {
                assert_eq!(
                    outcome(Some(kill), over_limit, Some(0), false, true),
                    expected,
                    "{kill:?} over limit {over_limit}"
                );
            }
        }
    }

    #[test]
    fn without_a_kill_the_high_water_mark_then_the_exit_decide() {
        // (over limit, code, case failed, reported) -> outcome
        let rows = [
            (true, Some(0), false, true, Outcome::OverLimit),
            (true, Some(1), true, false, Outcome::OverLimit),
            (false, Some(0), false, true, Outcome::Ok),
            (false, Some(1), false, true, Outcome::Failed),
            (false, None, false, true, Outcome::Failed),
            (false, Some(0), true, true, Outcome::Failed),
            (false, Some(0), false, false, Outcome::Failed),
        ];
        for (over_limit, code, case_failed, reported, expected) in rows {
            assert_eq!(
                outcome(None, over_limit, code, case_failed, reported),
                expected,
                "{over_limit} {code:?} {case_failed} {reported}"
            );
        }
    }

    fn ending() -> Ending<'static> {
        Ending {
            kill: None,
            code: Some(0),
            signal: None,
            timeout: Duration::from_millis(2500),
            limit_bytes: Some(64 * MIB),
            peak_rss_bytes: Some(80 * MIB),
            peak_charged_bytes: Some(65 * MIB),
            peak_file_bytes: Some(3 * MIB),
            launch_failed: None,
            case_error: None,
            launcher_lost: false,
            stderr_tail: "last words\n",
        }
    }

    const TAIL: &str = "--------------------\nlast words\n--------------------";

    #[test]
    fn descendants_left_running_are_named_up_to_the_kept_few() {
        let left = |pid| LeftRunning {
            pid,
            command: "sleep 60".to_string(),
        };
        assert_eq!(left_running_note(&[], 0), None);
        assert_eq!(
            left_running_note(&[left(7), left(8)], 2).as_deref(),
            Some("left running when it exited, killed: 7 (sleep 60), 8 (sleep 60)")
        );
        assert_eq!(
            left_running_note(&[left(7)], 5).as_deref(),
            Some("left running when it exited, killed: 7 (sleep 60) and 4 more (5 in all)")
        );
    }

    #[test]
    fn an_ok_run_says_only_what_it_left_running() {
        let note = "left running when it exited, killed: 7 (sleep)".to_string();
        assert_eq!(headline(Outcome::Ok, &ending(), None), None);
        assert_eq!(
            headline(Outcome::Ok, &ending(), Some(&note)),
            Some(note.clone())
        );
    }

    #[test]
    fn a_killed_run_says_what_killed_it() {
        let with_kill = |kill| Ending {
            kill: Some(kill),
            ..ending()
        };
        let rows = [
            (
                Outcome::Interrupted,
                with_kill(Kill::Interrupt(libc::SIGTERM)),
                "interrupted by SIGTERM: the whole process tree was killed",
            ),
            (
                Outcome::Interrupted,
                ending(),
                "interrupted by a signal: the whole process tree was killed",
            ),
            (
                Outcome::TimedOut,
                with_kill(Kill::Timeout),
                "still running after 2.5 s, killed with its whole process tree",
            ),
            (
                Outcome::OomKilled,
                with_kill(Kill::Limit),
                "killed at its memory limit of 64.0 MiB: what the process tree held that a container could not \
                 reclaim (anonymous and shared memory) reached 65.0 MiB; file pages beside it, the most a poll saw: \
                 3.00 MiB (largest process 80.0 MiB)",
            ),
            (
                Outcome::OomKilled,
                Ending {
                    peak_rss_bytes: None,
                    peak_charged_bytes: None,
                    peak_file_bytes: None,
                    ..with_kill(Kill::Limit)
                },
                "killed at its memory limit of 64.0 MiB: what the process tree held that a container could not \
                 reclaim (anonymous and shared memory) reached 0 B; file pages beside it, the most a poll saw: 0 B \
                 (largest process unknown)",
            ),
        ];
        for (outcome, ending, expected) in rows {
            assert_eq!(
                headline(outcome, &ending, None).as_deref(),
                Some(expected),
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn over_the_limit_between_polls_names_the_high_water_mark() {
        assert_eq!(
            headline(Outcome::OverLimit, &ending(), None).as_deref(),
            Some(
                "went over its memory limit of 64.0 MiB between two polls (kernel high-water mark 80.0 MiB), so it \
                 was not killed"
            )
        );
        let unknown = Ending {
            limit_bytes: None,
            peak_rss_bytes: None,
            ..ending()
        };
        assert_eq!(
            headline(Outcome::OverLimit, &unknown, None).as_deref(),
            Some(
                "went over its memory limit of 0 B between two polls (kernel high-water mark unknown), so it was \
                 not killed"
            )
        );
    }

    #[test]
    fn a_failure_is_told_in_the_launchers_or_the_cases_words_first() {
        let both = Ending {
            launch_failed: Some("cannot start ./x: No such file"),
            case_error: Some("the case failed"),
            launcher_lost: true,
            code: Some(1),
            ..ending()
        };
        assert_eq!(
            failure(&both),
            format!("cannot start ./x: No such file\n{TAIL}")
        );
        let case = Ending {
            case_error: Some("the case failed"),
            ..ending()
        };
        assert_eq!(failure(&case), format!("the case failed\n{TAIL}"));
        assert_eq!(headline(Outcome::Failed, &case, None), Some(failure(&case)));
    }

    #[test]
    fn a_lost_launcher_says_how_it_ended() {
        let lost = |code, signal| Ending {
            launcher_lost: true,
            code,
            signal,
            ..ending()
        };
        let said = |how: &str| {
            format!(
                "memproof-launch was {how} before the program ended (a process of the tree signalled it): the \
                 runner killed what it had started; the program's exit status and ru_maxrss are unknown\n{TAIL}"
            )
        };
        assert_eq!(failure(&lost(Some(2), Some(9))), said("killed by signal 9"));
        assert_eq!(failure(&lost(Some(2), None)), said("exited with status 2"));
        assert_eq!(failure(&lost(Some(0), None)), said("exited with status 0"));
        assert_eq!(failure(&lost(None, None)), said("exited with status -1"));
    }

    #[test]
    fn a_failed_program_says_how_it_exited() {
        let exited = |code, signal| Ending {
            code,
            signal,
            ..ending()
        };
        let rows = [
            (Some(3), Some(6), "killed by signal 6"),
            (None, Some(6), "killed by signal 6"),
            (Some(3), None, "exited with status 3"),
            (Some(0), None, "exited without reporting its final figures"),
            (None, None, "exited without reporting its final figures"),
        ];
        for (code, signal, how) in rows {
            assert_eq!(failure(&exited(code, signal)), format!("{how}\n{TAIL}"));
        }
        let silent = Ending {
            stderr_tail: "  \n",
            code: Some(3),
            ..ending()
        };
        assert_eq!(failure(&silent), "exited with status 3\n<stderr is empty>");
    }

    fn blind() -> Blind<'static> {
        static NOBODY: BTreeMap<u32, String> = BTreeMap::new();
        Blind {
            hwm_resets: &[],
            exit_records_unavailable: None,
            exit_records_lost: false,
            sigchld_ignorers: &NOBODY,
            never_polled: false,
            interval: Duration::from_millis(50),
        }
    }

    #[test]
    fn a_tree_seen_whole_has_exact_peaks() {
        assert!(lower_bound_reasons(&blind()).is_empty());
        // Missing exit records matter only when the kernel reaps children nobody waits for.
        let records_missing = Blind {
            exit_records_unavailable: Some("no netlink"),
            exit_records_lost: true,
            ..blind()
        };
        assert!(lower_bound_reasons(&records_missing).is_empty());
        let ignorers = BTreeMap::from([(7, "daemon".to_string())]);
        let records_read = Blind {
            sigchld_ignorers: &ignorers,
            ..blind()
        };
        assert!(lower_bound_reasons(&records_read).is_empty());
    }

    #[test]
    fn each_blind_spot_makes_the_peaks_a_lower_bound_in_order() {
        let resets = ["12 (x) from 5.00 MiB to 1.00 MiB".to_string()];
        let ignorers = BTreeMap::from([(7, "daemon".to_string()), (9, "sh".to_string())]);
        let reset = "a process reset its kernel high-water mark (/proc/PID/clear_refs), which resets ru_maxrss \
                     too, so what it held before the last poll that saw it is unknown: 12 (x) from 5.00 MiB to \
                     1.00 MiB";
        let reaped = |why: &str| {
            format!(
                "the kernel reaps the children of a process that ignores SIGCHLD, and nobody can read their \
                 ru_maxrss ({why}): a child that lived between two polls (50 ms apart) is not in the peaks: 7 \
                 (daemon), 9 (sh)"
            )
        };
        let unpolled = "no poll saw the tree while it ran (polled every 50 ms): the total is unknown, and the \
                        limit was judged on the kernel's high-water marks alone";
        assert_eq!(
            lower_bound_reasons(&Blind {
                hwm_resets: &resets,
                ..blind()
            }),
            [reset]
        );
        assert_eq!(
            lower_bound_reasons(&Blind {
                exit_records_unavailable: Some("no netlink"),
                exit_records_lost: true,
                sigchld_ignorers: &ignorers,
                ..blind()
            }),
            [reaped("no netlink")]
        );
        assert_eq!(
            lower_bound_reasons(&Blind {
                exit_records_lost: true,
                sigchld_ignorers: &ignorers,
                ..blind()
            }),
            [reaped("some of the kernel's exit records were lost")]
        );
        assert_eq!(
            lower_bound_reasons(&Blind {
                never_polled: true,
                ..blind()
            }),
            [unpolled]
        );
        assert_eq!(
            lower_bound_reasons(&Blind {
                hwm_resets: &resets,
                exit_records_lost: true,
                sigchld_ignorers: &ignorers,
                never_polled: true,
                ..blind()
            }),
            [
                reset.to_string(),
                reaped("some of the kernel's exit records were lost"),
                unpolled.to_string()
            ]
        );
    }

    fn remarks() -> Remarks<'static> {
        static NONE: BTreeMap<u32, Option<u64>> = BTreeMap::new();
        Remarks {
            phases_dropped: 0,
            launcher_killed: false,
            launcher_stops: 0,
            lower_bound: &[],
            left_behind: &[],
            unmeasured: &NONE,
            unmeasured_count: 0,
            unwatched: Duration::ZERO,
            longest_unwatched: Duration::ZERO,
        }
    }

    #[test]
    fn a_quiet_run_has_no_notes_and_an_ok_one_keeps_its_left_note_in_the_headline() {
        let left = || Some("left running when it exited, killed: 7 (sleep)".to_string());
        assert!(notes(Outcome::Ok, None, &remarks()).is_empty());
        assert!(notes(Outcome::Ok, left(), &remarks()).is_empty());
        assert_eq!(
            notes(Outcome::Failed, left(), &remarks()),
            [left().unwrap()]
        );
    }

    #[test]
    fn every_note_is_written_in_its_order() {
        let lower_bound = ["a reason".to_string(), "another".to_string()];
        let left_behind = [
            "/dev/shm/a (1.00 MiB, appeared during the run)".to_string(),
            "System V segment 3 (key 0, 2.00 MiB, created by pid 9)".to_string(),
        ];
        let unmeasured = BTreeMap::from([(5, Some(3 * MIB)), (6, None)]);
        let all = Remarks {
            phases_dropped: 7,
            launcher_killed: true,
            launcher_stops: 2,
            lower_bound: &lower_bound,
            left_behind: &left_behind,
            unmeasured: &unmeasured,
            unmeasured_count: 4,
            unwatched: Duration::from_millis(3250),
            longest_unwatched: Duration::from_millis(1200),
        };
        assert_eq!(
            notes(
                Outcome::TimedOut,
                Some("left running when it exited, killed: 7 (sleep)".to_string()),
                &all
            ),
            [
                "left running when it exited, killed: 7 (sleep)",
                "7 phases past the first 100 were not kept",
                "memproof-launch did not exit within 2 s of the kill (stopped again and again, or stuck), so the \
                 runner killed it too",
                "the launcher was found stopped 2 time(s) (a process of the tree sent it SIGSTOP) and continued",
                "lower bound: a reason",
                "lower bound: another",
                "shared memory left behind after the run: /dev/shm/a (1.00 MiB, appeared during the run), System V \
                 segment 3 (key 0, 2.00 MiB, created by pid 9)",
                "the heap figures are the measured process's only: 4 other process(es) of the tree ran with the \
                 preload library and are not counted: 5 (peak heap 3.00 MiB), 6 (a forked copy)",
                "memproof did not run for 3.2 s in all (longest pause 1.2 s: it was stopped, or got no CPU): the \
                 limit was not checked then; the kernel's high-water marks still judge over-limit",
            ]
        );
    }

    #[test]
    fn the_message_is_the_headline_then_a_line_per_note() {
        let notes_of = ["one".to_string(), "two".to_string()];
        assert_eq!(message(None, &[]), None);
        assert_eq!(message(Some("head".into()), &[]).as_deref(), Some("head"));
        assert_eq!(
            message(Some("head".into()), &notes_of).as_deref(),
            Some("head\none\ntwo")
        );
        assert_eq!(message(None, &notes_of).as_deref(), Some("one\ntwo"));
    }

    #[test]
    fn the_overshoot_is_the_higher_peak_past_the_limit() {
        let interval = Duration::from_millis(50);
        assert_eq!(
            limit_report(None, interval, Some(MIB), Some(MIB), false),
            None
        );
        let report = |peak, sampled, killed| {
            limit_report(Some(10 * MIB), interval, peak, sampled, killed).unwrap()
        };
        let over = report(Some(12 * MIB), Some(11 * MIB), true);
        assert_eq!(over.mechanism, "watchdog");
        assert_eq!(over.poll_interval_ms, 50.0);
        assert_eq!(over.overshoot_bytes, 2 * MIB);
        assert!(over.killed_by_watchdog);
        assert_eq!(
            report(Some(11 * MIB), Some(13 * MIB), false).overshoot_bytes,
            3 * MIB
        );
        assert_eq!(report(None, Some(13 * MIB), false).overshoot_bytes, 3 * MIB);
        assert_eq!(report(Some(9 * MIB), None, false).overshoot_bytes, 0);
        assert_eq!(report(None, None, false).overshoot_bytes, 0);
        assert!(!report(None, None, false).killed_by_watchdog);
    }

    #[test]
    fn stray_lines_say_first_why_none_was_taken_and_last_how_many_more() {
        let kept = || vec!["a".to_string(), "b".to_string()];
        assert_eq!(stray_lines(kept(), 2, None), ["a", "b"]);
        assert_eq!(
            stray_lines(kept(), 5, None),
            ["a", "b", "<3 more stray lines>"]
        );
        let newer = format!(
            "hello spoke probe protocol 99, this memproof speaks {}: none of its lines were taken",
            meter::wire::PROTOCOL_VERSION
        );
        // As the runner always counted: the protocol's line is counted among the lines shown, so one stray line
        // not kept goes unmentioned beside it (3 stray lines, 2 kept, no "more" line).
        assert_eq!(stray_lines(kept(), 3, Some(99)), [newer.as_str(), "a", "b"]);
        assert_eq!(
            stray_lines(kept(), 4, Some(99)),
            [newer.as_str(), "a", "b", "<1 more stray lines>"]
        );
        assert_eq!(stray_lines(Vec::new(), 0, Some(99)), [newer]);
    }
}
