//! The judge on hand-made results: each verdict kind passing and failing, checked by the exact text a person reads.

mod support;

use schema::results::{Outcome, Results, Verdict};
use schema::spec::Spec;
use std::path::Path;
use support::{case_mut, fixture_results, fixtures};

fn fixture_spec_text() -> String {
    std::fs::read_to_string(fixtures().join("large-session.toml")).unwrap()
}

fn spec_from(text: &str) -> Spec {
    Spec::parse(Path::new("scenarios/large-session.toml"), text).unwrap()
}

/// Judges and returns the one verdict with `id`.
fn verdict(results: &Results, spec_text: &str, baseline: Option<&Results>, id: &str) -> Verdict {
    let spec = spec_from(spec_text);
    reports::judge::check_specs(std::slice::from_ref(&spec)).unwrap();
    let verdicts = reports::judge::judge_with_profiles(results, &fixtures(), &[spec], baseline);
    verdicts
        .into_iter()
        .find(|verdict| verdict.id == id)
        .unwrap_or_else(|| panic!("no verdict {id}"))
}

/// Judges and returns the one verdict with `id` of the fixture's own spec, with no baseline.
fn fixture_verdict(results: &Results, id: &str) -> Verdict {
    verdict(results, &fixture_spec_text(), None, id)
}

fn check(verdict: Verdict, pass: bool, measured: &str, text: &str) {
    assert_eq!(
        (
            verdict.pass,
            verdict.measured.as_str(),
            verdict.text.as_str()
        ),
        (pass, measured, text),
        "{}",
        verdict.id
    );
}

#[test]
fn the_fixture_run_judges_every_verdict_of_its_profile() {
    let spec = spec_from(&fixture_spec_text());
    let verdicts = reports::judge::judge(&fixture_results(), &[spec], None);
    let summary: Vec<(&str, &str, bool)> = verdicts
        .iter()
        .map(|v| (v.id.as_str(), v.kind.as_str(), v.pass))
        .collect();
    assert_eq!(
        summary,
        [
            ("large-session/before-is-killed", "outcome", true),
            ("large-session/fix-cuts-peak", "claim", true),
            ("large-session/after-fits-64mib", "budget", false),
            ("large-session/best-is-small", "budget", true),
            ("large-session/best-is-flat", "growth", true),
            ("large-session/after-streams", "growth", true),
        ],
        "the oom-killed before case is expected by its outcome verdict, so no case verdict"
    );
}

#[test]
fn budget_passes_at_every_size_and_fails_with_the_top_allocation_sites() {
    let results = fixture_results();
    let spec = fixture_spec_text();
    check(
        verdict(&results, &spec, None, "large-session/best-is-small"),
        true,
        "1.20 MiB at log_bytes=16.0 MiB, 1.20 MiB at log_bytes=32.0 MiB, 1.20 MiB at log_bytes=64.0 MiB",
        "streaming holds under 4 MiB of heap at every size",
    );
    check(
        verdict(&results, &spec, None, "large-session/after-fits-64mib"),
        false,
        "80.0 MiB at log_bytes=64.0 MiB",
        "large-session/after-fits-64mib: \"the merged fix serves a 64 MiB log within 64 MiB of heap\" does not hold: after.peak_heap_bytes was limited to 64.0 MiB but measured 80.0 MiB at log_bytes=64.0 MiB
Top allocation sites by bytes live at the heap peak (dhat profile profiles/large-session-after-log_bytes=67108864.dhat.json):
  - 40.0 MiB in 1 block: memproof::event_log::line_scanner::collect_events (src/event_log/line_scanner.rs:41:13)
  - 30.0 MiB in 100000 blocks: memproof::event_log::event::parse_event (src/event_log/event.rs:22:5)
  - 10.0 MiB in 1 block: memproof::event_log::line_scanner::read_line (src/event_log/line_scanner.rs:77:9)",
    );
}

#[test]
fn claim_passes_at_a_named_size_and_fails_naming_the_ratio_and_both_figures() {
    let results = fixture_results();
    check(
        fixture_verdict(&results, "large-session/fix-cuts-peak"),
        true,
        "2.50 (100 MiB / 40.0 MiB) at log_bytes=32.0 MiB",
        "the line scanner at least halves the peak heap",
    );
    let spec = fixture_spec_text().replace(
        "before.peak_heap_bytes / after.peak_heap_bytes >= 2",
        "before.peak_heap_bytes / after.peak_heap_bytes >= 10",
    );
    check(
        verdict(&results, &spec, None, "large-session/fix-cuts-peak"),
        false,
        "2.50 (100 MiB / 40.0 MiB) at log_bytes=32.0 MiB",
        "large-session/fix-cuts-peak: \"the line scanner at least halves the peak heap\" does not hold: before.peak_heap_bytes / after.peak_heap_bytes was required to be at least 10 but measured 2.50 (100 MiB / 40.0 MiB) at log_bytes=32.0 MiB
No dhat profile of large-session/after/log_bytes=33554432 was made, so its allocation sites are not known.",
    );
}

#[test]
fn outcome_passes_when_killed_and_fails_when_the_case_survives() {
    let mut results = fixture_results();
    check(
        fixture_verdict(&results, "large-session/before-is-killed"),
        true,
        "oom-killed at log_bytes=64.0 MiB",
        "reading the whole log is OOM-killed under the limit",
    );
    case_mut(&mut results, "large-session/before/log_bytes=67108864").outcome = Outcome::Ok;
    check(
        fixture_verdict(&results, "large-session/before-is-killed"),
        false,
        "ok at log_bytes=64.0 MiB",
        "large-session/before-is-killed: \"reading the whole log is OOM-killed under the limit\" does not hold: before was expected to end oom-killed but ended ok at log_bytes=64.0 MiB",
    );
}

#[test]
fn growth_reports_exponent_and_fit_and_fails_when_the_shape_is_wrong() {
    let mut results = fixture_results();
    check(
        fixture_verdict(&results, "large-session/best-is-flat"),
        true,
        "exponent 0.002, R² 1.000 over log_bytes=16.0 MiB..64.0 MiB (3 sizes)",
        "streaming's peak heap does not grow with the log",
    );
    for (size, heap) in [
        (16777216, 2u64 << 20),
        (33554432, 4 << 20),
        (67108864, 8 << 20),
    ] {
        case_mut(
            &mut results,
            &format!("large-session/best/log_bytes={size}"),
        )
        .peak_heap_bytes = Some(heap);
    }
    check(
        fixture_verdict(&results, "large-session/best-is-flat"),
        false,
        "exponent 1.000, R² 1.000 over log_bytes=16.0 MiB..64.0 MiB (3 sizes)",
        "large-session/best-is-flat: \"streaming's peak heap does not grow with the log\" does not hold: best.peak_heap_bytes was expected flat (exponent <= 0.25) but grows with exponent 1.000, R² 1.000 over log_bytes=16.0 MiB..64.0 MiB (3 sizes)
No dhat profile of large-session/best/log_bytes=67108864 was made, so its allocation sites are not known.",
    );
}

#[test]
fn growth_thresholds_can_be_set_in_the_spec() {
    let results = fixture_results();
    let spec = fixture_spec_text().replace(
        "best.peak_heap_bytes is flat",
        "after.peak_heap_bytes is linear 0.9..1.1",
    );
    check(
        verdict(&results, &spec, None, "large-session/best-is-flat"),
        true,
        "exponent 1.000, R² 1.000 over log_bytes=16.0 MiB..64.0 MiB (3 sizes)",
        "streaming's peak heap does not grow with the log",
    );
    let spec = fixture_spec_text().replace(
        "best.peak_heap_bytes is flat",
        "best.peak_heap_bytes is flat <= 0.001",
    );
    check(
        verdict(&results, &spec, None, "large-session/best-is-flat"),
        false,
        "exponent 0.002, R² 1.000 over log_bytes=16.0 MiB..64.0 MiB (3 sizes)",
        "large-session/best-is-flat: \"streaming's peak heap does not grow with the log\" does not hold: best.peak_heap_bytes was expected flat (exponent <= 0.001) but grows with exponent 0.002, R² 1.000 over log_bytes=16.0 MiB..64.0 MiB (3 sizes)
No dhat profile of large-session/best/log_bytes=67108864 was made, so its allocation sites are not known.",
    );
}

#[test]
fn a_growth_fit_leaves_out_killed_cases_and_needs_three_sizes() {
    let spec = fixture_spec_text()
        .replace(
            "best.peak_heap_bytes is flat\"\ncounterfactual = { technique = \"read_whole_file\" }",
            "best.peak_heap_bytes is flat\"",
        )
        .replace(
            "best.peak_heap_bytes is flat",
            "before.peak_heap_bytes is linear",
        );
    check(
        verdict(
            &fixture_results(),
            &spec,
            None,
            "large-session/best-is-flat",
        ),
        false,
        "not judged",
        "large-session/best-is-flat: \"streaming's peak heap does not grow with the log\" cannot be judged: before.peak_heap_bytes needs at least 3 sizes with a positive value to fit a growth exponent; it has 2 (16.0 MiB, 32.0 MiB); left out: log_bytes=64.0 MiB (oom-killed)",
    );
}

#[test]
fn a_finding_passes_while_refuted_and_fails_the_day_it_holds() {
    let mut results = fixture_results();
    check(
        fixture_verdict(&results, "large-session/after-streams"),
        true,
        "exponent 1.000, R² 1.000 over log_bytes=16.0 MiB..64.0 MiB (3 sizes)",
        "the merged fix no longer holds the log in memory
Still refuted, as recorded: after.peak_heap_bytes was expected flat (exponent <= 0.25) but grows with exponent 1.000, R² 1.000 over log_bytes=16.0 MiB..64.0 MiB (3 sizes)",
    );
    for size in [16777216, 33554432, 67108864] {
        case_mut(
            &mut results,
            &format!("large-session/after/log_bytes={size}"),
        )
        .peak_heap_bytes = Some(3 << 20);
    }
    check(
        fixture_verdict(&results, "large-session/after-streams"),
        false,
        "exponent 0.000, R² 1.000 over log_bytes=16.0 MiB..64.0 MiB (3 sizes)",
        "large-session/after-streams: finding \"the merged fix no longer holds the log in memory\" was recorded as refuted but now holds: after.peak_heap_bytes is flat (exponent <= 0.25): exponent 0.000, R² 1.000 over log_bytes=16.0 MiB..64.0 MiB (3 sizes)
If the fix now achieves it, remove `expect = \"refuted\"` from the verdict so the claim is guarded from now on.",
    );
}

#[test]
fn a_missing_scenario_metric_fails_and_lists_what_the_case_reported() {
    let spec = fixture_spec_text().replace(
        "best.peak_heap_bytes <= 4MiB",
        "best.metrics.events_lost <= 0",
    );
    check(
        verdict(
            &fixture_results(),
            &spec,
            None,
            "large-session/best-is-small",
        ),
        false,
        "not judged",
        "large-session/best-is-small: \"streaming holds under 4 MiB of heap at every size\" cannot be judged: best.metrics.events_lost was not reported by large-session/best/log_bytes=16777216, which reported metrics.events_sent",
    );
}

#[test]
fn an_unexpected_outcome_is_a_failing_case_verdict() {
    let mut results = fixture_results();
    let case = case_mut(&mut results, "large-session/best/log_bytes=33554432");
    case.outcome = Outcome::Failed;
    case.exit.code = Some(101);
    case.exit.message =
        Some("panicked at scenarios/src/large_session.rs:12:5: connection refused".into());
    check(
        fixture_verdict(&results, "large-session/best/log_bytes=33554432"),
        false,
        "failed",
        "large-session/best/log_bytes=33554432 ended failed (exit code 101) and no outcome verdict expects it
panicked at scenarios/src/large_session.rs:12:5: connection refused",
    );
}

#[test]
fn regression_against_a_baseline_says_regressed_improved_or_within_noise() {
    let results = fixture_results();
    let mut baseline = fixture_results();
    let after = "large-session/after/log_bytes=67108864";
    case_mut(&mut baseline, after).peak_heap_bytes = Some(60 << 20);
    case_mut(&mut baseline, after).peak_rss_bytes = Some(100 << 20);
    case_mut(&mut baseline, after).wall_ms = 1150.0;
    let spec = fixture_spec_text();
    check(
        verdict(&results, &spec, Some(&baseline), &format!("{after}/peak_heap_bytes")),
        false,
        "80.0 MiB (+33.3%)",
        "large-session/after/log_bytes=67108864 peak_heap_bytes: regressed against the baseline: previously 60.0 MiB, now 80.0 MiB (+33.3%; tolerance +5.0% and 256 KiB: no measured noise for this figure, the conservative default)
Top allocation sites by bytes live at the heap peak (dhat profile profiles/large-session-after-log_bytes=67108864.dhat.json):
  - 40.0 MiB in 1 block: memproof::event_log::line_scanner::collect_events (src/event_log/line_scanner.rs:41:13)
  - 30.0 MiB in 100000 blocks: memproof::event_log::event::parse_event (src/event_log/event.rs:22:5)
  - 10.0 MiB in 1 block: memproof::event_log::line_scanner::read_line (src/event_log/line_scanner.rs:77:9)",
    );
    check(
        verdict(
            &results,
            &spec,
            Some(&baseline),
            &format!("{after}/peak_rss_bytes"),
        ),
        true,
        "104 MiB (+4.0%)",
        "large-session/after/log_bytes=67108864 peak_rss_bytes: within noise against the baseline: previously 100 MiB, now 104 MiB (+4.0%; tolerance +25.0% and 8.00 MiB: no measured noise for this figure, the conservative default)",
    );
    let verdicts = reports::judge::judge(&results, &[spec_from(&spec)], Some(&baseline));
    let regressions = verdicts
        .iter()
        .filter(|v| v.kind == schema::results::VerdictKind::Regression)
        .count();
    assert!(
        !verdicts.iter().any(|v| v.id == format!("{after}/wall_ms")),
        "wall time is not judged against a baseline"
    );
    // 10 cases, 5 memory fields each, less the 4 null heap figures of the killed case.
    assert_eq!(regressions, 10 * 5 - 4);

    // `[regression]` narrows the roles, and a role's figures: before not at all, after on its peak heap only.
    let narrowed = format!(
        "{spec}\n[regression]\nroles = [\"after\", \"best\"]\nfigures = {{ after = [\"peak_heap_bytes\"] }}\n"
    );
    let verdicts = reports::judge::judge(&results, &[spec_from(&narrowed)], Some(&baseline));
    let judged = |role: &str| -> Vec<String> {
        verdicts
            .iter()
            .filter(|v| {
                v.kind == schema::results::VerdictKind::Regression
                    && v.subject.split('/').nth(1) == Some(role)
            })
            .map(|v| v.id.rsplit('/').next().unwrap().to_string())
            .collect()
    };
    assert!(judged("before").is_empty());
    let after_cases = results.cases.iter().filter(|c| c.role == "after").count();
    assert!(after_cases > 0);
    assert_eq!(judged("after"), vec!["peak_heap_bytes"; after_cases]);
    assert!(judged("best").iter().any(|figure| figure == "alloc_count"));
}

#[test]
fn spec_errors_are_all_reported_with_their_place() {
    let spec = spec_from(
        &fixture_spec_text()
            .replace("before.outcome == oom-killed", "before.outcome == killed")
            .replace(
                "best.peak_heap_bytes is flat",
                "bets.peak_heap_bytes is flat",
            ),
    );
    let error = reports::judge::check_specs(&[spec])
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "scenarios/large-session.toml:22:28: verdict before-is-killed: unknown outcome \"killed\": expected one of ok, failed, oom-killed, over-limit, timed-out, interrupted
scenarios/large-session.toml:51:10: verdict best-is-flat: unknown role \"bets\": expected one of before, after, best"
    );
}

#[test]
fn every_spec_in_the_repository_parses_and_its_checks_are_valid() {
    let scenarios_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let specs = schema::spec::read_dir(&scenarios_dir).unwrap();
    assert!(specs.iter().any(|spec| spec.scenario == "calibration"));
    reports::judge::check_specs(&specs).unwrap();
}

#[test]
fn a_verdict_that_cannot_be_judged_in_one_of_its_profiles_is_a_spec_error() {
    let text = fixture_spec_text().replace(
        "[profiles.ci]",
        "[profiles.smoke]\nsize = { name = \"log_bytes\", unit = \"bytes\", values = [1048576] }\nroles = [\"before\", \"after\"]\n\n[profiles.ci]",
    );
    let error = reports::judge::check_specs(&[spec_from(&text)])
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "scenarios/large-session.toml:32:10: verdict fix-cuts-peak: at = 33554432 is not a size of profile smoke (1048576): expected one of its sizes, or `profiles = [...]` without smoke
scenarios/large-session.toml:47:10: verdict best-is-small: role best does not run in profile smoke (it runs before, after): expected `profiles = [...]` without smoke, or best in its roles
scenarios/large-session.toml:55:10: verdict best-is-flat: role best does not run in profile smoke (it runs before, after): expected `profiles = [...]` without smoke, or best in its roles
scenarios/large-session.toml:55:10: verdict best-is-flat: a growth verdict needs at least 3 sizes, and profile smoke has 1: expected more sizes, or `profiles = [...]` without smoke
scenarios/large-session.toml:62:10: verdict after-streams: a growth verdict needs at least 3 sizes, and profile smoke has 1: expected more sizes, or `profiles = [...]` without smoke"
    );
    let restricted = text.replace(
        "check = \"before.peak_heap_bytes / after.peak_heap_bytes >= 2\"",
        "check = \"before.peak_heap_bytes / after.peak_heap_bytes >= 2\"\nprofiles = [\"ci\"]",
    );
    let error = reports::judge::check_specs(&[spec_from(&restricted)])
        .unwrap_err()
        .to_string();
    assert!(!error.contains("fix-cuts-peak"), "{error}");
}

/// The fixture's best cases copied as the cases of a counterfactual technique, with `peak` as their peak heap.
fn with_counterfactual_cases(results: &mut Results, technique: &str, peak: u64) {
    let copies: Vec<_> = results
        .cases
        .iter()
        .filter(|case| case.role == "best")
        .cloned()
        .map(|mut case| {
            case.role = schema::results::counterfactual_role(technique, &Default::default());
            case.counterfactual = Some(technique.to_string());
            case.id = schema::results::Case::make_id(&case.scenario, &case.role, &case.size);
            case.technique = Some(technique.to_string());
            case.peak_heap_bytes = Some(peak);
            case
        })
        .collect();
    results.cases.extend(copies);
}

#[test]
fn a_verdict_that_passes_on_its_counterfactual_fails_with_the_words_cannot_fail() {
    let spec = fixture_spec_text().replace(
        "counterfactual = { technique = \"line_scanner_collect\" }\nat",
        "counterfactual = { technique = \"stream_to_sink_collected\" }\nat",
    );
    let mut results = fixture_results();
    // Without the counterfactual's cases in the run (no --prove), the verdict is judged as before, unproven.
    let unproven = verdict(&results, &spec, None, "large-session/best-is-small");
    assert!(unproven.pass && unproven.counterfactual.is_none());

    with_counterfactual_cases(&mut results, "stream_to_sink_collected", 3 << 20);
    let judged = verdict(&results, &spec, None, "large-session/best-is-small");
    check(
        judged.clone(),
        false,
        "1.20 MiB at log_bytes=16.0 MiB, 1.20 MiB at log_bytes=32.0 MiB, 1.20 MiB at log_bytes=64.0 MiB",
        "large-session/best-is-small: \"streaming holds under 4 MiB of heap at every size\" cannot fail: it passes without the fix: on its counterfactual stream_to_sink_collected (standing in for best) it measured 3.00 MiB at log_bytes=16.0 MiB, 3.00 MiB at log_bytes=32.0 MiB, 3.00 MiB at log_bytes=64.0 MiB",
    );
    assert_eq!(
        judged.counterfactual.as_ref().map(|c| c.failed),
        Some(false)
    );

    let mut results = fixture_results();
    with_counterfactual_cases(&mut results, "stream_to_sink_collected", 5 << 20);
    let proven = verdict(&results, &spec, None, "large-session/best-is-small");
    assert!(proven.pass, "{}", proven.text);
    let proof = proven.counterfactual.clone().unwrap();
    assert_eq!(
        (proof.technique.as_str(), proof.failed),
        ("stream_to_sink_collected", true)
    );
    assert_eq!(
        reports::judge::counterfactual::proof_text(&proven).unwrap(),
        "proven: fails on stream_to_sink_collected (measured 5.00 MiB at log_bytes=16.0 MiB, 5.00 MiB at log_bytes=32.0 MiB, 5.00 MiB at log_bytes=64.0 MiB)"
    );
}

#[test]
fn a_counterfactual_some_role_plays_is_judged_on_that_roles_cases_in_every_run() {
    let verdict = verdict(
        &fixture_results(),
        &fixture_spec_text(),
        None,
        "large-session/fix-cuts-peak",
    );
    assert!(verdict.pass);
    let proof = verdict.counterfactual.unwrap();
    assert_eq!(
        (
            proof.technique.as_str(),
            proof.measured.as_str(),
            proof.failed
        ),
        (
            "read_whole_file",
            "1.00 (100 MiB / 100 MiB) at log_bytes=32.0 MiB",
            true
        )
    );
}

#[test]
fn a_fix_verdict_without_a_counterfactual_is_a_spec_error() {
    let text =
        fixture_spec_text().replace("counterfactual = { technique = \"read_whole_file\" }\n", "");
    let error = reports::judge::check_specs(&[spec_from(&text)])
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "scenarios/large-session.toml:36:10: verdict after-fits-64mib: it judges a fix but names no counterfactual: expected `counterfactual = { technique = \"...\" }`, the fix minus the one change the verdict is about, on which it must fail
scenarios/large-session.toml:50:10: verdict best-is-flat: it judges a fix but names no counterfactual: expected `counterfactual = { technique = \"...\" }`, the fix minus the one change the verdict is about, on which it must fail
scenarios/large-session.toml:56:10: verdict after-streams: it judges a fix but names no counterfactual: expected `counterfactual = { technique = \"...\" }`, the fix minus the one change the verdict is about, on which it must fail"
    );
    let text = fixture_spec_text().replace(
        "counterfactual = { role = \"after\", technique = \"read_whole_file\" }",
        "counterfactual = { none = \"it is only a ratio\" }",
    );
    let error = reports::judge::check_specs(&[spec_from(&text)])
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "scenarios/large-session.toml:28:10: verdict fix-cuts-peak: a claim compares a fix with something, so it has a counterfactual: expected `counterfactual = { technique = \"...\" }`, not `none`"
    );
    let text = fixture_spec_text().replace(
        "counterfactual = { technique = \"line_scanner_collect\" }\nat",
        "counterfactual = { technique = \"stream_to_sink\" }\nat",
    );
    let error = reports::judge::check_specs(&[spec_from(&text)])
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "scenarios/large-session.toml:43:10: verdict best-is-small: counterfactual technique stream_to_sink is the one best plays: expected the fix minus one change"
    );
}

#[test]
fn leak_verdicts_judge_the_end_heap_and_the_heap_at_one_phase_against_an_earlier_one() {
    let mut results = fixture_results();
    for case in results.cases.iter_mut().filter(|c| c.role == "best") {
        case.phases[0].heap_bytes = Some(1 << 20);
        case.phases[1].heap_bytes = Some((1 << 20) + 16 * 1024);
    }
    let spec = format!(
        "{}\n[[verdicts]]\nid = \"best-ends-empty\"\nkind = \"budget\"\ntext = \"holds nothing at its end\"\ncheck = \"best.end_heap_bytes <= 64KiB\"\nat = \"all\"\ncounterfactual = {{ technique = \"line_scanner_collect\" }}\n\n[[verdicts]]\nid = \"best-send-keeps-no-more\"\nkind = \"claim\"\ntext = \"sending keeps nothing the read did not\"\ncheck = \"best.phases.send.heap_bytes / best.phases.read.heap_bytes <= 1.01\"\ncounterfactual = {{ role = \"best\", technique = \"line_scanner_collect\" }}\n",
        fixture_spec_text()
    );
    check(
        verdict(&results, &spec, None, "large-session/best-ends-empty"),
        false,
        "512 KiB at log_bytes=16.0 MiB, 512 KiB at log_bytes=32.0 MiB, 512 KiB at log_bytes=64.0 MiB",
        "large-session/best-ends-empty: \"holds nothing at its end\" does not hold: best.end_heap_bytes was limited to 64.0 KiB but measured 512 KiB at log_bytes=16.0 MiB, 512 KiB at log_bytes=32.0 MiB, 512 KiB at log_bytes=64.0 MiB\nNo dhat profile of large-session/best/log_bytes=67108864 was made, so its allocation sites are not known.",
    );
    let leak = verdict(
        &results,
        &spec,
        None,
        "large-session/best-send-keeps-no-more",
    );
    assert_eq!(
        (leak.pass, leak.measured.as_str()),
        (false, "1.02 (1.02 MiB / 1.00 MiB) at log_bytes=64.0 MiB")
    );
    for case in results.cases.iter_mut().filter(|c| c.role == "best") {
        case.phases[1].heap_bytes = Some(1 << 20);
    }
    let held = verdict(
        &results,
        &spec,
        None,
        "large-session/best-send-keeps-no-more",
    );
    assert!(held.pass, "{}", held.text);
    // after's cases have no phase heap: its counterfactual could not be judged, which counts as failing there.
    assert_eq!(
        held.counterfactual.unwrap().measured,
        "not judged: best.phases.send.heap_bytes was not recorded by large-session/after/log_bytes=67108864, whose phase marks were read (no heap), send (no heap)"
    );
}
