//! A verdict is evidence of a fix only if it can fail: this module holds each fix verdict against its
//! counterfactual, the fix minus the one change the verdict is about, and fails the verdict that passes there.
//!
//! Why: with seeded regressions, the `ci` gate passed all 49 syslog-rate verdicts with the one-trim-per-workflow
//! guard removed (at ci's rate the fast trims never overlapped, so `one-trim-per-workflow-in-flight` could not
//! fail), and all 183 hook-storm verdicts with the best store leaking a copy of every journal record it wrote.
//!
//! A spec names the counterfactual per verdict (`counterfactual = { role = "after", technique = "…" }`,
//! [`schema::spec::Counterfactual`]); `check_specs` rejects a verdict that judges a fix without one. A verdict
//! judges a fix when any role it names is not a `before` role (`before`, `before_killed`, …); one that only guards a
//! behaviour no fix changed says why (`counterfactual = { none = "…" }`), which a claim comparing two roles cannot. `load-test --prove` runs the counterfactual technique's cases ([`planning::suite::plan_counterfactuals`]);
//! the judge then evaluates the same check with those cases standing in for the fix role's and records
//! `counterfactual: { technique, measured, failed }` on the verdict. A technique some role of the spec already
//! plays (`before`'s, say) is judged on that role's cases, so it is proven in every run.

use super::{CheckExpression, ScenarioCases, Unjudgeable, evaluate, roles_of};
use schema::results::{CounterfactualResult, Outcome, Verdict, counterfactual_role};
use schema::spec::{Counterfactual, Spec, VerdictSpec};

/// The words a verdict that passes on its counterfactual fails with.
pub const CANNOT_FAIL: &str = "cannot fail: it passes without the fix";

/// Whether `role` plays the faulty code (`before`, `before_killed`, …) rather than a fix.
pub fn is_before_role(role: &str) -> bool {
    role == "before" || role.starts_with("before_")
}

/// The roles of `expression` that play a fix.
fn fix_roles(expression: &CheckExpression) -> Vec<&str> {
    let mut roles: Vec<&str> = roles_of(expression)
        .into_iter()
        .filter(|role| !is_before_role(role))
        .collect();
    roles.dedup();
    roles
}

/// Whether a verdict judges a fix, and so needs a counterfactual.
pub fn judges_fix(expression: &CheckExpression) -> bool {
    !fix_roles(expression).is_empty()
}

/// Whether a claim compares two roles (a fix with something); a ratio within one role is a leak form.
fn compares_roles(expression: &CheckExpression) -> bool {
    matches!(expression, CheckExpression::Claim { numerator, denominator, .. } if numerator.role != denominator.role)
}

/// The role whose cases the counterfactual stands in for: the spec's, or the check's one fix role.
fn stood_for_role(expression: &CheckExpression, role: Option<&str>) -> Result<String, String> {
    let fixes = fix_roles(expression);
    match role {
        Some(role) if roles_of(expression).contains(&role) => Ok(role.to_string()),
        Some(role) => Err(format!(
            "counterfactual role {role} is not a role of the check (it names {})",
            roles_of(expression).join(", ")
        )),
        None if fixes.len() == 1 => Ok(fixes[0].to_string()),
        None if fixes.is_empty() => Err(
            "the check names no fix role: expected `role = \"...\"` in the counterfactual"
                .to_string(),
        ),
        None => Err(format!(
            "the check names more than one fix role ({}): expected `role = \"...\"` in the counterfactual",
            fixes.join(", ")
        )),
    }
}

/// Why `verdict`'s counterfactual is missing or wrong, one message per problem.
pub fn check_counterfactual(
    spec: &Spec,
    verdict: &VerdictSpec,
    expression: &CheckExpression,
) -> Vec<String> {
    let place = format!("{}: verdict {}", verdict.place(&spec.path, 0), verdict.id);
    match &verdict.counterfactual {
        None if judges_fix(expression) => vec![format!(
            "{place}: it judges a fix but names no counterfactual: expected `counterfactual = {{ technique = \"...\" }}`, the fix minus the one change the verdict is about, on which it must fail"
        )],
        None => Vec::new(),
        Some(Counterfactual::None { .. }) if compares_roles(expression) => {
            vec![format!(
                "{place}: a claim compares a fix with something, so it has a counterfactual: expected `counterfactual = {{ technique = \"...\" }}`, not `none`"
            )]
        }
        Some(Counterfactual::None { .. }) => Vec::new(),
        Some(Counterfactual::Technique {
            role,
            technique,
            params,
        }) => {
            let mut errors = Vec::new();
            match stood_for_role(expression, role.as_deref()) {
                Err(why) => errors.push(format!("{place}: {why}")),
                Ok(role) => {
                    if spec.role_playing(technique, params) == Some(role.as_str()) {
                        errors.push(format!(
                            "{place}: counterfactual technique {technique} is the one {role} plays: expected the fix minus one change"
                        ));
                    }
                }
            }
            errors
        }
    }
}

/// A counterfactual as its verdict's texts name it: the technique, and its own params when it has any
/// (`debounced_snapshot_never_flushes (ending = sigkill_restart)`).
fn described(technique: &str, params: &serde_json::Map<String, serde_json::Value>) -> String {
    if params.is_empty() {
        return technique.to_string();
    }
    let params: Vec<String> = params
        .iter()
        .map(|(key, value)| format!("{key} = {}", schema::results::param_text(value)))
        .collect();
    format!("{technique} ({})", params.join(", "))
}

/// Holds `verdict` (already judged on the run's role cases) against its counterfactual when the run has the
/// counterfactual's cases, and fails it with [`CANNOT_FAIL`] if it passes there too.
pub(super) fn prove(
    mut verdict: Verdict,
    scenario: &ScenarioCases,
    spec: &Spec,
    verdict_spec: &VerdictSpec,
    expression: &CheckExpression,
) -> Verdict {
    let Some(Counterfactual::Technique {
        role,
        technique,
        params,
    }) = &verdict_spec.counterfactual
    else {
        return verdict;
    };
    let shown = described(technique, params);
    let Ok(role) = stood_for_role(expression, role.as_deref()) else {
        return verdict;
    };
    let variant = spec
        .role_playing(technique, params)
        .map_or_else(|| counterfactual_role(technique, params), str::to_string);
    let stand_in = scenario.with_stand_in(&role, &variant);
    let cases = stand_in.of_role(&role);
    if cases.is_empty() {
        return verdict;
    }
    if let Some(broken) = cases.iter().find(|case| case.outcome == Outcome::Failed) {
        verdict.pass = false;
        verdict.text = format!(
            "{}: cannot be proven: its counterfactual case {} failed to run: {}",
            verdict.id,
            broken.id,
            broken
                .exit
                .message
                .as_deref()
                .unwrap_or("no message")
                .trim_end()
        );
        verdict.counterfactual = Some(CounterfactualResult {
            technique: shown,
            measured: format!("{} ended failed", broken.id),
            failed: false,
        });
        return verdict;
    }
    let (failed, measured) = match evaluate(&stand_in, verdict_spec, expression) {
        Ok(judgement) => (
            judgement.holds == verdict_spec.expect_refuted,
            judgement.measured,
        ),
        Err(Unjudgeable(why)) => (true, format!("not judged: {why}")),
    };
    if !failed {
        verdict.pass = false;
        verdict.text = format!(
            "{}: \"{}\" {CANNOT_FAIL}: on its counterfactual {shown} (standing in for {role}) it measured {measured}",
            verdict.id, verdict_spec.text
        );
    }
    verdict.counterfactual = Some(CounterfactualResult {
        technique: shown,
        measured,
        failed,
    });
    verdict
}

/// A verdict's measured figure followed by its proof, for the reports' `measured` cells.
pub fn measured_with_proof(verdict: &Verdict) -> String {
    match proof_text(verdict) {
        Some(proof) => format!("{}; {proof}", verdict.measured),
        None => verdict.measured.clone(),
    }
}

/// The reports' words for a verdict's proof: "proven: fails on X (measured Y)", or why it is not proven.
pub fn proof_text(verdict: &Verdict) -> Option<String> {
    let proof = verdict.counterfactual.as_ref()?;
    Some(if proof.failed {
        format!(
            "proven: fails on {} (measured {})",
            proof.technique, proof.measured
        )
    } else {
        format!(
            "not proven: passes on {} (measured {})",
            proof.technique, proof.measured
        )
    })
}
