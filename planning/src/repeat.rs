//! Repeated cases: where a figure's spread is the bug itself, one run is one sample, and a verdict on one sample
//! passes or fails by luck. Seed A's faulty trim fires every 5th message without waiting for the last one to
//! finish, so how many pile up depends on scheduling: over five ci runs its peak heap spread 3.1x and its RSS 4.1x.
//!
//! A spec marks the roles (`repeat = { roles = ["before"], runs = 5 }` in a profile); each of their cases runs that
//! many times (`cargo xtask load-test --repeat N` overrides the count), and [`combine`] makes one case of the runs:
//! every figure is the **median** over the runs (the lower middle one for an even count, so it is always a
//! measured value), the timeline, phases, exit and outcome are those of the run whose peak heap is that median, the
//! dhat profile is the one run that made it, and
//! `repeat` in results.json keeps every sample with its min, max and max/min. Verdicts and the regression check
//! read the case's figures, so they judge the median, never one sample.

use crate::suite::PlannedCase;
use schema::results::{Case, FigureSpread, Outcome, Repeated};
use schema::spec::Spec;
use std::collections::BTreeMap;

/// How many times `case` runs in `profile`: `override_runs` (from `--repeat`) or the spec's count for a role (and
/// size) it marks, once for any other.
pub fn runs_for(
    specs: &[Spec],
    profile: &str,
    case: &PlannedCase,
    override_runs: Option<u32>,
) -> u32 {
    let marked = specs
        .iter()
        .find(|spec| spec.scenario == case.scenario)
        .and_then(|spec| spec.profiles.get(profile))
        .and_then(|profile| profile.repeat.as_ref())
        .filter(|repeat| repeat.covers(&case.role, case.size.value));
    match marked {
        Some(repeat) => override_runs.unwrap_or(repeat.runs).max(1),
        None => 1,
    }
}

/// Runs a case `runs` times through `run_once` (given the run's index) and combines them; one run is returned as
/// it is.
pub fn run_repeated(
    runs: u32,
    mut run_once: impl FnMut(u32) -> anyhow::Result<Case>,
) -> anyhow::Result<Case> {
    let mut cases = Vec::with_capacity(runs as usize);
    for index in 0..runs.max(1) {
        let case = run_once(index)?;
        // An interrupt ends the case where it stands: no more runs, nothing combined.
        if case.outcome == schema::results::Outcome::Interrupted {
            return Ok(case);
        }
        cases.push(case);
    }
    Ok(combine(cases))
}

/// The lower median of `values` (a measured value even for an even count); `None` for none.
fn lower_median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get((sorted.len().max(1) - 1) / 2).copied()
}

fn spread(samples: Vec<f64>) -> Option<FigureSpread> {
    let median = lower_median(&samples)?;
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(FigureSpread {
        median,
        min,
        max,
        ratio: (min > 0.0).then(|| max / min),
        samples,
    })
}

/// Reads one counted figure of a case.
type CountedField = fn(&Case) -> Option<u64>;

/// One case of several runs of it: see the module doc. A single run is returned unchanged.
///
/// # Panics
/// On no runs.
pub fn combine(mut runs: Vec<Case>) -> Case {
    assert!(!runs.is_empty(), "combine needs at least one run");
    if runs.len() == 1 {
        return runs.remove(0);
    }
    let mut figures = BTreeMap::new();
    let byte_fields: [(&str, CountedField); 5] = [
        ("peak_heap_bytes", |c| c.peak_heap_bytes),
        ("peak_rss_bytes", |c| c.peak_rss_bytes),
        ("total_alloc_bytes", |c| c.total_alloc_bytes),
        ("alloc_count", |c| c.alloc_count),
        ("end_heap_bytes", |c| c.end_heap_bytes),
    ];
    for (name, get) in byte_fields {
        let samples: Vec<f64> = runs.iter().filter_map(get).map(|v| v as f64).collect();
        if let Some(spread) = spread(samples) {
            figures.insert(name.to_string(), spread);
        }
    }
    if let Some(wall) = spread(runs.iter().map(|c| c.wall_ms).collect()) {
        figures.insert("wall_ms".to_string(), wall);
    }
    let metric_names: Vec<String> = runs[0].metrics.keys().cloned().collect();
    for name in metric_names {
        let samples: Vec<f64> = runs
            .iter()
            .filter_map(|c| c.metrics.get(&name).and_then(serde_json::Value::as_f64))
            .collect();
        if samples.len() == runs.len()
            && let Some(spread) = spread(samples)
        {
            figures.insert(format!("metrics.{name}"), spread);
        }
    }
    // The timeline's run: the one whose peak heap is the median (by RSS when no run has heap figures).
    let key = |case: &Case| case.peak_heap_bytes.or(case.peak_rss_bytes).unwrap_or(0);
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by_key(|&index| key(&runs[index]));
    let timeline_run = order[(order.len() - 1) / 2];
    let outcomes: Vec<Outcome> = runs.iter().map(|c| c.outcome).collect();
    let count = runs.len() as u32;
    // Only one run makes a dhat profile (the load test asks the first): it goes with the case whichever run that is.
    let profiled = runs.iter().position(|c| c.dhat_run.is_some());
    let (profile, dhat_file) = profiled.map_or((None, None), |index| {
        (runs[index].dhat_run.take(), runs[index].dhat_file.take())
    });
    let mut case = runs.swap_remove(timeline_run);
    if profiled.is_some() {
        case.dhat_run = profile;
        case.dhat_file = dhat_file;
    }
    let median_of = |name: &str| figures.get(name).map(|f: &FigureSpread| f.median);
    case.peak_heap_bytes = median_of("peak_heap_bytes").map(|v| v as u64);
    case.peak_rss_bytes = median_of("peak_rss_bytes").map(|v| v as u64);
    case.total_alloc_bytes = median_of("total_alloc_bytes").map(|v| v as u64);
    case.alloc_count = median_of("alloc_count").map(|v| v as u64);
    case.end_heap_bytes = median_of("end_heap_bytes").map(|v| v as u64);
    case.wall_ms = median_of("wall_ms").unwrap_or(case.wall_ms);
    for (name, value) in case.metrics.iter_mut() {
        if let Some(median) = median_of(&format!("metrics.{name}")) {
            *value = serde_json::json!(median);
        }
    }
    case.repeat = Some(Repeated {
        runs: count,
        timeline_run: timeline_run as u32,
        outcomes,
        figures,
    });
    case
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::results::{Exit, Size};

    fn run(heap: u64, rss: u64, trims: u64) -> Case {
        Case {
            counterfactual: None,
            id: "toy/before/n=1".into(),
            scenario: "toy".into(),
            role: "before".into(),
            technique: Some("t".into()),
            size: Size {
                name: "n".into(),
                value: 1.0,
                unit: "items".into(),
            },
            outcome: Outcome::Ok,
            exit: Exit::default(),
            limit_bytes: None,
            limit: None,
            peak_rss_bytes: Some(rss),
            peak_heap_bytes: Some(heap),
            total_alloc_bytes: Some(heap * 2),
            alloc_count: Some(10),
            end_heap_bytes: Some(0),
            wall_ms: heap as f64,
            timeline: Vec::new(),
            phases: vec![schema::results::Phase {
                name: format!("run with heap {heap}"),
                t_ms: 0.0,
                heap_bytes: None,
            }],
            metrics: [("trims".to_string(), serde_json::json!(trims))].into(),
            dhat_file: None,
            dhat_run: None,
            tree: None,
            output: None,
            repeat: None,
        }
    }

    #[test]
    fn every_figure_is_its_median_and_the_timeline_the_median_heap_run() {
        let case = combine(vec![
            run(300, 10, 9),
            run(100, 50, 2),
            run(200, 30, 4),
            run(900, 20, 14),
            run(250, 40, 3),
        ]);
        assert_eq!(case.peak_heap_bytes, Some(250));
        assert_eq!(
            case.peak_rss_bytes,
            Some(30),
            "RSS's own median, not the heap run's"
        );
        assert_eq!(case.metrics["trims"], serde_json::json!(4.0));
        assert_eq!(case.phases[0].name, "run with heap 250");
        let repeat = case.repeat.unwrap();
        assert_eq!(repeat.runs, 5);
        assert_eq!(repeat.timeline_run, 4);
        let heap = &repeat.figures["peak_heap_bytes"];
        assert_eq!((heap.min, heap.median, heap.max), (100.0, 250.0, 900.0));
        assert_eq!(heap.ratio, Some(9.0));
        assert_eq!(heap.samples, [300.0, 100.0, 200.0, 900.0, 250.0]);
        assert_eq!(repeat.figures["metrics.trims"].ratio, Some(7.0));
    }

    #[test]
    fn an_even_count_takes_the_lower_middle_and_one_run_is_itself() {
        let case = combine(vec![
            run(400, 1, 1),
            run(100, 1, 1),
            run(300, 1, 1),
            run(200, 1, 1),
        ]);
        assert_eq!(case.peak_heap_bytes, Some(200));
        let single = combine(vec![run(7, 1, 1)]);
        assert_eq!(single, run(7, 1, 1));
        let mut calls = Vec::new();
        let case = run_repeated(3, |index| {
            calls.push(index);
            Ok(run(100 * (index as u64 + 1), 1, 1))
        })
        .unwrap();
        assert_eq!(calls, [0, 1, 2]);
        assert_eq!(case.peak_heap_bytes, Some(200));
    }

    #[test]
    fn only_marked_roles_repeat() {
        let text = "scenario = \"toy\"\ntitle = \"t\"\nsummary = \"s\"\n\
            variants = [{ role = \"before\", technique = \"a\" }, { role = \"after\", technique = \"b\" }]\n\
            [profiles.ci]\nsize = { name = \"n\", unit = \"items\", values = [1] }\n\
            repeat = { roles = [\"before\"], runs = 5 }\n";
        let spec = Spec::parse(std::path::Path::new("toy.toml"), text).unwrap();
        let planned = crate::suite::plan(std::slice::from_ref(&spec), "ci").unwrap();
        let runs: Vec<u32> = planned
            .iter()
            .map(|case| runs_for(std::slice::from_ref(&spec), "ci", case, None))
            .collect();
        assert_eq!(runs, [5, 1]);
        assert_eq!(
            runs_for(std::slice::from_ref(&spec), "ci", &planned[0], Some(3)),
            3
        );
        assert_eq!(runs_for(&[spec], "ci", &planned[1], Some(3)), 1);
    }
}
