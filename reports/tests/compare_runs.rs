//! `compare` on two versions of the fixture run: the ratios and noise bands, the overlaid timeline and side-by-side
//! growth charts, the regression verdicts, and the spec verdicts that start or stop holding leading the report.

mod support;

use support::{case_mut, fixture_results, fixture_spec, fixtures, judged};

#[test]
fn compare_writes_both_pages_and_judges_the_new_run_against_the_old() {
    let spec = fixture_spec();
    let old_raw = fixture_results();
    let mut new_raw = old_raw.clone();
    let after = "large-session/after/log_bytes=67108864";
    let case = case_mut(&mut new_raw, after);
    case.peak_heap_bytes = Some(100 << 20);
    case.metrics
        .insert("events_sent".into(), serde_json::json!(300000));
    // The streaming fix at its smallest size now holds 5 MiB: its 4 MiB budget stops holding.
    case_mut(&mut new_raw, "large-session/best/log_bytes=16777216").peak_heap_bytes = Some(5 << 20);
    new_raw
        .cases
        .retain(|c| c.id != "calibration/known/bytes=67108864");
    let old = judged(old_raw, &spec);
    let new = judged(new_raw, &spec);
    let out = tempfile::tempdir().unwrap();
    let comparison =
        reports::compare::compare(&old, &new, std::slice::from_ref(&spec), None, out.path())
            .unwrap();

    let failing: Vec<&str> = comparison
        .regressions
        .iter()
        .filter(|v| !v.pass)
        .map(|v| v.text.as_str())
        .collect();
    assert_eq!(
        failing,
        [
            "large-session/after/log_bytes=67108864 peak_heap_bytes: regressed against the base: previously 80.0 MiB, now 100 MiB (+25.0%; tolerance +5.0% and 256 KiB: no measured noise for this figure, the conservative default)\nAllocation sites: see the dhat profile profiles/large-session-after-log_bytes=67108864.dhat.json.",
            "large-session/best/log_bytes=16777216 peak_heap_bytes: regressed against the base: previously 1.20 MiB, now 5.00 MiB (+316.7%; tolerance +5.0% and 256 KiB: no measured noise for this figure, the conservative default)\nNo dhat profile of large-session/best/log_bytes=16777216 was made, so its allocation sites are not known."
        ]
    );
    assert_eq!(
        comparison.regressions.len(),
        9 * 5 - 4,
        "nine shared cases, five memory fields (wall time is not judged), four null in the killed case"
    );
    let news: Vec<(&str, &str)> = comparison
        .verdicts
        .iter()
        .filter(|v| v.is_news())
        .map(|v| (v.id.as_str(), v.change))
        .collect();
    assert_eq!(news, [("large-session/best-is-small", "stopped holding")]);
    assert!(comparison.failed());
    assert!(
        comparison
            .headline()
            .starts_with("failed: 1 verdicts stopped holding; 2 of 41 figures regressed"),
        "{}",
        comparison.headline()
    );

    let markdown = std::fs::read_to_string(out.path().join("compare.md")).unwrap();
    assert!(
        markdown.starts_with("## ❌ memproof compare failed: 1 verdicts stopped holding"),
        "{markdown}"
    );
    let changed = markdown.find("### Verdicts that changed").unwrap();
    let moved = markdown.find("### Figures beyond noise").unwrap();
    assert!(changed < moved, "verdicts that changed lead");
    assert!(markdown.contains("| ❌ stopped holding | `large-session/best-is-small` |"));
    assert!(markdown.contains("Only in the base run: calibration/known/bytes=67108864."));
    assert!(markdown.contains(
        "| `large-session/after/log_bytes=67108864` | peak_heap_bytes | 80.0 MiB | 100 MiB | 1.250x | ±5.0% and 256 KiB | regressed |"
    ));
    assert!(markdown.contains(
        "| `large-session/after/log_bytes=67108864` | metrics.events_sent | 200000 | 300000 | 1.500x | not judged |  |"
    ));
    let html = std::fs::read_to_string(out.path().join("compare.html")).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        3,
        "one overlaid timeline and two growth charts side by side for the one shared scenario"
    );
    // minijinja escapes `/` too, as `&#x2f;`.
    let escaped = |text: &str| text.replace('/', "&#x2f;");
    assert!(html.contains(&escaped(
        "data-verdict-id=\"large-session/after/log_bytes=67108864/peak_heap_bytes\""
    )));
    assert!(html.contains(&escaped(
        "data-verdict-change=\"large-session/best-is-small\""
    )));
    assert!(
        html.contains("<td>large-session</td><td>+5.0%, at least 256 KiB (9 of 9 cases without measured noise: the default)</td><td>+25.0%, at least 8.00 MiB (9 of 9 cases without measured noise: the default)</td>"),
        "the noise bands come from the judge's tolerances"
    );
    for chart in ["timeline", "growth-base", "growth-head"] {
        assert!(
            out.path()
                .join(format!("charts/compare-large-session-{chart}.png"))
                .is_file(),
            "{chart}"
        );
    }
}

#[test]
fn measured_noise_widens_the_noise_band_compare_shows() {
    let spec = fixture_spec();
    let old = fixture_results();
    let after = "large-session/after/log_bytes=67108864";
    // Two runs in which after's peak heap spread 1.3x: its band is twice that spread, +60%.
    let mut noisy = old.clone();
    let noisy_after = case_mut(&mut noisy, after);
    noisy_after.peak_heap_bytes = noisy_after.peak_heap_bytes.map(|b| b * 13 / 10);
    let noise = reports::noise::Noise::measure(&[old.clone(), noisy], "test").unwrap();
    let mut new = old.clone();
    case_mut(&mut new, after).peak_heap_bytes = Some(100 << 20);
    let out = tempfile::tempdir().unwrap();
    let comparison = reports::compare::compare(
        &old,
        &new,
        std::slice::from_ref(&spec),
        Some(&noise),
        out.path(),
    )
    .unwrap();
    assert!(
        !comparison.failed(),
        "+25% is within twice a measured 1.3x spread"
    );
    let markdown = std::fs::read_to_string(out.path().join("compare.md")).unwrap();
    assert!(
        markdown.contains("| 80.0 MiB | 100 MiB | 1.250x | ±60.0% and 16.0 KiB | within noise |"),
        "{markdown}"
    );
    // Without the noise file the same rise is a regression.
    let comparison = reports::compare::compare(&old, &new, &[spec], None, out.path()).unwrap();
    assert!(comparison.failed());
}

#[test]
fn two_runs_with_no_case_in_common_are_an_error() {
    let old = fixture_results();
    let mut new = old.clone();
    new.cases.retain(|c| c.scenario == "calibration");
    let mut old_only = old.clone();
    old_only.cases.retain(|c| c.scenario != "calibration");
    let out = tempfile::tempdir().unwrap();
    let error = reports::compare::compare(&old_only, &new, &[], None, out.path())
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("the two runs have no case in common (base: 9 cases"),
        "{error}"
    );
    assert!(!out.path().join("compare.md").exists());
}

#[test]
fn compare_with_the_new_runs_directory_lists_the_allocation_sites() {
    let old = fixture_results();
    let mut new = old.clone();
    let after = "large-session/after/log_bytes=67108864";
    case_mut(&mut new, after).peak_heap_bytes = Some(100 << 20);
    let out = tempfile::tempdir().unwrap();
    let comparison =
        reports::compare::compare_with_profiles(&old, &new, &fixtures(), &[], None, out.path())
            .unwrap();
    let regressed = comparison.regressions.iter().find(|v| !v.pass).unwrap();
    assert!(
        regressed.text.contains(
            "\n  - 40.0 MiB in 1 block: memproof::event_log::line_scanner::collect_events"
        ),
        "{}",
        regressed.text
    );
}
