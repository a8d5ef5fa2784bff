//! Memory a `/proc` watchdog can miss or miscount, each held by a real program (`programs/hidden_memory.c`): a
//! zombie leader's threads, address spaces shared by several processes, shared memory nothing maps, clean file
//! pages a container would reclaim, a reset high-water mark, children the kernel reaps, segments left behind. Each is
//! counted as a container would count it, or the result says the peak is a lower bound and why.

mod support;

use runner::{Launch, Measured, run};
use schema::results::Outcome;
use std::process::Command;
use std::time::Duration;

const MIB: u64 = 1024 * 1024;

fn measure(limit_mib: Option<u64>, args: &[&str]) -> Measured {
    run(
        &Launch {
            limit_bytes: limit_mib.map(|mib| mib * MIB),
            timeout: Duration::from_secs(60),
            ..support::launch(support::hidden_memory(), args)
        },
        |_| {},
    )
    .expect("the runner itself works")
}

fn message(measured: &Measured) -> String {
    measured.exit.message.clone().unwrap_or_default()
}

#[test]
fn a_zombie_leaders_threads_are_counted_and_killed_at_the_limit() {
    let measured = measure(Some(100), &["zombie-leader", "200", "10000"]);
    assert_eq!(
        measured.outcome,
        Outcome::OomKilled,
        "{}",
        message(&measured)
    );
}

#[test]
fn processes_sharing_one_address_space_count_it_once() {
    // Four processes, one address space of 150 MiB: a container holds 150 MiB, not 600.
    let measured = measure(Some(300), &["clone-vm", "4", "150", "1500"]);
    assert_eq!(measured.outcome, Outcome::Ok, "{}", message(&measured));
    assert_eq!(measured.tree.most_processes, 4);
    let charged = measured.peak_charged_bytes.unwrap();
    assert!(
        (150 * MIB..200 * MIB).contains(&charged),
        "{charged} B charged"
    );
}

#[test]
fn shared_memory_held_but_not_mapped_counts_against_the_limit() {
    let measured = measure(Some(200), &["memfd", "300", "10000"]);
    assert_eq!(
        measured.outcome,
        Outcome::OomKilled,
        "{}",
        message(&measured)
    );
    assert!(measured.peak_charged_bytes.unwrap() > 200 * MIB);
}

#[test]
fn clean_file_pages_are_reported_beside_the_limit_not_against_it() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, vec![1u8; 400 * MIB as usize]).unwrap();
    std::fs::File::open(&file).unwrap().sync_all().unwrap();
    let measured = measure(Some(200), &["file-map", file.to_str().unwrap(), "1500"]);
    assert_eq!(measured.outcome, Outcome::Ok, "{}", message(&measured));
    assert!(measured.peak_charged_bytes.unwrap() < 50 * MIB);
    assert!(
        measured.peak_file_bytes.unwrap() > 300 * MIB,
        "{:?}",
        measured.peak_file_bytes
    );
}

#[test]
fn a_reset_high_water_mark_makes_the_peak_a_lower_bound() {
    let measured = measure(None, &["clear-refs", "200", "500"]);
    assert_eq!(measured.outcome, Outcome::Ok, "{}", message(&measured));
    assert!(
        message(&measured).contains("lower bound: a process reset its kernel high-water mark"),
        "{}",
        message(&measured)
    );
    assert!(
        measured.lower_bound.len() == 1,
        "{:?}",
        measured.lower_bound
    );
    // What the polls saw before the reset is kept.
    assert!(measured.peak_rss_bytes.unwrap() >= 200 * MIB);
}

#[test]
fn children_the_kernel_reaps_are_counted_from_its_exit_records() {
    // The child's 200 MiB lives for a moment between two polls a second apart, and nobody reads its ru_maxrss: the
    // kernel's exit record has its high-water mark. (Without the records: tests/without_exit_records.rs.)
    let measured = run(
        &Launch {
            limit_bytes: Some(100 * MIB),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(60),
            ..support::launch(support::hidden_memory(), ["ignored-child", "200", "1500"])
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(
        measured.outcome,
        Outcome::OverLimit,
        "{}",
        message(&measured)
    );
    assert!(measured.peak_rss_bytes.unwrap() >= 200 * MIB);
    assert!(
        measured.lower_bound.is_empty(),
        "{:?}",
        measured.lower_bound
    );
}

#[test]
fn a_system_v_segment_left_behind_is_named() {
    let measured = measure(None, &["sysv", "8"]);
    assert_eq!(measured.outcome, Outcome::Ok, "{}", message(&measured));
    let segment = measured
        .left_behind
        .iter()
        .find(|left| left.starts_with("System V segment "))
        .unwrap_or_else(|| panic!("{:?}", measured.left_behind));
    assert!(segment.contains("8.00 MiB"), "{segment}");
    assert!(
        message(&measured).contains("shared memory left behind after the run: System V segment")
    );
    let id = segment.split_ascii_whitespace().nth(3).unwrap();
    let removed = Command::new("ipcrm").args(["-m", id]).status().unwrap();
    assert!(removed.success());
}
