//! The reports rendered from the hand-made fixture run: a golden `summary.md`, the JUnit and BMF shapes, and the
//! step summary. Set `UPDATE_GOLDEN=1` to rewrite the golden file after a deliberate change, and review the diff.

mod support;

use schema::results::Results;
use std::path::Path;
use support::{fixture_results, fixture_spec, fixtures, judged_fixture};

/// The fixture run, judged, rendered into a fresh directory that also holds the fixture's dhat profile.
fn render_fixture(step_summary: Option<&Path>) -> (tempfile::TempDir, Results) {
    let (results, spec) = judged_fixture();
    let out = tempfile::tempdir().unwrap();
    reports::render::write_reports_to(&results, &[spec], out.path(), step_summary).unwrap();
    (out, results)
}

#[test]
fn summary_markdown_matches_the_golden_file() {
    let (out, _) = render_fixture(None);
    let summary = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    let golden_path = fixtures().join("summary.golden.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden_path, &summary).unwrap();
    }
    let golden = std::fs::read_to_string(&golden_path).unwrap();
    assert_eq!(
        summary,
        golden,
        "summary.md differs from {}",
        golden_path.display()
    );
}

#[test]
fn every_output_file_is_written_and_charts_come_in_svg_and_png() {
    let (out, _) = render_fixture(None);
    for name in ["summary.md", "index.html", "junit.xml", "bmf.json"] {
        assert!(out.path().join(name).is_file(), "{name} missing");
    }
    for chart in [
        "large-session-timeline",
        "large-session-growth",
        "large-session-bars",
        "calibration-timeline",
        "calibration-bars",
    ] {
        let svg = std::fs::read_to_string(out.path().join(format!("charts/{chart}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("MiB"),
            "{chart}.svg"
        );
        let png = std::fs::read(out.path().join(format!("charts/{chart}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{chart}.png");
        assert!(
            png.len() > 10_000,
            "{chart}.png is only {} bytes",
            png.len()
        );
    }
    assert!(
        !out.path().join("charts/calibration-growth.svg").exists(),
        "one size is no sweep: no growth chart"
    );
}

#[test]
fn junit_has_one_testcase_per_verdict_and_failures_carry_their_text() {
    let (out, results) = render_fixture(None);
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), results.verdicts.len());
    assert_eq!(junit.matches("<failure ").count(), 1);
    assert!(junit.contains("<testsuites name=\"memproof ci\" tests=\"6\" failures=\"1\">"));
    assert!(junit.contains(
        "<failure type=\"budget\" message=\"large-session/after-fits-64mib: &quot;the merged fix serves a 64 MiB log within 64 MiB of heap&quot; does not hold: after.peak_heap_bytes was limited to 64.0 MiB but measured 80.0 MiB at log_bytes=64.0 MiB\">"
    ), "{junit}");
    assert!(
        junit
            .contains("  - 40.0 MiB in 1 block: memproof::event_log::line_scanner::collect_events")
    );
}

#[test]
fn bmf_has_one_benchmark_per_case_and_leaves_out_unknown_figures() {
    let (out, results) = render_fixture(None);
    let bmf: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("bmf.json")).unwrap())
            .unwrap();
    let benchmarks = bmf.as_object().unwrap();
    assert_eq!(benchmarks.len(), results.cases.len());
    assert_eq!(
        bmf["large-session/after/log_bytes=16777216"],
        serde_json::json!({
            "peak_heap_bytes": { "value": 20971520.0 },
            "peak_rss_bytes": { "value": 27262976.0 },
            "total_alloc_bytes": { "value": 62914560.0 },
            "wall_ms": { "value": 300.0 }
        })
    );
    assert_eq!(
        bmf["large-session/before/log_bytes=67108864"],
        serde_json::json!({
            "peak_rss_bytes": { "value": 169869312.0 },
            "wall_ms": { "value": 910.0 }
        }),
        "a killed case has no heap totals: they are left out, not zero"
    );
}

#[test]
fn the_summary_is_appended_to_the_step_summary() {
    let dir = tempfile::tempdir().unwrap();
    let step_summary = dir.path().join("step_summary.md");
    std::fs::write(&step_summary, "earlier step\n").unwrap();
    let (out, _) = render_fixture(Some(&step_summary));
    let summary = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert_eq!(
        std::fs::read_to_string(&step_summary).unwrap(),
        format!("earlier step\n{summary}\n")
    );
}

#[test]
fn the_index_page_is_self_contained_and_lists_every_verdict() {
    let (out, results) = render_fixture(None);
    let html = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    // minijinja escapes `/` too, as `&#x2f;`.
    let escaped = |text: &str| text.replace('/', "&#x2f;");
    for verdict in &results.verdicts {
        assert_eq!(
            html.matches(&format!("data-verdict-id=\"{}\"", escaped(&verdict.id)))
                .count(),
            1,
            "{}",
            verdict.id
        );
    }
    assert_eq!(
        html.matches("<svg").count(),
        5 + 2,
        "every chart inline, and each scenario's timeline again on its card"
    );
    assert!(html.contains("<section class=\"scenario\" id=\"scenario-large-session\">"));
    assert!(html.contains("href=\"#scenario-large-session\" data-scenario=\"large-session\""));
    assert!(!html.contains("<script"), "no scripts");
    assert!(!html.contains("src=\"http"), "no external assets");
    assert!(html.contains(&format!(
        "<a href=\"{}\">dhat profile</a>",
        escaped("profiles/large-session-after-log_bytes=67108864.dhat.json")
    )));
    assert!(
        html.contains("dhat profile</a><br><small>why: spec</small>"),
        "each profile says why it was made"
    );
    assert!(html.contains("Understanding this report"));
}

/// A run where every verdict fails, with many cases and long failure texts: summary.md stays under GitHub's
/// comment limit, and says how many rows it left out instead of dropping them silently.
#[test]
fn summary_of_a_run_where_everything_fails_stays_under_the_comment_limit() {
    let mut results = fixture_results();
    let spec = fixture_spec();
    let template = results.cases[1].clone();
    for index in 0..400 {
        let mut case = template.clone();
        case.scenario = format!("scenario-{}", index % 40);
        case.id = format!("{}/before/n={index}", case.scenario);
        results.cases.push(case);
    }
    results.verdicts = (0..3000)
        .map(|index| schema::results::Verdict {
            change: None,
            id: format!("scenario-{}/claim-{index}", index % 40),
            kind: schema::results::VerdictKind::Claim,
            subject: "before.peak_heap_bytes".to_string(),
            text: format!(
                "claim {index} does not hold: {}",
                "allocation site ".repeat(40)
            ),
            expected: "before.peak_heap_bytes >= 2 * after.peak_heap_bytes".to_string(),
            measured: "1.00x".to_string(),
            pass: false,
            counterfactual: None,
        })
        .collect();
    let out = tempfile::tempdir().unwrap();
    reports::render::write_reports_to(&results, &[spec], out.path(), None).unwrap();
    let summary = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    let characters = summary.chars().count();
    assert!(
        characters < reports::render::summary_markdown::COMMENT_LIMIT,
        "summary.md is {characters} characters"
    );
    assert!(
        summary.starts_with(
            "## ❌ memproof `ci` run failed: 3000 of 3000 verdicts failed on 410 cases\n"
        ),
        "{}",
        &summary[..200]
    );
    let cut_line = summary
        .lines()
        .find(|line| line.starts_with("… and "))
        .expect("a line saying how many rows were left out");
    let left_out: usize = cut_line
        .trim_start_matches("… and ")
        .trim_end_matches(" more, see index.html")
        .parse()
        .unwrap();
    let listed = summary.matches("| ❌ `scenario-").count();
    assert_eq!(listed + left_out, 3000, "every failure listed or counted");
    assert!(
        summary.ends_with("`index.html` beside this file.\n"),
        "the end is kept"
    );
}

#[test]
fn every_report_names_the_cases_without_a_baseline_and_the_command_that_adds_them() {
    let mut results = fixture_results();
    let spec = fixture_spec();
    let mut baseline = results.clone();
    baseline
        .cases
        .retain(|case| case.scenario != "large-session");
    results.verdicts =
        reports::judge::judge(&results, std::slice::from_ref(&spec), Some(&baseline));
    results.without_baseline =
        reports::baseline::cases_without_baseline(&results, &baseline, std::slice::from_ref(&spec));
    assert!(!results.without_baseline.is_empty());
    let out = tempfile::tempdir().unwrap();
    reports::render::write_reports_to(&results, &[spec], out.path(), None).unwrap();
    let command = "cargo xtask bless --scenario large-session";
    let summary = std::fs::read_to_string(out.path().join("summary.md")).unwrap();
    assert!(
        summary.contains(&format!(
            "{} cases have no baseline, so they are not judged for regression: large-session",
            results.without_baseline.len()
        )) && summary.contains(command),
        "{summary}"
    );
    let index = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(
        index.contains(command),
        "index.html does not name {command}"
    );
}
