//! The site diff on real dhat profiles of seeded regressions.
//!
//! `tests/fixtures/profiles/startup-seeded/` holds four dhat profiles of one case, `startup/best/concurrency=1` with
//! the smoke profile's parameters (14 stored workflows, 12 sound and 2 corrupt; technique `stream_hex_to_validator`),
//! each made by `memproof-dhat` built from a copy of the tree with one change to
//! `src/workflow_init/init_techniques.rs`:
//!
//! - `base`: none;
//! - `leak` (xtask/mutants.toml's `startup-leak-per-init`): `compile_workflow` leaks a 4096-byte block per init,
//!   `std::mem::forget(std::hint::black_box(vec![1u8; 4096]))`, so 14 x 4096 = 57,344 bytes more live at the end;
//! - `buffer`: `stream_hex_to_validator`'s spec reader is `BufReader::with_capacity(2 * SPEC_READ_BUFFER_BYTES, …)`,
//!   32 KiB more per init: 14 x 32,768 = 458,752 bytes more allocated over the run, and 32,768 more live at the
//!   peak (one init at a time);
//! - `refactor`: four comment lines above `compile_workflow`, which move every line below them and allocate nothing.
//!
//! Each was made with the case's own arguments (`memproof-case fixture …`, then `MEMPROOF_DHAT_FILE=… memproof-dhat
//! case …`), the work directory's name differing in length between the four (`work-base`, `work-refactor`): the
//! only bytes the refactor's profile has beyond the base's are that name's, in `case_main`'s arguments.

use reports::allocation_sites::SiteFigures;
use reports::site_diff::{BaseSites, SiteDiff, SiteStatus, SiteSummary, site_diff};
use schema::results::CaseField;
use std::io::Read as _;
use std::path::{Path, PathBuf};

const MODEL_FILE: &str = "src/workflow_init/init_techniques.rs";
const INITS: i64 = 14;

/// The fixture `name`, unpacked into `dir`.
fn profile(dir: &Path, name: &str) -> PathBuf {
    let packed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/profiles/startup-seeded")
        .join(format!("{name}.dhat.json.gz"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&packed).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let path = dir.join(format!("{name}.dhat.json"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The diff of `field` from the base profile (whole, or the summary a baseline keeps) to the `head` fixture.
fn diff(head: &str, field: CaseField, against_summary: bool) -> SiteDiff {
    let dir = tempfile::tempdir().unwrap();
    let (base, base_whole) =
        reports::allocation_sites::read_keyed_sites(&profile(dir.path(), "base")).unwrap();
    let (head_sites, head_whole) =
        reports::allocation_sites::read_keyed_sites(&profile(dir.path(), head)).unwrap();
    let summary = SiteSummary::of(&base, base_whole, reports::site_diff::SUMMARY_TOP_SITES);
    let base_sites = if against_summary {
        BaseSites::Summary(&summary)
    } else {
        BaseSites::Profile(&base, base_whole)
    };
    site_diff(
        "startup/best/concurrency=1",
        field,
        (&base_sites, "base".to_string()),
        (&head_sites, head_whole, head.to_string()),
    )
}

/// The top grower is `function` in the model's file, `status`, grown by `expected` within 1%.
fn check_top(diff: &SiteDiff, function: &str, status: SiteStatus, expected: i64) {
    let top = &diff.changes[0];
    assert_eq!(
        (top.function.as_str(), top.file.as_str(), top.status),
        (function, MODEL_FILE, status),
        "{}",
        diff.markdown()
    );
    let off = (top.change - expected).abs() as f64 / expected as f64;
    assert!(
        off <= 0.01,
        "grew {} for {expected}: {}",
        top.change,
        diff.markdown()
    );
}

#[test]
fn a_per_request_leak_is_named_at_its_function_with_what_it_leaks() {
    let leak = diff("leak", CaseField::EndHeapBytes, false);
    check_top(&leak, "compile_workflow", SiteStatus::New, INITS * 4096);
    assert_eq!(leak.changes[0].change, 57_344, "exactly the leaked blocks");
    assert_eq!(leak.head_total - leak.base_total, 57_344);
}

#[test]
fn a_grown_buffer_is_named_at_its_function_by_total_and_by_peak() {
    let total = diff("buffer", CaseField::TotalAllocBytes, false);
    check_top(
        &total,
        "stream_hex_to_validator",
        SiteStatus::Grew,
        INITS * 32_768,
    );
    let peak = diff("buffer", CaseField::PeakHeapBytes, false);
    check_top(&peak, "stream_hex_to_validator", SiteStatus::Grew, 32_768);
}

#[test]
fn a_refactor_that_moves_lines_shows_no_growth_in_the_model() {
    for field in [
        CaseField::PeakHeapBytes,
        CaseField::TotalAllocBytes,
        CaseField::AllocCount,
        CaseField::EndHeapBytes,
    ] {
        let refactor = diff("refactor", field, false);
        for change in refactor.changes.iter().filter(|c| c.file == MODEL_FILE) {
            assert_eq!(
                (change.status, change.change),
                (SiteStatus::Same, 0),
                "{}: {}",
                change.function,
                refactor.markdown()
            );
        }
        // Only the work directory's longer name in the case's arguments.
        let grown: Vec<_> = refactor.changes.iter().filter(|c| c.change != 0).collect();
        assert!(
            grown
                .iter()
                .all(|c| c.change.abs() <= 8 && !c.file.starts_with("src/")),
            "{}",
            refactor.markdown()
        );
    }
}

#[test]
fn against_a_baseline_summary_the_same_sites_lead() {
    let leak = diff("leak", CaseField::EndHeapBytes, true);
    // Every site with bytes at the end is in the summary, so a site it lacks had none: new, not bounded.
    check_top(&leak, "compile_workflow", SiteStatus::New, INITS * 4096);
    let total = diff("buffer", CaseField::TotalAllocBytes, true);
    check_top(
        &total,
        "stream_hex_to_validator",
        SiteStatus::Grew,
        INITS * 32_768,
    );
}

#[test]
fn a_baseline_summary_keeps_a_few_dozen_sites_and_bounds_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (sites, whole) =
        reports::allocation_sites::read_keyed_sites(&profile(dir.path(), "base")).unwrap();
    let summary = SiteSummary::of(&sites, whole, reports::site_diff::SUMMARY_TOP_SITES);
    assert!(
        summary.sites.len() <= 4 * reports::site_diff::SUMMARY_TOP_SITES,
        "{}",
        summary.sites.len()
    );
    assert!(summary.sites.len() < sites.len());
    // The whole profile's figures are dhat's own totals for it (`dhat: Total: 3,368,834 bytes in 3,127 blocks`).
    assert_eq!(
        (whole.total_bytes, whole.total_blocks, whole.end_bytes),
        (3_368_834, 3_127, 40)
    );
    let left_out_most = sites
        .iter()
        .filter(|site| !summary.sites.contains(site))
        .map(|site| site.figures.total_bytes)
        .max()
        .unwrap();
    assert_eq!(summary.left_out_at_most.total_bytes, left_out_most);
    let kept_least = summary
        .sites
        .iter()
        .map(|site| site.figures.total_bytes)
        .filter(|&bytes| bytes >= left_out_most)
        .count();
    assert!(kept_least >= reports::site_diff::SUMMARY_TOP_SITES);
    let _: SiteFigures = summary.whole;
}
#[test]
fn the_markdown_leads_with_the_grown_site_and_counts_the_unchanged() {
    assert_eq!(
        diff("buffer", CaseField::PeakHeapBytes, false).markdown(),
        "`startup/best/concurrency=1` peak_heap_bytes: sites ranked by bytes live at the heap peak; base 224 KiB → \
         head 256 KiB (+32.0 KiB), base from base, head from buffer

| | site | file | base | head | change |
|---|---|---|---:|---:|---:|
| grew | `stream_hex_to_validator` | src/workflow_init/init_techniques.rs | 32.0 KiB | 64.0 KiB | +32.0 KiB |
| grew | `case_main` | scenarios/src/lib.rs | 787 B | 789 B | +2 B |
| grew | `parse_case` | scenarios/src/lib.rs | 117 B | 119 B | +2 B |

46 sites the same on both sides.
"
    );
    assert_eq!(
        diff("leak", CaseField::EndHeapBytes, true).text(),
        "Sites by bytes still live at the end, base 40 B → head 56.0 KiB, base from base:
  - new +56.0 KiB (0 B → 56.0 KiB): compile_workflow (src/workflow_init/init_techniques.rs)
  (1 site the same on both sides)"
    );
}
