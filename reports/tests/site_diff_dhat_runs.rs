//! The site diff on dhat profiles this test makes: a small request handler profiled by dhat in two processes, once
//! as it is and once with a seeded change (a buffer grown by a quarter, or a block leaked per request), and the
//! diff must name the changed function at the top with exactly what the change adds.
//!
//! It is the level of `compare`'s two dhat runs (one process per side, dhat's allocator, its JSON read back) without
//! two builds of the tree: the change is chosen by an argument of the same binary, not by a second build (the seeded
//! changes built into copies of the tree are `site_diff_profiles.rs`'s fixtures). A test of its own (`harness =
//! false`) so that dhat's allocator is this binary's global allocator, and each profile is a process of its own.

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

use reports::allocation_sites::read_keyed_sites;
use reports::site_diff::{BaseSites, SiteStatus, site_diff};
use schema::results::CaseField;
use std::path::Path;

const REQUESTS: usize = 40;
const BUFFER_BYTES: usize = 16 * 1024;
const LEAKED_BYTES: usize = 1024;

#[derive(Clone, Copy, PartialEq)]
enum SeededChange {
    None,
    BufferGrown,
    LeakPerRequest,
}

impl SeededChange {
    fn name(self) -> &'static str {
        match self {
            SeededChange::None => "none",
            SeededChange::BufferGrown => "buffer-grown",
            SeededChange::LeakPerRequest => "leak-per-request",
        }
    }

    fn from_name(name: &str) -> SeededChange {
        [
            SeededChange::None,
            SeededChange::BufferGrown,
            SeededChange::LeakPerRequest,
        ]
        .into_iter()
        .find(|change| change.name() == name)
        .unwrap_or_else(|| panic!("no seeded change {name:?}"))
    }
}

/// Reads a request's body into a buffer of its own.
#[inline(never)]
fn read_body(change: SeededChange, request: usize) -> usize {
    let capacity = match change {
        SeededChange::BufferGrown => BUFFER_BYTES + BUFFER_BYTES / 4,
        _ => BUFFER_BYTES,
    };
    let mut body: Vec<u8> = Vec::with_capacity(capacity);
    body.extend(std::iter::repeat_n(request as u8, 100));
    std::hint::black_box(&body).len()
}

/// Keeps what a request asked for, once it is answered.
#[inline(never)]
fn remember_request(change: SeededChange, request: usize) -> usize {
    if change == SeededChange::LeakPerRequest {
        std::mem::forget(std::hint::black_box(vec![request as u8; LEAKED_BYTES]));
    }
    request
}

fn serve(change: SeededChange) {
    let mut answered = 0;
    for request in 0..REQUESTS {
        answered += read_body(change, request);
        remember_request(change, request);
    }
    std::hint::black_box(answered);
}

/// One profiled process: this binary with `--profile CHANGE FILE`.
fn profile(change: SeededChange, dir: &Path) -> std::path::PathBuf {
    let file = dir.join(format!("{}.dhat.json", change.name()));
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--profile", change.name()])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    file
}

fn check(change: SeededChange, field: CaseField, function: &str, expected: u64) {
    let dir = tempfile::tempdir().unwrap();
    let (base, base_whole) = read_keyed_sites(&profile(SeededChange::None, dir.path())).unwrap();
    let (head, head_whole) = read_keyed_sites(&profile(change, dir.path())).unwrap();
    let diff = site_diff(
        "toy/handler/requests=40",
        field,
        (&BaseSites::Profile(&base, base_whole), "none".to_string()),
        (&head, head_whole, change.name().to_string()),
    );
    let top = &diff.changes[0];
    assert!(
        top.function.ends_with(function) && top.file.ends_with("tests/site_diff_dhat_runs.rs"),
        "{}",
        diff.markdown()
    );
    assert!(
        matches!(top.status, SiteStatus::Grew | SiteStatus::New),
        "{}",
        diff.markdown()
    );
    let off = (top.change as f64 - expected as f64).abs() / expected as f64;
    assert!(
        off <= 0.01,
        "{} for {expected}: {}",
        top.change,
        diff.markdown()
    );
    // Nothing else moved: the same program, the same requests.
    assert!(
        diff.changes[1..].iter().all(|c| c.change == 0),
        "{}",
        diff.markdown()
    );
    println!(
        "test {} {}: {} +{} ... ok",
        change.name(),
        field.name(),
        top.function,
        top.change
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, change, file] = args.as_slice()
        && flag == "--profile"
    {
        let profiler = dhat::Profiler::builder().file_name(file).build();
        serve(SeededChange::from_name(change));
        drop(profiler);
        return;
    }
    check(
        SeededChange::BufferGrown,
        CaseField::TotalAllocBytes,
        "read_body",
        (REQUESTS * BUFFER_BYTES / 4) as u64,
    );
    check(
        SeededChange::LeakPerRequest,
        CaseField::EndHeapBytes,
        "remember_request",
        (REQUESTS * LEAKED_BYTES) as u64,
    );
    println!("test result: ok. 2 passed");
}
