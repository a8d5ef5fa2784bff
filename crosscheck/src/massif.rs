//! Reading Valgrind massif's output file: the peak heap, the independent witness of memproof's `peak_heap_bytes`.
//!
//! massif replaces `malloc`, `calloc`, `realloc`, `memalign` and `free` in the program it runs and records, at
//! every snapshot, the bytes the program asked for (`mem_heap_B`) and what it estimates the allocator adds on top
//! (`mem_heap_extra_B`: a header per block and rounding to the alignment). memproof's counting allocator forwards
//! every Rust allocation to those same functions and counts the requested size too, so `mem_heap_B` at the peak is
//! the figure to hold memproof's peak against; `mem_heap_extra_B` is reported beside it, counted by neither.
//! Run with `--peak-inaccuracy=0 --detailed-freq=1`, massif records the exact peak.

use anyhow::{Context as _, bail};

/// The peak snapshot of one massif run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassifPeak {
    /// The largest `mem_heap_B` of any snapshot: bytes requested and live at the peak.
    pub heap_bytes: u64,
    /// `mem_heap_extra_B` at that snapshot: massif's estimate of the allocator's own overhead for those blocks.
    pub extra_heap_bytes: u64,
    /// The number of that snapshot in the file.
    pub snapshot: u64,
    /// Whether massif itself marked that snapshot as the peak (`heap_tree=peak`).
    pub marked_peak: bool,
    /// How many snapshots the file has.
    pub snapshots: usize,
}

#[derive(Default)]
struct Snapshot {
    number: u64,
    heap_bytes: Option<u64>,
    extra_heap_bytes: Option<u64>,
    marked_peak: bool,
}

/// Parses a massif output file (`--massif-out-file`) and finds its peak: the snapshot with the largest
/// `mem_heap_B`, the one massif marked `heap_tree=peak` when several tie. `origin` names the file in errors.
pub fn parse_massif_peak(text: &str, origin: &str) -> anyhow::Result<MassifPeak> {
    let mut snapshots: Vec<(usize, Snapshot)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let number = || -> anyhow::Result<u64> {
            value.trim().parse().with_context(|| {
                format!(
                    "{origin}:{line_number}: \"{line}\": expected a whole number after `{key}=`"
                )
            })
        };
        match key {
            "snapshot" => snapshots.push((
                line_number,
                Snapshot {
                    number: number()?,
                    ..Snapshot::default()
                },
            )),
            "mem_heap_B" | "mem_heap_extra_B" | "heap_tree" => {
                let Some((_, snapshot)) = snapshots.last_mut() else {
                    bail!("{origin}:{line_number}: \"{line}\" before any `snapshot=` line");
                };
                match key {
                    "mem_heap_B" => snapshot.heap_bytes = Some(number()?),
                    "mem_heap_extra_B" => snapshot.extra_heap_bytes = Some(number()?),
                    _ => snapshot.marked_peak = value.trim() == "peak",
                }
            }
            _ => {}
        }
    }
    if snapshots.is_empty() {
        bail!("{origin}: no `snapshot=` line: expected a massif output file");
    }
    let mut best: Option<&Snapshot> = None;
    for (line_number, snapshot) in &snapshots {
        let (Some(heap), Some(_)) = (snapshot.heap_bytes, snapshot.extra_heap_bytes) else {
            bail!(
                "{origin}:{line_number}: snapshot {} has no mem_heap_B or mem_heap_extra_B line",
                snapshot.number
            );
        };
        let better = best.is_none_or(|current| {
            let current_heap = current.heap_bytes.unwrap_or(0);
            heap > current_heap
                || (heap == current_heap && snapshot.marked_peak && !current.marked_peak)
        });
        if better {
            best = Some(snapshot);
        }
    }
    let peak = best.expect("there is at least one snapshot");
    Ok(MassifPeak {
        heap_bytes: peak.heap_bytes.unwrap_or(0),
        extra_heap_bytes: peak.extra_heap_bytes.unwrap_or(0),
        snapshot: peak.number,
        marked_peak: peak.marked_peak,
        snapshots: snapshots.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real massif file, complete: a C program that mallocs 1 MiB, touches it and frees it
    /// (`valgrind --tool=massif --peak-inaccuracy=0 --detailed-freq=1 ./touch 1048576`).
    const C_TOUCH_1_MIB: &str = include_str!("fixtures/massif-c-touch-1MiB.out");
    /// A real massif file of the calibration case at 16 MiB in 4 steps, with its heap trees (the `n…:` lines, 2 MB
    /// of backtraces) removed by `grep -v '^ *n[0-9]'`; every snapshot header is as massif wrote it.
    const CALIBRATION_16_MIB: &str = include_str!("fixtures/massif-calibration-16MiB-no-trees.out");

    #[test]
    fn the_peak_of_a_c_program_is_its_one_block() {
        let peak = parse_massif_peak(C_TOUCH_1_MIB, "c.massif").unwrap();
        assert_eq!(
            peak,
            MassifPeak {
                heap_bytes: 1_048_576,
                extra_heap_bytes: 8,
                snapshot: 2,
                marked_peak: true,
                snapshots: 4
            }
        );
    }

    #[test]
    fn a_tie_goes_to_the_snapshot_massif_marked_as_the_peak() {
        // Snapshots 49 and 50 both hold 16779661 B; massif marked 50.
        let peak = parse_massif_peak(CALIBRATION_16_MIB, "calibration.massif").unwrap();
        assert_eq!(peak.heap_bytes, 16_779_661);
        assert_eq!(peak.extra_heap_bytes, 16_739);
        assert_eq!(peak.snapshot, 50);
        assert!(peak.marked_peak);
        assert_eq!(peak.snapshots, 96);
    }

    #[test]
    fn malformed_files_are_errors_with_the_line() {
        let error = parse_massif_peak("desc: x\n", "m.out")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "m.out: no `snapshot=` line: expected a massif output file"
        );
        let error = parse_massif_peak("snapshot=0\nmem_heap_B=12k\n", "m.out")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "m.out:2: \"mem_heap_B=12k\": expected a whole number after `mem_heap_B=`"
        );
        let error = parse_massif_peak("snapshot=0\nmem_heap_B=12\n", "m.out")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "m.out:1: snapshot 0 has no mem_heap_B or mem_heap_extra_B line"
        );
    }
}
