//! The judge: turns the measured cases of a run and the verdicts its specs declare into pass/fail verdicts with
//! text a person can act on.
//!
//! The seeds' PRs made claims in words ("12 inits in flight pin ~36x the binary", "peak no longer grows with the
//! log"); a spec writes each one as a `check` ([`check_expression`]) and the judge holds it against the numbers:
//! budgets, claims (ratios between roles), outcomes (seed C's `before` is OOM-killed under its 512 MiB limit),
//! growth over a size sweep ([`growth_fit`]), and regressions against a baseline ([`regression`]). A claim the
//! measurement refutes is kept as a finding (`expect = "refuted"`): it passes while it stays refuted and fails the
//! day it starts to hold, so the report keeps saying what a fix did not achieve.
//!
//! Failure text follows pytest-memray: a one-line headline with the verdict's id and words, the bound and the
//! measured values with units, then for a heap figure the top allocation sites of the failing case from its dhat
//! profile ([`crate::allocation_sites`]).

pub mod calibration;
pub mod check_expression;
pub mod counterfactual;
pub mod growth_fit;
pub mod margin;
pub mod regression;
pub mod tolerance;

use crate::allocation_sites::{SiteRanking, push_case_sites};
use check_expression::{
    CheckExpression, Comparison, GrowthShape, Metric, Operand, format_plain_number,
    parse_verdict_check,
};
use growth_fit::{MIN_SIZES, fit_power_law};
use schema::results::{Case, Outcome, Results, Verdict};
use schema::spec::{At, Spec, VerdictSpec};
use std::path::Path;

/// Parses every verdict `check` of every spec up front, so a typo stops the run before any case is measured.
/// Every error is reported, one per line, as `{spec path}:{line}:{col}: verdict {id}: {what was expected}`; an
/// unknown role or metric lists the valid ones. `metrics.<name>` is accepted for any name: which figures a
/// scenario reports is only known after a run, and a missing one fails its verdict then. A verdict must also be
/// judgeable in every profile it applies to: its roles run there, its `at` size is one of the profile's sizes, and
/// a growth verdict has at least three sizes to fit.
pub fn check_specs(specs: &[Spec]) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for spec in specs {
        for verdict in &spec.verdicts {
            match parse_verdict_check(spec, verdict) {
                Err(error) => errors.push(error.to_string()),
                Ok(expression) => {
                    errors.extend(check_judgeable_in_profiles(spec, verdict, &expression));
                    errors.extend(counterfactual::check_counterfactual(
                        spec,
                        verdict,
                        &expression,
                    ));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", errors.join("\n"))
    }
}

pub(crate) fn roles_of(expression: &CheckExpression) -> Vec<&str> {
    match expression {
        CheckExpression::Budget { operand, .. } | CheckExpression::Growth { operand, .. } => {
            vec![operand.role.as_str()]
        }
        CheckExpression::Claim {
            numerator,
            denominator,
            ..
        } => vec![numerator.role.as_str(), denominator.role.as_str()],
        CheckExpression::Outcome { role, .. } => vec![role.as_str()],
    }
}

/// Why `verdict` could not be judged in some profile it applies to, one message per problem.
fn check_judgeable_in_profiles(
    spec: &Spec,
    verdict: &VerdictSpec,
    expression: &CheckExpression,
) -> Vec<String> {
    let place = format!("{}: verdict {}", verdict.place(&spec.path, 0), verdict.id);
    let mut errors = Vec::new();
    for (name, profile) in &spec.profiles {
        if verdict
            .profiles
            .as_ref()
            .is_some_and(|wanted| !wanted.contains(name))
        {
            continue;
        }
        let running: Vec<&str> = spec
            .roles_in(profile)
            .iter()
            .map(|variant| variant.role.as_str())
            .collect();
        for role in roles_of(expression) {
            if !running.contains(&role) {
                errors.push(format!(
                    "{place}: role {role} does not run in profile {name} (it runs {}): expected `profiles = [...]` without {name}, or {role} in its roles",
                    running.join(", ")
                ));
            }
        }
        let sizes = &profile.size.values;
        if let At::Value(value) = verdict.at
            && !sizes.contains(&value)
        {
            errors.push(format!(
                "{place}: at = {} is not a size of profile {name} ({}): expected one of its sizes, or `profiles = [...]` without {name}",
                format_plain_number(value),
                sizes.iter().map(|v| format_plain_number(*v)).collect::<Vec<_>>().join(", ")
            ));
        }
        if matches!(expression, CheckExpression::Growth { .. }) && sizes.len() < MIN_SIZES {
            errors.push(format!(
                "{place}: a growth verdict needs at least {MIN_SIZES} sizes, and profile {name} has {}: expected more sizes, or `profiles = [...]` without {name}",
                sizes.len()
            ));
        }
    }
    errors
}

/// Judges the results without reading dhat profiles (a failing heap verdict names the profile file instead of
/// listing its sites). Use [`judge_with_profiles`] when the results' directory is at hand.
pub fn judge(results: &Results, specs: &[Spec], baseline: Option<&Results>) -> Vec<Verdict> {
    judge_in(results, None, specs, baseline)
}

/// Judges the results; `results_dir` is the run's output directory, where each case's `dhat_file` lies, so a
/// failing heap verdict lists the top allocation sites of the failing case.
///
/// Returns one verdict per spec verdict that applies to `results.run.profile` (for scenarios that have cases in
/// this run), one `case` verdict for every case whose outcome is not `ok` and that no outcome verdict expects, and,
/// with a baseline, a `regression` verdict for every case field of every case present in both runs.
pub fn judge_with_profiles(
    results: &Results,
    results_dir: &Path,
    specs: &[Spec],
    baseline: Option<&Results>,
) -> Vec<Verdict> {
    judge_in(results, Some(results_dir), specs, baseline)
}

fn judge_in(
    results: &Results,
    results_dir: Option<&Path>,
    specs: &[Spec],
    baseline: Option<&Results>,
) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    let mut expected_cases: Vec<&str> = Vec::new();
    for spec in specs {
        let scenario = ScenarioCases::new(results, &spec.scenario);
        if scenario.cases.is_empty() {
            continue;
        }
        for verdict_spec in spec.verdicts_for(&results.run.profile) {
            let expression = parse_verdict_check(spec, verdict_spec);
            if let Ok(CheckExpression::Outcome {
                role,
                equal,
                outcome,
            }) = &expression
                && let Ok(cases) = scenario.select(role, &verdict_spec.at)
            {
                for case in cases {
                    let covers = if *equal {
                        case.outcome == *outcome
                    } else {
                        *outcome == Outcome::Ok
                    };
                    if covers {
                        expected_cases.push(&case.id);
                    }
                }
            }
            verdicts.push(match expression {
                Ok(expression) => {
                    let verdict = judge_one(&scenario, verdict_spec, &expression, results_dir);
                    counterfactual::prove(verdict, &scenario, spec, verdict_spec, &expression)
                }
                Err(error) => Verdict {
                    change: None,
                    id: format!("{}/{}", spec.scenario, verdict_spec.id),
                    kind: verdict_spec.kind,
                    subject: spec.scenario.clone(),
                    text: format!("{error:#}"),
                    expected: verdict_spec.check.clone(),
                    measured: "not judged".to_string(),
                    pass: false,
                    counterfactual: None,
                },
            });
        }
    }
    for case in &results.cases {
        // A counterfactual case may well end oom-killed: that is the evidence; its verdicts judge it.
        if case.outcome != Outcome::Ok
            && !expected_cases.contains(&case.id.as_str())
            && case.counterfactual.is_none()
        {
            verdicts.push(unexpected_outcome_verdict(case));
        }
    }
    if let Some(baseline) = baseline {
        verdicts.extend(regression::regression_verdicts(
            results,
            baseline,
            specs,
            results_dir,
            "the baseline",
            None,
        ));
    }
    verdicts
}

fn unexpected_outcome_verdict(case: &Case) -> Verdict {
    let mut how = Vec::new();
    if let Some(code) = case.exit.code {
        how.push(format!("exit code {code}"));
    }
    if let Some(signal) = case.exit.signal {
        how.push(format!("signal {signal}"));
    }
    let message = case
        .exit
        .message
        .as_deref()
        .map(|message| format!("\n{}", message.trim_end()))
        .unwrap_or_default();
    let how = if how.is_empty() {
        String::new()
    } else {
        format!(" ({})", how.join(", "))
    };
    Verdict {
        change: None,
        id: case.id.clone(),
        kind: schema::results::VerdictKind::Case,
        subject: case.id.clone(),
        text: format!(
            "{} ended {}{how} and no outcome verdict expects it{message}",
            case.id, case.outcome
        ),
        expected: "ok".to_string(),
        measured: case.outcome.to_string(),
        pass: false,
        counterfactual: None,
    }
}

/// The cases of one scenario in a run, with the selection rules verdicts use.
struct ScenarioCases<'a> {
    scenario: &'a str,
    cases: Vec<&'a Case>,
    /// `(role, variant)`: the cases of `variant` stand in for `role`'s (a counterfactual judged in the fix's
    /// place).
    stand_in: Option<(String, String)>,
}

/// `items=40`, `log_bytes=64.0 MiB`: a case's size as a person reads it.
pub fn size_label(case: &Case) -> String {
    format!(
        "{}={}",
        case.size.name,
        format_size_value(case.size.value, &case.size.unit)
    )
}

/// A size value in its unit: bytes in binary units, anything else as a plain number.
pub fn format_size_value(value: f64, unit: &str) -> String {
    if unit == "bytes" {
        schema::units::format_bytes(value)
    } else {
        format_plain_number(value)
    }
}

impl<'a> ScenarioCases<'a> {
    fn new(results: &'a Results, scenario: &'a str) -> Self {
        let mut cases: Vec<&Case> = results.scenario_cases(scenario).collect();
        cases.sort_by(|a, b| a.size.value.total_cmp(&b.size.value));
        ScenarioCases {
            scenario,
            cases,
            stand_in: None,
        }
    }

    /// The same cases, with `variant`'s standing in for `role`'s.
    fn with_stand_in(&self, role: &str, variant: &str) -> ScenarioCases<'a> {
        ScenarioCases {
            scenario: self.scenario,
            cases: self.cases.clone(),
            stand_in: Some((role.to_string(), variant.to_string())),
        }
    }

    fn of_role(&self, role: &str) -> Vec<&'a Case> {
        let variant = match &self.stand_in {
            Some((stood_for, variant)) if stood_for == role => variant.as_str(),
            _ => role,
        };
        self.cases
            .iter()
            .copied()
            .filter(|case| case.role == variant)
            .collect()
    }

    fn sizes_text(cases: &[&Case]) -> String {
        cases
            .iter()
            .map(|case| format_size_value(case.size.value, &case.size.unit))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The cases of `role` that `at` picks, smallest size first.
    fn select(&self, role: &str, at: &At) -> Result<Vec<&'a Case>, String> {
        let cases = self.of_role(role);
        if cases.is_empty() {
            return Err(format!(
                "no {role} case ran in scenario {} in this run",
                self.scenario
            ));
        }
        let picked = match at {
            At::All => cases.clone(),
            At::Largest => vec![*cases.last().expect("not empty")],
            At::Smallest => vec![cases[0]],
            At::Value(value) => cases
                .iter()
                .copied()
                .filter(|case| case.size.value == *value)
                .collect(),
        };
        if picked.is_empty() {
            return Err(format!(
                "no {role} case at {}={} in this run; its sizes: {}",
                cases[0].size.name,
                format_size_value(
                    match at {
                        At::Value(value) => *value,
                        _ => f64::NAN,
                    },
                    &cases[0].size.unit
                ),
                Self::sizes_text(&cases)
            ));
        }
        Ok(picked)
    }

    /// Pairs of cases of two roles at the same size, as `at` picks among the sizes both ran.
    fn select_pairs(
        &self,
        numerator_role: &str,
        denominator_role: &str,
        at: &At,
    ) -> Result<Vec<(&'a Case, &'a Case)>, String> {
        let numerators = self.select(numerator_role, &At::All)?;
        let denominators = self.select(denominator_role, &At::All)?;
        let pairs: Vec<(&Case, &Case)> = numerators
            .iter()
            .filter_map(|n| {
                denominators
                    .iter()
                    .find(|d| d.size.value == n.size.value)
                    .map(|d| (*n, *d))
            })
            .collect();
        if pairs.is_empty() {
            return Err(format!(
                "{numerator_role} and {denominator_role} share no size in this run ({numerator_role}: {}; {denominator_role}: {})",
                Self::sizes_text(&numerators),
                Self::sizes_text(&denominators)
            ));
        }
        let picked = match at {
            At::All => pairs,
            At::Largest => vec![*pairs.last().expect("not empty")],
            At::Smallest => vec![pairs[0]],
            At::Value(value) => pairs
                .into_iter()
                .filter(|(n, _)| n.size.value == *value)
                .collect(),
        };
        if picked.is_empty() {
            return Err(format!(
                "{numerator_role} and {denominator_role} did not both run at the size the verdict names"
            ));
        }
        Ok(picked)
    }
}

/// What a check found, before it becomes a verdict.
struct Judgement<'a> {
    /// Whether the checked statement holds (before a finding's inversion).
    holds: bool,
    /// The figures with units, for the `measured` column.
    measured: String,
    /// The statement with its figures: "after.peak_heap_bytes was limited to 64.0 MiB but measured 87.3 MiB at
    /// items=40" when it does not hold, "after.peak_heap_bytes <= 64.0 MiB: measured 12.0 MiB at items=40" when it
    /// does.
    statement: String,
    /// The case whose dhat profile explains a heap figure, with the ranking that fits the metric.
    evidence: Option<(&'a Case, SiteRanking)>,
}

/// Why a verdict could not be judged at all (a missing case or metric): it fails whatever it expected.
struct Unjudgeable(String);

fn metric_value(operand: &Operand, case: &Case) -> Result<f64, Unjudgeable> {
    operand
        .metric
        .value(case)
        .ok_or_else(|| missing_metric(operand, case))
}

/// Why a case has no value for a metric, listing what it did report.
fn missing_metric(operand: &Operand, case: &Case) -> Unjudgeable {
    Unjudgeable(match &operand.metric {
        Metric::Scenario(_) => {
            let reported: Vec<String> = case
                .metrics
                .keys()
                .map(|name| format!("metrics.{name}"))
                .collect();
            format!(
                "{operand} was not reported by {}, which reported {}",
                case.id,
                if reported.is_empty() {
                    "no scenario metrics".to_string()
                } else {
                    reported.join(", ")
                }
            )
        }
        Metric::Field(_) | Metric::Recorded(_) => format!(
            "{operand} is null for {} (it ended {}), so it cannot be judged",
            case.id, case.outcome
        ),
        Metric::PhaseHeap(_) => format!(
            "{operand} was not recorded by {}, whose phase marks were {}",
            case.id,
            case.phases
                .iter()
                .map(|phase| match phase.heap_bytes {
                    Some(_) => format!("{} (heap recorded)", phase.name.replace(' ', "_")),
                    None => format!("{} (no heap)", phase.name.replace(' ', "_")),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

fn judge_budget<'a>(
    scenario: &ScenarioCases<'a>,
    at: &At,
    operand: &Operand,
    comparison: Comparison,
    bound: f64,
) -> Result<Judgement<'a>, Unjudgeable> {
    let cases = scenario.select(&operand.role, at).map_err(Unjudgeable)?;
    let tally = tally(cases, |case| {
        let value = metric_value(operand, case)?;
        let shown = format!("{} at {}", operand.metric.format(value), size_label(case));
        Ok((shown, comparison.holds(value, bound)))
    })?;
    let evidence = tally.last_failing.zip(operand.metric.site_ranking());
    Ok(compared(
        &operand.to_string(),
        comparison,
        &operand.metric.format(bound),
        tally,
        evidence,
    ))
}

/// What a verdict measured of each case (or pair of cases) it judges, in order: each figure as shown, the ones
/// that failed, and the last that failed (whose allocation sites a failing verdict shows).
struct Tally<T> {
    all: Vec<String>,
    failing: Vec<String>,
    last_failing: Option<T>,
}

/// Judges each of `items`: `judge` gives its figure as shown and whether it holds; an unjudgeable one stops it.
fn tally<T: Copy>(
    items: impl IntoIterator<Item = T>,
    mut judge: impl FnMut(T) -> Result<(String, bool), Unjudgeable>,
) -> Result<Tally<T>, Unjudgeable> {
    let mut tally = Tally {
        all: Vec::new(),
        failing: Vec::new(),
        last_failing: None,
    };
    for item in items {
        let (shown, holds) = judge(item)?;
        if !holds {
            tally.failing.push(shown.clone());
            tally.last_failing = Some(item);
        }
        tally.all.push(shown);
    }
    Ok(tally)
}

/// The judgement of a budget or a claim: "SUBJECT <= BOUND: measured …" when every value held, "SUBJECT was limited
/// to BOUND but measured …" (the comparison's failure words) naming the values that did not.
fn compared<'a, T>(
    subject: &str,
    comparison: Comparison,
    bound_text: &str,
    Tally { all, failing, .. }: Tally<T>,
    evidence: Option<(&'a Case, SiteRanking)>,
) -> Judgement<'a> {
    let statement = if failing.is_empty() {
        format!(
            "{subject} {} {bound_text}: measured {}",
            comparison.symbol(),
            all.join(", ")
        )
    } else {
        format!(
            "{subject} {} {bound_text} but measured {}",
            comparison.failure_words(),
            failing.join(", ")
        )
    };
    Judgement {
        holds: failing.is_empty(),
        measured: all.join(", "),
        statement,
        evidence,
    }
}

fn judge_claim<'a>(
    scenario: &ScenarioCases<'a>,
    at: &At,
    numerator: &Operand,
    denominator: &Operand,
    comparison: Comparison,
    bound: f64,
) -> Result<Judgement<'a>, Unjudgeable> {
    let pairs = scenario
        .select_pairs(&numerator.role, &denominator.role, at)
        .map_err(Unjudgeable)?;
    let tally = tally(pairs, |(numerator_case, denominator_case)| {
        let top = metric_value(numerator, numerator_case)?;
        let bottom = metric_value(denominator, denominator_case)?;
        let ratio = if bottom == 0.0 {
            if top == 0.0 { 1.0 } else { f64::INFINITY }
        } else {
            top / bottom
        };
        let shown = format!(
            "{} ({} / {}) at {}",
            if ratio.is_finite() {
                format!("{ratio:.2}")
            } else {
                "infinite".to_string()
            },
            numerator.metric.format(top),
            denominator.metric.format(bottom),
            size_label(numerator_case)
        );
        Ok((shown, comparison.holds(ratio, bound)))
    })?;
    // A ratio that is too small is the denominator's doing; one that is too large, the numerator's.
    let evidence = tally
        .last_failing
        .and_then(|(numerator_case, denominator_case)| {
            let (culprit, operand) = match comparison {
                Comparison::AtLeast | Comparison::Above => (denominator_case, denominator),
                _ => (numerator_case, numerator),
            };
            operand
                .metric
                .site_ranking()
                .map(|ranking| (culprit, ranking))
        });
    Ok(compared(
        &format!("{numerator} / {denominator}"),
        comparison,
        &format_plain_number(bound),
        tally,
        evidence,
    ))
}

fn judge_outcome<'a>(
    scenario: &ScenarioCases<'a>,
    at: &At,
    role: &str,
    equal: bool,
    outcome: Outcome,
) -> Result<Judgement<'a>, Unjudgeable> {
    let cases = scenario.select(role, at).map_err(Unjudgeable)?;
    let Tally { all, failing, .. } = tally(cases, |case| {
        let shown = format!("{} at {}", case.outcome, size_label(case));
        Ok((shown, (case.outcome == outcome) == equal))
    })?;
    let expectation = if equal {
        format!("to end {outcome}")
    } else {
        format!("not to end {outcome}")
    };
    let statement = if failing.is_empty() {
        format!(
            "{role}.outcome {} {outcome}: it ended {}",
            if equal { "==" } else { "!=" },
            all.join(", ")
        )
    } else {
        format!(
            "{role} was expected {expectation} but ended {}",
            failing.join(", ")
        )
    };
    Ok(Judgement {
        holds: failing.is_empty(),
        measured: all.join(", "),
        statement,
        evidence: None,
    })
}

fn judge_growth<'a>(
    scenario: &ScenarioCases<'a>,
    operand: &Operand,
    shape: GrowthShape,
) -> Result<Judgement<'a>, Unjudgeable> {
    let cases = scenario
        .select(&operand.role, &At::All)
        .map_err(Unjudgeable)?;
    let mut points = Vec::new();
    let mut left_out = Vec::new();
    for case in &cases {
        match (case.outcome, operand.metric.value(case)) {
            (Outcome::Ok, Some(value)) => points.push((case.size.value, value)),
            (Outcome::Ok, None) => return Err(missing_metric(operand, case)),
            (outcome, _) => left_out.push(format!("{} ({outcome})", size_label(case))),
        }
    }
    let left_out_text = if left_out.is_empty() {
        String::new()
    } else {
        format!("; left out: {}", left_out.join(", "))
    };
    let Some(fit) = fit_power_law(&points) else {
        return Err(Unjudgeable(format!(
            "{operand} needs at least {MIN_SIZES} sizes with a positive value to fit a growth exponent; it has {} ({}){left_out_text}",
            points.len(),
            points
                .iter()
                .map(|(size, _)| format_size_value(*size, &cases[0].size.unit))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let first = cases[0];
    let range = format!(
        "{}={}..{} ({} sizes){left_out_text}",
        first.size.name,
        format_size_value(points.first().map_or(0.0, |p| p.0), &first.size.unit),
        format_size_value(points.last().map_or(0.0, |p| p.0), &first.size.unit),
        points.len()
    );
    let measured = format!(
        "exponent {:.3}, R² {:.3} over {range}",
        fit.exponent, fit.r_squared
    );
    let holds = shape.admits(fit.exponent);
    let threshold = shape.threshold_words();
    let statement = if holds {
        format!("{operand} is {} ({threshold}): {measured}", shape.word())
    } else {
        format!(
            "{operand} was expected {} ({threshold}) but grows with {measured}",
            shape.word()
        )
    };
    let largest = cases
        .iter()
        .rev()
        .find(|case| case.outcome == Outcome::Ok)
        .copied();
    Ok(Judgement {
        holds,
        measured,
        statement,
        evidence: largest.zip(operand.metric.site_ranking()),
    })
}

fn at_words(at: &At) -> Option<String> {
    match at {
        At::Largest => None,
        At::Smallest => Some("at the smallest size".to_string()),
        At::All => Some("at every size".to_string()),
        At::Value(value) => Some(format!("at size {}", format_plain_number(*value))),
    }
}

fn subject_of(expression: &CheckExpression) -> String {
    match expression {
        CheckExpression::Budget { operand, .. } | CheckExpression::Growth { operand, .. } => {
            operand.to_string()
        }
        CheckExpression::Claim {
            numerator,
            denominator,
            ..
        } => format!("{numerator} / {denominator}"),
        CheckExpression::Outcome { role, .. } => format!("{role}.outcome"),
    }
}

/// The check of `verdict_spec` held against `scenario`'s cases.
fn evaluate<'a>(
    scenario: &ScenarioCases<'a>,
    verdict_spec: &VerdictSpec,
    expression: &CheckExpression,
) -> Result<Judgement<'a>, Unjudgeable> {
    let at = &verdict_spec.at;
    match expression {
        CheckExpression::Budget {
            operand,
            comparison,
            bound,
        } => judge_budget(scenario, at, operand, *comparison, *bound),
        CheckExpression::Claim {
            numerator,
            denominator,
            comparison,
            bound,
        } => judge_claim(scenario, at, numerator, denominator, *comparison, *bound),
        CheckExpression::Outcome {
            role,
            equal,
            outcome,
        } => judge_outcome(scenario, at, role, *equal, *outcome),
        CheckExpression::Growth { operand, shape } => judge_growth(scenario, operand, *shape),
    }
}

fn judge_one(
    scenario: &ScenarioCases,
    verdict_spec: &VerdictSpec,
    expression: &CheckExpression,
    results_dir: Option<&Path>,
) -> Verdict {
    let at = &verdict_spec.at;
    let judged = evaluate(scenario, verdict_spec, expression);
    let id = format!("{}/{}", scenario.scenario, verdict_spec.id);
    let mut expected = verdict_spec.check.clone();
    if let Some(words) = at_words(at)
        && !matches!(expression, CheckExpression::Growth { .. })
    {
        expected.push_str(&format!(" ({words})"));
    }
    if verdict_spec.expect_refuted {
        expected = format!("refuted: {expected}");
    }
    let words = &verdict_spec.text;
    let (pass, measured, text) = match judged {
        Err(Unjudgeable(why)) => (
            false,
            "not judged".to_string(),
            format!("{id}: \"{words}\" cannot be judged: {why}"),
        ),
        Ok(judgement) => {
            let pass = judgement.holds != verdict_spec.expect_refuted;
            let text = match (pass, verdict_spec.expect_refuted) {
                (true, false) => words.clone(),
                (true, true) => format!(
                    "{words}\nStill refuted, as recorded: {}",
                    judgement.statement
                ),
                (false, false) => {
                    let mut text =
                        format!("{id}: \"{words}\" does not hold: {}", judgement.statement);
                    if let Some((case, ranking)) = judgement.evidence {
                        push_case_sites(&mut text, results_dir, case, ranking);
                    }
                    text
                }
                (false, true) => format!(
                    "{id}: finding \"{words}\" was recorded as refuted but now holds: {}\nIf the fix now achieves it, remove `expect = \"refuted\"` from the verdict so the claim is guarded from now on.",
                    judgement.statement
                ),
            };
            (pass, judgement.measured, text)
        }
    };
    Verdict {
        change: None,
        id,
        kind: verdict_spec.kind,
        subject: subject_of(expression),
        text,
        expected,
        measured,
        pass,
        counterfactual: None,
    }
}
