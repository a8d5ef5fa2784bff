//! The top allocation sites of a case, read from its dhat profile, for failure texts a person can act on.
//!
//! A failing heap verdict that only says "87 MiB, limit 64 MiB" sends the engineer off to profile; pytest-memray
//! instead prints the biggest allocation sites under the headline. memproof already has a dhat profile of the case
//! (`dhat_file` in results.json, a separate run because dhat's allocator changes RSS and time), so the judge
//! reads its program points (`pps`: bytes at the global peak `gb`, total bytes `tb`, total blocks `tbk`, bytes at
//! the end `eb`, and frame indices `fs` into `ftbl`) and names each site by its first frame outside the allocator
//! and the standard library.

use anyhow::Context as _;
use schema::results::Case;
use serde::{Deserialize, Serialize};
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
    /// What the ranked figure counts, after `bytes`: `live at the heap peak`.
    pub fn heading(self) -> &'static str {
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
/// A frame is known by its function's path where the symbol has one (`alloc::raw_vec::…`), else by its file:
/// dhat names a file by its last three path components, so the standard library's are `alloc/src/alloc.rs`,
/// `src/vec/mod.rs` or `buffered/bufreader/buffer.rs`, and an inlined frame's function is its last path segment
/// alone (`with_capacity`). A crate of the user's whose file is `src/io/…` is taken for the standard library's.
fn is_plumbing(frame: &str) -> bool {
    let key = SiteKey::of_frame(frame);
    let function = key.function.trim_start_matches('<');
    let by_function = [
        "alloc::",
        "core::",
        "std::",
        "dhat::",
        "hashbrown::",
        "meter::alloc",
        "__rust",
        "[root]",
        "backtrace::",
        "rust_begin_unwind",
        "__libc",
    ]
    .iter()
    .any(|prefix| function.starts_with(prefix));
    by_function || is_plumbing_file(&key.file)
}

/// Module directories of the standard library (`std`, `core`, `alloc`) that a trimmed file path can start with.
const STANDARD_LIBRARY_DIRS: &[&str] = &[
    "adapters",
    "alloc",
    "array",
    "async_iter",
    "backtrace",
    "boxed",
    "btree",
    "buffered",
    "bufreader",
    "cell",
    "char",
    "collections",
    "convert",
    "core",
    "ffi",
    "fmt",
    "fs",
    "future",
    "hash",
    "hash_map",
    "io",
    "iter",
    "linked_list",
    "mem",
    "mpmc",
    "mpsc",
    "net",
    "num",
    "ops",
    "os",
    "os_str",
    "pal",
    "panic",
    "path",
    "pin",
    "process",
    "ptr",
    "raw_vec",
    "rc",
    "rt",
    "slice",
    "sort",
    "std",
    "str",
    "string",
    "sync",
    "sys",
    "sys_common",
    "task",
    "thread",
    "thread_local",
    "time",
    "traits",
    "unix",
    "vec",
    "vec_deque",
];

fn is_plumbing_file(file: &str) -> bool {
    let parts: Vec<&str> = file.split('/').collect();
    match parts.as_slice() {
        [library, "src", ..] if ["alloc", "core", "std"].contains(library) => true,
        [dhat, ..] if dhat.starts_with("dhat-") => true,
        ["harness", "src", "alloc.rs"] => true,
        ["src", module, _, ..] => STANDARD_LIBRARY_DIRS.contains(module),
        [module, _, _, ..] => STANDARD_LIBRARY_DIRS.contains(module),
        _ => false,
    }
}

/// `0x55d…: memproof::event_log::read_all (src/event_log.rs:42:17)` → `memproof::event_log::read_all (src/event_log.rs:42:17)`.
fn strip_address(frame: &str) -> &str {
    match frame.split_once(": ") {
        Some((address, rest)) if address.starts_with("0x") => rest,
        _ => frame,
    }
}

/// The frame that names a site: the first one outside the allocator and the standard library (the first of all
/// when every frame is theirs), without its address.
fn naming_frame<'a>(profile: &'a DhatProfile, frames: &[usize]) -> Option<&'a str> {
    let named: Vec<&str> = frames
        .iter()
        .filter_map(|index| profile.ftbl.get(*index))
        .map(|frame| strip_address(frame))
        .collect();
    named
        .iter()
        .find(|frame| !is_plumbing(frame))
        .or(named.first())
        .copied()
}

fn site_location(profile: &DhatProfile, frames: &[usize]) -> String {
    naming_frame(profile, frames).map_or_else(|| "[unknown frame]".to_string(), str::to_string)
}

/// A site as two revisions share it: the function path and the source file of its naming frame, without the line
/// and column (an unrelated edit above it moves those, not the site).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SiteKey {
    pub function: String,
    /// Relative to its crate's source root where the frame says where that is: `src/event_log/mod.rs`,
    /// `serde_json-1.0.140/src/de.rs`, `library/alloc/src/vec/mod.rs`.
    pub file: String,
}

impl SiteKey {
    /// `memproof::a::f (src/a.rs:42:17)` → `memproof::a::f` in `src/a.rs`. A frame without a location keeps its
    /// whole text as the function and an empty file.
    pub fn of_frame(frame: &str) -> SiteKey {
        let frame = strip_address(frame);
        let Some((function, rest)) = frame
            .strip_suffix(')')
            .and_then(|inner| inner.rsplit_once(" ("))
        else {
            return SiteKey {
                function: frame.to_string(),
                file: String::new(),
            };
        };
        // `file:line:col`, or `file:line`; a file name may hold a colon itself, so only digits are cut.
        let mut file = rest;
        for _ in 0..2 {
            match file.rsplit_once(':') {
                Some((head, tail))
                    if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    file = head
                }
                _ => break,
            }
        }
        SiteKey {
            function: without_generic_arguments(function).to_string(),
            file: portable_source_path(file),
        }
    }
}

/// `compile<flate2::ZlibDecoder<…>>` → `compile`: one site whatever types a generic function was instantiated with
/// (a renamed type elsewhere must not make it a new site). A qualified path's own `<…>` (`<Vec<u8>>::push`) stays.
fn without_generic_arguments(function: &str) -> &str {
    if !function.ends_with('>') {
        return function;
    }
    let mut depth = 0usize;
    for (at, byte) in function.bytes().enumerate().rev() {
        match byte {
            b'>' => depth += 1,
            b'<' => {
                depth -= 1;
                if depth == 0 {
                    return if at == 0 { function } else { &function[..at] };
                }
            }
            _ => {}
        }
    }
    function
}

/// A source path as every checkout names it: the part a machine adds before the crate's own path is cut
/// (`/rustc/<hash>/`, a cargo registry's `…/registry/src/<index>/`, a git dependency's `…/git/checkouts/`), so a
/// revision built in another directory names the same site the same way.
fn portable_source_path(file: &str) -> String {
    if let Some(rest) = file.strip_prefix("/rustc/")
        && let Some((_hash, path)) = rest.split_once('/')
    {
        return path.to_string();
    }
    for marker in ["/registry/src/", "/git/checkouts/"] {
        if let Some((_, rest)) = file.split_once(marker)
            && let Some((_index, path)) = rest.split_once('/')
        {
            return path.to_string();
        }
    }
    file.to_string()
}

/// One site's figures over a whole profile: what each [`SiteRanking`] ranks by. A figure of 0 is left out of the
/// JSON (most sites have nothing live at the peak or the end), which keeps a baseline's summaries small.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteFigures {
    /// Bytes and blocks live at the global heap peak (dhat's `gb`, `gbk`: at t-gmax).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub peak_bytes: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub peak_blocks: u64,
    /// Bytes and blocks allocated over the run (`tb`, `tbk`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total_bytes: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total_blocks: u64,
    /// Bytes and blocks still live at the end (`eb`, `ebk`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub end_bytes: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub end_blocks: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl SiteFigures {
    fn add(&mut self, point: &DhatProgramPoint) {
        self.peak_bytes += point.gb.unwrap_or(0);
        self.peak_blocks += point.gbk.unwrap_or(0);
        self.total_bytes += point.tb;
        self.total_blocks += point.tbk;
        self.end_bytes += point.eb.unwrap_or(0);
        self.end_blocks += point.ebk.unwrap_or(0);
    }

    fn sum(&mut self, other: &SiteFigures) {
        self.peak_bytes += other.peak_bytes;
        self.peak_blocks += other.peak_blocks;
        self.total_bytes += other.total_bytes;
        self.total_blocks += other.total_blocks;
        self.end_bytes += other.end_bytes;
        self.end_blocks += other.end_blocks;
    }

    /// The figure `ranking` ranks by.
    pub fn ranked(&self, ranking: SiteRanking) -> u64 {
        match ranking {
            SiteRanking::BytesAtPeak => self.peak_bytes,
            SiteRanking::TotalBytes => self.total_bytes,
            SiteRanking::TotalBlocks => self.total_blocks,
            SiteRanking::BytesAtEnd => self.end_bytes,
        }
    }
}

/// A site of a profile with every figure, keyed for matching across revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileSite {
    #[serde(flatten)]
    pub key: SiteKey,
    #[serde(flatten)]
    pub figures: SiteFigures,
}

/// Every site of a dhat profile, program points merged by [`SiteKey`], in the key's order; and the whole
/// profile's figures (every program point's, so the sum of the sites').
pub fn read_keyed_sites(path: &Path) -> anyhow::Result<(Vec<ProfileSite>, SiteFigures)> {
    let profile = read_profile(path)?;
    let mut sites: std::collections::BTreeMap<SiteKey, SiteFigures> = Default::default();
    let mut whole = SiteFigures::default();
    for point in &profile.pps {
        let key = naming_frame(&profile, &point.fs).map_or_else(
            || SiteKey {
                function: "[unknown frame]".to_string(),
                file: String::new(),
            },
            SiteKey::of_frame,
        );
        sites.entry(key).or_default().add(point);
    }
    for figures in sites.values() {
        whole.sum(figures);
    }
    Ok((
        sites
            .into_iter()
            .map(|(key, figures)| ProfileSite { key, figures })
            .collect(),
        whole,
    ))
}

fn read_profile(path: &Path) -> anyhow::Result<DhatProfile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the dhat profile", path.display()))?;
    serde_json::from_str(&text).map_err(|error| {
        anyhow::anyhow!(
            "{}:{}:{}: not a dhat profile: {error}",
            path.display(),
            error.line(),
            error.column()
        )
    })
}

impl DhatProgramPoint {
    /// The figure `ranking` ranks by, with its block count.
    fn figure(&self, ranking: SiteRanking) -> (u64, u64) {
        match ranking {
            SiteRanking::BytesAtPeak => (self.gb.unwrap_or(0), self.gbk.unwrap_or(0)),
            SiteRanking::TotalBytes => (self.tb, self.tbk),
            SiteRanking::TotalBlocks => (self.tbk, self.tbk),
            SiteRanking::BytesAtEnd => (self.eb.unwrap_or(0), self.ebk.unwrap_or(0)),
        }
    }
}

/// Reads a dhat profile and returns every site with a non-zero figure, largest first. Sites that share their first
/// interesting frame are merged.
pub fn read_sites(path: &Path, ranking: SiteRanking) -> anyhow::Result<Vec<AllocationSite>> {
    let profile = read_profile(path)?;
    let mut sites: Vec<AllocationSite> = Vec::new();
    for point in &profile.pps {
        let (bytes, blocks) = point.figure(ranking);
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
        case.dhat_file.as_deref(),
        ranking,
    ));
}

/// Whether `case`'s heap figures came from a command's own meter (its heap run), which records no sites.
pub fn is_command_heap(case: &Case) -> bool {
    case.dhat_run.as_ref().and_then(|p| p.reason.as_deref())
        == Some(schema::results::HEAP_RUN_REASON)
}

/// The evidence under a failing heap verdict's headline: the top [`TOP_SITES`] sites of the case's dhat profile,
/// then "...and N more"; or one line saying why there are none.
pub fn describe_top_sites(
    results_dir: Option<&Path>,
    case_id: &str,
    dhat_file: Option<&str>,
    ranking: SiteRanking,
) -> String {
    let Some(dhat_file) = dhat_file else {
        return format!(
            "No dhat profile of {case_id} was made, so its allocation sites are not known."
        );
    };
    let Some(results_dir) = results_dir else {
        return format!("Allocation sites: see the dhat profile {dhat_file}.");
    };
    let sites = match read_sites(&results_dir.join(dhat_file), ranking) {
        Ok(sites) => sites,
        Err(error) => return format!("Allocation sites unavailable: {error:#}"),
    };
    let mut text = format!(
        "Top allocation sites by bytes {} (dhat profile {dhat_file}):",
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
                schema::units::format_bytes(site.bytes as f64),
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
