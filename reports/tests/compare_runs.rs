//! `compare` on two versions of the fixture run: the ratios, the overlaid timeline, the regression verdicts.

use harness::results::Results;
use harness::spec::Spec;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn compare_writes_both_pages_and_judges_the_new_run_against_the_old() {
    let old = Results::read(&fixtures().join("results.json")).unwrap();
    let mut new = old.clone();
    let after = "large-session/after/log_bytes=67108864";
    let case = new.cases.iter_mut().find(|c| c.id == after).unwrap();
    case.peak_heap_bytes = Some(100 << 20);
    case.metrics
        .insert("events_sent".into(), serde_json::json!(300000));
    new.cases
        .retain(|c| c.id != "calibration/known/bytes=67108864");
    let spec = Spec::read(&fixtures().join("large-session.toml")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let verdicts = reports::compare::compare(&old, &new, &[spec], out.path()).unwrap();

    let failing: Vec<&str> = verdicts
        .iter()
        .filter(|v| !v.pass)
        .map(|v| v.text.as_str())
        .collect();
    assert_eq!(
        failing,
        [
            "large-session/after/log_bytes=67108864 peak_heap_bytes: regressed against the old run: previously 80.0 MiB, now 100 MiB (+25.0%; tolerance +5.0% and 256 KiB: no measured noise for this figure, the conservative default)\nAllocation sites: see the dhat profile profiles/large-session-after-log_bytes=67108864.dhat.json."
        ]
    );
    assert_eq!(
        verdicts.len(),
        9 * 5 - 4,
        "nine shared cases, five memory fields (wall time is not judged), four null in the killed case"
    );

    let markdown = std::fs::read_to_string(out.path().join("compare.md")).unwrap();
    assert!(
        markdown.starts_with("## memproof compare: 1 of 41 figures regressed\n"),
        "{markdown}"
    );
    assert!(markdown.contains("Only in the old run: calibration/known/bytes=67108864."));
    assert!(markdown.contains(
        "| `large-session/after/log_bytes=67108864` | peak_heap_bytes | 80.0 MiB | 100 MiB | 1.250x |"
    ));
    assert!(markdown.contains(
        "| `large-session/after/log_bytes=67108864` | metrics.events_sent | 200000 | 300000 | 1.500x |"
    ));
    let html = std::fs::read_to_string(out.path().join("compare.html")).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        1,
        "one overlaid timeline for the one shared scenario"
    );
    assert!(
        html.contains("data-verdict-id=\"large-session/after/log_bytes=67108864/peak_heap_bytes\"")
    );
    assert!(
        out.path()
            .join("charts/compare-large-session-timeline.png")
            .is_file()
    );
}

#[test]
fn compare_with_the_new_runs_directory_lists_the_allocation_sites() {
    let old = Results::read(&fixtures().join("results.json")).unwrap();
    let mut new = old.clone();
    let after = "large-session/after/log_bytes=67108864";
    new.cases
        .iter_mut()
        .find(|c| c.id == after)
        .unwrap()
        .peak_heap_bytes = Some(100 << 20);
    let out = tempfile::tempdir().unwrap();
    let verdicts =
        reports::compare::compare_with_profiles(&old, &new, &fixtures(), &[], out.path()).unwrap();
    let regressed = verdicts.iter().find(|v| !v.pass).unwrap();
    assert!(
        regressed.text.contains(
            "\n  - 40.0 MiB in 1 block: memproof::event_log::line_scanner::collect_events"
        ),
        "{}",
        regressed.text
    );
}
