//! `cargo xtask compare`: two runs of the same scenarios (a pull request's base and head, or any two run
//! directories) side by side. What a reviewer reads first is what changed meaning: a spec verdict (a claim, a
//! budget, an outcome) that starts or stops holding leads the report; then every figure that moved beyond its noise
//! band, then per scenario both timelines overlaid and both growth charts side by side, then every figure.
//!
//! A figure's noise band is the regression judge's own tolerance for it ([`tolerance_for`]: twice the spread
//! measured for that case's figure in `reports/noise.json`, never below a floor), so `compare` never calls a change a regression the load test would pass,
//! nor the other way round. It writes `compare.md` and `compare.html` (+ `charts/compare-*`) and never runs
//! anything; two runs with no case in common are an error, not an empty comparison.
//!
//! Where the caller hands it dhat profiles of a failed verdict's case on both sides ([`CaseProfiles`]), each report
//! shows where the memory went: the case's allocation sites matched across the two sides and ranked by growth of
//! the figure that regressed ([`crate::site_diff`]).

use crate::charts::growth::GrowthChart;
use crate::charts::style::{render_chart, role_colour};
use crate::charts::timeline::{TimelineChart, TimelineLine};
use crate::judge::check_expression::Metric;
use crate::judge::regression::{classify, regression_verdicts};
use crate::judge::tolerance::{Tolerance, tolerance_for};
use crate::noise::Noise;
use crate::render::bounded_markdown::{BoundedText, COMMENT_LIMIT};
use crate::render::templates::render_page;
use crate::render::text_escaping::escape_markdown_cell;
use crate::render::{CHARTS_DIR, ScenarioReport, file_stem, growth_chart, scenario_reports};
use crate::site_diff::{
    BaseSites, SiteDiff, SiteRow, fields_of_verdict, site_diff, sites_not_recorded,
};
use anyhow::{Context as _, bail};
use schema::results::CaseField;
use schema::results::Change;
use schema::results::{Case, Results, Verdict};
use schema::spec::Spec;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The dhat profiles of one case on both sides, for its site diff: each side's file, or why it has none.
#[derive(Debug, Clone)]
pub struct CaseProfiles {
    pub case_id: String,
    /// The ids of the failed verdicts whose figures the diff ranks by.
    pub verdicts: Vec<String>,
    pub base: Result<PathBuf, String>,
    pub head: Result<PathBuf, String>,
}

/// Where the memory went in one case: a site diff per figure that regressed, or why there is none.
#[derive(Debug, Clone, Serialize)]
pub struct CaseSites {
    pub case_id: String,
    pub diffs: Vec<SiteDiff>,
    /// Why the case has no diff (a command's heap has no sites; a side has no profile).
    pub note: Option<String>,
}

/// The failed verdicts a comparison explains with allocation sites: the head's regressions against the base, and
/// its spec verdicts that fail where the base's held (or that the base lacks).
pub fn verdicts_to_explain(
    old: &Results,
    new: &Results,
    specs: &[Spec],
    noise: Option<&Noise>,
) -> Vec<Verdict> {
    let mut explain: Vec<Verdict> = regression_verdicts(new, old, specs, None, "the base", noise)
        .into_iter()
        .filter(|v| !v.pass)
        .collect();
    let news: Vec<VerdictChange> = verdict_changes(old, new);
    explain.extend(
        new.verdicts
            .iter()
            .filter(|v| news.iter().any(|n| n.id == v.id && n.newly_failing()))
            .cloned(),
    );
    explain
}

/// The site diffs of `profiled`, for the failed `verdicts` each names.
fn case_sites(
    profiled: &[CaseProfiles],
    verdicts: &[&Verdict],
    new: &Results,
    specs: &[Spec],
) -> Vec<CaseSites> {
    profiled
        .iter()
        .map(|profiles| {
            let mut sites = CaseSites {
                case_id: profiles.case_id.clone(),
                diffs: Vec::new(),
                note: None,
            };
            if let Some(command) = command_of_case(new, specs, &profiles.case_id) {
                sites.note = Some(format!(
                    "Where the memory went in {} is not known: {}.",
                    profiles.case_id,
                    sites_not_recorded(command)
                ));
                return sites;
            }
            // Named by file name: the directories are the runs' (and long).
            let read = |side: &Result<PathBuf, String>| match side {
                Ok(path) => crate::allocation_sites::read_keyed_sites(path)
                    .map(|read| {
                        let name = path.file_name().unwrap_or(path.as_os_str());
                        (read, name.to_string_lossy().into_owned())
                    })
                    .map_err(|error| format!("{error:#}")),
                Err(why) => Err(why.clone()),
            };
            let ((base, base_whole), base_file) = match read(&profiles.base) {
                Ok(read) => read,
                Err(why) => {
                    sites.note = Some(format!("No site diff of {}: {why}.", profiles.case_id));
                    return sites;
                }
            };
            let ((head, head_whole), head_file) = match read(&profiles.head) {
                Ok(read) => read,
                Err(why) => {
                    sites.note = Some(format!("No site diff of {}: {why}.", profiles.case_id));
                    return sites;
                }
            };
            let mut fields: Vec<CaseField> = Vec::new();
            for field in verdicts
                .iter()
                .filter(|v| profiles.verdicts.contains(&v.id))
                .flat_map(|v| fields_of_verdict(v))
            {
                if !fields.contains(&field) {
                    fields.push(field);
                }
            }
            if fields.is_empty() {
                fields.push(CaseField::PeakHeapBytes);
            }
            for field in fields {
                sites.diffs.push(site_diff(
                    &profiles.case_id,
                    field,
                    (
                        &BaseSites::Profile(&base, base_whole),
                        format!("the base's dhat profile {base_file}"),
                    ),
                    (
                        &head,
                        head_whole,
                        format!("the head's dhat profile {head_file}"),
                    ),
                ));
            }
            sites
        })
        .collect()
}

/// The command that plays `case_id`'s technique, when a program of the user's plays it.
fn command_of_case<'a>(
    results: &Results,
    specs: &'a [Spec],
    case_id: &str,
) -> Option<&'a schema::external_command::ExternalTechnique> {
    let case = results.cases.iter().find(|c| c.id == case_id)?;
    let spec = specs.iter().find(|s| s.scenario == case.scenario)?;
    spec.external_technique(case.technique.as_deref()?)
}

/// One figure of one case in both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FigureChange {
    pub case_id: String,
    pub metric: String,
    pub old: Option<f64>,
    pub new: Option<f64>,
    /// Formatted with units.
    pub old_text: String,
    pub new_text: String,
    /// `new / old`, when both are known and old is not zero.
    pub ratio: Option<f64>,
    pub ratio_text: String,
    /// The noise band the regression judge allows this figure, in words (`±5% and 256 KiB`); `None` where the
    /// judge does not judge it: a scenario metric (whose better direction only its scenario knows), or a role its
    /// spec leaves out of regression verdicts (a figure that does not repeat from run to run).
    pub band: Option<String>,
    /// `regressed`, `improved`, `within noise`; `None` where not judged (a scenario metric, a figure one side
    /// lacks).
    pub change: Option<&'static str>,
}

impl FigureChange {
    /// Whether the figure moved beyond its noise band.
    pub fn beyond_noise(&self) -> bool {
        matches!(self.change, Some("regressed" | "improved"))
    }
}

fn figure_change(
    case_id: &str,
    metric: &Metric,
    old: Option<f64>,
    new: Option<f64>,
    tolerance: Option<Tolerance>,
) -> FigureChange {
    let shown = |value: Option<f64>| value.map_or_else(|| "–".to_string(), |v| metric.format(v));
    let ratio = match (old, new) {
        (Some(old), Some(new)) if old != 0.0 => Some(new / old),
        _ => None,
    };
    FigureChange {
        case_id: case_id.to_string(),
        metric: metric.name(),
        old,
        new,
        old_text: shown(old),
        new_text: shown(new),
        ratio,
        ratio_text: ratio.map_or_else(|| "–".to_string(), |r| format!("{r:.3}x")),
        band: tolerance.map(|t| {
            format!(
                "±{:.1}% and {}",
                t.relative * 100.0,
                metric.format(t.absolute)
            )
        }),
        change: match (tolerance, old, new) {
            (Some(t), Some(old), Some(new)) => Some(classify(old, new, t).word()),
            _ => None,
        },
    }
}

/// Every figure of every case present in both runs: the case fields, then the scenario's own metrics. A figure is
/// judged against its noise band where `regressions` (the regression judge's verdicts) judge it, and only there.
pub fn figure_changes(
    old: &Results,
    new: &Results,
    noise: Option<&Noise>,
    regressions: &[Verdict],
) -> Vec<FigureChange> {
    let mut changes = Vec::new();
    for case in &new.cases {
        let Some(old_case) = old.cases.iter().find(|c| c.id == case.id) else {
            continue;
        };
        for field in CaseField::ALL {
            let id = format!("{}/{}", case.id, field.name());
            let judged = regressions.iter().any(|v| v.id == id);
            changes.push(figure_change(
                &case.id,
                &Metric::Field(field),
                field.value(old_case),
                field.value(case),
                judged.then(|| tolerance_for(noise, &new.run.profile, &case.id, field).tolerance),
            ));
        }
        let mut names: Vec<&String> = old_case.metrics.keys().chain(case.metrics.keys()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let metric = Metric::Scenario(name.clone());
            changes.push(figure_change(
                &case.id,
                &metric,
                metric.value(old_case),
                metric.value(case),
                None,
            ));
        }
    }
    changes
}

/// One spec verdict (anything but a regression verdict) on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictChange {
    pub id: String,
    pub kind: String,
    /// Whether it held on each side; `None` where that side did not judge it.
    pub base: Option<bool>,
    pub head: Option<bool>,
    /// `stopped holding`, `started holding`, `new, fails`, `new, holds`, `no longer judged`, `holds on both`,
    /// `fails on both`.
    pub change: &'static str,
    pub expected: String,
    pub base_measured: String,
    pub head_measured: String,
    /// The first line of the head's text (the base's where the head has none).
    pub words: String,
}

impl VerdictChange {
    /// Whether it is news: the verdict did not end the same on both sides.
    pub fn is_news(&self) -> bool {
        self.base != self.head
    }

    /// Whether the head fails a verdict the base did not fail.
    pub fn newly_failing(&self) -> bool {
        self.head == Some(false) && self.base != Some(false)
    }
}

/// Pairs the spec verdicts of both runs by id: news first (what stopped holding, then what started, then verdicts
/// one side lacks), then the unchanged ones, each group in the head's order.
pub fn verdict_changes(old: &Results, new: &Results) -> Vec<VerdictChange> {
    let judged = |results: &Results| -> Vec<Verdict> {
        results
            .verdicts
            .iter()
            .filter(|v| v.kind != schema::results::VerdictKind::Regression)
            .cloned()
            .collect()
    };
    let (base, head) = (judged(old), judged(new));
    let first_line = |v: &Verdict| v.text.lines().next().unwrap_or_default().to_string();
    let mut changes: Vec<VerdictChange> = Vec::new();
    for verdict in &head {
        let before = base.iter().find(|b| b.id == verdict.id);
        changes.push(VerdictChange {
            id: verdict.id.clone(),
            kind: verdict.kind.to_string(),
            base: before.map(|b| b.pass),
            head: Some(verdict.pass),
            change: match (before.map(|b| b.pass), verdict.pass) {
                (Some(true), false) => "stopped holding",
                (Some(false), true) => "started holding",
                (Some(true), true) => "holds on both",
                (Some(false), false) => "fails on both",
                (None, false) => "new, fails",
                (None, true) => "new, holds",
            },
            expected: verdict.expected.clone(),
            base_measured: before.map_or_else(|| "–".to_string(), |b| b.measured.clone()),
            head_measured: verdict.measured.clone(),
            words: first_line(verdict),
        });
    }
    for verdict in base.iter().filter(|b| !head.iter().any(|h| h.id == b.id)) {
        changes.push(VerdictChange {
            id: verdict.id.clone(),
            kind: verdict.kind.to_string(),
            base: Some(verdict.pass),
            head: None,
            change: "no longer judged",
            expected: verdict.expected.clone(),
            base_measured: verdict.measured.clone(),
            head_measured: "–".to_string(),
            words: first_line(verdict),
        });
    }
    let rank = |change: &VerdictChange| match change.change {
        "stopped holding" => 0,
        "new, fails" => 1,
        "started holding" => 2,
        "new, holds" | "no longer judged" => 3,
        "fails on both" => 4,
        _ => 5,
    };
    changes.sort_by_key(rank);
    changes
}

/// What `compare` found.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// The head's regression verdicts against the base, one per judged figure of every shared case.
    pub regressions: Vec<Verdict>,
    /// Every spec verdict of either side, news first.
    pub verdicts: Vec<VerdictChange>,
    /// Every figure of every shared case.
    pub figures: Vec<FigureChange>,
    /// Where the memory went in each profiled case of a failed verdict.
    pub sites: Vec<CaseSites>,
}

impl Comparison {
    pub fn regressed(&self) -> usize {
        self.regressions.iter().filter(|v| !v.pass).count()
    }

    pub fn newly_failing(&self) -> usize {
        self.verdicts.iter().filter(|v| v.newly_failing()).count()
    }

    pub fn started_holding(&self) -> usize {
        self.verdicts
            .iter()
            .filter(|v| v.change == "started holding")
            .count()
    }

    pub fn improved(&self) -> usize {
        self.figures
            .iter()
            .filter(|f| f.change == Some(Change::Improved.word()))
            .count()
    }

    /// A regression, or a verdict the head fails that the base did not: the comparison fails (exit 1).
    pub fn failed(&self) -> bool {
        self.regressed() > 0 || self.newly_failing() > 0
    }

    /// One line: what the reviewer must know.
    pub fn headline(&self) -> String {
        let mut parts = Vec::new();
        if self.newly_failing() > 0 {
            parts.push(format!("{} verdicts stopped holding", self.newly_failing()));
        }
        if self.started_holding() > 0 {
            parts.push(format!(
                "{} verdicts started holding",
                self.started_holding()
            ));
        }
        parts.push(format!(
            "{} of {} figures regressed, {} improved beyond noise",
            self.regressed(),
            self.regressions.len(),
            self.improved()
        ));
        format!(
            "{}: {}",
            if self.failed() { "failed" } else { "passed" },
            parts.join("; ")
        )
    }
}

fn run_words(results: &Results) -> String {
    format!(
        "{} profile, commit {}, started {}",
        results.run.profile,
        results.run.git_commit.as_deref().unwrap_or("unknown"),
        results.run.started_at
    )
}

fn cases_only_in(one: &Results, other: &Results) -> Vec<String> {
    one.cases
        .iter()
        .filter(|case| !other.cases.iter().any(|c| c.id == case.id))
        .map(|case| case.id.clone())
        .collect()
}

fn render_markdown(old: &Results, new: &Results, comparison: &Comparison) -> String {
    let mark = if comparison.failed() { "❌" } else { "✅" };
    let mut out = BoundedText::new(COMMENT_LIMIT - 1, "compare.html");
    out.push(&format!(
        "## {mark} memproof compare {}\n\nBase: {}.\nHead: {}.\n\n",
        comparison.headline(),
        run_words(old),
        run_words(new)
    ));
    let news: Vec<&VerdictChange> = comparison.verdicts.iter().filter(|v| v.is_news()).collect();
    if !news.is_empty() {
        out.push("### Verdicts that changed\n\n| | verdict | expected | base | head |\n|---|---|---|---|---|\n");
        let rows: Vec<String> = news
            .iter()
            .map(|change| {
                format!(
                    "| {} {} | `{}` | `{}` | {} | {} |\n",
                    if change.newly_failing() { "❌" } else { "✅" },
                    change.change,
                    escape_markdown_cell(&change.id),
                    escape_markdown_cell(&change.expected).replace('`', "'"),
                    escape_markdown_cell(&change.base_measured),
                    escape_markdown_cell(&change.head_measured)
                )
            })
            .collect();
        out.push_rows(&rows);
        out.push("\n");
    }
    let moved: Vec<String> = comparison
        .figures
        .iter()
        .filter(|f| f.beyond_noise())
        .map(figure_row_markdown)
        .collect();
    if !moved.is_empty() {
        out.push(&format!("### Figures beyond noise\n\n{FIGURE_HEAD}"));
        out.push_rows(&moved);
        out.push("\n");
    }
    if !comparison.sites.is_empty() {
        out.push("### Where the memory went\n\n");
        let sections: Vec<String> = comparison
            .sites
            .iter()
            .flat_map(|case| {
                let notes = case.note.iter().map(|note| format!("{note}\n\n"));
                let diffs = case
                    .diffs
                    .iter()
                    .map(|diff| format!("{}\n", diff.markdown()));
                notes.chain(diffs).collect::<Vec<_>>()
            })
            .collect();
        out.push_rows(&sections);
    }
    for (words, ids) in [
        ("Only in the base run", cases_only_in(old, new)),
        ("Only in the head run", cases_only_in(new, old)),
    ] {
        if !ids.is_empty() {
            out.push_rows(&[format!("{words}: {}.\n\n", ids.join(", "))]);
        }
    }
    let unchanged: Vec<String> = comparison
        .verdicts
        .iter()
        .filter(|v| !v.is_news())
        .map(|change| {
            format!(
                "- {} `{}` {}\n",
                if change.head == Some(true) {
                    "✅"
                } else {
                    "❌"
                },
                escape_markdown_cell(&change.id),
                change.change
            )
        })
        .collect();
    out.push(&format!(
        "<details><summary>{} verdicts ended the same on both sides</summary>\n\n",
        unchanged.len()
    ));
    out.push_rows(&unchanged);
    out.push("\n</details>\n\n");
    out.push(&format!(
        "<details><summary>Every figure ({})</summary>\n\n{FIGURE_HEAD}",
        comparison.figures.len()
    ));
    let rows: Vec<String> = comparison.figures.iter().map(figure_row_markdown).collect();
    out.push_rows(&rows);
    out.push("\n</details>\n");
    out.into_text()
}

const FIGURE_HEAD: &str = "| case | figure | base | head | head / base | noise band | |\n|---|---|---:|---:|---:|---|---|\n";

fn figure_row_markdown(change: &FigureChange) -> String {
    format!(
        "| `{}` | {} | {} | {} | {} | {} | {} |\n",
        escape_markdown_cell(&change.case_id),
        escape_markdown_cell(&change.metric),
        change.old_text,
        change.new_text,
        change.ratio_text,
        change.band.as_deref().unwrap_or("not judged"),
        change.change.unwrap_or("")
    )
}

/// A chart as a page shows it.
#[derive(Serialize)]
struct ChartView {
    caption: String,
    svg: String,
    png: String,
}

/// One scenario of the comparison page.
#[derive(Serialize)]
struct CompareScenario {
    name: String,
    title: String,
    anchor: String,
    timeline: ChartView,
    /// Base, then head, where each side swept enough sizes to draw one.
    growth: Vec<ChartView>,
    figures: Vec<FigureChange>,
    moved: usize,
}

/// A scenario's noise bands, as the page's explanation lists them.
#[derive(Serialize)]
struct ToleranceRow {
    scenario: String,
    heap: String,
    rss: String,
    time: String,
}

#[derive(Serialize)]
struct ComparePage<'a> {
    title: String,
    failed: bool,
    headline: String,
    base_line: String,
    head_line: String,
    news: Vec<&'a VerdictChange>,
    unchanged: Vec<&'a VerdictChange>,
    moved: Vec<&'a FigureChange>,
    regressions: Vec<&'a Verdict>,
    only_base: Vec<String>,
    only_head: Vec<String>,
    scenarios: Vec<CompareScenario>,
    tolerances: Vec<ToleranceRow>,
    sites: Vec<SitesView<'a>>,
}

/// One case's site diffs as compare.html shows them.
#[derive(Serialize)]
struct SitesView<'a> {
    case_id: &'a str,
    note: Option<&'a str>,
    diffs: Vec<DiffView<'a>>,
}

#[derive(Serialize)]
struct DiffView<'a> {
    diff: &'a SiteDiff,
    /// [`SiteDiff::sums`]: the heading above it names the case and figure.
    sums: String,
    rows: Vec<SiteRow>,
    growers: Vec<SiteRow>,
}

/// The range of the noise bands of `field` over a scenario's cases, in words: `+1.0% to +4.2%, at least 16.0 KiB`.
fn tolerance_words(
    field: CaseField,
    case_ids: &[&str],
    noise: Option<&Noise>,
    profile: &str,
) -> String {
    let tolerances: Vec<_> = case_ids
        .iter()
        .map(|id| tolerance_for(noise, profile, id, field))
        .collect();
    let unmeasured = tolerances
        .iter()
        .filter(|t| t.measured_ratio.is_none())
        .count();
    let relative = |pick: fn(f64, f64) -> f64| {
        tolerances
            .iter()
            .map(|t| t.tolerance.relative * 100.0)
            .reduce(pick)
            .unwrap_or(0.0)
    };
    let absolute = tolerances
        .iter()
        .map(|t| t.tolerance.absolute)
        .reduce(f64::min)
        .unwrap_or(0.0);
    let (low, high) = (relative(f64::min), relative(f64::max));
    let range = if (high - low).abs() < 0.05 {
        format!("+{low:.1}%")
    } else {
        format!("+{low:.1}% to +{high:.1}%")
    };
    let mut words = format!(
        "{range}, at least {}",
        Metric::Field(field).format(absolute)
    );
    if unmeasured > 0 {
        words.push_str(&format!(
            " ({unmeasured} of {} cases without measured noise: the default)",
            tolerances.len()
        ));
    }
    words
}

fn chart_view(
    chart: &impl crate::charts::style::Chart,
    charts_dir: &Path,
    stem: &str,
    caption: String,
) -> anyhow::Result<ChartView> {
    let rendered = render_chart(chart, charts_dir, stem)?;
    Ok(ChartView {
        caption,
        svg: rendered.svg,
        png: format!("{CHARTS_DIR}/{stem}.png"),
    })
}

fn compare_scenario(
    scenario: &ScenarioReport,
    old_scenario: Option<&ScenarioReport>,
    old: &Results,
    figures: &[FigureChange],
    charts_dir: &Path,
) -> anyhow::Result<CompareScenario> {
    let stem = file_stem(&scenario.scenario);
    let old_of = |case: &Case| old.cases.iter().find(|c| c.id == case.id);
    let mut lines = Vec::new();
    for (index, case) in scenario.largest_case_of_each_role() {
        if let Some(old_case) = old_of(case) {
            lines.push(TimelineLine {
                label: format!("base {}", case.role),
                case: old_case,
                colour: role_colour(index),
                faded: true,
            });
        }
        lines.push(TimelineLine {
            label: format!("head {}", case.role),
            case,
            colour: role_colour(index),
            faded: false,
        });
    }
    let timeline = TimelineChart {
        title: format!("{}: base (faded) and head", scenario.scenario),
        lines,
        limit_bytes: scenario.cases.iter().find_map(|case| case.limit_bytes),
    };
    let timeline = chart_view(
        &timeline,
        charts_dir,
        &format!("compare-{stem}-timeline"),
        "Heap (solid) and RSS (dashed) per role at its largest size; the base faded.".to_string(),
    )?;
    let mut growth = Vec::new();
    for (side, report) in [("base", old_scenario), ("head", Some(scenario))] {
        if let Some(mut chart) = report.and_then(growth_chart) {
            chart.title = format!("{side}: {}", chart.title);
            growth.push(chart_view(
                &chart as &GrowthChart,
                charts_dir,
                &format!("compare-{stem}-growth-{side}"),
                format!(
                    "The {side}'s peak heap against the input size, log-log, with fitted exponents."
                ),
            )?);
        }
    }
    let figures: Vec<FigureChange> = figures
        .iter()
        .filter(|f| scenario.cases.iter().any(|case| case.id == f.case_id))
        .cloned()
        .collect();
    Ok(CompareScenario {
        name: scenario.scenario.clone(),
        title: scenario.title().to_string(),
        anchor: format!("scenario-{stem}"),
        timeline,
        growth,
        moved: figures.iter().filter(|f| f.beyond_noise()).count(),
        figures,
    })
}

/// Compares two runs' results; writes compare.md and compare.html (+ charts/compare-*) into `out_dir`. A
/// regressed heap figure names the new case's dhat profile; use [`compare_with_profiles`] to list its allocation
/// sites. Two runs with no case in common are an error.
pub fn compare(
    old: &Results,
    new: &Results,
    specs: &[Spec],
    noise: Option<&Noise>,
    out_dir: &Path,
) -> anyhow::Result<Comparison> {
    compare_in(old, new, None, &[], specs, noise, out_dir)
}

/// [`compare`], with the new run's output directory so a regressed heap figure lists the top allocation sites of
/// the new case's dhat profile.
pub fn compare_with_profiles(
    old: &Results,
    new: &Results,
    new_results_dir: &Path,
    specs: &[Spec],
    noise: Option<&Noise>,
    out_dir: &Path,
) -> anyhow::Result<Comparison> {
    compare_in(old, new, Some(new_results_dir), &[], specs, noise, out_dir)
}

/// [`compare_with_profiles`], with the dhat profiles of both sides of the failed verdicts' cases: both reports
/// show where the memory went in each (see [`verdicts_to_explain`] for which verdicts).
pub fn compare_with_sites(
    old: &Results,
    new: &Results,
    new_results_dir: &Path,
    profiled: &[CaseProfiles],
    specs: &[Spec],
    noise: Option<&Noise>,
    out_dir: &Path,
) -> anyhow::Result<Comparison> {
    compare_in(
        old,
        new,
        Some(new_results_dir),
        profiled,
        specs,
        noise,
        out_dir,
    )
}

fn compare_in(
    old: &Results,
    new: &Results,
    new_results_dir: Option<&Path>,
    profiled: &[CaseProfiles],
    specs: &[Spec],
    noise: Option<&Noise>,
    out_dir: &Path,
) -> anyhow::Result<Comparison> {
    if !new
        .cases
        .iter()
        .any(|case| old.cases.iter().any(|c| c.id == case.id))
    {
        bail!(
            "the two runs have no case in common (base: {} cases, {}; head: {} cases, {}): expected runs of the same scenarios and profile",
            old.cases.len(),
            run_words(old),
            new.cases.len(),
            run_words(new)
        );
    }
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("{}: cannot create", out_dir.display()))?;
    let regressions = regression_verdicts(new, old, specs, new_results_dir, "the base", noise);
    let failed: Vec<&Verdict> = regressions
        .iter()
        .chain(&new.verdicts)
        .filter(|v| !v.pass)
        .collect();
    let sites = case_sites(profiled, &failed, new, specs);
    let comparison = Comparison {
        figures: figure_changes(old, new, noise, &regressions),
        sites,
        regressions,
        verdicts: verdict_changes(old, new),
    };
    let charts_dir = out_dir.join(CHARTS_DIR);
    let old_scenarios = scenario_reports(old, specs);
    let mut scenarios = Vec::new();
    for scenario in scenario_reports(new, specs) {
        if !scenario
            .cases
            .iter()
            .any(|case| old.cases.iter().any(|c| c.id == case.id))
        {
            continue;
        }
        let old_scenario = old_scenarios
            .iter()
            .find(|s| s.scenario == scenario.scenario);
        scenarios.push(
            compare_scenario(
                &scenario,
                old_scenario,
                old,
                &comparison.figures,
                &charts_dir,
            )
            .with_context(|| format!("drawing the comparison of {}", scenario.scenario))?,
        );
    }
    // Scenarios with figures beyond noise first.
    scenarios.sort_by_key(|s| s.moved == 0);
    let tolerances = scenarios
        .iter()
        .map(|s| {
            let ids: Vec<&str> = new
                .cases
                .iter()
                .filter(|case| case.scenario == s.name)
                .map(|case| case.id.as_str())
                .collect();
            let words = |field| tolerance_words(field, &ids, noise, &new.run.profile);
            ToleranceRow {
                scenario: s.name.clone(),
                heap: words(CaseField::PeakHeapBytes),
                rss: words(CaseField::PeakRssBytes),
                time: "not judged: a busy neighbour makes cases several times slower".to_string(),
            }
        })
        .collect();
    let mut regressions: Vec<&Verdict> =
        comparison.regressions.iter().filter(|v| !v.pass).collect();
    regressions.extend(comparison.regressions.iter().filter(|v| v.pass));
    let page = render_page(
        "compare.html",
        &ComparePage {
            title: "memproof compare".to_string(),
            failed: comparison.failed(),
            headline: comparison.headline(),
            base_line: run_words(old),
            head_line: run_words(new),
            news: comparison.verdicts.iter().filter(|v| v.is_news()).collect(),
            unchanged: comparison
                .verdicts
                .iter()
                .filter(|v| !v.is_news())
                .collect(),
            moved: comparison
                .figures
                .iter()
                .filter(|f| f.beyond_noise())
                .collect(),
            regressions,
            only_base: cases_only_in(old, new),
            only_head: cases_only_in(new, old),
            scenarios,
            tolerances,
            sites: comparison
                .sites
                .iter()
                .map(|case| SitesView {
                    case_id: &case.case_id,
                    note: case.note.as_deref(),
                    diffs: case
                        .diffs
                        .iter()
                        .map(|diff| DiffView {
                            diff,
                            sums: diff.sums(),
                            rows: diff.rows(),
                            growers: diff.growers(),
                        })
                        .collect(),
                })
                .collect(),
        },
    )?;
    let write = |name: &str, text: &str| -> anyhow::Result<()> {
        let path = out_dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))
    };
    write("compare.md", &render_markdown(old, new, &comparison))?;
    write("compare.html", &page)?;
    Ok(comparison)
}
