//! Where the memory went, in the reports: compare.md and compare.html with a site diff, a bless that keeps the top
//! sites of each profiled case in the baseline, and a regression against that baseline naming the sites that grew.
//! The profiles are the seeded regressions' real ones (`site_diff_profiles.rs` says how they were made), put in
//! place of the fixture run's profile of `large-session/after/log_bytes=67108864`.

mod support;

use reports::compare::CaseProfiles;
use schema::results::Verdict;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use support::{case_mut, fixture_results};

const CASE: &str = "large-session/after/log_bytes=67108864";

/// The seeded profile `name`, unpacked to `dir/profiles/NAME.dhat.json`; returns the path relative to `dir`.
fn unpack(dir: &Path, name: &str) -> String {
    let packed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/profiles/startup-seeded")
        .join(format!("{name}.dhat.json.gz"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(packed).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let relative = format!("profiles/{name}.dhat.json");
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    std::fs::write(dir.join(&relative), text).unwrap();
    relative
}

/// Compares the fixture run with itself, `CASE`'s peak heap raised to 100 MiB, with `profiled` and `specs`; the
/// output directory holds compare.md and compare.html.
fn compare_regressed(
    profiled: &[CaseProfiles],
    specs: &[schema::spec::Spec],
) -> (reports::compare::Comparison, tempfile::TempDir) {
    let old = fixture_results();
    let mut new = old.clone();
    case_mut(&mut new, CASE).peak_heap_bytes = Some(100 << 20);
    let out = tempfile::tempdir().unwrap();
    let comparison = reports::compare::compare_with_sites(
        &old,
        &new,
        &support::fixtures(),
        profiled,
        specs,
        None,
        out.path(),
    )
    .unwrap();
    (comparison, out)
}

#[test]
fn compare_shows_where_the_memory_went_in_both_pages() {
    let profiles = tempfile::tempdir().unwrap();
    let path = |name: &str| -> PathBuf { profiles.path().join(unpack(profiles.path(), name)) };
    let profiled = [
        CaseProfiles {
            case_id: CASE.to_string(),
            verdicts: vec![format!("{CASE}/peak_heap_bytes")],
            base: Ok(path("base")),
            head: Ok(path("buffer")),
        },
        CaseProfiles {
            case_id: "large-session/best/log_bytes=67108864".to_string(),
            verdicts: vec![],
            base: Err("the dhat run of the base failed: out of time".to_string()),
            head: Ok(path("buffer")),
        },
    ];
    let (comparison, out) = compare_regressed(&profiled, &[]);
    let diff = &comparison.sites[0].diffs[0];
    assert_eq!(
        (
            diff.figure.as_str(),
            diff.changes[0].function.as_str(),
            diff.changes[0].change
        ),
        ("peak_heap_bytes", "stream_hex_to_validator", 32_768)
    );
    assert_eq!(
        comparison.sites[1].note.as_deref(),
        Some(
            "No site diff of large-session/best/log_bytes=67108864: the dhat run of the base failed: out of time."
        )
    );
    let markdown = std::fs::read_to_string(out.path().join("compare.md")).unwrap();
    assert!(
        markdown.contains("### Where the memory went\n\n"),
        "{markdown}"
    );
    assert!(
        markdown.contains(
            "| grew | `stream_hex_to_validator` | src/workflow_init/init_techniques.rs | 32.0 KiB | 64.0 KiB | \
             +32.0 KiB |"
        ),
        "{markdown}"
    );
    let page = std::fs::read_to_string(out.path().join("compare.html")).unwrap();
    assert!(page.contains("id=\"where-the-memory-went\""));
    // minijinja escapes a `/` in a value as `&#x2f;`.
    assert!(page.contains(&format!(
        "data-site-chart=\"{}/peak_heap_bytes\"",
        CASE.replace('/', "&#x2f;")
    )));
    assert!(page.contains(
        "<code>stream_hex_to_validator</code> +32.0 KiB</div><div class=\"site-bar-fill\" style=\"background: \
         #b03a2e; height: 0.9em; min-width: 2px; width: 100.0%;\">"
    ));
    assert!(page.contains("data-site-status=\"grew\""));
}

#[test]
fn bless_keeps_the_top_sites_and_a_regression_against_it_names_what_grew() {
    let run = tempfile::tempdir().unwrap();
    let mut blessed = fixture_results();
    case_mut(&mut blessed, CASE).dhat_file = Some(unpack(run.path(), "base"));
    let dir = tempfile::tempdir().unwrap();
    let with_sites = dir.path().join("baseline.json");
    let without_sites = dir.path().join("baseline-without-sites.json");
    let message = reports::baseline::bless(&blessed, Some(run.path()), &with_sites, None).unwrap();
    reports::baseline::bless(&blessed, None, &without_sites, None).unwrap();
    let sites = reports::baseline::read_baseline_sites(&with_sites).unwrap();
    let summary = &sites[CASE];
    assert!(
        message.ends_with(&format!(
            "\n  top allocation sites kept for 1 profiled cases ({} sites).",
            summary.sites.len()
        )),
        "{message}"
    );
    // The figures read the same with or without the summary, and a baseline without one has none.
    assert_eq!(
        reports::baseline::read_baseline(&with_sites).unwrap(),
        reports::baseline::read_baseline(&without_sites).unwrap()
    );
    assert!(
        reports::baseline::read_baseline_sites(&without_sites)
            .unwrap()
            .is_empty()
    );

    // Blessing another scenario alone keeps this one's summary.
    reports::baseline::bless_scenario(&blessed, Some(run.path()), &with_sites, "calibration", None)
        .unwrap();
    assert_eq!(
        reports::baseline::read_baseline_sites(&with_sites).unwrap()[CASE],
        *summary
    );

    // A later run leaks: its regression names the leaking site against the baseline's summary.
    let head_dir = tempfile::tempdir().unwrap();
    let mut head = fixture_results();
    case_mut(&mut head, CASE).dhat_file = Some(unpack(head_dir.path(), "leak"));
    let mut verdicts = vec![Verdict {
        change: None,
        id: format!("{CASE}/end_heap_bytes"),
        kind: schema::results::VerdictKind::Regression,
        subject: CASE.to_string(),
        text: "end_heap_bytes: regressed against the baseline".to_string(),
        expected: String::new(),
        measured: String::new(),
        pass: false,
        counterfactual: None,
    }];
    reports::site_diff::explain_against_baseline(&mut verdicts, &head, head_dir.path(), &sites);
    assert_eq!(
        verdicts[0].text,
        "end_heap_bytes: regressed against the baseline
Sites by bytes still live at the end, base 40 B → head 56.0 KiB, base from the baseline's summary of its top sites:
  - new +56.0 KiB (0 B → 56.0 KiB): compile_workflow (src/workflow_init/init_techniques.rs)
  (1 site the same on both sides)"
    );
    // A case the baseline keeps no summary of says so.
    let mut verdicts = vec![verdicts[0].clone()];
    verdicts[0].text = "regressed".to_string();
    reports::site_diff::explain_against_baseline(
        &mut verdicts,
        &head,
        head_dir.path(),
        &Default::default(),
    );
    assert!(
        verdicts[0]
            .text
            .ends_with("\nThe baseline keeps no summary of this case's allocation sites, so what grew is not known against it; `cargo xtask bless` from a run that profiled the case keeps one."),
        "{}",
        verdicts[0].text
    );
}

#[test]
fn a_case_a_command_plays_says_its_sites_are_not_recorded_and_names_the_tool() {
    let text = schema::toy_spec::toy_spec("large-session", &[], "")
        .replace(
            "variants = [\n]",
            "variants = [\n  { role = \"after\", technique = \"line_scanner_collect\", command = [\"python3\", \
             \"server.py\", \"{size}\"] },\n]",
        )
        + "[profiles.ci]\nsize = { name = \"log_bytes\", unit = \"bytes\", values = [16777216, 33554432, 67108864] }\n";
    let spec = schema::spec::Spec::parse(Path::new("large-session.toml"), &text).unwrap();
    let profiled = [CaseProfiles {
        case_id: CASE.to_string(),
        verdicts: vec![format!("{CASE}/peak_heap_bytes")],
        base: Err(String::new()),
        head: Err(String::new()),
    }];
    let (comparison, out) = compare_regressed(&profiled, &[spec]);
    let note = "Where the memory went in large-session/after/log_bytes=67108864 is not known: its heap comes from \
                the program's probe client, which reports totals, so memproof records no allocation sites for \
                `python3 server.py {size}`; the tool that records them is for Python, memray (`memray run`, then \
                `memray flamegraph`) or two tracemalloc snapshots compared with `Snapshot.compare_to`.";
    assert_eq!(comparison.sites[0].note.as_deref(), Some(note));
    assert!(comparison.sites[0].diffs.is_empty());
    let markdown = std::fs::read_to_string(out.path().join("compare.md")).unwrap();
    assert!(markdown.contains(note), "{markdown}");
}
