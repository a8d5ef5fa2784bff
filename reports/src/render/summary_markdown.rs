//! `summary.md`: the run in a form to paste as a PR comment (and to append to `$GITHUB_STEP_SUMMARY`), to read in
//! ten seconds: one line (passed or failed, with counts), then only what failed or improved beyond noise, then one
//! row per scenario (each role's peak heap at the largest size, before → after → best, and the claims that hold),
//! and everything else folded into `<details>`: the full failure texts, the passing verdicts, the peaks at every
//! size. A passing `ci` run's summary used to open on a 45-row table of passes (18 KB); GitHub refuses a comment
//! of 65,536 characters or more, so rows that would reach [`COMMENT_LIMIT`] are dropped with a line saying how
//! many and where to find them.

use super::ScenarioReport;
use super::text_escaping::escape_markdown_cell;
use crate::judge::{format_size_value, size_label};
use schema::results::{Case, Change, Outcome, Results, Verdict};
use std::collections::BTreeMap;

/// How the first role's figure compares with another's: `2.50x less`, `1.30x more`, `same`.
pub fn ratio_words(first: f64, other: f64) -> String {
    if first <= 0.0 || other <= 0.0 {
        return String::new();
    }
    let ratio = first / other;
    let shown = |r: f64| {
        if r >= 10.0 {
            format!("{r:.1}")
        } else {
            format!("{r:.2}")
        }
    };
    if (ratio - 1.0).abs() < 0.005 {
        "same".to_string()
    } else if ratio > 1.0 {
        format!("{}x less", shown(ratio))
    } else {
        format!("{}x more", shown(1.0 / ratio))
    }
}

fn peak_cell(
    case: Option<&Case>,
    first: Option<&Case>,
    figure: fn(&Case) -> Option<u64>,
) -> String {
    let Some(case) = case else {
        return "–".to_string();
    };
    let value = figure(case);
    let mut cell = match value {
        Some(bytes) => schema::units::format_bytes(bytes as f64),
        None => "not measured".to_string(),
    };
    if case.outcome != Outcome::Ok {
        cell.push_str(&format!(" ({})", case.outcome));
    }
    if let (Some(first), Some(value)) = (first, value)
        && !std::ptr::eq(first, case)
        && let Some(first_value) = figure(first)
    {
        let words = ratio_words(first_value as f64, value as f64);
        if !words.is_empty() {
            cell.push_str(&format!(" ({words})"));
        }
    }
    cell
}

/// The role a role's figure is compared with: the first role (`before`), or where roles come in families that
/// share a suffix (`after_killed`, `best_killed`), the first role's member of the same family (`before_killed`), so
/// that a crash ending is never read against a graceful one.
fn comparison_base<'a>(role: &str, roles: &'a [String]) -> &'a str {
    let first = roles[0].as_str();
    role.split_once('_')
        .map(|(_, family)| format!("{first}_{family}"))
        .and_then(|member| roles.iter().find(|r| **r == member))
        .map_or(first, String::as_str)
}

/// A role or program name for a table cell or a line: no column bars, no tags, no code spans.
fn escape_role(role: &str) -> String {
    escape_markdown_cell(role).replace('`', "\\`")
}

fn peaks_table(
    scenario: &ScenarioReport,
    heading: &str,
    figure: fn(&Case) -> Option<u64>,
) -> String {
    let size_name = &scenario.cases[0].size.name;
    let unit = &scenario.cases[0].size.unit;
    // Roles are program names under `measure`: any text at all.
    let roles: Vec<String> = scenario.roles.iter().map(|r| escape_role(r)).collect();
    let mut table = format!("{heading}, {}:\n\n", roles.join(" → "));
    table.push_str(&format!("| {size_name} | {} |\n", roles.join(" | ")));
    table.push_str(&format!("|---:|{}\n", "---:|".repeat(scenario.roles.len())));
    for size in scenario.sizes() {
        let cells: Vec<String> = scenario
            .roles
            .iter()
            .map(|role| {
                let base = scenario.case_at(comparison_base(role, &scenario.roles), size);
                peak_cell(scenario.case_at(role, size), base, figure)
            })
            .collect();
        table.push_str(&format!(
            "| {} | {} |\n",
            format_size_value(size, unit),
            cells.join(" | ")
        ));
    }
    table
}

/// The spread of the scenario's repeated cases, whose figures above are medians; empty when none repeated.
fn repeated_table(scenario: &ScenarioReport) -> String {
    let repeated: Vec<&Case> = scenario
        .cases
        .iter()
        .filter(|c| c.repeat.is_some())
        .copied()
        .collect();
    if repeated.is_empty() {
        return String::new();
    }
    let mut table = "Repeated cases: their figures above are the median run's; min, median and max (max/min):\n\n\
                     | case | runs | peak heap | peak RSS |\n|---|---:|---|---|\n"
        .to_string();
    let bytes = |value: f64| schema::units::format_bytes(value);
    for case in repeated {
        let Some(repeat) = &case.repeat else { continue };
        let cell = |name: &str| {
            repeat.figures.get(name).map_or("-".to_string(), |f| {
                let ratio = f.ratio.map_or("-".to_string(), |r| format!("{r:.2}x"));
                format!(
                    "{} / {} / {} ({ratio})",
                    bytes(f.min),
                    bytes(f.median),
                    bytes(f.max)
                )
            })
        };
        table.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            case.id,
            repeat.runs,
            cell("peak_heap_bytes"),
            cell("peak_rss_bytes")
        ));
    }
    table.push('\n');
    table
}

use super::bounded_markdown::BoundedText;
pub use super::bounded_markdown::COMMENT_LIMIT;

/// The most of one failure's full text shown in its folded block.
const FAILURE_TEXT_LIMIT: usize = 3_000;

/// `text` cut to at most `limit` bytes at a character boundary, saying so when cut.
fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (cut; the full text is in index.html)", &text[..end])
}

/// The first line of a verdict's text without the id it repeats.
fn verdict_words(verdict: &Verdict) -> String {
    let first_line = verdict.text.lines().next().unwrap_or_default();
    let words = first_line
        .strip_prefix(&format!("{}: ", verdict.id))
        .unwrap_or(first_line);
    cut(words, 300)
}

/// One role's peak heap at the largest size it ran, with how it ended when not ok.
fn headline_figure(case: &Case) -> String {
    let mut words = format!(
        "{} {}",
        case.role,
        case.peak_heap_bytes.map_or_else(
            || "not measured".to_string(),
            |bytes| schema::units::format_bytes(bytes as f64)
        )
    );
    if case.outcome != Outcome::Ok {
        words.push_str(&format!(" ({})", case.outcome));
    }
    words
}

fn scenario_row(scenario: &ScenarioReport, verdicts: &[Verdict]) -> String {
    let own: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| super::html_page::verdict_scenario(v) == scenario.scenario)
        .collect();
    let failed = own.iter().filter(|v| !v.pass).count();
    let largest = scenario.largest_case_of_each_role();
    let mut sizes: Vec<String> = largest.iter().map(|(_, case)| size_label(case)).collect();
    sizes.dedup();
    let proven: Vec<String> = own
        .iter()
        .filter(|v| v.pass && v.kind == schema::results::VerdictKind::Claim)
        .map(|v| {
            let short =
                v.id.strip_prefix(&format!("{}/", scenario.scenario))
                    .unwrap_or(&v.id);
            format!("`{short}`")
        })
        .collect();
    let figures: Vec<String> = largest
        .iter()
        .map(|(_, case)| headline_figure(case))
        .collect();
    format!(
        "| [`{}`](index.html#scenario-{}) | {} | {} | {} | {} |\n",
        escape_markdown_cell(&scenario.scenario),
        super::file_stem(&scenario.scenario),
        escape_role(&figures.join(" → ")),
        escape_markdown_cell(&sizes.join(", ")),
        if failed == 0 {
            format!("✅ {} hold", own.len())
        } else {
            format!("❌ {failed} of {} failed", own.len())
        },
        if proven.is_empty() {
            "–".to_string()
        } else {
            escape_markdown_cell(&proven.join(", "))
        }
    )
}

fn verdict_table_row(verdict: &Verdict) -> String {
    format!(
        "| {} `{}` | {} | `{}` | {} |\n",
        if verdict.pass { "✅" } else { "❌" },
        escape_markdown_cell(&verdict.id),
        escape_markdown_cell(&verdict_words(verdict)),
        escape_markdown_cell(&verdict.expected).replace('`', "'"),
        escape_markdown_cell(&crate::judge::counterfactual::measured_with_proof(verdict))
    )
}

/// Which cases have a dhat profile and why, counted by reason: a reader of a failure looks for its allocation
/// sites, and a run with `--dhat failed` has them only for what failed.
fn push_profiled(out: &mut BoundedText, results: &Results) {
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, reason) in results.profiled() {
        *by_reason.entry(reason).or_default() += 1;
    }
    if by_reason.is_empty() {
        out.push("No case was profiled under dhat in this run.\n\n");
        return;
    }
    let count: usize = by_reason.values().sum();
    out.push(&format!(
        "dhat profiles of {count} case{}, by why they were made:\n\n",
        if count == 1 { "" } else { "s" }
    ));
    let rows: Vec<String> = by_reason
        .iter()
        .map(|(reason, count)| format!("- `{reason}`: {count}\n"))
        .collect();
    out.push_rows(&rows);
    out.push("\n");
}

/// The summary of a run, in GitHub-flavoured Markdown, to read in ten seconds: one line saying whether the run
/// passed, then only what failed or improved beyond noise, then one row per scenario, and everything else folded
/// away. Never [`COMMENT_LIMIT`] characters or longer.
pub fn render_summary(results: &Results, scenarios: &[ScenarioReport]) -> String {
    render_summary_within(results, scenarios, COMMENT_LIMIT - 1)
}

/// [`render_summary`] within `limit` bytes.
pub fn render_summary_within(
    results: &Results,
    scenarios: &[ScenarioReport],
    limit: usize,
) -> String {
    let run = &results.run;
    let verdicts = &results.verdicts;
    let failed: Vec<&Verdict> = verdicts.iter().filter(|v| !v.pass).collect();
    // A run nothing judged (`measure`) passes only when every case ended ok.
    let cases_not_ok = results
        .cases
        .iter()
        .filter(|case| verdicts.is_empty() && case.outcome != Outcome::Ok)
        .count();
    let passed = failed.is_empty() && cases_not_ok == 0;
    let mut out = BoundedText::new(limit, "index.html");
    out.push(&format!(
        "## {} memproof `{}` run {}: {} on {} cases\n\n",
        if passed { "✅" } else { "❌" },
        run.profile,
        if passed { "passed" } else { "failed" },
        if cases_not_ok > 0 {
            format!("{cases_not_ok} did not end ok")
        } else if failed.is_empty() {
            format!("all {} verdicts hold", verdicts.len())
        } else {
            format!("{} of {} verdicts failed", failed.len(), verdicts.len())
        },
        results.cases.len()
    ));
    out.push(&format!(
        "Commit `{}`, started {} on {} ({} CPUs, {}).\n\n",
        run.git_commit.as_deref().unwrap_or("unknown"),
        run.started_at,
        run.host.os,
        run.host.cpus,
        schema::units::format_bytes(run.host.memory_bytes as f64),
    ));
    const TABLE_HEAD: &str = "| verdict | words | expected | measured |\n|---|---|---|---|\n";
    if !failed.is_empty() {
        out.push(&format!("### What failed\n\n{TABLE_HEAD}"));
        let rows: Vec<String> = failed.iter().map(|v| verdict_table_row(v)).collect();
        out.push_rows(&rows);
        out.push("\n");
        // A command's heap meter records no sites: said once per failing scenario, with the tool that does.
        let command_notes: Vec<String> = scenarios
            .iter()
            .filter(|s| {
                failed
                    .iter()
                    .any(|v| v.id.starts_with(&format!("{}/", s.scenario)))
            })
            .filter_map(|s| {
                let technique = s.spec?.external.values().next()?;
                Some(format!(
                    "- `{}`: {}\n",
                    s.scenario,
                    crate::site_diff::sites_not_recorded(technique)
                ))
            })
            .collect();
        if !command_notes.is_empty() {
            out.push("Allocation sites of the failing command scenarios:\n\n");
            out.push_rows(&command_notes);
            out.push("\n");
        }
    }
    let improved: Vec<String> = verdicts
        .iter()
        .filter(|v| v.pass && v.change == Some(Change::Improved))
        .map(verdict_table_row)
        .collect();
    if !improved.is_empty() {
        out.push(&format!(
            "### Improved beyond noise against the baseline\n\n{TABLE_HEAD}"
        ));
        out.push_rows(&improved);
        out.push("\n");
    }
    out.push("### Scenarios\n\n| scenario | peak heap at the largest size | size | verdicts | claims that hold |\n|---|---|---|---|---|\n");
    let rows: Vec<String> = scenarios
        .iter()
        .map(|scenario| scenario_row(scenario, verdicts))
        .collect();
    out.push_rows(&rows);
    out.push("\n");
    let regressions = verdicts
        .iter()
        .filter(|v| v.kind == schema::results::VerdictKind::Regression)
        .count();
    if regressions == 0 {
        out.push(&format!(
            "No baseline was compared, so there are no regression verdicts. Record one with `{}`.\n\n",
            results.run.command("bless")
        ));
    } else {
        if let Some(notice) =
            crate::baseline::without_baseline_notice(&results.without_baseline, &results.run)
        {
            out.push(&format!("{notice}\n\n"));
        }
        let count = |change: Change| verdicts.iter().filter(|v| v.change == Some(change)).count();
        out.push(&format!(
            "Against the baseline, {regressions} figures compared: {} regressed, {} improved, {} within noise.\n\n",
            count(Change::Regressed),
            count(Change::Improved),
            count(Change::WithinNoise)
        ));
    }
    if !failed.is_empty() {
        out.push("<details><summary>The full text of each failure</summary>\n\n");
        let rows: Vec<String> = failed
            .iter()
            .map(|verdict| {
                format!(
                    "`{}`\n\n```text\n{}\n```\n\n",
                    escape_markdown_cell(&verdict.id),
                    cut(&verdict.text.replace("```", "'''"), FAILURE_TEXT_LIMIT)
                )
            })
            .collect();
        out.push_rows(&rows);
        out.push("</details>\n\n");
    }
    let passing: Vec<String> = verdicts
        .iter()
        .filter(|v| v.pass && v.kind != schema::results::VerdictKind::Regression)
        .map(verdict_table_row)
        .collect();
    if !passing.is_empty() {
        out.push(&format!(
            "<details><summary>✅ {} verdicts hold</summary>\n\n{TABLE_HEAD}",
            passing.len()
        ));
        out.push_rows(&passing);
        out.push("\n</details>\n\n");
    }
    if !scenarios.is_empty() {
        out.push("<details><summary>Peaks at every size, before → after → best</summary>\n\n");
        let rows: Vec<String> = scenarios
            .iter()
            .map(|scenario| {
                format!(
                    "**{}**\n\n{}\n{}\n{}",
                    escape_role(&scenario.scenario),
                    peaks_table(scenario, "Peak heap", |case| case.peak_heap_bytes),
                    peaks_table(scenario, "Peak RSS", |case| case.peak_rss_bytes),
                    repeated_table(scenario)
                )
            })
            .collect();
        out.push_rows(&rows);
        out.push("</details>\n\n");
    }
    // dhat profiles only exist for memproof's own case binaries: a run of command scenarios alone has none to list.
    let commands_only = !scenarios.is_empty()
        && scenarios.iter().all(|s| {
            s.spec
                .is_some_and(|spec| spec.built_in_techniques().is_empty())
        });
    if commands_only {
        out.push(
            "Heap figures come from a run of each case with the program's heap meter on; RSS, outcome and time from \
             a run without it.\n\nCharts and case tables: `index.html` beside this file.\n",
        );
    } else {
        push_profiled(&mut out, results);
        out.push("Charts, case tables and dhat profiles: `index.html` beside this file.\n");
    }
    out.into_text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_of_a_family_are_compared_within_it() {
        let roles: Vec<String> = [
            "before",
            "after",
            "best",
            "before_killed",
            "after_killed",
            "best_pruned",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(comparison_base("after", &roles), "before");
        assert_eq!(comparison_base("after_killed", &roles), "before_killed");
        assert_eq!(comparison_base("before_killed", &roles), "before_killed");
        assert_eq!(
            comparison_base("best_pruned", &roles),
            "before",
            "no before_pruned: the first role"
        );
    }

    #[test]
    fn a_repeated_case_shows_its_spread_under_the_peaks() {
        let mut results = crate::fixture_run::results();
        let once = results.cases[2].clone();
        let runs: Vec<Case> = [3u64, 1, 2]
            .iter()
            .map(|mib| Case {
                peak_heap_bytes: Some(mib << 20),
                peak_rss_bytes: Some(8 << 20),
                ..once.clone()
            })
            .collect();
        results.cases[2] = planning::repeat::combine(runs);
        let scenarios = super::super::scenario_reports(&results, &[]);
        let summary = render_summary(&results, &scenarios);
        assert!(
            summary.contains(
                "| `large-session/before/log_bytes=33554432` | 3 | 1.00 MiB / 2.00 MiB / 3.00 MiB (3.00x) | 8.00 MiB / 8.00 MiB / 8.00 MiB (1.00x) |"
            ),
            "{summary}"
        );
        assert_eq!(summary.matches("Repeated cases").count(), 1);
    }

    #[test]
    fn the_profiled_cases_are_counted_by_why() {
        let mut results = Results::read(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results.json"),
        )
        .unwrap();
        for case in &mut results.cases {
            case.dhat_run = None;
        }
        let none = render_summary(&results, &[]);
        assert!(none.contains("No case was profiled under dhat in this run."));
        for (index, reason) in [(1, "spec"), (2, "spec"), (3, "failed: large-session/x")] {
            results.cases[index].dhat_run = Some(schema::results::DhatRun {
                outcome: Outcome::Ok,
                peak_heap_bytes: Some(1),
                total_alloc_bytes: Some(1),
                alloc_count: Some(1),
                wall_ms: 1.0,
                reason: Some(reason.to_string()),
            });
        }
        let text = render_summary(&results, &[]);
        assert!(
            text.contains("dhat profiles of 3 cases, by why they were made:\n\n- `failed: large-session/x`: 1\n- `spec`: 2\n"),
            "{text}"
        );
    }

    #[test]
    fn ratios_read_as_less_or_more() {
        assert_eq!(ratio_words(100.0, 40.0), "2.50x less");
        assert_eq!(ratio_words(100.0, 1.0), "100.0x less");
        assert_eq!(ratio_words(40.0, 52.0), "1.30x more");
        assert_eq!(ratio_words(40.0, 40.1), "same");
        assert_eq!(ratio_words(0.0, 40.0), "");
    }
}
