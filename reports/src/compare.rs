//! `cargo xtask compare OLD_DIR NEW_DIR`: the same scenarios of two runs (main and a PR branch, or two commits) side
//! by side: each figure's change as a ratio, the timelines of both runs overlaid (old faded), and the regression
//! verdicts of the new run against the old, with the same tolerances as the baseline's.
//!
//! A reviewer uses it to check a PR's memory claim on their own machine without committing a baseline; it writes
//! `compare.md` and `compare.html` (+ `charts/compare-*`) and never runs anything.

use crate::charts::style::{render_chart, role_colour};
use crate::charts::timeline::{TimelineChart, TimelineLine};
use crate::judge::check_expression::{CaseField, Metric};
use crate::judge::regression::regression_verdicts;
use crate::render::html_page::fill_template;
use crate::render::text_escaping::{escape_markdown_cell, escape_markup};
use crate::render::{CHARTS_DIR, scenario_reports};
use anyhow::Context as _;
use harness::results::{Case, Results, Verdict};
use harness::spec::Spec;
use serde::Serialize;
use std::path::Path;

const TEMPLATE: &str = include_str!("../templates/compare.html");

/// One figure of one case in both runs.
#[derive(Debug, Clone, PartialEq)]
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
}

fn figure_change(
    case_id: &str,
    metric: &Metric,
    old: Option<f64>,
    new: Option<f64>,
) -> FigureChange {
    let shown = |value: Option<f64>| value.map_or_else(|| "–".to_string(), |v| metric.format(v));
    FigureChange {
        case_id: case_id.to_string(),
        metric: metric.name(),
        old,
        new,
        old_text: shown(old),
        new_text: shown(new),
        ratio: match (old, new) {
            (Some(old), Some(new)) if old != 0.0 => Some(new / old),
            _ => None,
        },
    }
}

/// Every figure of every case present in both runs: the case fields, then the scenario's own metrics.
pub fn figure_changes(old: &Results, new: &Results) -> Vec<FigureChange> {
    let mut changes = Vec::new();
    for case in &new.cases {
        let Some(old_case) = old.cases.iter().find(|c| c.id == case.id) else {
            continue;
        };
        for field in CaseField::ALL {
            changes.push(figure_change(
                &case.id,
                &Metric::Field(field),
                field.value(old_case),
                field.value(case),
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
            ));
        }
    }
    changes
}

fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "–".to_string(), |r| format!("{r:.3}x"))
}

fn cases_only_in(one: &Results, other: &Results) -> Vec<String> {
    one.cases
        .iter()
        .filter(|case| !other.cases.iter().any(|c| c.id == case.id))
        .map(|case| case.id.clone())
        .collect()
}

fn run_words(results: &Results) -> String {
    format!(
        "{} profile, commit {}, started {}",
        results.run.profile,
        results.run.git_commit.as_deref().unwrap_or("unknown"),
        results.run.started_at
    )
}

fn render_markdown(
    old: &Results,
    new: &Results,
    verdicts: &[Verdict],
    changes: &[FigureChange],
) -> String {
    let regressed: Vec<&Verdict> = verdicts.iter().filter(|v| !v.pass).collect();
    let mut text = format!(
        "## memproof compare: {}\n\nOld: {}.\nNew: {}.\n\n",
        if regressed.is_empty() {
            format!("no regression in {} figures", verdicts.len())
        } else {
            format!(
                "{} of {} figures regressed",
                regressed.len(),
                verdicts.len()
            )
        },
        run_words(old),
        run_words(new)
    );
    for verdict in &regressed {
        text.push_str(&format!(
            "- ❌ {}\n",
            escape_markdown_cell(verdict.text.lines().next().unwrap_or_default())
        ));
    }
    if !regressed.is_empty() {
        text.push('\n');
    }
    for (words, ids) in [
        ("Only in the old run", cases_only_in(old, new)),
        ("Only in the new run", cases_only_in(new, old)),
    ] {
        if !ids.is_empty() {
            text.push_str(&format!("{words}: {}.\n\n", ids.join(", ")));
        }
    }
    text.push_str("| case | figure | old | new | new / old |\n|---|---|---:|---:|---:|\n");
    for change in changes {
        text.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            escape_markdown_cell(&change.case_id),
            escape_markdown_cell(&change.metric),
            change.old_text,
            change.new_text,
            ratio_text(change.ratio)
        ));
    }
    text
}

#[derive(Serialize)]
struct ComparePage {
    title: String,
    run_line: String,
    verdicts_html: String,
    scenarios_html: String,
}

/// Compares two runs' results; writes compare.md and compare.html (+ charts/compare-*) into `out_dir` and returns
/// the regression verdicts of `new` against `old`. A regressed heap figure names the new case's dhat profile; use
/// [`compare_with_profiles`] to list its allocation sites.
pub fn compare(
    old: &Results,
    new: &Results,
    specs: &[Spec],
    out_dir: &Path,
) -> anyhow::Result<Vec<Verdict>> {
    compare_in(old, new, None, specs, out_dir)
}

/// [`compare`], with the new run's output directory so a regressed heap figure lists the top allocation sites of
/// the new case's dhat profile.
pub fn compare_with_profiles(
    old: &Results,
    new: &Results,
    new_results_dir: &Path,
    specs: &[Spec],
    out_dir: &Path,
) -> anyhow::Result<Vec<Verdict>> {
    compare_in(old, new, Some(new_results_dir), specs, out_dir)
}

fn compare_in(
    old: &Results,
    new: &Results,
    new_results_dir: Option<&Path>,
    specs: &[Spec],
    out_dir: &Path,
) -> anyhow::Result<Vec<Verdict>> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("{}: cannot create", out_dir.display()))?;
    let verdicts = regression_verdicts(new, old, specs, new_results_dir, "the old run", None);
    let changes = figure_changes(old, new);
    let markdown = render_markdown(old, new, &verdicts, &changes);
    let charts_dir = out_dir.join(CHARTS_DIR);
    let mut scenarios_html = String::new();
    for scenario in scenario_reports(new, specs) {
        let old_of = |case: &Case| old.cases.iter().find(|c| c.id == case.id);
        let mut lines = Vec::new();
        for (index, case) in scenario.largest_case_of_each_role() {
            if let Some(old_case) = old_of(case) {
                lines.push(TimelineLine {
                    label: format!("old {}", case.variant),
                    case: old_case,
                    colour: role_colour(index),
                    faded: true,
                });
            }
            lines.push(TimelineLine {
                label: format!("new {}", case.variant),
                case,
                colour: role_colour(index),
                faded: false,
            });
        }
        let limit_bytes = scenario.cases.iter().find_map(|case| case.limit_bytes);
        let chart = TimelineChart {
            title: format!("{}: old (faded) and new run", scenario.scenario),
            lines,
            limit_bytes,
        };
        let stem = format!(
            "compare-{}-timeline",
            scenario.scenario.replace(['/', '\\', ' '], "_")
        );
        let rendered = render_chart(&chart, &charts_dir, &stem)?;
        scenarios_html.push_str(&format!(
            "<section class=\"scenario\"><h2>{}: {}</h2>\n<figure>{}<figcaption>Heap (solid) and RSS (dashed) per role at its largest size; the old run faded. <a href=\"{CHARTS_DIR}/{stem}.png\">PNG</a></figcaption></figure>\n<table><tr><th>case</th><th>figure</th><th>old</th><th>new</th><th>new / old</th></tr>\n",
            escape_markup(&scenario.scenario),
            escape_markup(scenario.title()),
            rendered.svg
        ));
        for change in changes
            .iter()
            .filter(|c| scenario.cases.iter().any(|case| case.id == c.case_id))
        {
            scenarios_html.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td class=\"number\">{}</td><td class=\"number\">{}</td><td class=\"number\">{}</td></tr>\n",
                escape_markup(&change.case_id),
                escape_markup(&change.metric),
                escape_markup(&change.old_text),
                escape_markup(&change.new_text),
                escape_markup(&ratio_text(change.ratio))
            ));
        }
        scenarios_html.push_str("</table></section>\n");
    }
    let mut verdicts_html = String::from(
        "<table id=\"verdict-table\"><tr><th>status</th><th>figure</th><th>what changed</th></tr>\n",
    );
    let mut ordered: Vec<&Verdict> = verdicts.iter().filter(|v| !v.pass).collect();
    ordered.extend(verdicts.iter().filter(|v| v.pass));
    for verdict in ordered {
        verdicts_html.push_str(&format!(
            "<tr class=\"{}\" data-verdict-id=\"{}\"><td class=\"status\">{}</td><td><code>{}</code></td><td class=\"text\">{}</td></tr>\n",
            if verdict.pass { "pass" } else { "fail" },
            escape_markup(&verdict.id),
            if verdict.pass { "PASS" } else { "FAIL" },
            escape_markup(&verdict.id),
            escape_markup(&verdict.text)
        ));
    }
    verdicts_html.push_str("</table>\n");
    let page = fill_template(
        TEMPLATE,
        &ComparePage {
            title: "memproof compare".to_string(),
            run_line: format!(
                "Old: {}. New: {}. Regressed figures: {} of {}.",
                run_words(old),
                run_words(new),
                verdicts.iter().filter(|v| !v.pass).count(),
                verdicts.len()
            ),
            verdicts_html,
            scenarios_html,
        },
    )?;
    let write = |name: &str, text: &str| -> anyhow::Result<()> {
        let path = out_dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))
    };
    write("compare.md", &markdown)?;
    write("compare.html", &page)?;
    Ok(verdicts)
}
