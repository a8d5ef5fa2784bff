//! The comparison table: one row per (case, figure, independent tool), the difference between memproof's figure
//! and the tool's, whether it is within the target, and a note that says what each side counts.
//!
//! A tool may see bytes memproof's meter by design does not: what the process allocates before a case's meter
//! starts, and what the tool itself brings into the process (heaptrack's `libstdc++` pool). That *startup excess* is
//! measured, tool by tool, on a case that allocates nothing, and shown in its own column; the row is judged on the
//! difference that remains once it is taken off, and both the raw and the adjusted difference are printed. Nothing
//! is hidden: a row whose difference stays above the target fails the command.

use schema::text_escaping::escape_markdown_cell;
use schema::units::format_bytes;
use serde::{Deserialize, Serialize};

/// The schema name of `cross-check.json`.
pub const SCHEMA: &str = "memproof.cross-check/v1";
/// Two figures agree when they differ by at most this percentage of memproof's figure.
pub const TARGET_PERCENT: f64 = 2.0;

/// A figure memproof reports and an independent tool can witness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    /// The kernel's resident-set high-water mark, in bytes.
    PeakRssBytes,
    /// Bytes requested and live at the heap's peak.
    PeakHeapBytes,
    /// Bytes requested by every allocation, frees ignored.
    TotalAllocBytes,
    /// The number of allocations.
    AllocCount,
}

impl Figure {
    /// The name results.json gives the figure.
    pub fn name(self) -> &'static str {
        match self {
            Figure::PeakRssBytes => "peak_rss_bytes",
            Figure::PeakHeapBytes => "peak_heap_bytes",
            Figure::TotalAllocBytes => "total_alloc_bytes",
            Figure::AllocCount => "alloc_count",
        }
    }

    /// Formats a value of this figure for people: bytes with their binary unit, counts as they are.
    pub fn format(self, value: u64) -> String {
        match self {
            Figure::AllocCount => value.to_string(),
            _ => format!("{value} B ({})", format_bytes(value as f64)),
        }
    }

    fn format_signed(self, value: i64) -> String {
        let sign = if value < 0 { "-" } else { "+" };
        match self {
            Figure::AllocCount => format!("{sign}{}", value.unsigned_abs()),
            _ => format!("{sign}{} B", value.unsigned_abs()),
        }
    }
}

/// How a row came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The figures agree within the target.
    Pass,
    /// They do not, or one side could not be measured.
    Fail,
    /// The tool is not installed (the note says which package to install).
    Skipped,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Skipped => "skipped",
        }
    }
}

/// One comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The case or program measured.
    pub case: String,
    pub figure: Figure,
    /// memproof's figure from its normal run; `null` when it could not be measured.
    pub memproof: Option<u64>,
    /// The independent tool.
    pub tool: String,
    /// The tool's figure, as it reported it; `null` when skipped or when the tool's run failed.
    pub tool_figure: Option<u64>,
    /// How far the tool's figure may be from what it measured, because it prints it rounded.
    pub tool_plus_minus: u64,
    /// `tool_figure - memproof`.
    pub difference: Option<i64>,
    /// `difference` as a percentage of memproof's figure.
    pub difference_percent: Option<f64>,
    /// What the tool sees beyond memproof's meter in a case that allocates nothing (the startup excess), when it
    /// applies to this row; taken off before judging.
    pub startup_excess: Option<i64>,
    /// `(difference - startup_excess)` as a percentage of memproof's figure: the figure the row is judged on.
    pub judged_percent: Option<f64>,
    pub target_percent: f64,
    pub status: Status,
    /// The same figure as memproof's meter read it inside the tool's run (the probe stays connected there); equal
    /// to `memproof` when the tool did not change what the program did.
    pub memproof_inside_tool_run: Option<u64>,
    /// What each side counts, and what explains the difference that remains.
    pub note: String,
}

/// `(tool - memproof) / memproof` in percent; `None` when memproof's figure is 0 and the tool's is not.
pub fn percent_difference(memproof: u64, difference: i64) -> Option<f64> {
    if memproof == 0 {
        return (difference == 0).then_some(0.0);
    }
    Some(difference as f64 * 100.0 / memproof as f64)
}

/// How far apart two kernel readings of one process's resident set can be before either is wrong. Linux counts a
/// process's resident pages per CPU and folds them into the shared total in batches of `max(32, 2 x CPUs)` pages,
/// so each reading can lag by up to a batch per CPU (seen here: a 6.6 MiB case's own `VmHWM` and `ru_maxrss` of the
/// same execution 212 KiB apart, 3.1%). Two readings: twice that.
pub fn kernel_rss_slack_bytes() -> u64 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let batch_pages = 32.max(2 * cpus);
    2 * batch_pages * cpus * 4096
}

/// Whether a judged difference is within the target; an unknown one never is.
pub fn within_target(judged_percent: Option<f64>, target_percent: f64) -> bool {
    judged_percent.is_some_and(|percent| percent.abs() <= target_percent)
}

/// The measured sides of a row.
#[derive(Debug, Clone, Copy)]
pub struct Compared<'a> {
    pub case: &'a str,
    pub figure: Figure,
    pub memproof: u64,
    pub tool: &'a str,
    pub tool_figure: u64,
    pub tool_plus_minus: u64,
    pub startup_excess: Option<i64>,
}

impl Row {
    /// A row with both figures: the difference, the judged difference and the status follow from them.
    pub fn compare(compared: Compared<'_>, note: String) -> Row {
        let difference = compared.tool_figure as i64 - compared.memproof as i64;
        let judged = difference - compared.startup_excess.unwrap_or(0);
        let judged_percent = percent_difference(compared.memproof, judged);
        let within_counter_granularity = compared.figure == Figure::PeakRssBytes
            && judged.unsigned_abs() <= kernel_rss_slack_bytes();
        let status = if within_target(judged_percent, TARGET_PERCENT) || within_counter_granularity
        {
            Status::Pass
        } else {
            Status::Fail
        };
        let note = if within_counter_granularity && !within_target(judged_percent, TARGET_PERCENT) {
            format!(
                "{note} The two readings are {} B apart: over {TARGET_PERCENT}% of so small a process, but within the \
                 kernel's RSS counting granularity of {} B on this machine, so the row passes.",
                judged.unsigned_abs(),
                kernel_rss_slack_bytes()
            )
        } else {
            note
        };
        Row {
            case: compared.case.to_string(),
            figure: compared.figure,
            memproof: Some(compared.memproof),
            tool: compared.tool.to_string(),
            tool_figure: Some(compared.tool_figure),
            tool_plus_minus: compared.tool_plus_minus,
            difference: Some(difference),
            difference_percent: percent_difference(compared.memproof, difference),
            startup_excess: compared.startup_excess,
            judged_percent,
            target_percent: TARGET_PERCENT,
            status,
            memproof_inside_tool_run: None,
            note,
        }
    }

    /// A row that could not be compared: `status` says whether that is a failure or a skip, `note` why.
    pub fn not_compared(
        case: &str,
        figure: Figure,
        memproof: Option<u64>,
        tool: &str,
        status: Status,
        note: String,
    ) -> Row {
        Row {
            case: case.to_string(),
            figure,
            memproof,
            tool: tool.to_string(),
            tool_figure: None,
            tool_plus_minus: 0,
            difference: None,
            difference_percent: None,
            startup_excess: None,
            judged_percent: None,
            target_percent: TARGET_PERCENT,
            status,
            memproof_inside_tool_run: None,
            note,
        }
    }

    /// Marks a compared row failed for a reason beyond the difference (e.g. a meter below a known figure).
    pub fn fail_because(mut self, reason: &str) -> Row {
        self.status = Status::Fail;
        self.note = format!("{reason} {}", self.note);
        self
    }
}

/// What one tool saw beyond memproof's meter in the case that allocates nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartupExcess {
    pub tool: String,
    pub figure: Figure,
    pub case: String,
    pub memproof: u64,
    pub tool_figure: u64,
    /// `tool_figure - memproof`.
    pub excess: i64,
    pub note: String,
}

/// Whether a tool was there to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolAvailability {
    pub tool: String,
    /// `null` when the tool ran; otherwise why not and what to install.
    pub skipped: Option<String>,
    /// The tool's `--version` line, when it has one.
    pub version: Option<String>,
}

/// The whole cross-check: `cross-check.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossCheckReport {
    pub schema: String,
    pub run: schema::results::RunInfo,
    pub target_percent: f64,
    pub tools: Vec<ToolAvailability>,
    pub startup_excess: Vec<StartupExcess>,
    pub rows: Vec<Row>,
}

impl CrossCheckReport {
    /// The rows that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|row| row.status == Status::Fail)
    }
}

fn percent_text(percent: Option<f64>) -> String {
    percent.map_or("-".to_string(), |p| format!("{p:+.3}%"))
}

fn tool_figure_text(row: &Row) -> String {
    match row.tool_figure {
        None => "-".to_string(),
        Some(value) if row.tool_plus_minus > 0 => {
            format!("{} ± {}", row.figure.format(value), row.tool_plus_minus)
        }
        Some(value) => row.figure.format(value),
    }
}

fn excess_text(row: &Row) -> String {
    row.startup_excess
        .map_or("-".to_string(), |excess| row.figure.format_signed(excess))
}

/// The table as Markdown: the columns of `cross-check.json`, one row per comparison, the startup excess after it.
pub fn render_markdown(report: &CrossCheckReport) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "# memproof cross-check\n\nmemproof's figures beside tools that share none of its code. Target: within {}% \
         of memproof's figure, after taking off what the tool sees beyond memproof's meter in a case that allocates \
         nothing (the *startup excess*, below). Commit {}, {}, {} CPUs.\n\n",
        report.target_percent,
        report.run.git_commit.as_deref().unwrap_or("unknown"),
        report.run.started_at,
        report.run.host.cpus
    ));
    out.push_str(
        "| case | figure | memproof | tool | tool's figure | difference | startup excess | judged | result | note |\n",
    );
    out.push_str("|---|---|---:|---|---:|---:|---:|---:|---|---|\n");
    for row in &report.rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            escape_markdown_cell(&row.case),
            row.figure.name(),
            row.memproof.map_or("-".into(), |v| row.figure.format(v)),
            escape_markdown_cell(&row.tool),
            tool_figure_text(row),
            percent_text(row.difference_percent),
            excess_text(row),
            percent_text(row.judged_percent),
            row.status.word(),
            escape_markdown_cell(&row.note)
        ));
    }
    if !report.startup_excess.is_empty() {
        out.push_str(
            "\n## Startup excess: what each tool sees beyond memproof's meter in a case that allocates nothing\n\n",
        );
        out.push_str("| tool | figure | case | memproof | tool's figure | excess | note |\n");
        out.push_str("|---|---|---|---:|---:|---:|---|\n");
        for excess in &report.startup_excess {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                excess.tool,
                excess.figure.name(),
                escape_markdown_cell(&excess.case),
                excess.figure.format(excess.memproof),
                excess.figure.format(excess.tool_figure),
                excess.figure.format_signed(excess.excess),
                escape_markdown_cell(&excess.note)
            ));
        }
    }
    let skipped: Vec<&ToolAvailability> = report
        .tools
        .iter()
        .filter(|t| t.skipped.is_some())
        .collect();
    if !skipped.is_empty() {
        out.push_str("\n## Skipped tools\n\n");
        for tool in skipped {
            out.push_str(&format!(
                "- {}: {}\n",
                tool.tool,
                tool.skipped.as_deref().unwrap_or("")
            ));
        }
    }
    out
}

/// The table for a terminal: aligned columns, the notes numbered under it.
pub fn render_terminal(report: &CrossCheckReport) -> String {
    let header = [
        "#",
        "case",
        "figure",
        "memproof",
        "tool",
        "tool's figure",
        "diff",
        "startup excess",
        "judged",
        "result",
    ]
    .map(String::from);
    let mut lines: Vec<[String; 10]> = vec![header];
    for (index, row) in report.rows.iter().enumerate() {
        lines.push([
            (index + 1).to_string(),
            row.case.clone(),
            row.figure.name().to_string(),
            row.memproof.map_or("-".into(), |v| row.figure.format(v)),
            row.tool.clone(),
            tool_figure_text(row),
            percent_text(row.difference_percent),
            excess_text(row),
            percent_text(row.judged_percent),
            row.status.word().to_string(),
        ]);
    }
    let mut widths = [0usize; 10];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str("\nnotes:\n");
    for (index, row) in report.rows.iter().enumerate() {
        out.push_str(&format!("{:>3}. {}\n", index + 1, row.note));
    }
    for excess in &report.startup_excess {
        out.push_str(&format!(
            "startup excess, {} {}: {} ({}: memproof {}, {} {})\n",
            excess.tool,
            excess.figure.name(),
            excess.figure.format_signed(excess.excess),
            excess.case,
            excess.figure.format(excess.memproof),
            excess.tool,
            excess.figure.format(excess.tool_figure)
        ));
    }
    for tool in &report.tools {
        if let Some(reason) = &tool.skipped {
            out.push_str(&format!("skipped {}: {reason}\n", tool.tool));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compared(memproof: u64, tool_figure: u64, startup_excess: Option<i64>) -> Row {
        Row::compare(
            Compared {
                case: "calibration/known/bytes=16777216",
                figure: Figure::PeakHeapBytes,
                memproof,
                tool: "massif",
                tool_figure,
                tool_plus_minus: 0,
                startup_excess,
            },
            "note".into(),
        )
    }

    #[test]
    fn the_difference_is_a_percentage_of_memprofs_figure() {
        assert_eq!(percent_difference(1000, 20), Some(2.0));
        assert_eq!(percent_difference(1000, -5), Some(-0.5));
        assert_eq!(percent_difference(0, 0), Some(0.0));
        assert_eq!(percent_difference(0, 3), None, "nothing against something");
    }

    #[test]
    fn a_small_rss_difference_within_the_kernels_counting_granularity_passes_and_says_why() {
        let rss = |memproof: u64, tool_figure: u64| {
            Row::compare(
                Compared {
                    case: "hook-storm/before/starting_events=50",
                    figure: Figure::PeakRssBytes,
                    memproof,
                    tool: "/usr/bin/time -v",
                    tool_figure,
                    tool_plus_minus: 0,
                    startup_excess: None,
                },
                "note.".into(),
            )
        };
        let slack = kernel_rss_slack_bytes();
        assert!(slack >= 256 * 1024);
        let near = rss(6_955_008, 6_955_008 - slack);
        assert_eq!(near.status, Status::Pass);
        assert!(
            near.note
                .contains("within the kernel's RSS counting granularity"),
            "{}",
            near.note
        );
        assert_eq!(
            rss(6_955_008, 6_955_008 - slack - 4096).status,
            Status::Fail
        );
        // A heap figure gets no such slack: its meters count bytes, not pages.
        assert_eq!(
            compared(6_955_008, 6_955_008 - 200_000, None).status,
            Status::Fail
        );
    }

    #[test]
    fn a_row_passes_within_the_target_either_way_and_fails_beyond_it() {
        assert_eq!(compared(1000, 1020, None).status, Status::Pass);
        assert_eq!(compared(1000, 980, None).status, Status::Pass);
        assert_eq!(compared(1000, 1021, None).status, Status::Fail);
        assert_eq!(compared(1000, 979, None).status, Status::Fail);
        assert_eq!(compared(0, 1, None).status, Status::Fail);
    }

    #[test]
    fn the_startup_excess_is_taken_off_before_judging_and_both_are_shown() {
        // The figures of the calibration case at 16 MiB under heaptrack, with its excess on the empty case.
        let row = compared(16_778_649, 16_852_413, Some(73_766));
        assert_eq!(row.difference, Some(73_764));
        let raw = row.difference_percent.unwrap();
        assert!((raw - 0.4396).abs() < 1e-3, "{raw}");
        let judged = row.judged_percent.unwrap();
        assert!(judged.abs() < 1e-4, "{judged}");
        assert_eq!(row.status, Status::Pass);
        // An excess does not excuse a difference beyond it.
        let row = compared(1_000_000, 1_100_000, Some(50_000));
        assert_eq!(row.judged_percent, Some(5.0));
        assert_eq!(row.status, Status::Fail);
    }

    #[test]
    fn rows_that_were_not_compared_say_so() {
        let row = Row::not_compared(
            "c",
            Figure::AllocCount,
            Some(3),
            "heaptrack",
            Status::Skipped,
            "heaptrack is not installed: apt-get install heaptrack".into(),
        );
        assert_eq!(row.tool_figure, None);
        assert!(!within_target(row.judged_percent, TARGET_PERCENT));
        assert_eq!(row.status, Status::Skipped);
        let failed = compared(100, 100, None).fail_because("the RSS is below the known bytes.");
        assert_eq!(failed.status, Status::Fail);
        assert_eq!(failed.note, "the RSS is below the known bytes. note");
    }

    #[test]
    fn the_terminal_table_aligns_its_columns_and_numbers_its_notes() {
        let report = CrossCheckReport {
            schema: SCHEMA.into(),
            run: schema::results::RunInfo {
                started_at: "2025-01-01T00:00:00Z".into(),
                profile: "cross-check".into(),
                git_commit: None,
                jobs: 1,
                shard: None,
                invocation: None,
                host: schema::results::Host {
                    os: "linux".into(),
                    kernel: "6".into(),
                    cpus: 2,
                    memory_bytes: 1,
                    rustc: "rustc".into(),
                },
            },
            target_percent: TARGET_PERCENT,
            tools: vec![],
            startup_excess: vec![],
            rows: vec![compared(1000, 1010, None)],
        };
        let text = render_terminal(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "#  case                              figure           memproof         tool    tool's figure    diff     startup excess  judged   result"
        );
        assert_eq!(
            lines[1],
            "1  calibration/known/bytes=16777216  peak_heap_bytes  1000 B (1000 B)  massif  1010 B (1010 B)  +1.000%  -               +1.000%  pass"
        );
        assert_eq!(lines[4], "  1. note");
        let markdown = render_markdown(&report);
        assert_eq!(
            escape_markdown_cell("seq 1 9 | sort\nx"),
            "seq 1 9 \\| sort<br>x"
        );
        assert!(markdown.contains(
            "| calibration/known/bytes=16777216 | peak_heap_bytes | 1000 B (1000 B) | massif | 1010 B (1010 B) | +1.000% | - | +1.000% | pass | note |"
        ));
    }
}
