//! Where the memory went: the allocation sites of one case on two revisions, matched and ranked by how much each
//! grew.
//!
//! A regression verdict says *that* a figure moved ("peak heap +3.4%"); the reviewer's next question is which code
//! holds the difference. Both sides' dhat profiles answer it once their sites are matched: a site is its naming
//! frame's function path and source file ([`SiteKey`]), never its line, which an unrelated edit above it moves. The
//! figure compared is the one that regressed: bytes live at the peak for peak heap, bytes or blocks over the run for
//! total allocation, bytes live at the end for a leak ([`SiteRanking`]). The base side is a whole profile (`compare`
//! profiles both sides) or the committed baseline's summary of its top sites ([`SiteSummary`]), which keeps exact
//! figures for the sites it holds and, for every other site, the most any of them had, so a site missing from it is
//! shown with that bound and never called new.
//!
//! A case whose technique is a command (a program of another language) has no dhat profile: its heap comes from
//! the preload library or a probe client, which count bytes and never record where they were allocated.
//! [`sites_not_recorded`] says so and names the profiler of that language instead of inventing sites.

use crate::allocation_sites::{ProfileSite, SiteFigures, SiteKey, SiteRanking, read_keyed_sites};
use crate::judge::check_expression::Metric;
use schema::external_command::{ExternalTechnique, HeapFrom};
use schema::results::CaseField;
use schema::results::{Results, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top allocation sites a baseline keeps, by case id.
pub type BaselineSites = std::collections::BTreeMap<String, SiteSummary>;

/// How many sites of each ranking a baseline keeps per case (the summary holds the union of the four rankings'
/// top sites, so a few dozen at most).
pub const SUMMARY_TOP_SITES: usize = 16;

/// How many sites a compare.md table shows in the open before folding the rest.
pub const OPEN_ROWS: usize = 3;

/// How many sites a compare.md table lists in all; the rest are counted, and compare.html lists every one.
pub const MARKDOWN_ROWS: usize = 12;

/// How many growers compare.html's chart draws.
pub const CHART_BARS: usize = 10;

/// A case's top sites as a baseline keeps them: exact figures of the top [`SUMMARY_TOP_SITES`] sites by each
/// ranking, and for each figure the most any site left out had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteSummary {
    /// The whole profile's figures (every site's, not only those kept).
    pub whole: SiteFigures,
    /// For each figure, the largest a site left out of `sites` had: a site not listed had at most this.
    pub left_out_at_most: SiteFigures,
    pub sites: Vec<ProfileSite>,
}

const RANKINGS: [SiteRanking; 4] = [
    SiteRanking::BytesAtPeak,
    SiteRanking::TotalBytes,
    SiteRanking::TotalBlocks,
    SiteRanking::BytesAtEnd,
];

impl SiteSummary {
    /// Keeps the top `top` sites of each ranking (those with a non-zero figure), in key order.
    pub fn of(sites: &[ProfileSite], whole: SiteFigures, top: usize) -> SiteSummary {
        let mut kept = vec![false; sites.len()];
        for ranking in RANKINGS {
            let mut order: Vec<usize> = (0..sites.len())
                .filter(|&at| sites[at].figures.ranked(ranking) > 0)
                .collect();
            order.sort_by_key(|&at| std::cmp::Reverse(sites[at].figures.ranked(ranking)));
            for &at in order.iter().take(top) {
                kept[at] = true;
            }
        }
        let mut left_out_at_most = SiteFigures::default();
        for (site, _) in sites.iter().zip(&kept).filter(|(_, kept)| !**kept) {
            let figures = &site.figures;
            let most = &mut left_out_at_most;
            most.peak_bytes = most.peak_bytes.max(figures.peak_bytes);
            most.peak_blocks = most.peak_blocks.max(figures.peak_blocks);
            most.total_bytes = most.total_bytes.max(figures.total_bytes);
            most.total_blocks = most.total_blocks.max(figures.total_blocks);
            most.end_bytes = most.end_bytes.max(figures.end_bytes);
            most.end_blocks = most.end_blocks.max(figures.end_blocks);
        }
        SiteSummary {
            whole,
            left_out_at_most,
            sites: sites
                .iter()
                .zip(&kept)
                .filter(|(_, kept)| **kept)
                .map(|(site, _)| site.clone())
                .collect(),
        }
    }

    /// The summary of the dhat profile at `path`.
    pub fn read(path: &Path) -> anyhow::Result<SiteSummary> {
        let (sites, whole) = read_keyed_sites(path)?;
        Ok(SiteSummary::of(&sites, whole, SUMMARY_TOP_SITES))
    }
}

/// The base side of a site diff.
pub enum BaseSites<'a> {
    /// A whole dhat profile: a site it lacks had nothing.
    Profile(&'a [ProfileSite], SiteFigures),
    /// A baseline's summary: a site it lacks had at most the summary's bound.
    Summary(&'a SiteSummary),
}

/// What became of one site from base to head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SiteStatus {
    Grew,
    Shrank,
    Same,
    /// No figure on the base, some on the head.
    New,
    /// Some on the base, none on the head.
    Gone,
    /// Not among the baseline summary's top sites: the base figure is only bounded.
    BelowBaselineTop,
}

impl SiteStatus {
    pub fn word(self) -> &'static str {
        match self {
            SiteStatus::Grew => "grew",
            SiteStatus::Shrank => "shrank",
            SiteStatus::Same => "same",
            SiteStatus::New => "new",
            SiteStatus::Gone => "gone",
            SiteStatus::BelowBaselineTop => "not in the baseline's top sites",
        }
    }
}

/// One site in both revisions, by the ranked figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteChange {
    pub function: String,
    pub file: String,
    /// The base's figure; `None` when only a bound is known ([`SiteStatus::BelowBaselineTop`]).
    pub base: Option<u64>,
    /// The most the base can have had, when only that is known.
    pub base_at_most: Option<u64>,
    pub head: u64,
    /// `head - base`; with only a bound on the base, `head - bound`, the least it grew by.
    pub change: i64,
    pub status: SiteStatus,
}

/// The site diff of one case and one figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteDiff {
    pub case_id: String,
    /// The figure that regressed (`peak_heap_bytes`), whose dhat counterpart ranks the sites.
    pub figure: String,
    pub ranking_words: String,
    /// Where each side's sites came from.
    pub base_source: String,
    pub head_source: String,
    /// The whole profile's figure on each side.
    pub base_total: u64,
    pub head_total: u64,
    /// Every site with a figure on either side, the most grown first, the most shrunk last.
    pub changes: Vec<SiteChange>,
    /// Counts, not bytes (the allocation count).
    pub counts_blocks: bool,
}

/// Matches the sites of both sides and ranks them by growth of the `ranking` figure.
pub fn diff_sites<'a>(
    base: &BaseSites<'a>,
    head: &'a [ProfileSite],
    ranking: SiteRanking,
) -> Vec<SiteChange> {
    let base_sites: &[ProfileSite] = match base {
        BaseSites::Profile(sites, _) => sites,
        BaseSites::Summary(summary) => &summary.sites,
    };
    let by_key = |sites: &'a [ProfileSite]| -> BTreeMap<&'a SiteKey, u64> {
        sites
            .iter()
            .map(|site| (&site.key, site.figures.ranked(ranking)))
            .collect()
    };
    let (base_by_key, head_by_key) = (by_key(base_sites), by_key(head));
    let keys: BTreeSet<&SiteKey> = base_by_key
        .keys()
        .chain(head_by_key.keys())
        .copied()
        .collect();
    let mut changes: Vec<SiteChange> = keys
        .into_iter()
        .filter_map(|key| {
            let head_figure = head_by_key.get(key).copied().unwrap_or(0);
            let (base_figure, base_at_most) = match (base_by_key.get(key).copied(), base) {
                (Some(figure), _) => (Some(figure), None),
                (None, BaseSites::Profile(..)) => (Some(0), None),
                (None, BaseSites::Summary(summary)) => {
                    match summary.left_out_at_most.ranked(ranking) {
                        // The summary kept every site with this figure: one it lacks had none.
                        0 => (Some(0), None),
                        most => (None, Some(most)),
                    }
                }
            };
            if base_figure == Some(0) && head_figure == 0 {
                return None;
            }
            let change = head_figure as i64 - base_figure.or(base_at_most).unwrap_or(0) as i64;
            let status = match base_figure {
                None => SiteStatus::BelowBaselineTop,
                Some(0) => SiteStatus::New,
                Some(_) if head_figure == 0 => SiteStatus::Gone,
                Some(_) if change > 0 => SiteStatus::Grew,
                Some(_) if change < 0 => SiteStatus::Shrank,
                Some(_) => SiteStatus::Same,
            };
            Some(SiteChange {
                function: key.function.clone(),
                file: key.file.clone(),
                base: base_figure,
                base_at_most,
                head: head_figure,
                change,
                status,
            })
        })
        .collect();
    changes.sort_by(|a, b| {
        b.change
            .cmp(&a.change)
            .then_with(|| b.head.cmp(&a.head))
            .then_with(|| a.function.cmp(&b.function))
    });
    changes
}

/// The site diff of `case_id`'s `figure` between two sides.
pub fn site_diff(
    case_id: &str,
    field: CaseField,
    (base, base_source): (&BaseSites, String),
    (head, head_whole, head_source): (&[ProfileSite], SiteFigures, String),
) -> SiteDiff {
    let ranking = ranking_for(field);
    let base_total = match base {
        BaseSites::Profile(_, whole) => whole.ranked(ranking),
        BaseSites::Summary(summary) => summary.whole.ranked(ranking),
    };
    SiteDiff {
        case_id: case_id.to_string(),
        figure: field.name().to_string(),
        ranking_words: match ranking {
            SiteRanking::TotalBlocks => "allocations over the run".to_string(),
            other => format!("bytes {}", other.heading()),
        },
        base_source,
        head_source,
        base_total,
        head_total: head_whole.ranked(ranking),
        changes: diff_sites(base, head, ranking),
        counts_blocks: ranking == SiteRanking::TotalBlocks,
    }
}

/// The dhat figure that explains a regressed case field. Peak RSS has none of its own: the heap live at the heap
/// peak is the part of it that sites explain.
pub fn ranking_for(field: CaseField) -> SiteRanking {
    Metric::Field(field)
        .site_ranking()
        .unwrap_or(SiteRanking::BytesAtPeak)
}

/// The case fields a failed verdict is about: a regression verdict's own (`CASE/peak_heap_bytes`), or those its
/// check names (`before.peak_heap_bytes / after.peak_heap_bytes`); peak heap when it names none that a profile
/// explains (an outcome, a time, a scenario metric: what a heap profile shows of such a failure is the peak).
pub fn fields_of_verdict(verdict: &Verdict) -> Vec<CaseField> {
    let named = |text: &str| -> Vec<CaseField> {
        CaseField::ALL
            .into_iter()
            .filter(|field| Metric::Field(*field).site_ranking().is_some())
            .filter(|field| {
                text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '/'))
                    .any(|word| {
                        word.ends_with(&format!(".{}", field.name()))
                            || word.ends_with(&format!("/{}", field.name()))
                    })
            })
            .collect()
    };
    let mut fields = if verdict.kind == schema::results::VerdictKind::Regression {
        named(&verdict.id)
    } else {
        named(&verdict.subject)
    };
    if fields.is_empty() {
        fields.push(CaseField::PeakHeapBytes);
    }
    fields
}

/// Why a case run by a command has no allocation sites, and the tool that records them for its language (a
/// technique memproof builds has a dhat run instead).
pub fn sites_not_recorded(technique: &ExternalTechnique) -> String {
    let program = technique
        .command
        .first()
        .map(|program| {
            Path::new(program).file_name().map_or_else(
                || program.clone(),
                |name| name.to_string_lossy().into_owned(),
            )
        })
        .unwrap_or_default();
    let source = match technique.heap {
        HeapFrom::Preload => "memproof's preload library, which counts malloc's bytes",
        HeapFrom::Probe => "the program's probe client, which reports totals",
        HeapFrom::None => "nowhere (RSS, outcome and time only)",
    };
    let tool = if program.starts_with("python") {
        "for Python, memray (`memray run`, then `memray flamegraph`) or two tracemalloc snapshots compared with \
         `Snapshot.compare_to`"
    } else if program == "node" || program.starts_with("node") {
        "for Node, two Chrome DevTools heap snapshots (`node --inspect`) compared, or `node --heap-prof`"
    } else if program == "go" {
        "for Go, pprof's heap profile (`go tool pprof -diff_base`)"
    } else if technique.heap == HeapFrom::Preload {
        "for C, C++ or any malloc user, heaptrack (`heaptrack_print --diff`)"
    } else {
        "memray or tracemalloc snapshots for Python, heaptrack for C, C++ and malloc users, Chrome DevTools heap \
         snapshots or `--heap-prof` for Node, pprof for Go"
    };
    format!(
        "its heap comes from {source}, so memproof records no allocation sites for `{}`; the tool that records \
         them is {tool}",
        technique.command.join(" ")
    )
}

/// The text with its first letter upper case, to start a sentence.
fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// `1 site`, `3 sites`.
fn sites_word(count: usize) -> String {
    format!("{count} site{}", if count == 1 { "" } else { "s" })
}

fn format_figure(value: u64, counts_blocks: bool) -> String {
    if counts_blocks {
        value.to_string()
    } else {
        schema::units::format_bytes(value as f64)
    }
}

fn format_change(change: i64, counts_blocks: bool) -> String {
    let sign = if change < 0 { "-" } else { "+" };
    format!(
        "{sign}{}",
        format_figure(change.unsigned_abs(), counts_blocks)
    )
}

/// A site change as a page or a table shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SiteRow {
    pub function: String,
    pub file: String,
    pub status: &'static str,
    pub base: String,
    pub head: String,
    pub change: String,
    /// For compare.html's chart: the growth as a share of the largest growth shown, in percent.
    pub bar_percent: f64,
}

impl SiteDiff {
    /// The headline: the case and figure, then [`SiteDiff::sums`].
    pub fn headline(&self) -> String {
        format!("`{}` {}: {}", self.case_id, self.figure, self.sums())
    }

    /// What the ranked figure sums to over the sites on each side, and where each side's sites come from.
    pub fn sums(&self) -> String {
        format!(
            "sites ranked by {}; base {} → head {} ({}), base from {}, head from {}",
            self.ranking_words,
            format_figure(self.base_total, self.counts_blocks),
            format_figure(self.head_total, self.counts_blocks),
            format_change(
                self.head_total as i64 - self.base_total as i64,
                self.counts_blocks
            ),
            self.base_source,
            self.head_source
        )
    }

    /// Every site as rows, the most grown first.
    pub fn rows(&self) -> Vec<SiteRow> {
        let largest = self
            .changes
            .iter()
            .map(|c| c.change)
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        self.changes
            .iter()
            .map(|change| SiteRow {
                function: change.function.clone(),
                file: change.file.clone(),
                status: change.status.word(),
                base: match (change.base, change.base_at_most) {
                    (Some(base), _) => format_figure(base, self.counts_blocks),
                    (None, Some(most)) => format!("≤ {}", format_figure(most, self.counts_blocks)),
                    (None, None) => "–".to_string(),
                },
                head: format_figure(change.head, self.counts_blocks),
                change: if change.status == SiteStatus::BelowBaselineTop {
                    format!("≥ {}", format_change(change.change, self.counts_blocks))
                } else {
                    format_change(change.change, self.counts_blocks)
                },
                bar_percent: (change.change.max(0) as f64 / largest * 100.0).min(100.0),
            })
            .collect()
    }

    /// The growers compare.html's chart draws: sites that grew, at most [`CHART_BARS`].
    pub fn growers(&self) -> Vec<SiteRow> {
        self.rows()
            .into_iter()
            .filter(|row| row.bar_percent > 0.0)
            .take(CHART_BARS)
            .collect()
    }

    /// The sites whose figure changed, the most grown first, and in words those left out: the sites the same on
    /// both sides, and those the baseline's summary only bounds and the head keeps within that bound (nothing says
    /// whether they changed).
    fn changed_rows(&self) -> (Vec<SiteRow>, String) {
        let (mut same, mut within_bound) = (0, 0);
        let mut changed = Vec::new();
        for (row, change) in self.rows().into_iter().zip(&self.changes) {
            match change.status {
                SiteStatus::Same => same += 1,
                SiteStatus::BelowBaselineTop if change.change <= 0 => within_bound += 1,
                _ => changed.push(row),
            }
        }
        let mut left_out = format!("{} the same on both sides", sites_word(same));
        if within_bound > 0 {
            left_out.push_str(&format!(
                ", {} not in the baseline's top sites and within their bound",
                sites_word(within_bound)
            ));
        }
        (changed, left_out)
    }

    /// The diff in compare.md: a headline, the first [`OPEN_ROWS`] sites that changed in the open and the rest up
    /// to [`MARKDOWN_ROWS`] folded, then how many more compare.html lists.
    pub fn markdown(&self) -> String {
        let (rows, left_out) = self.changed_rows();
        let row = |row: &SiteRow| {
            format!(
                "| {} | `{}` | {} | {} | {} | {} |\n",
                row.status,
                schema::text_escaping::escape_markdown_cell(&row.function),
                schema::text_escaping::escape_markdown_cell(&row.file),
                row.base,
                row.head,
                row.change
            )
        };
        const HEAD: &str =
            "| | site | file | base | head | change |\n|---|---|---|---:|---:|---:|\n";
        let mut text = format!("{}\n\n{HEAD}", self.headline());
        for shown in rows.iter().take(OPEN_ROWS) {
            text.push_str(&row(shown));
        }
        if rows.len() > OPEN_ROWS {
            let folded = &rows[OPEN_ROWS..rows.len().min(MARKDOWN_ROWS)];
            text.push_str(&format!(
                "\n<details><summary>{} more {} that changed</summary>\n\n{HEAD}",
                rows.len() - OPEN_ROWS,
                if rows.len() - OPEN_ROWS == 1 {
                    "site"
                } else {
                    "sites"
                }
            ));
            for shown in folded {
                text.push_str(&row(shown));
            }
            if rows.len() > MARKDOWN_ROWS {
                text.push_str(&format!(
                    "\n…and {} more, in compare.html\n",
                    rows.len() - MARKDOWN_ROWS
                ));
            }
            text.push_str("\n</details>\n");
        }
        if rows.is_empty() {
            text.push_str("| | (no site changed) | | | | |\n");
        }
        text.push_str(&format!("\n{}.\n", upper_first(&left_out)));
        text
    }
}

/// How many sites a verdict's text lists before "...and N more".
pub const TEXT_ROWS: usize = 10;

impl SiteDiff {
    /// The diff as lines under a verdict's text (summary.md, junit.xml): the [`TEXT_ROWS`] most grown sites.
    pub fn text(&self) -> String {
        let mut text = format!(
            "Sites by {}, base {} → head {}, base from {}:",
            self.ranking_words,
            format_figure(self.base_total, self.counts_blocks),
            format_figure(self.head_total, self.counts_blocks),
            self.base_source
        );
        let (rows, left_out) = self.changed_rows();
        for row in rows.iter().take(TEXT_ROWS) {
            text.push_str(&format!(
                "\n  - {} {} ({} → {}): {} ({})",
                row.status, row.change, row.base, row.head, row.function, row.file
            ));
        }
        if rows.len() > TEXT_ROWS {
            text.push_str(&format!("\n  ...and {} more", rows.len() - TEXT_ROWS));
        }
        text.push_str(&format!("\n  ({left_out})"));
        text
    }
}

/// Appends to each failed regression verdict the site diff of its case against the baseline's summary of it (see
/// [`crate::baseline::read_baseline_sites`]), from the case's dhat profile in `results_dir`: a plain load test
/// names the sites that grew without running the base. A case the baseline keeps no summary of says so.
pub fn explain_against_baseline(
    verdicts: &mut [Verdict],
    results: &Results,
    results_dir: &Path,
    baseline_sites: &BaselineSites,
) {
    for verdict in verdicts
        .iter_mut()
        .filter(|v| v.kind == schema::results::VerdictKind::Regression && !v.pass)
    {
        let Some(case) = results.cases.iter().find(|c| c.id == verdict.subject) else {
            continue;
        };
        let Some(profile) = &case.dhat_file else {
            continue;
        };
        let Some(summary) = baseline_sites.get(&case.id) else {
            verdict.text.push_str(
                "\nThe baseline keeps no summary of this case's allocation sites, so what grew is not known \
                 against it; `cargo xtask bless` from a run that profiled the case keeps one.",
            );
            continue;
        };
        let (head, head_whole) = match read_keyed_sites(&results_dir.join(profile)) {
            Ok(read) => read,
            Err(error) => {
                verdict.text.push_str(&format!(
                    "\nSites against the baseline unavailable: {error:#}"
                ));
                continue;
            }
        };
        for field in fields_of_verdict(verdict) {
            let diff = site_diff(
                &case.id,
                field,
                (
                    &BaseSites::Summary(summary),
                    "the baseline's summary of its top sites".to_string(),
                ),
                (&head, head_whole, format!("dhat profile {profile}")),
            );
            verdict.text.push('\n');
            verdict.text.push_str(&diff.text());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(function: &str, peak: u64) -> ProfileSite {
        ProfileSite {
            key: SiteKey {
                function: function.to_string(),
                file: "src/a.rs".to_string(),
            },
            figures: SiteFigures {
                peak_bytes: peak,
                peak_blocks: 1,
                total_bytes: peak,
                total_blocks: peak / 10,
                end_bytes: 0,
                end_blocks: 0,
            },
        }
    }

    fn check(base: &BaseSites, head: &[ProfileSite], expected: &[(&str, &str, i64)]) {
        let changes = diff_sites(base, head, SiteRanking::BytesAtPeak);
        let got: Vec<(&str, &str, i64)> = changes
            .iter()
            .map(|c| (c.function.as_str(), c.status.word(), c.change))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn sites_are_ranked_by_growth_with_new_and_gone_marked() {
        let base = [
            site("a::kept", 100),
            site("a::grew", 100),
            site("a::gone", 50),
        ];
        let head = [
            site("a::kept", 100),
            site("a::grew", 400),
            site("a::new", 200),
        ];
        check(
            &BaseSites::Profile(&base, SiteFigures::default()),
            &head,
            &[
                ("a::grew", "grew", 300),
                ("a::new", "new", 200),
                ("a::kept", "same", 0),
                ("a::gone", "gone", -50),
            ],
        );
    }

    #[test]
    fn a_site_left_out_of_the_baseline_summary_is_bounded_not_new() {
        let base: Vec<ProfileSite> = (1..=5).map(|n| site(&format!("a::s{n}"), n * 10)).collect();
        let summary = SiteSummary::of(&base, SiteFigures::default(), 2);
        // Kept: the top two of every ranking (s5, s4); every other site had at most s3's 30 bytes.
        assert_eq!(summary.sites.len(), 2);
        assert_eq!(summary.left_out_at_most.peak_bytes, 30);
        let head = [site("a::s5", 50), site("a::s1", 100)];
        check(
            &BaseSites::Summary(&summary),
            &head,
            &[
                ("a::s1", "not in the baseline's top sites", 70),
                ("a::s5", "same", 0),
                ("a::s4", "gone", -40),
            ],
        );
    }

    #[test]
    fn a_site_the_summary_bounds_and_the_head_keeps_within_the_bound_is_counted_not_listed() {
        let base: Vec<ProfileSite> = (1..=5).map(|n| site(&format!("a::s{n}"), n * 10)).collect();
        let summary = SiteSummary::of(&base, SiteFigures::default(), 2);
        let head = [
            site("a::s5", 90),
            site("a::s4", 40),
            site("a::s2", 20),
            site("a::s1", 31),
        ];
        let diff = site_diff(
            "toy/after/n=1",
            CaseField::PeakHeapBytes,
            (&BaseSites::Summary(&summary), "the summary".to_string()),
            (&head, SiteFigures::default(), "the head".to_string()),
        );
        assert_eq!(
            diff.text(),
            "Sites by bytes live at the heap peak, base 0 B → head 0 B, base from the summary:
  - grew +40 B (50 B → 90 B): a::s5 (src/a.rs)
  - not in the baseline's top sites ≥ +1 B (≤ 30 B → 31 B): a::s1 (src/a.rs)
  (1 site the same on both sides, 1 site not in the baseline's top sites and within their bound)"
        );
    }

    #[test]
    fn a_verdict_names_the_fields_it_is_about() {
        use schema::results::VerdictKind;
        let verdict = |kind: VerdictKind, id: &str, subject: &str| Verdict {
            change: None,
            id: id.into(),
            kind,
            subject: subject.into(),
            text: String::new(),
            expected: String::new(),
            measured: String::new(),
            pass: false,
            counterfactual: None,
        };
        assert_eq!(
            fields_of_verdict(&verdict(
                VerdictKind::Regression,
                "s/after/n=1/end_heap_bytes",
                "s/after/n=1"
            )),
            [CaseField::EndHeapBytes]
        );
        assert_eq!(
            fields_of_verdict(&verdict(
                VerdictKind::Claim,
                "s/ratio",
                "before.total_alloc_bytes / after.total_alloc_bytes"
            )),
            [CaseField::TotalAllocBytes]
        );
        assert_eq!(
            fields_of_verdict(&verdict(VerdictKind::Outcome, "s/ok", "after.outcome")),
            [CaseField::PeakHeapBytes]
        );
    }

    #[test]
    fn a_command_says_its_sites_are_not_recorded_and_names_its_tool() {
        let technique = |command: &[&str], heap| ExternalTechnique {
            command: command.iter().map(|s| s.to_string()).collect(),
            heap,
            env: Default::default(),
        };
        assert_eq!(
            sites_not_recorded(&technique(
                &["/usr/bin/python3", "server.py"],
                HeapFrom::Probe
            )),
            "its heap comes from the program's probe client, which reports totals, so memproof records no \
             allocation sites for `/usr/bin/python3 server.py`; the tool that records them is for Python, memray \
             (`memray run`, then `memray flamegraph`) or two tracemalloc snapshots compared with \
             `Snapshot.compare_to`"
        );
        assert!(
            sites_not_recorded(&technique(&["./cache"], HeapFrom::Preload))
                .ends_with("for C, C++ or any malloc user, heaptrack (`heaptrack_print --diff`)")
        );
        assert!(
            sites_not_recorded(&technique(&["node", "a.js"], HeapFrom::Probe))
                .contains("--heap-prof")
        );
    }
}
