//! The runner's own memory stays bounded whatever a child prints: 400 MB on stderr, and a probe pipe flooded with
//! a 100 MB line and two million sample lines. The runner is measured from outside, by GNU time's `ru_maxrss`, in a
//! process of its own: this test binary re-runs itself with `MEMPROOF_BOUNDED_INNER` set.

mod support;

use runner::{Launch, ProbeAccess, run};
use schema::results::Outcome;
use std::path::PathBuf;
use std::time::Duration;

const INNER: &str = "MEMPROOF_BOUNDED_INNER";
/// The runner's own peak RSS must stay under this, whatever the child prints.
const RUNNER_BUDGET_BYTES: u64 = 64 * 1024 * 1024;

#[test]
fn a_child_printing_400_mb_leaves_the_runner_under_64_mib() {
    if std::env::var_os(INNER).is_some() {
        return run_the_flood();
    }
    let time = PathBuf::from("/usr/bin/time");
    if !time.exists() {
        // CI installs it (.ci/run); a bare machine says so rather than passing silently.
        panic!("/usr/bin/time is missing: apt-get install time");
    }
    let me = std::env::current_exe().unwrap();
    let output = std::process::Command::new(time)
        .arg("-v")
        .arg(me)
        .args([
            "--exact",
            "a_child_printing_400_mb_leaves_the_runner_under_64_mib",
            "--nocapture",
        ])
        .env(INNER, "1")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}");
    assert!(report.contains("the flood was measured"), "{report}");
    let maxrss_kib: u64 = report
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_else(|| panic!("no maximum resident set size in {report}"));
    eprintln!("the runner's peak RSS under a 400 MB flood: {maxrss_kib} KiB");
    assert!(
        maxrss_kib * 1024 < RUNNER_BUDGET_BYTES,
        "the runner grew to {maxrss_kib} KiB"
    );
}

fn run_the_flood() {
    let dir = tempfile::tempdir().unwrap();
    let script = "head -c 400000000 /dev/zero | tr '\\0' x >&2; \
                  head -c 100000000 /dev/zero >&$MEMPROOF_PROBE_FD; echo >&$MEMPROOF_PROBE_FD; \
                  yes '{\"type\":\"heap\",\"mono_ns\":1,\"heap_bytes\":1}' | head -n 2000000 >&$MEMPROOF_PROBE_FD; \
                  yes 'not a protocol line' | head -n 1000000 >&$MEMPROOF_PROBE_FD";
    let launch = Launch {
        timeout: Duration::from_secs(300),
        probe: ProbeAccess::Program,
        output_stem: Some(dir.path().join("flood")),
        ..support::shell(script)
    };
    let measured = run(&launch, |_| {}).unwrap();
    assert_eq!(measured.outcome, Outcome::Ok, "{:?}", measured.exit);
    let stderr = std::fs::metadata(dir.path().join("flood.stderr"))
        .unwrap()
        .len();
    assert_eq!(stderr, 400_000_000, "every byte is in the file");
    assert_eq!(
        measured.stray_lines[0],
        "<a line of 100000000 bytes, dropped>"
    );
    // The dropped line and a million stray ones: the first 100 kept, the rest counted.
    assert_eq!(measured.stray_lines.len(), 101);
    assert_eq!(
        measured.stray_lines.last().unwrap(),
        "<999901 more stray lines>"
    );
    assert!(measured.timeline.len() <= runner::MAX_TIMELINE_POINTS);
    eprintln!("the flood was measured");
}
