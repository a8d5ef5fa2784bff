//! The cross-check: memproof's figures beside those of tools that share none of its code.
//!
//! A reviewer who reads "before: 1.21 GiB peak heap, after: 38 MiB" may ask how we know. This module answers with
//! measurements: it runs each subject (the calibration case, one small case per seed scenario, programs in other
//! languages) once as memproof runs it, then once under each independent tool, and puts the figures side by side:
//!
//! - peak RSS against GNU `time -v` (`wait4`'s `ru_maxrss`), a separate run of the same command;
//! - peak heap against Valgrind's massif (`mem_heap_B` at the peak snapshot) and heaptrack;
//! - total bytes allocated and the number of allocations against heaptrack.
//!
//! Target: within [`table::TARGET_PERCENT`] of memproof's figure. A heap tool also sees what memproof's meter does
//! not by design (what the process allocates before a case starts its meter, and heaptrack's own `libstdc++` pool),
//! so a case that allocates nothing is run first under each heap tool and that *startup excess* is shown in every
//! row and taken off before judging. The parsers of the tools' outputs live in [`time_verbose`], [`massif`] and
//! [`heaptrack`]; [`tools`] puts a tool in front of a command; [`table`] judges and renders.

pub mod heaptrack;
pub mod massif;
pub mod subject;
pub mod table;
pub mod time_verbose;
pub mod tools;

use meter::wire::FinalFigures;
use runner::Measured;
use runner::output_capture::show_tail;
use schema::results::{Outcome, RunInfo};
use std::path::PathBuf;
use subject::{MemproofFigures, RunSettings, Subject, SubjectKind, run_through_runner};
use table::{
    Compared, CrossCheckReport, Figure, Row, SCHEMA, StartupExcess, Status, TARGET_PERCENT,
    ToolAvailability,
};
use tools::{Tool, ToolFigures, ToolRun};

/// What to cross-check.
#[derive(Debug, Clone)]
pub struct Plan {
    /// A memproof case that allocates nothing of its own (the calibration case at 0 bytes): what a heap tool
    /// reports for it beyond memproof's figure is the startup excess.
    pub startup_case: Option<Subject>,
    /// The cases and programs to compare, in order.
    pub subjects: Vec<Subject>,
    /// Programs that cannot run here: (label, why, with the package to install). Reported as skipped.
    pub unavailable: Vec<(String, String)>,
    pub tools: Vec<Tool>,
}

/// The figures each tool can witness, for a subject of a kind.
fn figures_witnessed(tool: Tool, kind: SubjectKind) -> &'static [Figure] {
    match (tool, kind) {
        (Tool::Time, _) => &[Figure::PeakRssBytes],
        (_, SubjectKind::ExternalProgram) => &[],
        (Tool::Massif, SubjectKind::MemproofCase) => &[Figure::PeakHeapBytes],
        (Tool::Heaptrack, SubjectKind::MemproofCase) => &[
            Figure::PeakHeapBytes,
            Figure::TotalAllocBytes,
            Figure::AllocCount,
        ],
    }
}

/// A tool's figure and its rounding, from what it reported.
fn tool_value(figures: &ToolFigures, figure: Figure) -> Option<(u64, u64)> {
    match (figures, figure) {
        (ToolFigures::Time(time), Figure::PeakRssBytes) => Some((time.max_rss_bytes, 0)),
        (ToolFigures::Massif(peak), Figure::PeakHeapBytes) => Some((peak.heap_bytes, 0)),
        (ToolFigures::Heaptrack(h), Figure::PeakHeapBytes) => {
            Some((h.peak_heap.bytes, h.peak_heap.plus_minus))
        }
        (ToolFigures::Heaptrack(h), Figure::TotalAllocBytes) => Some((h.total_bytes, 0)),
        (ToolFigures::Heaptrack(h), Figure::AllocCount) => Some((h.allocation_calls, 0)),
        _ => None,
    }
}

fn inside_value(inside: &FinalFigures, figure: Figure) -> Option<u64> {
    match figure {
        Figure::PeakRssBytes => inside.vm_hwm_bytes,
        Figure::PeakHeapBytes => inside.peak_heap_bytes,
        Figure::TotalAllocBytes => inside.total_alloc_bytes,
        Figure::AllocCount => inside.alloc_count,
    }
}

/// What the note says about memproof's meter inside the tool's run.
fn inside_sentence(
    tool: Tool,
    figure: Figure,
    normal: &MemproofFigures,
    inside: Option<&FinalFigures>,
) -> String {
    let Some(inside) = inside else {
        return String::new();
    };
    if figure == Figure::PeakRssBytes {
        return inside.vm_hwm_bytes.map_or(String::new(), |hwm| {
            format!(
                " The case's own VmHWM inside the run under {}: {hwm} B, the figure compared (the same execution).",
                tool.name()
            )
        });
    }
    let heap = [
        Figure::PeakHeapBytes,
        Figure::TotalAllocBytes,
        Figure::AllocCount,
    ];
    let same = heap
        .iter()
        .all(|&f| inside_value(inside, f) == normal.get(f));
    if same {
        format!(
            " memproof's meter, still running inside the run under {}, read the same peak, total and count as in \
             memproof's own run: the tool did not change what the program allocated.",
            tool.name()
        )
    } else {
        format!(
            " memproof's meter inside the run under {} read {} = {}, and that is the figure compared; memproof's own \
             run read {}: with threads scheduled differently the program does not allocate the same twice.",
            tool.name(),
            figure.name(),
            inside_value(inside, figure).map_or("-".into(), |v| figure.format(v)),
            normal.get(figure).map_or("-".into(), |v| figure.format(v)),
        )
    }
}

/// What each side of a row counts.
fn what_is_counted(tool: Tool, figure: Figure, subject: &Subject, run: &ToolRun) -> String {
    match (tool, figure, subject.kind) {
        (Tool::Time, _, SubjectKind::MemproofCase) => "memproof: the case's own VmHWM (/proc/self/status) as its \
             last act, in memproof's run; time: wait4's ru_maxrss of the same command run separately (it covers \
             children the case waited for, e.g. a driver, should one be larger). Both count every resident page: \
             heap, every thread's stack, code, the allocator's slack; the difference is run-to-run variation."
            .to_string(),
        (Tool::Time, _, SubjectKind::ExternalProgram) => format!(
            "The program {}. memproof: ru_maxrss as memproof-launch got it from wait4 (the path of `cargo xtask \
             measure`); time: ru_maxrss as GNU time got it from wait4, a separate run; both are the largest \
             process of the command, not a sum.",
            subject.description
        ),
        (Tool::Massif, _, _) => {
            let ToolFigures::Massif(peak) = &run.figures else {
                return String::new();
            };
            format!(
                "Both count the bytes requested and live at the peak (massif: mem_heap_B of snapshot {} of {}). \
                 massif also sees what the process allocates before memproof's meter starts and glibc's own \
                 mallocs (the startup excess); its estimate of the allocator's overhead at the peak, \
                 mem_heap_extra_B = {} B, is counted by neither.",
                peak.snapshot, peak.snapshots, peak.extra_heap_bytes
            )
        }
        (Tool::Heaptrack, Figure::PeakHeapBytes, _) => {
            let ToolFigures::Heaptrack(figures) = &run.figures else {
                return String::new();
            };
            format!(
                "Both count the bytes requested and live at the peak; heaptrack's figure is {}. Its startup excess is \
                 what the process allocates before memproof's meter starts plus libstdc++'s emergency exception \
                 pool, which heaptrack's own C++ preload library brings into the process.",
                figures.peak_source
            )
        }
        (Tool::Heaptrack, Figure::TotalAllocBytes, _) => "heaptrack: the sum of its allocation size histogram \
             (frees ignored); memproof: the requested size of every allocation since its meter started. A realloc \
             counts as one allocation of its new size on both sides. The startup excess is what the process \
             allocates before memproof's meter starts, plus heaptrack's libstdc++ pool."
            .to_string(),
        (Tool::Heaptrack, _, _) => "heaptrack: its calls to allocation functions (malloc, calloc, realloc, \
             posix_memalign…); memproof: allocations since its meter started. The startup excess is the calls the \
             process makes before memproof's meter starts, plus heaptrack's libstdc++ pool."
            .to_string(),
    }
}

/// Runs the whole cross-check. `progress` gets one line per run as it starts.
///
/// In four steps: find which tools are installed; measure each heap tool's startup excess on the empty case; run
/// every subject under memproof and under each tool; list the programs that could not run here.
pub fn run_cross_check(
    plan: &Plan,
    settings: &RunSettings,
    run: RunInfo,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<CrossCheckReport> {
    let (availability, usable) = find_tools(&plan.tools);
    let mut check = CrossCheck {
        settings,
        usable,
        progress,
        rows: Vec::new(),
        startup_excess: Vec::new(),
    };
    if let Some(empty) = &plan.startup_case {
        check.measure_startup_excess(empty)?;
    }
    for subject in &plan.subjects {
        check.compare_subject(subject, &plan.tools)?;
    }
    for (label, reason) in &plan.unavailable {
        check.rows.push(Row::not_compared(
            label,
            Figure::PeakRssBytes,
            None,
            "-",
            Status::Skipped,
            reason.clone(),
        ));
    }
    Ok(CrossCheckReport {
        schema: SCHEMA.into(),
        run,
        target_percent: TARGET_PERCENT,
        tools: availability,
        startup_excess: check.startup_excess.into_iter().map(|(_, e)| e).collect(),
        rows: check.rows,
    })
}

/// Which of `tools` are installed (with their executables), and the table's line for each.
fn find_tools(tools: &[Tool]) -> (Vec<ToolAvailability>, Vec<(Tool, Vec<PathBuf>)>) {
    let mut availability = Vec::new();
    let mut usable = Vec::new();
    for &tool in tools {
        match tool.availability() {
            Ok(executables) => {
                availability.push(ToolAvailability {
                    tool: tool.display_name().into(),
                    skipped: None,
                    version: tool.version(&executables),
                });
                usable.push((tool, executables));
            }
            Err(reason) => availability.push(ToolAvailability {
                tool: tool.display_name().into(),
                skipped: Some(reason),
                version: None,
            }),
        }
    }
    (availability, usable)
}

/// A cross-check under way: the tools that can run, and the rows and startup excesses found so far.
struct CrossCheck<'a> {
    settings: &'a RunSettings,
    usable: Vec<(Tool, Vec<PathBuf>)>,
    progress: &'a mut dyn FnMut(&str),
    rows: Vec<Row>,
    /// Each heap tool's startup excess, kept with the tool it was measured under (not found again by its name).
    startup_excess: Vec<(Tool, StartupExcess)>,
}

impl CrossCheck<'_> {
    /// Runs the case that allocates nothing under memproof and under each heap tool: what a tool reports beyond
    /// memproof's figure is its startup excess.
    fn measure_startup_excess(&mut self, empty: &Subject) -> anyhow::Result<()> {
        (self.progress)(&format!("{}: memproof's run (startup excess)", empty.label));
        let measured = run_through_runner(self.settings, empty, None, empty.timeout)?;
        let normal = MemproofFigures::of(&measured);
        if measured.outcome != Outcome::Ok {
            self.rows.push(Row::not_compared(
                &empty.label,
                Figure::PeakHeapBytes,
                None,
                "memproof",
                Status::Fail,
                format!(
                    "memproof's run of the empty case ended {}: {}",
                    measured.outcome,
                    why_it_ended(&measured)
                ),
            ));
        }
        let heap_tools: Vec<(Tool, Vec<PathBuf>)> = self
            .usable
            .iter()
            .filter(|(tool, _)| *tool != Tool::Time)
            .cloned()
            .collect();
        for (tool, executables) in heap_tools {
            (self.progress)(&format!(
                "{}: under {} (startup excess)",
                empty.label,
                tool.display_name()
            ));
            match tools::run_under(tool, &executables, empty, self.settings) {
                Ok(tool_run) => {
                    for &figure in figures_witnessed(tool, SubjectKind::MemproofCase) {
                        let (Some(memproof), Some((value, _))) =
                            (normal.get(figure), tool_value(&tool_run.figures, figure))
                        else {
                            continue;
                        };
                        let excess = StartupExcess {
                            tool: tool.display_name().into(),
                            figure,
                            case: empty.label.clone(),
                            memproof,
                            tool_figure: value,
                            excess: value as i64 - memproof as i64,
                            note: startup_excess_note(tool).into(),
                        };
                        self.startup_excess.push((tool, excess));
                    }
                }
                Err(error) => self.rows.push(Row::not_compared(
                    &empty.label,
                    Figure::PeakHeapBytes,
                    normal.peak_heap_bytes,
                    tool.display_name(),
                    Status::Fail,
                    format!(
                        "the empty case under {} could not be measured: {error:#}",
                        tool.name()
                    ),
                )),
            }
        }
        Ok(())
    }

    /// The startup excess measured under `tool` for `figure`, when it was.
    fn excess_of(&self, tool: Tool, figure: Figure) -> Option<i64> {
        self.startup_excess
            .iter()
            .find(|(measured_under, e)| *measured_under == tool && e.figure == figure)
            .map(|(_, e)| e.excess)
    }

    /// Runs `subject` once under memproof, then under each of `tools` that witnesses one of its figures, and adds a
    /// row per figure and tool: compared, failed or skipped.
    fn compare_subject(&mut self, subject: &Subject, tools: &[Tool]) -> anyhow::Result<()> {
        (self.progress)(&format!("{}: memproof's run", subject.label));
        let measured = run_through_runner(self.settings, subject, None, subject.timeout)?;
        let normal = MemproofFigures::of(&measured);
        if measured.outcome != Outcome::Ok {
            self.rows.push(Row::not_compared(
                &subject.label,
                Figure::PeakRssBytes,
                normal.peak_rss_bytes,
                "memproof",
                Status::Fail,
                format!(
                    "memproof's own run ended {}: {}",
                    measured.outcome,
                    why_it_ended(&measured)
                ),
            ));
            return Ok(());
        }
        for &tool in tools {
            let figures = figures_witnessed(tool, subject.kind);
            if figures.is_empty() {
                continue;
            }
            let not_compared = |status: Status, note: String| {
                figures.iter().map(move |&figure| {
                    Row::not_compared(
                        &subject.label,
                        figure,
                        normal.get(figure),
                        tool.display_name(),
                        status,
                        note.clone(),
                    )
                })
            };
            let Some((_, executables)) = self.usable.iter().find(|(t, _)| *t == tool) else {
                let reason = tool.availability().err().unwrap_or_default();
                self.rows.extend(not_compared(Status::Skipped, reason));
                continue;
            };
            (self.progress)(&format!("{}: under {}", subject.label, tool.display_name()));
            match tools::run_under(tool, executables, subject, self.settings) {
                Ok(tool_run) => {
                    for &figure in figures {
                        let row =
                            compare_one(subject, tool, figure, &normal, &tool_run, &|t, f| {
                                self.excess_of(t, f)
                            });
                        self.rows.push(row);
                    }
                }
                Err(error) => {
                    let note = format!("the run under {} failed: {error:#}", tool.name());
                    self.rows.extend(not_compared(Status::Fail, note));
                }
            }
        }
        Ok(())
    }
}

/// What a heap tool's startup excess is made of.
fn startup_excess_note(tool: Tool) -> &'static str {
    match tool {
        Tool::Heaptrack => {
            "what the process allocates before memproof's meter starts (the Rust runtime, the loader), plus \
             libstdc++'s emergency exception pool that heaptrack's own C++ preload library brings in"
        }
        _ => {
            "what the process allocates before memproof's meter starts (the Rust runtime, glibc); massif brings \
             nothing of its own into the program's heap"
        }
    }
}

/// Why a run that did not end well ended: the runner's message, or the last lines of its stderr.
pub(crate) fn why_it_ended(measured: &Measured) -> String {
    measured
        .exit
        .message
        .clone()
        .unwrap_or_else(|| show_tail(&measured.stderr_tail))
}

fn compare_one(
    subject: &Subject,
    tool: Tool,
    figure: Figure,
    normal: &MemproofFigures,
    tool_run: &ToolRun,
    excess_of: &dyn Fn(Tool, Figure) -> Option<i64>,
) -> Row {
    let counted = what_is_counted(tool, figure, subject, tool_run);
    let inside = inside_sentence(tool, figure, normal, tool_run.memproof_inside.as_ref());
    let files = tool_run
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let note = format!("{counted}{inside} Tool output: {files}.");
    // For a memproof case the compared figure is memproof's meter in the very run the tool watched: two meters on
    // one execution. A case with threads does not allocate the same from run to run, so its own separate run is
    // only quoted in the note.
    let same_run = match subject.kind {
        SubjectKind::MemproofCase => tool_run
            .memproof_inside
            .as_ref()
            .and_then(|inside| inside_value(inside, figure)),
        _ => None,
    };
    let (Some(memproof), Some((value, plus_minus))) = (
        same_run.or(normal.get(figure)),
        tool_value(&tool_run.figures, figure),
    ) else {
        return Row::not_compared(
            &subject.label,
            figure,
            normal.get(figure),
            tool.display_name(),
            Status::Fail,
            format!("one side has no {} figure. {note}", figure.name()),
        );
    };
    let startup_excess = match (tool, subject.kind) {
        (Tool::Massif | Tool::Heaptrack, SubjectKind::MemproofCase) => excess_of(tool, figure),
        _ => None,
    };
    let mut row = Row::compare(
        Compared {
            case: &subject.label,
            figure,
            memproof,
            tool: tool.display_name(),
            tool_figure: value,
            tool_plus_minus: plus_minus,
            startup_excess,
        },
        note,
    );
    row.memproof_inside_tool_run = tool_run
        .memproof_inside
        .as_ref()
        .and_then(|inside| inside_value(inside, figure));
    if let Some(known) = subject.known_bytes
        && figure == Figure::PeakRssBytes
        && (memproof < known || value < known)
    {
        row = row.fail_because(&format!(
            "A peak RSS is below the {known} B the program is known to hold."
        ));
    } else if let Some(known) = subject.known_bytes
        && figure == Figure::PeakRssBytes
    {
        row.note.push_str(&format!(
            " Both figures cover the {known} B it is known to hold."
        ));
    }
    row
}
