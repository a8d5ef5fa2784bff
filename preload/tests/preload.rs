//! The preload library on real programs, through the runner as `measure --heap preload` runs them: exact figures on
//! a C program whose allocations are known in advance; a threaded C program with a forked child against heaptrack;
//! a Rust program on the system allocator against memproof's own counting allocator; a static binary reported as
//! unseen rather than as a heap of zero.

use crosscheck::heaptrack;
use planning::external::{self, HeapSource, ReportedHeap};
use runner::test_support::{launch, run_ok};
use runner::{Launch, Measured, ProbeAccess};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The release directory, once the library, the launcher and the Rust cross-check program are built into it.
fn release_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        for args in [
            &["--package", "memproof-preload", "--example", "counted"][..],
            &["--package", "memproof-preload", "--lib"][..],
            &["--package", "memproof-runner", "--bin", "memproof-launch"][..],
        ] {
            let status = Command::new(env!("CARGO"))
                .current_dir(workspace())
                .args(["build", "--release", "--quiet"])
                .args(args)
                .status()
                .unwrap();
            assert!(status.success(), "cargo build {args:?} failed");
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace().join("target"), |dir| workspace().join(dir));
        target.join("release")
    })
}

fn library() -> PathBuf {
    release_dir().join("libmemproof_preload.so")
}

/// Compiles one of `tests/programs/*.c`; `-O0 -fno-builtin` so the compiler keeps every call (it may drop a
/// malloc/free pair whose block is never read).
fn compile(name: &str, extra: &[&str], dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/programs/{name}.c"));
    let binary = dir.join(name);
    let status = Command::new("cc")
        .args(["-O0", "-fno-builtin", "-pthread", "-o"])
        .arg(&binary)
        .arg(&source)
        .args(extra)
        .status()
        .expect("a C compiler (cc) is installed");
    assert!(status.success(), "cc {} failed", source.display());
    binary
}

fn measure_preload(program: &Path, args: &[&str]) -> Measured {
    run_ok(&Launch {
        timeout: Duration::from_secs(120),
        probe: ProbeAccess::Program,
        env: vec![external::preload_env(&library())],
        ..launch(release_dir().join("memproof-launch"), program, args.iter())
    })
}

fn heap(measured: &Measured) -> ReportedHeap {
    external::heap_of(measured, &HeapSource::Preload(library()))
        .unwrap()
        .unwrap()
}

/// The preload's figure against another meter's: within 1%.
fn assert_within_1_percent(preload: u64, other: u64, what: &str) {
    runner::test_support::assert_within(preload, other, 0.01, what);
}

#[test]
fn every_allocation_function_is_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let measured = measure_preload(&compile("exact", &[], dir.path()), &[]);
    // The figures exact.c's comments add up: requested sizes, realloc as one more block, realloc(NULL) a malloc,
    // realloc(p, 0) and free(NULL) no new block.
    assert_eq!(
        heap(&measured),
        ReportedHeap {
            peak_bytes: Some(15269),
            total_bytes: Some(16833),
            count: Some(8),
            end_bytes: Some(777),
        }
    );
    let last_sample = measured.timeline.iter().rev().find_map(|s| s.heap_bytes);
    assert_eq!(last_sample, Some(777), "the timeline ends at the end heap");
}

#[test]
fn threads_and_a_forked_child_agree_with_heaptrack() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile("threads", &[], dir.path());
    let measured = measure_preload(&program, &[]);
    let preload = heap(&measured);
    // The forked child's 64 MiB never counts: the library stops reporting in a child, whose figures start as a
    // copy of its parent's (a child that reported would put its 64 MiB in the timeline).
    assert!(preload.peak_bytes.unwrap() < 64 << 20, "{preload:?}");
    let highest_sample = measured.timeline.iter().filter_map(|s| s.heap_bytes).max();
    assert!(highest_sample.unwrap() < 64 << 20, "{highest_sample:?}");

    let base = dir.path().join("heaptrack");
    let status = Command::new("heaptrack")
        .arg("-o")
        .arg(&base)
        .arg(&program)
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("heaptrack is installed (apt-get install heaptrack)");
    assert!(status.success());
    let data = heaptrack::data_file(&base).expect("heaptrack wrote its data file");
    let histogram = dir.path().join("histogram");
    let printed = Command::new("heaptrack_print")
        .arg("-H")
        .arg(&histogram)
        .arg(&data)
        .output()
        .unwrap();
    assert!(printed.status.success());
    let summary =
        heaptrack::parse_summary(&String::from_utf8_lossy(&printed.stdout), "heaptrack_print")
            .unwrap();
    let totals =
        heaptrack::parse_histogram(&std::fs::read_to_string(&histogram).unwrap(), "histogram")
            .unwrap();
    assert_within_1_percent(
        preload.peak_bytes.unwrap(),
        summary.peak_heap.bytes,
        "peak heap",
    );
    assert_within_1_percent(preload.total_bytes.unwrap(), totals.total_bytes, "total");
    assert_within_1_percent(preload.count.unwrap(), totals.allocations, "allocations");
}

#[test]
fn a_rust_program_on_the_system_allocator_agrees_with_memproofs_meter() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("counts");
    let measured = measure_preload(
        &release_dir().join("examples/counted"),
        &[out.to_str().unwrap()],
    );
    let preload = heap(&measured);
    let counted: Vec<u64> = std::fs::read_to_string(&out)
        .unwrap()
        .split_whitespace()
        .map(|word| word.parse().unwrap())
        .collect();
    assert_within_1_percent(preload.peak_bytes.unwrap(), counted[0], "peak heap");
    assert_within_1_percent(preload.total_bytes.unwrap(), counted[1], "total");
    assert_within_1_percent(preload.count.unwrap(), counted[2], "allocations");
}

#[test]
fn a_static_binary_is_reported_unseen_rather_than_as_zero() {
    let dir = tempfile::tempdir().unwrap();
    let program = compile("exact", &["-static"], dir.path());
    let why = external::preload_blind_spot(&program).unwrap();
    assert!(why.contains("statically linked"), "{why}");
    let measured = measure_preload(&program, &[]);
    let why = external::heap_of(&measured, &HeapSource::Preload(library())).unwrap_err();
    assert!(why.contains("never reported"), "{why}");
    // The same program linked dynamically is seen: the check above is about the linking.
    let dynamic = compile("exact", &[], dir.path());
    assert_eq!(external::preload_blind_spot(&dynamic), None);
}

#[test]
fn a_program_execd_under_the_same_pid_takes_over_and_other_children_stay_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let exact = compile("exact", &[], dir.path());
    let threads = compile("threads", &[], dir.path());
    // sh forks a child for `threads` (another pid: quiet, or its 40 MB would be in the timeline), then execs
    // `exact` under its own pid (it takes the channel over with fresh figures, after sh's final report): the
    // process's peak is the higher of the two images' (exact's), its totals both images', its end exact's.
    let script = format!("{}; exec {}", threads.display(), exact.display());
    let measured = measure_preload(Path::new("/bin/sh"), &["-c", &script]);
    assert_eq!(heap(&measured).peak_bytes, Some(15269));
    assert_eq!(heap(&measured).end_bytes, Some(777));
    assert!(heap(&measured).count.unwrap() > 8, "{:?}", heap(&measured));
    let highest_sample = measured.timeline.iter().filter_map(|s| s.heap_bytes).max();
    assert!(highest_sample.unwrap() < 1 << 20, "{highest_sample:?}");
    // The child is not counted, and the result says so rather than let its heap vanish.
    let message = measured.exit.message.clone().unwrap_or_default();
    assert!(
        message.contains("the heap figures are the measured process's only: 1 other process(es)"),
        "{message}"
    );
    assert!(
        measured
            .metrics
            .keys()
            .all(|name| !name.starts_with(meter::wire::UNMEASURED_METRIC)),
        "{:?}",
        measured.metrics
    );
}

#[test]
fn a_child_a_shell_starts_is_named_with_its_heap_rather_than_vanishing() {
    let dir = tempfile::tempdir().unwrap();
    let exec_after = compile("exec_after", &[], dir.path());
    let exact = compile("exact", &[], dir.path());
    // bash forks for the command, then runs a builtin: the child's 200 MiB is another process's heap.
    let script = format!("{} {}; echo done", exec_after.display(), exact.display());
    let measured = measure_preload(Path::new("bash"), &["-c", &script]);
    let message = measured.exit.message.clone().unwrap_or_default();
    assert!(
        message.contains("1 other process(es) of the tree ran with the preload library")
            && message.contains("(peak heap 200 MiB)"),
        "{message}"
    );
}

#[test]
fn the_heap_before_an_exec_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let exec_after = compile("exec_after", &[], dir.path());
    let exact = compile("exact", &[], dir.path());
    let measured = measure_preload(&exec_after, &[exact.to_str().unwrap()]);
    // exec_after's one block of 200 MiB, then exact's figures (exact.c's comment) in the image it exec'd.
    assert_eq!(
        heap(&measured),
        ReportedHeap {
            peak_bytes: Some(209_715_200),
            total_bytes: Some(209_715_200 + 16833),
            count: Some(1 + 8),
            end_bytes: Some(777),
        }
    );
}

#[test]
fn a_program_path_holding_an_equals_sign_runs_as_itself() {
    let dir = tempfile::tempdir().unwrap();
    let exact = compile("exact", &[], dir.path());
    let renamed = dir.path().join("mode=fast");
    std::fs::rename(&exact, &renamed).unwrap();
    let measured = measure_preload(&renamed, &[]);
    assert_eq!(heap(&measured).peak_bytes, Some(15269));
    assert_eq!(measured.exit.code, Some(0));
}

#[test]
fn a_descriptor_the_program_owns_never_gets_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let thief = compile("fd_thief", &[], dir.path());
    let data = dir.path().join("data");
    let measured = measure_preload(&thief, &[data.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&data).unwrap(),
        "the program's own line\n"
    );
    // The channel was the program's to close: no figures, and no heap of zero either.
    assert!(external::heap_of(&measured, &HeapSource::Preload(library())).is_err());
}
