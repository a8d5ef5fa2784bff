//! Renders every report of a run from its `results.json` alone: `summary.md`, `index.html` (self-contained),
//! `charts/*.svg` and `charts/*.png`, `junit.xml` and `bmf.json`.
//!
//! results.json is the single source: these files are views of it, so `cargo xtask report DIR` can re-render them
//! at any time without running anything, and no report can show a figure the results do not hold. The specs only
//! lend words: titles, the seed's bug in two lines, the order of the roles.

pub mod bencher_metric_format;
pub mod bounded_markdown;
pub mod html_page;
pub mod junit_xml;
pub mod summary_markdown;
pub mod templates;
/// The escapers live in the harness, beside the cross-check's Markdown table that uses them too.
pub use schema::text_escaping;

use crate::charts::bars::{BarsChart, RoleBars};
use crate::charts::growth::{GrowthChart, GrowthSeries};
use crate::charts::style::{RenderedChart, render_chart, role_colour};
use crate::charts::timeline::{TimelineChart, TimelineLine};
use crate::judge::size_label;
use schema::results::{Case, Outcome, Results, Verdict};
use schema::spec::Spec;
use std::path::Path;

/// The directory, inside a run's output directory, that holds the charts.
pub const CHARTS_DIR: &str = "charts";

/// The verdicts a report's main table lists, failures first: every failing verdict, then the passing ones except
/// regressions, which are many (one per figure of every case) and are counted or folded away instead.
pub fn verdicts_for_main_table(verdicts: &[Verdict]) -> Vec<&Verdict> {
    verdicts
        .iter()
        .filter(|v| !v.pass)
        .chain(
            verdicts
                .iter()
                .filter(|v| v.pass && v.kind != schema::results::VerdictKind::Regression),
        )
        .collect()
}

/// One scenario of a run, as the reports present it.
pub struct ScenarioReport<'a> {
    pub scenario: String,
    pub spec: Option<&'a Spec>,
    /// Roles in the spec's order, then any role the results have that the spec does not name.
    pub roles: Vec<String>,
    /// The scenario's cases, smallest size first, in role order within a size.
    pub cases: Vec<&'a Case>,
    pub charts: Vec<ChartReport>,
}

/// A chart drawn for a scenario.
pub struct ChartReport {
    /// What the chart shows, in one line (the figure caption).
    pub caption: String,
    pub rendered: RenderedChart,
    /// The PNG's path relative to the output directory.
    pub png_relative: String,
}

impl ScenarioReport<'_> {
    /// The scenario's title: the spec's, or its name when no spec is known.
    pub fn title(&self) -> &str {
        self.spec
            .map_or(self.scenario.as_str(), |spec| spec.title.as_str())
    }

    /// The distinct sizes the scenario ran, ascending.
    pub fn sizes(&self) -> Vec<f64> {
        let mut sizes: Vec<f64> = self.cases.iter().map(|case| case.size.value).collect();
        sizes.sort_by(f64::total_cmp);
        sizes.dedup();
        sizes
    }

    /// The case of `role` at `size`, if it ran.
    pub fn case_at(&self, role: &str, size: f64) -> Option<&Case> {
        self.cases
            .iter()
            .copied()
            .find(|case| case.role == role && case.size.value == size)
    }

    /// Each role's case at the largest size that role ran.
    pub fn largest_case_of_each_role(&self) -> Vec<(usize, &Case)> {
        self.roles
            .iter()
            .enumerate()
            .filter_map(|(index, role)| {
                self.cases
                    .iter()
                    .rev()
                    .find(|case| &case.role == role)
                    .map(|case| (index, *case))
            })
            .collect()
    }
}

/// Groups the results by scenario (in run order) and pairs each with its spec.
pub fn scenario_reports<'a>(results: &'a Results, specs: &'a [Spec]) -> Vec<ScenarioReport<'a>> {
    let mut names: Vec<&str> = Vec::new();
    for case in &results.cases {
        if !names.contains(&case.scenario.as_str()) {
            names.push(&case.scenario);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let spec = specs.iter().find(|spec| spec.scenario == name);
            let mut roles: Vec<String> = spec
                .map(|spec| spec.variants.iter().map(|v| v.role.clone()).collect())
                .unwrap_or_default();
            for case in results.scenario_cases(name) {
                if !roles.contains(&case.role) {
                    roles.push(case.role.clone());
                }
            }
            roles.retain(|role| results.scenario_cases(name).any(|case| &case.role == role));
            let role_rank = |case: &Case| {
                roles
                    .iter()
                    .position(|r| r == &case.role)
                    .unwrap_or(usize::MAX)
            };
            let mut cases: Vec<&Case> = results.scenario_cases(name).collect();
            cases.sort_by(|a, b| {
                a.size
                    .value
                    .total_cmp(&b.size.value)
                    .then(role_rank(a).cmp(&role_rank(b)))
            });
            ScenarioReport {
                scenario: name.to_string(),
                spec,
                roles,
                cases,
                charts: Vec::new(),
            }
        })
        .collect()
}

/// A file-name-safe form of a scenario name (also the page anchor's): the one rule every file memproof writes
/// is named by.
pub use schema::file_stem::file_stem;

fn chart_report(rendered: RenderedChart, caption: String) -> ChartReport {
    let png_relative = format!(
        "{CHARTS_DIR}/{}",
        rendered
            .png_path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    ChartReport {
        caption,
        rendered,
        png_relative,
    }
}

/// The growth chart of a scenario (peak heap of each role against the size, cases that ended ok), when the sweep
/// has at least three sizes.
pub fn growth_chart(report: &ScenarioReport) -> Option<GrowthChart> {
    if report.sizes().len() < 3 {
        return None;
    }
    let first = report.cases[0];
    Some(GrowthChart {
        title: format!("{}: peak heap against {}", report.scenario, first.size.name),
        size_name: first.size.name.clone(),
        size_unit: first.size.unit.clone(),
        series: report
            .roles
            .iter()
            .enumerate()
            .map(|(index, role)| GrowthSeries {
                role: role.clone(),
                colour: role_colour(index),
                points: report
                    .cases
                    .iter()
                    .filter(|case| &case.role == role && case.outcome == Outcome::Ok)
                    .filter_map(|case| {
                        case.peak_heap_bytes
                            .map(|bytes| (case.size.value, bytes as f64))
                    })
                    .collect(),
            })
            .collect(),
    })
}

/// Draws the scenario's charts into `charts_dir`: the timeline overlay and the bars at each role's largest size,
/// and the growth chart when the sweep has at least three sizes.
fn draw_scenario_charts(report: &mut ScenarioReport, charts_dir: &Path) -> anyhow::Result<()> {
    let stem = file_stem(&report.scenario);
    let largest = report.largest_case_of_each_role();
    let limit_bytes = largest.iter().find_map(|(_, case)| case.limit_bytes);
    let sizes_shown: Vec<String> = {
        let mut labels: Vec<String> = largest.iter().map(|(_, case)| size_label(case)).collect();
        labels.dedup();
        labels
    };
    let timeline = TimelineChart {
        title: format!(
            "{}: memory over time at {}",
            report.scenario,
            sizes_shown.join(", ")
        ),
        lines: largest
            .iter()
            .map(|(index, case)| TimelineLine {
                label: case.role.clone(),
                case,
                colour: role_colour(*index),
                faded: false,
            })
            .collect(),
        limit_bytes,
    };
    let rendered = render_chart(&timeline, charts_dir, &format!("{stem}-timeline"))?;
    let mut charts = vec![chart_report(
        rendered,
        format!(
            "Timeline at {}: heap (solid) and RSS (dashed) per role, phases marked{}.",
            sizes_shown.join(", "),
            if limit_bytes.is_some() {
                ", memory limit in red"
            } else {
                ""
            }
        ),
    )];
    if let Some(growth) = growth_chart(report) {
        let size_name = growth.size_name.clone();
        let rendered = render_chart(&growth, charts_dir, &format!("{stem}-growth"))?;
        charts.push(chart_report(
            rendered,
            format!(
                "Growth: peak heap against {size_name} on log-log axes, with each role's fitted exponent (cases that did not end ok are left out)."
            ),
        ));
    }
    let bars = BarsChart {
        title: format!(
            "{}: peak heap and RSS at {}",
            report.scenario,
            sizes_shown.join(", ")
        ),
        roles: largest
            .iter()
            .map(|(index, case)| RoleBars {
                role: case.role.clone(),
                colour: role_colour(*index),
                peak_heap_bytes: case.peak_heap_bytes,
                peak_rss_bytes: case.peak_rss_bytes,
                note: (case.outcome != Outcome::Ok).then(|| case.outcome.to_string()),
            })
            .collect(),
    };
    let rendered = render_chart(&bars, charts_dir, &format!("{stem}-bars"))?;
    charts.push(chart_report(
        rendered,
        format!(
            "Peak heap and peak RSS per role at {}.",
            sizes_shown.join(", ")
        ),
    ));
    report.charts = charts;
    Ok(())
}

/// Renders every report of a run into `out_dir` from `results` alone (plus the specs for titles, seed summaries and
/// role order): summary.md, index.html (self-contained, charts inline), charts/*.svg and charts/*.png, junit.xml,
/// bmf.json. Appends summary.md to `$GITHUB_STEP_SUMMARY` when it is set. Never runs anything.
pub fn write_reports(results: &Results, specs: &[Spec], out_dir: &Path) -> anyhow::Result<()> {
    let step_summary = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|value| !value.is_empty());
    write_reports_to(
        results,
        specs,
        out_dir,
        step_summary.as_deref().map(Path::new),
    )
}

/// [`write_reports`] with the step summary file given instead of read from the environment (`None`: none).
pub fn write_reports_to(
    results: &Results,
    specs: &[Spec],
    out_dir: &Path,
    step_summary: Option<&Path>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("{}: cannot create", out_dir.display()))?;
    let charts_dir = out_dir.join(CHARTS_DIR);
    let mut scenarios = scenario_reports(results, specs);
    for scenario in &mut scenarios {
        draw_scenario_charts(scenario, &charts_dir)
            .with_context(|| format!("drawing the charts of scenario {}", scenario.scenario))?;
    }
    let write = |name: &str, text: &str| -> anyhow::Result<()> {
        let path = out_dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))
    };
    let summary = summary_markdown::render_summary(results, &scenarios);
    write("summary.md", &summary)?;
    write("index.html", &html_page::render_index(results, &scenarios)?)?;
    write("junit.xml", &junit_xml::render_junit(results))?;
    write(
        "bmf.json",
        &serde_json::to_string_pretty(&bencher_metric_format::bencher_metrics(results))?,
    )?;
    if let Some(path) = step_summary {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot append the summary", path.display()))?;
        writeln!(file, "{summary}")?;
    }
    Ok(())
}
