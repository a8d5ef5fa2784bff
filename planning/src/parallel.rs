//! `--jobs N`: cases run in parallel on one machine, never more at once than memory allows.
//!
//! Why: most of a profile's time is cases waiting (startup's trigger waits: 120 x 1 s for each concurrency-1 case
//! of `full`) or one core busy while the other idles; two cases at once on a 2-core machine use both. What must not
//! change is what each case measures: every case is still a process of its own, its heap is its own allocator's
//! and its peak RSS its own high-water mark, so those figures do not depend on N. Its wall time does (it shared
//! the machine): a run with N above 1 says so (`run.jobs`); wall time is not judged for regression in any run.
//!
//! Memory: a case may start only while the **limits** of the running cases plus its own sum to at most the memory
//! the machine had available when the run began (`MemAvailable`); a case's need is its limit, or three times it
//! when it also gets a dhat profile run (the profile run's own limit). A case without a limit (or one needing more
//! than is available) runs alone. Cases start in an order given up front (the load test's: the calibration first,
//! then longest baseline time first); results come back in plan order whatever it is.
//!
//! One case of a scenario runs to its end before any other case of that scenario starts: the first builds the
//! scenario's shared fixtures (`crate::fixtures`; startup's 1.1 GB of specs at `full` take over two minutes), and
//! another case of it started beside it would only wait on the fixture's lock, its job idle. Until then the next
//! case of another scenario starts instead. With one job that changes nothing; with more, which case starts next
//! depends on which ended first, never what any case measures.

use crate::suite::PlannedCase;
use schema::results::Case;
use std::sync::{Condvar, Mutex};

/// What a case may use at most while it runs, or `None` when nothing bounds it (it then runs alone).
pub fn memory_need(case: &PlannedCase) -> Option<u64> {
    let limit = case.limit_bytes?;
    Some(if case.dhat_run {
        limit.saturating_mul(3)
    } else {
        limit
    })
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
pub fn available_memory() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo")
        .map_err(|error| anyhow::anyhow!("/proc/meminfo: cannot read: {error}"))?;
    parse_mem_available(&text)
        .ok_or_else(|| anyhow::anyhow!("/proc/meminfo: no MemAvailable line in kB"))
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))?;
    let mut words = line.split_whitespace().skip(1);
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib * 1024)
}

struct State {
    started: Vec<bool>,
    /// Scenarios with a case finished: their fixtures exist, any number of their cases may run.
    opened: std::collections::HashSet<String>,
    /// Scenarios with a case running and none finished yet.
    opening: std::collections::HashSet<String>,
    running: usize,
    reserved: u64,
    alone: bool,
    results: Vec<Option<Case>>,
    error: Option<anyhow::Error>,
    stopped: bool,
}

/// The first case in `order` not started yet whose scenario is not opening (a first case of it still running).
fn next_to_start(state: &State, planned: &[PlannedCase], order: &[usize]) -> Option<usize> {
    order
        .iter()
        .copied()
        .find(|&at| !state.started[at] && !state.opening.contains(&planned[at].scenario))
}

/// Whether the case `need` may start now beside what runs.
fn may_start(state: &State, need: Option<u64>, available: u64, jobs: usize) -> bool {
    if state.running == 0 {
        return true;
    }
    if state.alone || state.running >= jobs {
        return false;
    }
    match need {
        Some(need) if need <= available => state.reserved.saturating_add(need) <= available,
        _ => false,
    }
}

/// Runs every case through `run_one`, starting them in `order` (a permutation of the plan's indices), at most `jobs`
/// at once and within `available` bytes of limits, and returns the results in plan order. After each case,
/// `after_each` gets every case finished so far, in plan order (to write them down); when it answers `true` (an
/// interrupt) no new case starts. The first error, from either,
/// stops new cases from starting; the running ones finish.
pub fn run_all(
    planned: &[PlannedCase],
    order: &[usize],
    jobs: usize,
    available: u64,
    run_one: &(dyn Fn(&PlannedCase) -> anyhow::Result<Case> + Sync),
    after_each: &(dyn Fn(&[&Case]) -> anyhow::Result<bool> + Sync),
) -> anyhow::Result<Vec<Case>> {
    let jobs = jobs.max(1);
    let mut sorted = order.to_vec();
    sorted.sort_unstable();
    anyhow::ensure!(
        sorted.into_iter().eq(0..planned.len()),
        "the start order is not a permutation of the plan's {} cases",
        planned.len()
    );
    let state = Mutex::new(State {
        started: vec![false; planned.len()],
        opened: Default::default(),
        opening: Default::default(),
        running: 0,
        reserved: 0,
        alone: false,
        results: (0..planned.len()).map(|_| None).collect(),
        error: None,
        stopped: false,
    });
    let changed = Condvar::new();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(planned.len()) {
            scope.spawn(|| {
                loop {
                    let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
                    let (at, reserved, alone) = loop {
                        let all_started = guard.started.iter().all(|&started| started);
                        if all_started || guard.error.is_some() || guard.stopped {
                            return;
                        }
                        let candidate = next_to_start(&guard, planned, order);
                        let need = candidate.map(|at| memory_need(&planned[at]));
                        if let (Some(at), Some(need)) = (candidate, need)
                            && may_start(&guard, need, available, jobs)
                        {
                            guard.started[at] = true;
                            let scenario = &planned[at].scenario;
                            if !guard.opened.contains(scenario) {
                                guard.opening.insert(scenario.clone());
                            }
                            guard.running += 1;
                            let alone = need.is_none_or(|need| need > available);
                            let reserved = if alone { 0 } else { need.unwrap_or(0) };
                            guard.reserved += reserved;
                            guard.alone = alone;
                            break (at, reserved, alone);
                        }
                        guard = changed.wait(guard).unwrap_or_else(|e| e.into_inner());
                    };
                    drop(guard);
                    let outcome = run_one(&planned[at]);
                    let mut guard = state.lock().unwrap_or_else(|e| e.into_inner());
                    guard.running -= 1;
                    guard.reserved -= reserved;
                    if alone {
                        guard.alone = false;
                    }
                    let scenario = &planned[at].scenario;
                    guard.opening.remove(scenario);
                    guard.opened.insert(scenario.clone());
                    match outcome {
                        Ok(case) => {
                            guard.results[at] = Some(case);
                            let done: Vec<&Case> = guard.results.iter().flatten().collect();
                            match after_each(&done) {
                                Ok(stop) => guard.stopped |= stop,
                                Err(error) => {
                                    guard.error.get_or_insert(error);
                                }
                            }
                        }
                        Err(error) => {
                            guard.error.get_or_insert(error);
                        }
                    }
                    drop(guard);
                    changed.notify_all();
                }
            });
        }
    });
    let state = state.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(error) = state.error {
        return Err(error);
    }
    Ok(state.results.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::results::Size;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::Duration;

    fn planned(id: &str, limit: Option<u64>) -> PlannedCase {
        PlannedCase {
            counterfactual: None,
            id: id.into(),
            scenario: "toy".into(),
            role: "before".into(),
            technique: "t".into(),
            size: Size {
                name: "n".into(),
                value: 1.0,
                unit: "items".into(),
            },
            limit_bytes: limit,
            timeout: Duration::from_secs(1),
            params: Default::default(),
            dhat_run: false,
        }
    }

    fn result_for(case: &PlannedCase) -> Case {
        serde_json::from_value(serde_json::json!({
            "id": case.id, "scenario": "toy", "role": "before", "technique": "t",
            "size": {"name": "n", "value": 1.0, "unit": "items"}, "outcome": "ok",
            "exit": {"code": 0, "signal": null, "message": null}, "limit_bytes": null, "limit": null,
            "peak_rss_bytes": 1, "peak_heap_bytes": 1, "total_alloc_bytes": 1, "alloc_count": 1,
            "end_heap_bytes": 0, "wall_ms": 1.0, "timeline": [], "phases": [], "metrics": {},
            "dhat_file": null, "profile": null
        }))
        .unwrap()
    }

    fn in_plan_order(cases: &[PlannedCase]) -> Vec<usize> {
        (0..cases.len()).collect()
    }

    /// Runs `cases` and returns the results' ids, the most cases at once and the most limit bytes at once.
    fn run(cases: &[PlannedCase], jobs: usize, available: u64) -> (Vec<String>, usize, u64) {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let bytes = AtomicU64::new(0);
        let most_bytes = AtomicU64::new(0);
        let results = run_all(
            cases,
            &in_plan_order(cases),
            jobs,
            available,
            &|case| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let need = case.limit_bytes.unwrap_or(u64::MAX / 4);
                let held = bytes.fetch_add(need, Ordering::SeqCst) + need;
                most_bytes.fetch_max(held, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                bytes.fetch_sub(need, Ordering::SeqCst);
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(result_for(case))
            },
            &|_| Ok(false),
        )
        .unwrap();
        let ids = results.into_iter().map(|case| case.id).collect();
        (ids, most.into_inner(), most_bytes.into_inner())
    }

    #[test]
    fn results_come_back_in_plan_order_and_jobs_bound_the_cases_at_once() {
        let cases: Vec<PlannedCase> = (0..6)
            .map(|at| planned(&format!("c{at}"), Some(10)))
            .collect();
        let (ids, most, _) = run(&cases, 2, 1000);
        assert_eq!(ids, ["c0", "c1", "c2", "c3", "c4", "c5"]);
        assert_eq!(most, 2);
        let (_, most, _) = run(&cases, 1, 1000);
        assert_eq!(most, 1);
    }

    #[test]
    fn the_running_limits_never_sum_past_the_available_memory() {
        let cases: Vec<PlannedCase> = (0..6)
            .map(|at| planned(&format!("c{at}"), Some(400)))
            .collect();
        let (_, most, most_bytes) = run(&cases, 4, 1000);
        assert_eq!(most, 2);
        assert_eq!(most_bytes, 800);
    }

    #[test]
    fn a_case_without_a_limit_or_over_the_memory_runs_alone() {
        let cases = vec![
            planned("a", Some(10)),
            planned("unbounded", None),
            planned("b", Some(10)),
            planned("huge", Some(5000)),
            planned("c", Some(10)),
        ];
        let running = Mutex::new(Vec::<String>::new());
        let overlaps = Mutex::new(Vec::<(String, String)>::new());
        run_all(
            &cases,
            &in_plan_order(&cases),
            3,
            1000,
            &|case| {
                {
                    let mut now = running.lock().unwrap();
                    for other in now.iter() {
                        overlaps
                            .lock()
                            .unwrap()
                            .push((other.clone(), case.id.clone()));
                    }
                    now.push(case.id.clone());
                }
                std::thread::sleep(Duration::from_millis(30));
                running.lock().unwrap().retain(|id| id != &case.id);
                Ok(result_for(case))
            },
            &|_| Ok(false),
        )
        .unwrap();
        let overlaps = overlaps.into_inner().unwrap();
        for (a, b) in &overlaps {
            for alone in ["unbounded", "huge"] {
                assert!(a != alone && b != alone, "{a} ran beside {b}");
            }
        }
    }

    #[test]
    fn the_first_error_stops_new_cases() {
        let cases: Vec<PlannedCase> = (0..5)
            .map(|at| planned(&format!("c{at}"), Some(10)))
            .collect();
        let started = AtomicUsize::new(0);
        let error = run_all(
            &cases,
            &in_plan_order(&cases),
            1,
            1000,
            &|case| {
                started.fetch_add(1, Ordering::SeqCst);
                if case.id == "c1" {
                    anyhow::bail!("c1 broke")
                }
                Ok(result_for(case))
            },
            &|_| Ok(false),
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "c1 broke");
        assert_eq!(started.into_inner(), 2);
    }

    #[test]
    fn each_finished_case_is_handed_over_in_plan_order_and_a_stop_starts_no_more() {
        let cases: Vec<PlannedCase> = (0..5)
            .map(|at| planned(&format!("c{at}"), Some(10)))
            .collect();
        let seen = Mutex::new(Vec::<Vec<String>>::new());
        let order = in_plan_order(&cases);
        let results = run_all(
            &cases,
            &order,
            1,
            1000,
            &|case| Ok(result_for(case)),
            &|done| {
                let ids: Vec<String> = done.iter().map(|case| case.id.clone()).collect();
                let stop = ids.len() == 3;
                seen.lock().unwrap().push(ids);
                Ok(stop)
            },
        )
        .unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(
            seen.into_inner().unwrap(),
            [vec!["c0"], vec!["c0", "c1"], vec!["c0", "c1", "c2"]]
        );
    }

    /// With two jobs, a scenario's second case waits for its first to end (the fixtures), and a case of another
    /// scenario takes the free job meanwhile.
    #[test]
    fn a_scenario_runs_one_case_to_its_end_before_its_others() {
        let mut cases: Vec<PlannedCase> = (0..3)
            .map(|at| planned(&format!("slow{at}"), Some(10)))
            .collect();
        for at in 0..3 {
            let mut case = planned(&format!("other{at}"), Some(10));
            case.scenario = "other".into();
            cases.push(case);
        }
        let events = Mutex::new(Vec::<String>::new());
        // `slow0` holds its job until all of `other` has run on the other one (or fails the test after 10 s).
        let (other_done, wait_for_other) = std::sync::mpsc::channel::<()>();
        let wait_for_other = Mutex::new(wait_for_other);
        run_all(
            &cases,
            &in_plan_order(&cases),
            2,
            1000,
            &|case| {
                events.lock().unwrap().push(format!("start {}", case.id));
                if case.id == "slow0" {
                    let all_other = wait_for_other.lock().unwrap();
                    for _ in 0..3 {
                        all_other.recv_timeout(Duration::from_secs(10)).unwrap();
                    }
                }
                events.lock().unwrap().push(format!("end {}", case.id));
                if case.scenario == "other" {
                    other_done.send(()).unwrap();
                }
                Ok(result_for(case))
            },
            &|_| Ok(false),
        )
        .unwrap();
        let events = events.into_inner().unwrap();
        let at = |event: &str| events.iter().position(|e| e == event).unwrap();
        // Every other case of `toy` started after its first ended; `other`'s ran meanwhile.
        assert!(at("start slow1") > at("end slow0"), "{events:?}");
        assert!(at("start slow2") > at("end slow0"), "{events:?}");
        assert!(at("end other2") < at("end slow0"), "{events:?}");
    }

    /// Cases start in the order given (one job: exactly that order), and come back in plan order all the same.
    #[test]
    fn cases_start_in_the_order_given_and_come_back_in_plan_order() {
        let cases: Vec<PlannedCase> = (0..4)
            .map(|at| planned(&format!("c{at}"), Some(10)))
            .collect();
        let started = Mutex::new(Vec::<String>::new());
        let results = run_all(
            &cases,
            &[2, 0, 3, 1],
            1,
            1000,
            &|case| {
                started.lock().unwrap().push(case.id.clone());
                Ok(result_for(case))
            },
            &|_| Ok(false),
        )
        .unwrap();
        assert_eq!(started.into_inner().unwrap(), ["c2", "c0", "c3", "c1"]);
        let ids: Vec<String> = results.into_iter().map(|case| case.id).collect();
        assert_eq!(ids, ["c0", "c1", "c2", "c3"]);
        for order in [&[0, 1, 1, 2][..], &[0, 1, 2], &[0, 1, 2, 3, 4]] {
            let error = run_all(&cases, order, 1, 1000, &|c| Ok(result_for(c)), &|_| {
                Ok(false)
            });
            assert!(error.is_err(), "{order:?} is not a permutation of 4");
        }
    }

    #[test]
    fn mem_available_is_read_in_bytes() {
        let meminfo =
            "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(parse_mem_available(meminfo), Some(20_000_000 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 5 kB\n"), None);
    }
}
