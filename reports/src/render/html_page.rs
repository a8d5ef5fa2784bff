//! `index.html`: one self-contained page per run, to open from a CI artifact or a laptop with no network, laid out
//! the way an engineer reads it: the run's state in one line, then an overview of one card per scenario (its
//! timeline, its headline figures at the largest size, its verdict counts, a link to its section), failures first;
//! then what failed; then each scenario's section (anchored `#scenario-NAME`) with its failing verdicts open, its
//! passing ones folded, its charts and its case table; last, "Understanding this report".
//!
//! The layout is `reports/templates/index.html`, rendered by minijinja ([`super::templates`]) from an
//! [`IndexPage`]. Verdicts go into the context as results.json holds them, so a field a verdict gains is a name
//! the template can print without a change here.

use super::ScenarioReport;
use super::templates::render_page;
use crate::judge::check_expression::{format_milliseconds, format_plain_number};
use crate::judge::size_label;
use schema::results::{Case, Outcome, Results, Verdict};
use serde::Serialize;

/// A chart as a page shows it: the SVG inline, the PNG beside it.
#[derive(Serialize)]
pub struct ChartView {
    pub caption: String,
    pub svg: String,
    pub png: String,
}

/// One role's figures at the largest size it ran, for a scenario's card.
#[derive(Serialize)]
pub struct HeadlineFigure {
    pub role: String,
    pub size: String,
    pub peak_heap: String,
    pub peak_rss: String,
    pub outcome: String,
    pub ok: bool,
}

/// One row of a scenario's case table, formatted.
#[derive(Serialize)]
pub struct CaseRow {
    pub id: String,
    pub role: String,
    pub technique: String,
    pub size: String,
    pub outcome: String,
    pub ok: bool,
    /// Why a case that did not end ok ended as it did (the overshoot past the limit, the panic message).
    pub notes: Vec<String>,
    pub peak_heap: String,
    pub peak_rss: String,
    pub total_alloc: String,
    pub alloc_count: String,
    pub wall: String,
    pub limit: String,
    /// The dhat profile's path relative to the page, URL-escaped.
    pub profile_href: Option<String>,
    /// Why the case was profiled (`spec`, `all`, `failed: VERDICT-ID`), when it was.
    pub profile_reason: Option<String>,
}

/// One scenario's card and section.
#[derive(Serialize)]
pub struct ScenarioView<'a> {
    pub name: String,
    pub title: String,
    pub seed: Option<String>,
    pub summary: Option<String>,
    /// The section's id, `scenario-NAME`.
    pub anchor: String,
    pub failed: usize,
    pub passed: usize,
    pub headline: Vec<HeadlineFigure>,
    /// The timeline first, then the growth chart, then the bars.
    pub charts: Vec<ChartView>,
    /// The scenario's verdicts that failed, and those that hold (regression verdicts apart: one per figure).
    pub failing: Vec<&'a Verdict>,
    pub passing: Vec<&'a Verdict>,
    pub passing_regressions: Vec<&'a Verdict>,
    pub cases: Vec<CaseRow>,
}

/// A failing verdict in the list at the top of the page: its headline and the section that has the rest.
#[derive(Serialize)]
pub struct FailureView<'a> {
    pub verdict: &'a Verdict,
    /// The first line of its text, without the id it repeats.
    pub words: String,
    /// The anchor of its scenario's section.
    pub anchor: String,
}

/// Everything index.html shows.
#[derive(Serialize)]
pub struct IndexPage<'a> {
    pub title: String,
    pub run_line: String,
    pub passed: bool,
    pub verdict_count: usize,
    pub failed_count: usize,
    pub case_count: usize,
    /// Whether a baseline was compared (there are regression verdicts).
    pub has_baseline: bool,
    /// Which cases had no baseline to be judged against, and the command that adds them; `None` when all had one.
    pub without_baseline: Option<String>,
    pub failures: Vec<FailureView<'a>>,
    /// Scenarios with a failing verdict first, then in run order.
    pub scenarios: Vec<ScenarioView<'a>>,
    /// Verdicts that name no scenario of the run.
    pub other_verdicts: Vec<&'a Verdict>,
}

fn optional_bytes(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "–".to_string(),
        |b| schema::units::format_bytes(b as f64),
    )
}

fn case_row(case: &Case) -> CaseRow {
    let ok = case.outcome == Outcome::Ok;
    let mut notes = Vec::new();
    if let Some(limit) = &case.limit
        && case.outcome == Outcome::OomKilled
    {
        notes.push(format!(
            "{} over the limit ({}, polled every {} ms)",
            schema::units::format_bytes(limit.overshoot_bytes as f64),
            limit.mechanism,
            format_plain_number(limit.poll_interval_ms)
        ));
    }
    if let Some(message) = &case.exit.message
        && !ok
    {
        notes.push(message.clone());
    }
    CaseRow {
        id: case.id.clone(),
        role: case.role.clone(),
        technique: case.technique.clone().unwrap_or_else(|| "–".to_string()),
        size: size_label(case),
        outcome: case.outcome.as_str().to_string(),
        ok,
        notes,
        peak_heap: optional_bytes(case.peak_heap_bytes),
        peak_rss: optional_bytes(case.peak_rss_bytes),
        total_alloc: optional_bytes(case.total_alloc_bytes),
        alloc_count: case
            .alloc_count
            .map_or_else(|| "–".to_string(), |c| c.to_string()),
        wall: format_milliseconds(case.wall_ms),
        limit: optional_bytes(case.limit_bytes),
        profile_href: case.dhat_file.as_ref().map(|file| {
            file.replace('%', "%25")
                .replace(' ', "%20")
                .replace('#', "%23")
                .replace('?', "%3F")
        }),
        profile_reason: case.dhat_run.as_ref().and_then(|p| p.reason.clone()),
    }
}

/// The scenario a verdict belongs to: the part of its id before the first `/`.
pub fn verdict_scenario(verdict: &Verdict) -> &str {
    verdict.id.split('/').next().unwrap_or_default()
}

fn scenario_view<'a>(scenario: &ScenarioReport, verdicts: &'a [Verdict]) -> ScenarioView<'a> {
    let own: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| verdict_scenario(v) == scenario.scenario)
        .collect();
    let failing: Vec<&Verdict> = own.iter().copied().filter(|v| !v.pass).collect();
    ScenarioView {
        name: scenario.scenario.clone(),
        title: scenario.title().to_string(),
        seed: scenario.spec.and_then(|spec| spec.seed.clone()),
        summary: scenario.spec.map(|spec| spec.summary.trim().to_string()),
        anchor: format!("scenario-{}", super::file_stem(&scenario.scenario)),
        failed: failing.len(),
        passed: own.len() - failing.len(),
        headline: scenario
            .largest_case_of_each_role()
            .into_iter()
            .map(|(_, case)| HeadlineFigure {
                role: case.role.clone(),
                size: size_label(case),
                peak_heap: optional_bytes(case.peak_heap_bytes),
                peak_rss: optional_bytes(case.peak_rss_bytes),
                outcome: case.outcome.as_str().to_string(),
                ok: case.outcome == Outcome::Ok,
            })
            .collect(),
        charts: scenario
            .charts
            .iter()
            .map(|chart| ChartView {
                caption: chart.caption.clone(),
                svg: chart.rendered.svg.clone(),
                png: chart.png_relative.clone(),
            })
            .collect(),
        failing,
        passing: own
            .iter()
            .copied()
            .filter(|v| v.pass && v.kind != schema::results::VerdictKind::Regression)
            .collect(),
        passing_regressions: own
            .iter()
            .copied()
            .filter(|v| v.pass && v.kind == schema::results::VerdictKind::Regression)
            .collect(),
        cases: scenario.cases.iter().map(|case| case_row(case)).collect(),
    }
}

/// The page's context.
pub fn index_page<'a>(results: &'a Results, scenarios: &[ScenarioReport]) -> IndexPage<'a> {
    let run = &results.run;
    let verdicts = &results.verdicts;
    let mut views: Vec<ScenarioView> = scenarios
        .iter()
        .map(|scenario| scenario_view(scenario, verdicts))
        .collect();
    views.sort_by_key(|view| view.failed == 0);
    let failed_count = verdicts.iter().filter(|v| !v.pass).count();
    IndexPage {
        title: format!("memproof report: {} run", run.profile),
        run_line: format!(
            "Profile {}, commit {}, started {} on {} (kernel {}, {} CPUs, {} memory, {}); {} cases.",
            run.profile,
            run.git_commit.as_deref().unwrap_or("unknown"),
            run.started_at,
            run.host.os,
            run.host.kernel,
            run.host.cpus,
            schema::units::format_bytes(run.host.memory_bytes as f64),
            run.host.rustc,
            results.cases.len()
        ),
        passed: failed_count == 0,
        verdict_count: verdicts.len(),
        failed_count,
        case_count: results.cases.len(),
        has_baseline: verdicts
            .iter()
            .any(|v| v.kind == schema::results::VerdictKind::Regression),
        without_baseline: crate::baseline::without_baseline_notice(
            &results.without_baseline,
            &results.run,
        ),
        failures: verdicts
            .iter()
            .filter(|v| !v.pass)
            .map(|verdict| {
                let first_line = verdict.text.lines().next().unwrap_or_default();
                FailureView {
                    verdict,
                    words: first_line
                        .strip_prefix(&format!("{}: ", verdict.id))
                        .unwrap_or(first_line)
                        .to_string(),
                    anchor: format!("scenario-{}", super::file_stem(verdict_scenario(verdict))),
                }
            })
            .collect(),
        other_verdicts: verdicts
            .iter()
            .filter(|v| !scenarios.iter().any(|s| s.scenario == verdict_scenario(v)))
            .collect(),
        scenarios: views,
    }
}

/// The whole page.
pub fn render_index(results: &Results, scenarios: &[ScenarioReport]) -> anyhow::Result<String> {
    render_page("index.html", &index_page(results, scenarios))
}
