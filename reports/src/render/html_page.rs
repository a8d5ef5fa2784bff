//! `index.html`: one self-contained page per run, to open from a CI artifact or a laptop with no network: the
//! verdict table first (red/green), then per scenario the seed's bug in two lines, the charts (SVG inline), and the
//! case table with a link to each case's dhat profile; last, "Understanding this report".
//!
//! The layout is `reports/templates/index.html`, included at compile time and filled from a [`PageContext`]:
//! fields ending in `_html` are fragments built here with every piece of text escaped; the others are escaped when
//! they are filled in.

use super::ScenarioReport;
use super::text_escaping::escape_markup;
use crate::judge::check_expression::{format_milliseconds, format_plain_number};
use crate::judge::size_label;
use harness::results::{Case, Outcome, Results, Verdict};
use serde::Serialize;

const TEMPLATE: &str = include_str!("../../templates/index.html");
/// The style every page shares (index.html and compare.html), filled in for `{{page_style}}`.
const PAGE_STYLE: &str = include_str!("../../templates/page_style.css");

/// What the template's `{{placeholders}}` are filled with.
#[derive(Serialize)]
pub struct PageContext {
    pub title: String,
    pub run_line: String,
    pub verdicts_html: String,
    pub scenarios_html: String,
}

/// Fills `{{name}}` in `template` from the fields of `context`.
pub fn fill_template(template: &str, context: &impl Serialize) -> anyhow::Result<String> {
    let serde_json::Value::Object(fields) = serde_json::to_value(context)? else {
        anyhow::bail!("a page context must serialise to an object");
    };
    // One pass over the template, so a filled-in value that happens to contain `{{…}}` is never filled again.
    let mut page = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..]
            .find("}}")
            .map_or(rest.len(), |end| start + end + 2);
        let placeholder = &rest[start..end];
        let name = placeholder.trim_start_matches("{{").trim_end_matches("}}");
        page.push_str(&rest[..start]);
        if name == "page_style" {
            page.push_str(PAGE_STYLE);
            rest = &rest[end..];
            continue;
        }
        let Some(value) = fields.get(name) else {
            anyhow::bail!("the page template has an unfilled placeholder {placeholder}");
        };
        let text = value.as_str().unwrap_or_default();
        if name.ends_with("_html") {
            page.push_str(text);
        } else {
            page.push_str(&escape_markup(text));
        }
        rest = &rest[end..];
    }
    page.push_str(rest);
    Ok(page)
}

fn verdict_row(verdict: &Verdict) -> String {
    let class = if verdict.pass { "pass" } else { "fail" };
    format!(
        "<tr class=\"{class}\" data-verdict-id=\"{id}\"><td class=\"status\">{status}</td><td><code>{id}</code></td><td>{kind}</td><td class=\"text\">{text}</td><td><code>{expected}</code></td><td>{measured}</td></tr>\n",
        status = if verdict.pass { "PASS" } else { "FAIL" },
        id = escape_markup(&verdict.id),
        kind = escape_markup(&verdict.kind),
        text = escape_markup(&verdict.text),
        expected = escape_markup(&verdict.expected),
        measured = escape_markup(&crate::judge::counterfactual::measured_with_proof(verdict)),
    )
}

const VERDICT_HEADER: &str = "<tr><th>status</th><th>verdict</th><th>kind</th><th>words, or what failed</th><th>expected</th><th>measured</th></tr>\n";

fn verdicts_html(results: &Results) -> String {
    let verdicts = &results.verdicts;
    let failed = verdicts.iter().filter(|v| !v.pass).count();
    let mut html = if failed == 0 {
        format!(
            "<p class=\"summary-line pass\">All {} verdicts pass.</p>\n",
            verdicts.len()
        )
    } else {
        format!(
            "<p class=\"summary-line fail\">{failed} of {} verdicts failed.</p>\n",
            verdicts.len()
        )
    };
    let main = super::verdicts_for_main_table(verdicts);
    html.push_str("<table id=\"verdict-table\">\n");
    html.push_str(VERDICT_HEADER);
    for verdict in main {
        html.push_str(&verdict_row(verdict));
    }
    html.push_str("</table>\n");
    let passing_regressions: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| v.pass && v.kind == "regression")
        .collect();
    if verdicts.iter().any(|v| v.kind == "regression") {
        html.push_str(&format!(
            "<details><summary>{} regression verdicts against the baseline pass (improved or within noise)</summary>\n<table class=\"regressions\">\n{VERDICT_HEADER}",
            passing_regressions.len()
        ));
        for verdict in passing_regressions {
            html.push_str(&verdict_row(verdict));
        }
        html.push_str("</table>\n</details>\n");
    } else {
        html.push_str("<p>No baseline was compared, so there are no regression verdicts. Record one with <code>cargo xtask bless</code>.</p>\n");
    }
    html
}

fn optional_bytes(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "–".to_string(),
        |b| harness::units::format_bytes(b as f64),
    )
}

fn case_row(case: &Case) -> String {
    let outcome_class = if case.outcome == Outcome::Ok {
        "outcome-ok"
    } else {
        "outcome-bad"
    };
    let mut outcome = escape_markup(case.outcome.as_str());
    if let Some(limit) = &case.limit
        && case.outcome == Outcome::OomKilled
    {
        outcome.push_str(&format!(
            "<br><small>{} over the limit ({}, polled every {} ms)</small>",
            escape_markup(&harness::units::format_bytes(limit.overshoot_bytes as f64)),
            escape_markup(&limit.mechanism),
            escape_markup(&format_plain_number(limit.poll_interval_ms))
        ));
    }
    if let Some(message) = &case.exit.message
        && case.outcome != Outcome::Ok
    {
        outcome.push_str(&format!("<br><small>{}</small>", escape_markup(message)));
    }
    let profile = case.profile_file.as_deref().map_or_else(
        || "–".to_string(),
        |file| {
            format!(
                "<a href=\"{}\">dhat profile</a>",
                escape_markup(
                    &file
                        .replace(' ', "%20")
                        .replace('#', "%23")
                        .replace('?', "%3F")
                )
            )
        },
    );
    format!(
        "<tr><td><code>{id}</code></td><td>{role}</td><td><code>{technique}</code></td><td class=\"number\">{size}</td><td class=\"{outcome_class}\">{outcome}</td><td class=\"number\">{heap}</td><td class=\"number\">{rss}</td><td class=\"number\">{total}</td><td class=\"number\">{count}</td><td class=\"number\">{wall}</td><td class=\"number\">{limit}</td><td>{profile}</td></tr>\n",
        id = escape_markup(&case.id),
        role = escape_markup(&case.variant),
        technique = escape_markup(case.technique.as_deref().unwrap_or("–")),
        size = escape_markup(&size_label(case)),
        heap = optional_bytes(case.peak_heap_bytes),
        rss = optional_bytes(case.peak_rss_bytes),
        total = optional_bytes(case.total_alloc_bytes),
        count = case
            .alloc_count
            .map_or_else(|| "–".to_string(), |c| c.to_string()),
        wall = escape_markup(&format_milliseconds(case.wall_ms)),
        limit = optional_bytes(case.limit_bytes),
    )
}

fn scenario_html(scenario: &ScenarioReport) -> String {
    let id = escape_markup(&scenario.scenario);
    let seed = scenario
        .spec
        .and_then(|spec| spec.seed.as_deref())
        .map(|seed| format!(" <small>(seed {})</small>", escape_markup(seed)))
        .unwrap_or_default();
    let heading = match scenario.spec {
        Some(spec) => format!("{id}: {}{seed}", escape_markup(&spec.title)),
        None => id.clone(),
    };
    let mut html =
        format!("<section class=\"scenario\" id=\"scenario-{id}\">\n<h2>{heading}</h2>\n");
    if let Some(spec) = scenario.spec {
        html.push_str(&format!(
            "<blockquote>{}</blockquote>\n",
            escape_markup(spec.summary.trim())
        ));
    }
    for chart in &scenario.charts {
        html.push_str(&format!(
            "<figure class=\"chart\">\n{}\n<figcaption>{} <a href=\"{}\">PNG</a></figcaption>\n</figure>\n",
            chart.rendered.svg,
            escape_markup(&chart.caption),
            escape_markup(&chart.png_relative)
        ));
    }
    html.push_str("<table class=\"cases\">\n<tr><th>case</th><th>role</th><th>technique</th><th>size</th><th>outcome</th><th>peak heap</th><th>peak RSS</th><th>total allocated</th><th>allocations</th><th>wall time</th><th>limit</th><th>profile</th></tr>\n");
    for case in &scenario.cases {
        html.push_str(&case_row(case));
    }
    html.push_str("</table>\n</section>\n");
    html
}

/// The whole page.
pub fn render_index(results: &Results, scenarios: &[ScenarioReport]) -> anyhow::Result<String> {
    let run = &results.run;
    let context = PageContext {
        title: format!("memproof report: {} run", run.profile),
        run_line: format!(
            "Profile {}, commit {}, started {} on {} (kernel {}, {} CPUs, {} memory, {}); {} cases.",
            run.profile,
            run.git_commit.as_deref().unwrap_or("unknown"),
            run.started_at,
            run.host.os,
            run.host.kernel,
            run.host.cpus,
            harness::units::format_bytes(run.host.memory_bytes as f64),
            run.host.rustc,
            results.cases.len()
        ),
        verdicts_html: verdicts_html(results),
        scenarios_html: scenarios.iter().map(scenario_html).collect(),
    };
    fill_template(TEMPLATE, &context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Toy {
        title: String,
        body_html: String,
    }

    #[test]
    fn placeholders_fill_with_text_escaped_and_fragments_kept() {
        let page = fill_template(
            "<h1>{{title}}</h1>{{body_html}}",
            &Toy {
                title: "a <b> & c".into(),
                body_html: "<p>kept</p>".into(),
            },
        )
        .unwrap();
        assert_eq!(page, "<h1>a &lt;b&gt; &amp; c</h1><p>kept</p>");
        let error = fill_template(
            "{{title}} {{missing}}",
            &Toy {
                title: "t".into(),
                body_html: String::new(),
            },
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "the page template has an unfilled placeholder {{missing}}"
        );
    }
}
