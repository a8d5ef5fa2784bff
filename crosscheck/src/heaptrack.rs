//! Reading heaptrack's output: its peak heap, its count of calls to allocation functions and, from its size
//! histogram, the bytes allocated in total, the independent witnesses of three of memproof's heap figures.
//!
//! heaptrack preloads a library that intercepts `malloc`, `calloc`, `realloc`, `posix_memalign` and `free`, so like
//! massif it sees the sizes memproof's counting allocator forwards. Two things it sees that memproof does not: what
//! the process allocates before a case's meter starts (the Rust runtime, the dynamic loader), and one block of its
//! own making: its preload library is C++, so `libstdc++` comes into the process and allocates its emergency
//! exception pool (measured here: one block of 72704 B, also in a C program that allocates nothing else). The
//! cross-check measures that excess on a case that allocates nothing and shows it beside every figure.
//!
//! `heaptrack_print` prints its summary rounded to four digits in powers of 1000 (`16.85M`); the exact peak comes
//! from the massif-format export (`-M`) when one of its snapshots lies within that rounding, and otherwise the
//! rounded figure is used with its precision said. The totals come from the exact size histogram (`-H`).

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};

/// A byte figure as `heaptrack_print` prints it: a value and how far it may be from the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrintedBytes {
    pub bytes: u64,
    /// Half a unit of the last printed digit (0 for a figure printed in bytes).
    pub plus_minus: u64,
}

/// Reads a byte figure the way `heaptrack_print` formats one: `880B`, `72.70K`, `16.85M` (powers of 1000).
pub fn parse_printed_bytes(text: &str) -> Option<PrintedBytes> {
    let text = text.trim();
    let unit_at = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(unit_at);
    let scale: u64 = match unit {
        "B" => 1,
        "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let decimals = number
        .split_once('.')
        .map_or(0, |(_, fraction)| fraction.len());
    let step = scale as f64 / 10f64.powi(decimals as i32);
    Some(PrintedBytes {
        bytes: (value * scale as f64).round() as u64,
        plus_minus: (step / 2.0).floor() as u64,
    })
}

/// The summary `heaptrack_print` ends its report with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaptrackSummary {
    /// "calls to allocation functions": every `malloc`, `calloc`, `realloc`, … the process made.
    pub allocation_calls: u64,
    /// "peak heap memory consumption", rounded as printed.
    pub peak_heap: PrintedBytes,
}

/// Parses the summary at the end of `heaptrack_print`'s report. `origin` names it in errors.
pub fn parse_summary(text: &str, origin: &str) -> anyhow::Result<HeaptrackSummary> {
    let value_of = |label: &str| {
        text.lines().enumerate().find_map(|(index, line)| {
            let value = line.trim().strip_prefix(label)?.strip_prefix(':')?;
            Some((index + 1, value.trim().to_string()))
        })
    };
    let missing = |label: &str| {
        anyhow::anyhow!("{origin}: no \"{label}:\" line: expected heaptrack_print's report")
    };
    let calls_label = "calls to allocation functions";
    let (line, calls_text) = value_of(calls_label).ok_or_else(|| missing(calls_label))?;
    let allocation_calls = calls_text
        .split_whitespace()
        .next()
        .and_then(|word| word.parse().ok())
        .with_context(|| {
            format!("{origin}:{line}: \"{calls_label}: {calls_text}\": expected a whole number")
        })?;
    let peak_label = "peak heap memory consumption";
    let (line, peak_text) = value_of(peak_label).ok_or_else(|| missing(peak_label))?;
    let peak_heap = parse_printed_bytes(&peak_text).with_context(|| {
        format!("{origin}:{line}: \"{peak_label}: {peak_text}\": expected a size like `16.85M`")
    })?;
    Ok(HeaptrackSummary {
        allocation_calls,
        peak_heap,
    })
}

/// The totals of heaptrack's allocation size histogram (`heaptrack_print -H FILE`: one `SIZE COUNT` per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramTotals {
    /// The sum of size × count: every byte requested, frees ignored.
    pub total_bytes: u64,
    /// The sum of the counts: the number of allocations.
    pub allocations: u64,
}

/// Sums heaptrack's size histogram. `origin` names it in errors.
pub fn parse_histogram(text: &str, origin: &str) -> anyhow::Result<HistogramTotals> {
    let mut totals = HistogramTotals {
        total_bytes: 0,
        allocations: 0,
    };
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut words = line.split_whitespace().map(str::parse::<u64>);
        let (Some(Ok(size)), Some(Ok(count)), None) = (words.next(), words.next(), words.next())
        else {
            bail!(
                "{origin}:{}: \"{line}\": expected a size and a count, two whole numbers",
                index + 1
            );
        };
        totals.total_bytes += size * count;
        totals.allocations += count;
    }
    Ok(totals)
}

/// heaptrack's figures for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaptrackFigures {
    /// Peak heap, exact when the export had it, otherwise as the summary printed it.
    pub peak_heap: PrintedBytes,
    /// Where the peak figure came from, for the table's note.
    pub peak_source: &'static str,
    pub allocation_calls: u64,
    pub total_bytes: u64,
}

/// Puts heaptrack's figures together: the summary, the histogram and the highest snapshot of the massif export
/// (`None` when there is no export). The histogram must count as many allocations as the summary.
pub fn combine(
    summary: &HeaptrackSummary,
    histogram: &HistogramTotals,
    export_peak_bytes: Option<u64>,
    origin: &str,
) -> anyhow::Result<HeaptrackFigures> {
    if histogram.allocations != summary.allocation_calls {
        bail!(
            "{origin}: the size histogram counts {} allocations but the summary {} calls: the two do not describe the same run",
            histogram.allocations,
            summary.allocation_calls
        );
    }
    let printed = summary.peak_heap;
    let within_rounding = |exact: u64| exact.abs_diff(printed.bytes) <= printed.plus_minus;
    let (peak_heap, peak_source) = match export_peak_bytes {
        Some(exact) if within_rounding(exact) => (
            PrintedBytes {
                bytes: exact,
                plus_minus: 0,
            },
            "exact, from heaptrack_print's massif export",
        ),
        _ => (printed, "as heaptrack_print's summary rounds it"),
    };
    Ok(HeaptrackFigures {
        peak_heap,
        peak_source,
        allocation_calls: summary.allocation_calls,
        total_bytes: histogram.total_bytes,
    })
}

/// The data file `heaptrack -o BASE` wrote: `BASE.zst` or `BASE.gz` depending on how heaptrack was built.
pub fn data_file(base: &Path) -> Option<PathBuf> {
    ["zst", "gz"]
        .iter()
        .map(|extension| PathBuf::from(format!("{}.{extension}", base.display())))
        .chain(std::iter::once(base.to_path_buf()))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `heaptrack_print -f F -p 0 -a 0 -T 0 -H HIST -M EXPORT` of `heaptrack -o F memproof-case case --scenario
    /// calibration … --size-value 16777216`, and the histogram it wrote.
    const PRINT_CALIBRATION_16_MIB: &str =
        include_str!("fixtures/heaptrack-print-calibration-16MiB.txt");
    const HISTOGRAM_CALIBRATION_16_MIB: &str =
        include_str!("fixtures/heaptrack-histogram-calibration-16MiB.txt");

    #[test]
    fn printed_sizes_read_in_powers_of_1000_with_their_precision() {
        let check = |text: &str, bytes: u64, plus_minus: u64| {
            assert_eq!(
                parse_printed_bytes(text),
                Some(PrintedBytes { bytes, plus_minus }),
                "{text}"
            );
        };
        check("880B", 880, 0);
        check("72.70K", 72_700, 5);
        check("16.85M", 16_850_000, 5_000);
        check("1.12G", 1_120_000_000, 5_000_000);
        assert_eq!(parse_printed_bytes("12 parsecs"), None);
        assert_eq!(parse_printed_bytes("M"), None);
    }

    #[test]
    fn the_summary_of_a_real_report() {
        let summary = parse_summary(PRINT_CALIBRATION_16_MIB, "print.txt").unwrap();
        assert_eq!(
            summary,
            HeaptrackSummary {
                allocation_calls: 85,
                peak_heap: PrintedBytes {
                    bytes: 16_850_000,
                    plus_minus: 5_000
                }
            }
        );
    }

    #[test]
    fn the_histogram_of_a_real_run_sums_to_its_totals() {
        let totals = parse_histogram(HISTOGRAM_CALIBRATION_16_MIB, "hist.txt").unwrap();
        assert_eq!(
            totals,
            HistogramTotals {
                total_bytes: 16_860_795,
                allocations: 85
            }
        );
    }

    #[test]
    fn the_export_gives_the_exact_peak_only_within_the_printed_rounding() {
        let summary = parse_summary(PRINT_CALIBRATION_16_MIB, "print.txt").unwrap();
        let totals = parse_histogram(HISTOGRAM_CALIBRATION_16_MIB, "hist.txt").unwrap();
        // The export of that run peaked at 16852413 B, within 16.85M ± 5000.
        let exact = combine(&summary, &totals, Some(16_852_413), "run").unwrap();
        assert_eq!(exact.peak_heap.bytes, 16_852_413);
        assert_eq!(exact.peak_heap.plus_minus, 0);
        assert_eq!(exact.total_bytes, 16_860_795);
        assert_eq!(exact.allocation_calls, 85);
        // An export whose snapshots missed the peak is not believed over the summary.
        let rounded = combine(&summary, &totals, Some(16_000_000), "run").unwrap();
        assert_eq!(
            rounded.peak_heap,
            PrintedBytes {
                bytes: 16_850_000,
                plus_minus: 5_000
            }
        );
        assert_eq!(
            rounded.peak_source,
            "as heaptrack_print's summary rounds it"
        );
    }

    #[test]
    fn inconsistent_or_malformed_outputs_are_errors() {
        let summary = parse_summary(PRINT_CALIBRATION_16_MIB, "print.txt").unwrap();
        let error = combine(
            &summary,
            &HistogramTotals {
                total_bytes: 1,
                allocations: 1,
            },
            None,
            "run",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "run: the size histogram counts 1 allocations but the summary 85 calls: the two do not describe the same run"
        );
        let error = parse_summary("total runtime: 0.2s.\n", "print.txt")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "print.txt: no \"calls to allocation functions:\" line: expected heaptrack_print's report"
        );
        let error = parse_histogram("1 2\n4 six\n", "hist.txt")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "hist.txt:2: \"4 six\": expected a size and a count, two whole numbers"
        );
    }
}
