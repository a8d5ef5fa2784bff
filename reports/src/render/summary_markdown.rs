//! `summary.md`: the run in a form to paste as a PR comment (and to append to `$GITHUB_STEP_SUMMARY`): the
//! verdict table with failures first, the full text of each failure, and per scenario the peaks of each role side
//! by side, before → after → best, with each role's ratio to the first.

use super::ScenarioReport;
use super::text_escaping::escape_markdown_cell;
use crate::judge::format_size_value;
use harness::results::{Case, Outcome, Results, Verdict};

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

fn verdict_row(verdict: &Verdict) -> String {
    let mark = if verdict.pass {
        "✅ pass"
    } else {
        "❌ **fail**"
    };
    let first_line = verdict.text.lines().next().unwrap_or_default();
    let words = if verdict.pass {
        first_line.to_string()
    } else {
        // A failure's headline repeats the id; the id column already has it.
        first_line
            .strip_prefix(&format!("{}: ", verdict.id))
            .unwrap_or(first_line)
            .to_string()
    };
    format!(
        "| {mark} | `{}` | {} | `{}` | {} |\n",
        escape_markdown_cell(&verdict.id),
        escape_markdown_cell(&words),
        escape_markdown_cell(&verdict.expected).replace('`', "'"),
        escape_markdown_cell(&crate::judge::counterfactual::measured_with_proof(verdict))
    )
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
        Some(bytes) => harness::units::format_bytes(bytes as f64),
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

fn peaks_table(
    scenario: &ScenarioReport,
    heading: &str,
    figure: fn(&Case) -> Option<u64>,
) -> String {
    let size_name = &scenario.cases[0].size.name;
    let unit = &scenario.cases[0].size.unit;
    let mut table = format!("{heading}, {}:\n\n", scenario.roles.join(" → "));
    table.push_str(&format!(
        "| {size_name} | {} |\n",
        scenario.roles.join(" | ")
    ));
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

/// The summary of a run, in GitHub-flavoured Markdown.
pub fn render_summary(results: &Results, scenarios: &[ScenarioReport]) -> String {
    let run = &results.run;
    let verdicts = &results.verdicts;
    let failed: Vec<&Verdict> = verdicts.iter().filter(|v| !v.pass).collect();
    let mut text = format!(
        "## memproof `{}` run: {}\n\n",
        run.profile,
        if failed.is_empty() {
            format!("all {} verdicts pass", verdicts.len())
        } else {
            format!("{} of {} verdicts failed", failed.len(), verdicts.len())
        }
    );
    text.push_str(&format!(
        "Commit `{}`, started {} on {} ({} CPUs, {}), {} cases.\n\n",
        run.git_commit.as_deref().unwrap_or("unknown"),
        run.started_at,
        run.host.os,
        run.host.cpus,
        harness::units::format_bytes(run.host.memory_bytes as f64),
        results.cases.len()
    ));
    let regressions: Vec<&Verdict> = verdicts.iter().filter(|v| v.kind == "regression").collect();
    let shown = super::verdicts_for_main_table(verdicts);
    if shown.is_empty() {
        text.push_str("No verdicts were judged in this run.\n\n");
    } else {
        text.push_str("| | verdict | words | expected | measured |\n|---|---|---|---|---|\n");
        for verdict in &shown {
            text.push_str(&verdict_row(verdict));
        }
        text.push('\n');
    }
    if regressions.is_empty() {
        text.push_str(
            "No baseline was compared, so there are no regression verdicts. Record one with `cargo xtask bless`.\n\n",
        );
    } else {
        let count = |word: &str| {
            regressions
                .iter()
                .filter(|v| v.text.contains(&format!(": {word} against")))
                .count()
        };
        text.push_str(&format!(
            "Against the baseline, {} figures compared: {} regressed, {} improved, {} within noise.\n\n",
            regressions.len(),
            count("regressed"),
            count("improved"),
            count("within noise")
        ));
    }
    if !failed.is_empty() {
        text.push_str("### Failures\n\n");
        for verdict in &failed {
            text.push_str(&format!(
                "<details><summary><code>{}</code></summary>\n\n```text\n{}\n```\n\n</details>\n\n",
                super::text_escaping::escape_markup(&verdict.id),
                verdict.text.replace("```", "'''")
            ));
        }
    }
    for scenario in scenarios {
        let seed = scenario
            .spec
            .and_then(|spec| spec.seed.as_deref())
            .map(|seed| format!(" (seed {seed})"))
            .unwrap_or_default();
        match scenario.spec {
            Some(spec) => text.push_str(&format!(
                "### {}: {}{seed}\n\n",
                scenario.scenario, spec.title
            )),
            None => text.push_str(&format!("### {}\n\n", scenario.scenario)),
        }
        if let Some(spec) = scenario.spec {
            text.push_str(&format!(
                "> {}\n\n",
                spec.summary.trim().replace('\n', "\n> ")
            ));
        }
        text.push_str(&peaks_table(scenario, "Peak heap", |case| {
            case.peak_heap_bytes
        }));
        text.push('\n');
        text.push_str(&peaks_table(scenario, "Peak RSS", |case| {
            case.peak_rss_bytes
        }));
        text.push('\n');
    }
    text.push_str("Charts, case tables and dhat profiles: `index.html` beside this file.\n");
    text
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
    fn ratios_read_as_less_or_more() {
        assert_eq!(ratio_words(100.0, 40.0), "2.50x less");
        assert_eq!(ratio_words(100.0, 1.0), "100.0x less");
        assert_eq!(ratio_words(40.0, 52.0), "1.30x more");
        assert_eq!(ratio_words(40.0, 40.1), "same");
        assert_eq!(ratio_words(0.0, 40.0), "");
    }
}
