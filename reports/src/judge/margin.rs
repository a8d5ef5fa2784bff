//! How far each spec verdict of a run sits from its threshold: the margin its bound leaves over what was measured.
//!
//! Why: a spec states the claim and the bound, not what a run measured; figures copied into its comments go stale
//! with the next change. How close a verdict is to failing is a question for the run itself:
//! `cargo xtask report DIR --margins` prints this table from the run's results.json.
//!
//! The margin is the tightest over the cases the verdict judges: for a budget or a claim, the factor by which the
//! closest figure may move before the check fails (`2.50x` for a peak of 12.8 MiB under a 32 MiB bound; below 1x it
//! fails); for a growth verdict, the fitted exponent's distance to the shape's threshold. An outcome, an `==` or a
//! lower bound of 0 has no margin: it holds or it does not.

use super::check_expression::{CheckExpression, Comparison, GrowthShape, parse_verdict_check};
use super::growth_fit::fit_power_law;
use super::{ScenarioCases, metric_value, size_label};
use schema::results::{Outcome, Results};
use schema::spec::{At, Spec};

/// One verdict's margin over its threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Margin {
    /// `scenario/verdict-id`.
    pub id: String,
    /// The check as the spec writes it.
    pub check: String,
    /// The judged figure closest to the bound, with its size.
    pub closest: String,
    /// How far it is from failing, in words: `2.50x`, `0.030 under the 0.25 bound` (a growth exponent), or `-` where
    /// no margin applies.
    pub margin: String,
}

/// The margin of every spec verdict that applies to the run's profile, for the scenarios that ran.
pub fn margins(results: &Results, specs: &[Spec]) -> Vec<Margin> {
    let mut margins = Vec::new();
    for spec in specs {
        let scenario = ScenarioCases::new(results, &spec.scenario);
        if scenario.cases.is_empty() {
            continue;
        }
        for verdict in spec.verdicts_for(&results.run.profile) {
            let (closest, margin) = match parse_verdict_check(spec, verdict) {
                Ok(expression) => of_check(&scenario, &verdict.at, &expression)
                    .unwrap_or_else(|why| ("not judged".to_string(), why)),
                Err(error) => ("not judged".to_string(), format!("{error:#}")),
            };
            margins.push(Margin {
                id: format!("{}/{}", spec.scenario, verdict.id),
                check: verdict.check.clone(),
                closest,
                margin,
            });
        }
    }
    margins
}

/// The margins as a Markdown table.
pub fn margin_table(margins: &[Margin]) -> String {
    let mut table =
        "| verdict | check | closest to the bound | margin |\n|---|---|---|---:|\n".to_string();
    for margin in margins {
        table.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            margin.id, margin.check, margin.closest, margin.margin
        ));
    }
    table
}

/// The factor by which `value` may move before `value OP bound` fails; `None` where no factor measures it (`==`, or
/// a lower bound of 0, which a figure either clears or not).
fn factor(value: f64, comparison: Comparison, bound: f64) -> Option<f64> {
    match comparison {
        Comparison::AtMost | Comparison::Below => Some(if value > 0.0 {
            bound / value
        } else {
            f64::INFINITY
        }),
        Comparison::AtLeast | Comparison::Above if bound > 0.0 => Some(value / bound),
        Comparison::AtLeast | Comparison::Above | Comparison::Equal => None,
    }
}

fn factor_words(factor: f64) -> String {
    if factor.is_finite() {
        format!("{factor:.2}x")
    } else {
        "unbounded".to_string()
    }
}

/// Of the judged `figures` (each value with how it is shown), the one closest to failing `value OP bound`, and its
/// margin; the first figure with `-` where no factor measures the margin.
fn closest(figures: Vec<(f64, String)>, comparison: Comparison, bound: f64) -> (String, String) {
    let mut tightest: Option<(f64, String)> = None;
    for (value, shown) in figures {
        let Some(factor) = factor(value, comparison, bound) else {
            return (shown, "-".to_string());
        };
        if tightest.as_ref().is_none_or(|(best, _)| factor < *best) {
            tightest = Some((factor, shown));
        }
    }
    tightest.map_or_else(
        || ("none".to_string(), "-".to_string()),
        |(factor, shown)| (shown, factor_words(factor)),
    )
}

/// The closest judged figure and its margin, for one check.
fn of_check(
    scenario: &ScenarioCases,
    at: &At,
    expression: &CheckExpression,
) -> Result<(String, String), String> {
    let unjudged = |why: super::Unjudgeable| why.0;
    match expression {
        CheckExpression::Budget {
            operand,
            comparison,
            bound,
        } => {
            let mut figures = Vec::new();
            for case in scenario.select(&operand.role, at)? {
                let value = metric_value(operand, case).map_err(unjudged)?;
                let shown = format!("{} at {}", operand.metric.format(value), size_label(case));
                figures.push((value, shown));
            }
            Ok(closest(figures, *comparison, *bound))
        }
        CheckExpression::Claim {
            numerator,
            denominator,
            comparison,
            bound,
        } => {
            let mut figures = Vec::new();
            for (top_case, bottom_case) in
                scenario.select_pairs(&numerator.role, &denominator.role, at)?
            {
                let top = metric_value(numerator, top_case).map_err(unjudged)?;
                let bottom = metric_value(denominator, bottom_case).map_err(unjudged)?;
                let ratio = if bottom == 0.0 {
                    if top == 0.0 { 1.0 } else { f64::INFINITY }
                } else {
                    top / bottom
                };
                figures.push((ratio, format!("{ratio:.2} at {}", size_label(top_case))));
            }
            Ok(closest(figures, *comparison, *bound))
        }
        CheckExpression::Growth { operand, shape } => {
            let mut points = Vec::new();
            for case in scenario.select(&operand.role, &At::All)? {
                if case.outcome == Outcome::Ok {
                    points.push((
                        case.size.value,
                        metric_value(operand, case).map_err(unjudged)?,
                    ));
                }
            }
            let fit = fit_power_law(&points).ok_or("too few sizes to fit a growth exponent")?;
            let exponent = fit.exponent;
            let margin = match *shape {
                GrowthShape::Flat { max_exponent } => {
                    format!(
                        "{:.3} under the {max_exponent} bound",
                        max_exponent - exponent
                    )
                }
                GrowthShape::Linear {
                    min_exponent,
                    max_exponent,
                } => format!(
                    "{:.3} inside {min_exponent}..{max_exponent}",
                    (exponent - min_exponent).min(max_exponent - exponent)
                ),
            };
            Ok((format!("exponent {exponent:.3}"), margin))
        }
        CheckExpression::Outcome { role, .. } => {
            let cases = scenario.select(role, at)?;
            let ended: Vec<String> = cases
                .iter()
                .map(|case| format!("{} at {}", case.outcome, size_label(case)))
                .collect();
            Ok((ended.join(", "), "-".to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_factor_says_how_far_a_figure_may_move_before_its_check_fails() {
        assert_eq!(factor(8.0, Comparison::AtMost, 32.0), Some(4.0));
        assert_eq!(factor(40.0, Comparison::AtLeast, 10.0), Some(4.0));
        assert_eq!(factor(5.0, Comparison::AtLeast, 10.0), Some(0.5));
        assert_eq!(factor(0.0, Comparison::AtMost, 4096.0), Some(f64::INFINITY));
        assert_eq!(factor(3.0, Comparison::Above, 0.0), None);
        assert_eq!(factor(0.0, Comparison::Equal, 0.0), None);
        assert_eq!(factor_words(2.5), "2.50x");
        assert_eq!(factor_words(f64::INFINITY), "unbounded");
    }

    #[test]
    fn every_verdict_of_the_fixture_run_gets_its_closest_figure_and_margin() {
        let results = crate::fixture_run::results();
        let spec = Spec::read(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/large-session.toml"),
        )
        .unwrap();
        assert_eq!(
            margin_table(&margins(&results, &[spec])),
            "| verdict | check | closest to the bound | margin |
|---|---|---|---:|
| `large-session/before-is-killed` | `before.outcome == oom-killed` | oom-killed at log_bytes=64.0 MiB | - |
| `large-session/fix-cuts-peak` | `before.peak_heap_bytes / after.peak_heap_bytes >= 2` | 2.50 at log_bytes=32.0 MiB | 1.25x |
| `large-session/after-fits-64mib` | `after.peak_heap_bytes <= 64MiB` | 80.0 MiB at log_bytes=64.0 MiB | 0.80x |
| `large-session/best-is-small` | `best.peak_heap_bytes <= 4MiB` | 1.20 MiB at log_bytes=64.0 MiB | 3.32x |
| `large-session/best-is-flat` | `best.peak_heap_bytes is flat` | exponent 0.002 | 0.248 under the 0.25 bound |
| `large-session/after-streams` | `after.peak_heap_bytes is flat` | exponent 1.000 | -0.750 under the 0.25 bound |
"
        );
    }
}
