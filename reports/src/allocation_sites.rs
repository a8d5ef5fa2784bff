//! The top allocation sites of a case, read from its dhat profile, for failure texts a person can act on.
//!
//! A failing heap verdict that only says "87 MiB, limit 64 MiB" sends the engineer off to profile; pytest-memray
//! instead prints the biggest allocation sites under the headline. memproof already has a dhat profile of the case
//! (`profile_file` in results.json, a separate run because dhat's allocator changes RSS and time), so the judge
//! reads its program points (`pps`: bytes at the global peak `gb`, total bytes `tb`, total blocks `tbk`, bytes at
//! the end `eb`, and frame indices `fs` into `ftbl`) and names each site by its first frame outside the allocator
//! and the standard library.

use anyhow::Context as _;
use harness::results::Case;
use serde::Deserialize;
use std::path::Path;

/// How many sites a failure text lists before "...and N more".
pub const TOP_SITES: usize = 10;

/// Which dhat figure ranks the sites: the one matching the failing metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteRanking {
    /// Bytes live at the global heap peak (`gb`): for peak heap.
    BytesAtPeak,
    /// Bytes allocated over the whole run (`tb`): for total allocated.
    TotalBytes,
    /// Blocks allocated over the whole run (`tbk`): for the allocation count.
    TotalBlocks,
    /// Bytes still live at the end (`eb`): for the end heap.
    BytesAtEnd,
}

impl SiteRanking {
    fn heading(self) -> &'static str {
        match self {
            SiteRanking::BytesAtPeak => "live at the heap peak",
            SiteRanking::TotalBytes => "allocated over the run",
            SiteRanking::TotalBlocks => "allocations over the run",
            SiteRanking::BytesAtEnd => "still live at the end",
        }
    }
}

#[derive(Deserialize)]
struct DhatProfile {
    pps: Vec<DhatProgramPoint>,
    ftbl: Vec<String>,
}

#[derive(Deserialize)]
struct DhatProgramPoint {
    tb: u64,
    tbk: u64,
    #[serde(default)]
    gb: Option<u64>,
    #[serde(default)]
    gbk: Option<u64>,
    #[serde(default)]
    eb: Option<u64>,
    #[serde(default)]
    ebk: Option<u64>,
    fs: Vec<usize>,
}

/// One allocation site with its figure.
#[derive(Debug, Clone, PartialEq)]
pub struct AllocationSite {
    /// `function (file:line:col)`, the first frame that is not the allocator's or the standard library's.
    pub location: String,
    pub bytes: u64,
    pub blocks: u64,
}

/// Frames that belong to the allocator, the standard library or the measuring harness, never the place to fix.
fn is_plumbing(function: &str) -> bool {
    let function = function.trim_start_matches('<');
    [
        "alloc::",
        "core::",
        "std::",
        "dhat::",
        "hashbrown::",
        "harness::alloc",
        "__rust",
        "[root]",
        "backtrace::",
        "rust_begin_unwind",
        "__libc",
    ]
    .iter()
    .any(|prefix| function.starts_with(prefix))
}

/// `0x55d…: memproof::event_log::read_all (src/event_log.rs:42:17)` → `memproof::event_log::read_all (src/event_log.rs:42:17)`.
fn strip_address(frame: &str) -> &str {
    match frame.split_once(": ") {
        Some((address, rest)) if address.starts_with("0x") => rest,
        _ => frame,
    }
}

fn site_location(profile: &DhatProfile, frames: &[usize]) -> String {
    let named: Vec<&str> = frames
        .iter()
        .filter_map(|index| profile.ftbl.get(*index))
        .map(|frame| strip_address(frame))
        .collect();
    named
        .iter()
        .find(|frame| !is_plumbing(frame))
        .or(named.first())
        .map_or_else(|| "[unknown frame]".to_string(), |frame| frame.to_string())
}

/// Reads a dhat profile and returns every site with a non-zero figure, largest first. Sites that share their first
/// interesting frame are merged.
pub fn read_sites(path: &Path, ranking: SiteRanking) -> anyhow::Result<Vec<AllocationSite>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the dhat profile", path.display()))?;
    let profile: DhatProfile = serde_json::from_str(&text).map_err(|error| {
        anyhow::anyhow!(
            "{}:{}:{}: not a dhat profile: {error}",
            path.display(),
            error.line(),
            error.column()
        )
    })?;
    let mut sites: Vec<AllocationSite> = Vec::new();
    for point in &profile.pps {
        let (bytes, blocks) = match ranking {
            SiteRanking::BytesAtPeak => (point.gb.unwrap_or(0), point.gbk.unwrap_or(0)),
            SiteRanking::TotalBytes => (point.tb, point.tbk),
            SiteRanking::TotalBlocks => (point.tbk, point.tbk),
            SiteRanking::BytesAtEnd => (point.eb.unwrap_or(0), point.ebk.unwrap_or(0)),
        };
        if bytes == 0 {
            continue;
        }
        let location = site_location(&profile, &point.fs);
        match sites.iter_mut().find(|site| site.location == location) {
            Some(site) => {
                site.bytes += bytes;
                site.blocks += blocks;
            }
            None => sites.push(AllocationSite {
                location,
                bytes,
                blocks,
            }),
        }
    }
    sites.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| a.location.cmp(&b.location))
    });
    Ok(sites)
}

/// Appends, on a line of its own, the top allocation sites of `case` (see [`describe_top_sites`]). A command case's
/// heap comes from its own meter, which records no sites: nothing is appended under each of its failures (the
/// report says once which tool gives them for its language).
pub fn push_case_sites(
    text: &mut String,
    results_dir: Option<&Path>,
    case: &Case,
    ranking: SiteRanking,
) {
    if is_command_heap(case) {
        return;
    }
    text.push('\n');
    text.push_str(&describe_top_sites(
        results_dir,
        &case.id,
        case.profile_file.as_deref(),
        ranking,
    ));
}

/// Whether `case`'s heap figures came from a command's own meter (its heap run), which records no sites.
pub fn is_command_heap(case: &Case) -> bool {
    case.profile.as_ref().and_then(|p| p.reason.as_deref())
        == Some(harness::command_case::HEAP_RUN_REASON)
}

/// The evidence under a failing heap verdict's headline: the top [`TOP_SITES`] sites of the case's dhat profile,
/// then "...and N more"; or one line saying why there are none.
pub fn describe_top_sites(
    results_dir: Option<&Path>,
    case_id: &str,
    profile_file: Option<&str>,
    ranking: SiteRanking,
) -> String {
    let Some(profile_file) = profile_file else {
        return format!(
            "No dhat profile of {case_id} was made, so its allocation sites are not known."
        );
    };
    let Some(results_dir) = results_dir else {
        return format!("Allocation sites: see the dhat profile {profile_file}.");
    };
    let sites = match read_sites(&results_dir.join(profile_file), ranking) {
        Ok(sites) => sites,
        Err(error) => return format!("Allocation sites unavailable: {error:#}"),
    };
    let mut text = format!(
        "Top allocation sites by bytes {} (dhat profile {profile_file}):",
        ranking.heading()
    );
    for site in sites.iter().take(TOP_SITES) {
        if ranking == SiteRanking::TotalBlocks {
            text.push_str(&format!(
                "\n  - {} allocations: {}",
                site.blocks, site.location
            ));
        } else {
            text.push_str(&format!(
                "\n  - {} in {} block{}: {}",
                harness::units::format_bytes(site.bytes as f64),
                site.blocks,
                if site.blocks == 1 { "" } else { "s" },
                site.location
            ));
        }
    }
    if sites.len() > TOP_SITES {
        text.push_str(&format!("\n  ...and {} more", sites.len() - TOP_SITES));
    }
    if sites.is_empty() {
        text.push_str("\n  (none)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_profile(dir: &Path, sites: usize) {
        let mut ftbl = vec![
            "[root]".to_string(),
            "0x1: <dhat::Alloc as core::alloc::global::GlobalAlloc>::alloc (dhat/src/lib.rs:1:1)"
                .to_string(),
            "0x2: alloc::raw_vec::RawVec<T>::allocate_in (alloc/src/raw_vec.rs:2:2)".to_string(),
        ];
        let mut pps = Vec::new();
        for index in 0..sites {
            ftbl.push(format!(
                "0x{index:x}0: memproof::model::site_{index} (src/model.rs:{index}:5)"
            ));
            pps.push(serde_json::json!({
                "tb": 1000 * (index as u64 + 1), "tbk": index + 1, "tl": 1,
                "mb": 0, "mbk": 0, "gb": 1024 * 1024 * (index as u64 + 1), "gbk": 1, "eb": 0, "ebk": 0,
                "fs": [1, 2, ftbl.len() - 1, 0]
            }));
        }
        let profile = serde_json::json!({
            "dhatFileVersion": 2, "mode": "rust-heap", "verb": "Allocated", "bklt": true, "bkacc": false,
            "tu": "µs", "Mtu": "s", "tuth": 10, "cmd": "memproof-dhat", "pid": 1, "tg": 1, "te": 2,
            "pps": pps, "ftbl": ftbl
        });
        std::fs::write(dir.join("case.dhat.json"), profile.to_string()).unwrap();
    }

    #[test]
    fn the_top_ten_sites_skip_allocator_frames_and_count_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        write_profile(dir.path(), 12);
        let text = describe_top_sites(
            Some(dir.path()),
            "toy/after/items=40",
            Some("case.dhat.json"),
            SiteRanking::BytesAtPeak,
        );
        let expected =
            "Top allocation sites by bytes live at the heap peak (dhat profile case.dhat.json):
  - 12.0 MiB in 1 block: memproof::model::site_11 (src/model.rs:11:5)
  - 11.0 MiB in 1 block: memproof::model::site_10 (src/model.rs:10:5)
  - 10.0 MiB in 1 block: memproof::model::site_9 (src/model.rs:9:5)
  - 9.00 MiB in 1 block: memproof::model::site_8 (src/model.rs:8:5)
  - 8.00 MiB in 1 block: memproof::model::site_7 (src/model.rs:7:5)
  - 7.00 MiB in 1 block: memproof::model::site_6 (src/model.rs:6:5)
  - 6.00 MiB in 1 block: memproof::model::site_5 (src/model.rs:5:5)
  - 5.00 MiB in 1 block: memproof::model::site_4 (src/model.rs:4:5)
  - 4.00 MiB in 1 block: memproof::model::site_3 (src/model.rs:3:5)
  - 3.00 MiB in 1 block: memproof::model::site_2 (src/model.rs:2:5)
  ...and 2 more";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_missing_profile_is_said_not_hidden() {
        assert_eq!(
            describe_top_sites(None, "toy/after/items=40", None, SiteRanking::BytesAtPeak),
            "No dhat profile of toy/after/items=40 was made, so its allocation sites are not known."
        );
        let dir = tempfile::tempdir().unwrap();
        let text = describe_top_sites(
            Some(dir.path()),
            "toy/after/items=40",
            Some("gone.json"),
            SiteRanking::TotalBytes,
        );
        assert!(
            text.starts_with("Allocation sites unavailable: ")
                && text.contains("gone.json: cannot read the dhat profile"),
            "{text}"
        );
    }
}
