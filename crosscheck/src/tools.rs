//! The independent tools, how each is put in front of a subject, and what each reports: GNU time (peak RSS),
//! Valgrind's massif (peak heap) and heaptrack (peak heap, total bytes allocated, number of allocations).
//!
//! Each tool runs the subject *with memproof's probe pipe connected*, through the same runner as a normal run. That
//! is what makes the heap comparison like with like: a memproof case then makes exactly the allocations it makes in
//! memproof's own run (its heap sampler thread, its metric lines), and memproof's meter, still running inside the
//! tool's run, reports its figures too, which shows whether the tool changed what the program allocated. The tools
//! intercept `malloc` and friends, which memproof's counting allocator forwards to, so both sides see the same
//! requested sizes; what only the tool sees is measured separately as the startup excess.

use super::heaptrack;
use super::massif::{self, MassifPeak};
use super::subject::{RunSettings, Subject, find_executable, run_through_runner};
use super::time_verbose;
use anyhow::{Context as _, bail};
use meter::wire::FinalFigures;
use runner::Measured;
use runner::output_capture::show_tail;
use schema::file_stem::file_stem;
use schema::results::Outcome;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// An independent tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tool {
    /// GNU time's `-v`: `wait4`'s `ru_maxrss`.
    Time,
    /// Valgrind's massif heap profiler.
    Massif,
    /// The heaptrack heap profiler.
    Heaptrack,
}

/// Every tool, in the order the table lists them.
pub const ALL_TOOLS: [Tool; 3] = [Tool::Time, Tool::Massif, Tool::Heaptrack];

impl FromStr for Tool {
    type Err = String;

    fn from_str(text: &str) -> Result<Tool, String> {
        ALL_TOOLS
            .into_iter()
            .find(|tool| tool.name() == text)
            .ok_or_else(|| {
                format!("unknown tool {text:?}: expected one of time, massif, heaptrack")
            })
    }
}

impl Tool {
    /// The name `--tools` takes.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Time => "time",
            Tool::Massif => "massif",
            Tool::Heaptrack => "heaptrack",
        }
    }

    /// The name the table shows.
    pub fn display_name(self) -> &'static str {
        match self {
            Tool::Time => "/usr/bin/time -v",
            Tool::Massif => "valgrind massif",
            Tool::Heaptrack => "heaptrack",
        }
    }

    /// The Debian/Ubuntu package that provides it.
    pub fn apt_package(self) -> &'static str {
        match self {
            Tool::Time => "time",
            Tool::Massif => "valgrind",
            Tool::Heaptrack => "heaptrack",
        }
    }

    /// The executables it needs.
    fn executables(self) -> &'static [&'static str] {
        match self {
            Tool::Time => &["/usr/bin/time"],
            Tool::Massif => &["valgrind"],
            Tool::Heaptrack => &["heaptrack", "heaptrack_print"],
        }
    }

    /// How much longer than the subject's own timeout a run under the tool may take. Valgrind runs the program
    /// on a synthetic CPU and serialises its threads (20-50x slower); heaptrack records every call.
    pub fn timeout_factor(self) -> u32 {
        match self {
            Tool::Time => 2,
            Tool::Massif => 50,
            Tool::Heaptrack => 10,
        }
    }

    /// Whether the tool can run here: `Err` says what is missing and what to install.
    pub fn availability(self) -> Result<Vec<PathBuf>, String> {
        self.executables()
            .iter()
            .map(|name| {
                find_executable(name).ok_or_else(|| {
                    format!(
                        "{name} is not installed: apt-get install {}",
                        self.apt_package()
                    )
                })
            })
            .collect()
    }

    /// The tool's version line, for the record.
    pub fn version(self, executables: &[PathBuf]) -> Option<String> {
        let executable = executables.first()?;
        let flag = match self {
            Tool::Time => "--version",
            Tool::Massif | Tool::Heaptrack => "--version",
        };
        let output = std::process::Command::new(executable)
            .arg(flag)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        text.lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(str::to_string)
    }
}

/// What a tool reported for one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolFigures {
    Time(time_verbose::TimeVerbose),
    Massif(MassifPeak),
    Heaptrack(heaptrack::HeaptrackFigures),
}

/// One run of a subject under a tool.
#[derive(Debug, Clone)]
pub struct ToolRun {
    pub figures: ToolFigures,
    /// memproof's own meter inside that run (a memproof case only): did the program allocate as in memproof's run?
    pub memproof_inside: Option<FinalFigures>,
    /// The files the tool left, relative to the output directory.
    pub files: Vec<PathBuf>,
}

fn tool_file(
    settings: &RunSettings,
    subject: &Subject,
    tool: Tool,
    suffix: &str,
) -> (PathBuf, PathBuf) {
    let relative = PathBuf::from("tools").join(format!(
        "{}.{}{suffix}",
        file_stem(&subject.label),
        tool.name()
    ));
    (settings.out_dir.join(&relative), relative)
}

fn check_ran(measured: &Measured, tool: Tool) -> anyhow::Result<()> {
    if measured.outcome != Outcome::Ok {
        bail!(
            "the run under {} ended {}: {}",
            tool.display_name(),
            measured.outcome,
            super::why_it_ended(measured)
        );
    }
    Ok(())
}

/// Runs `subject` under `tool` (whose executables `availability` found) and reads what the tool reported.
pub fn run_under(
    tool: Tool,
    executables: &[PathBuf],
    subject: &Subject,
    settings: &RunSettings,
) -> anyhow::Result<ToolRun> {
    std::fs::create_dir_all(settings.out_dir.join("tools"))?;
    let timeout = subject.timeout.saturating_mul(tool.timeout_factor());
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| {
            format!(
                "{}: {} left no output here",
                path.display(),
                tool.display_name()
            )
        })
    };
    match tool {
        Tool::Time => {
            let (report, relative) = tool_file(settings, subject, tool, ".txt");
            let _ = std::fs::remove_file(&report);
            let args: Vec<OsString> = vec!["-v".into(), "-o".into(), report.clone().into()];
            let measured =
                run_through_runner(settings, subject, Some((&executables[0], args)), timeout)?;
            check_ran(&measured, tool)?;
            let parsed =
                time_verbose::parse_time_verbose(&read(&report)?, &report.display().to_string())?;
            Ok(ToolRun {
                figures: ToolFigures::Time(parsed),
                memproof_inside: measured.final_figures,
                files: vec![relative],
            })
        }
        Tool::Massif => {
            let (out_file, relative) = tool_file(settings, subject, tool, ".out");
            let _ = std::fs::remove_file(&out_file);
            let args: Vec<OsString> = vec![
                "--tool=massif".into(),
                "--peak-inaccuracy=0".into(),
                "--detailed-freq=1".into(),
                format!("--massif-out-file={}", out_file.display()).into(),
            ];
            let measured =
                run_through_runner(settings, subject, Some((&executables[0], args)), timeout)?;
            check_ran(&measured, tool)?;
            let peak =
                massif::parse_massif_peak(&read(&out_file)?, &out_file.display().to_string())?;
            Ok(ToolRun {
                figures: ToolFigures::Massif(peak),
                memproof_inside: measured.final_figures,
                files: vec![relative],
            })
        }
        Tool::Heaptrack => {
            let (base, relative_base) = tool_file(settings, subject, tool, "");
            for stale in ["zst", "gz"] {
                let _ = std::fs::remove_file(format!("{}.{stale}", base.display()));
            }
            let args: Vec<OsString> = vec!["-o".into(), base.clone().into()];
            let measured =
                run_through_runner(settings, subject, Some((&executables[0], args)), timeout)?;
            check_ran(&measured, tool)?;
            let data = heaptrack::data_file(&base)
                .with_context(|| format!("{}.zst: heaptrack wrote no data file", base.display()))?;
            let (histogram, _) = tool_file(settings, subject, tool, ".histogram.txt");
            let (export, _) = tool_file(settings, subject, tool, ".massif");
            let (printed, _) = tool_file(settings, subject, tool, ".print.txt");
            let output = std::process::Command::new(&executables[1])
                .arg("-f")
                .arg(&data)
                .args(["-p", "0", "-a", "0", "-T", "0", "-H"])
                .arg(&histogram)
                .arg("-M")
                .arg(&export)
                .output()
                .context("cannot run heaptrack_print")?;
            if !output.status.success() {
                bail!(
                    "heaptrack_print -f {} failed ({})\n{}",
                    data.display(),
                    output.status,
                    show_tail(&String::from_utf8_lossy(&output.stderr))
                );
            }
            let print_text = String::from_utf8_lossy(&output.stdout).into_owned();
            std::fs::write(&printed, &print_text)?;
            let summary = heaptrack::parse_summary(&print_text, &printed.display().to_string())?;
            let totals =
                heaptrack::parse_histogram(&read(&histogram)?, &histogram.display().to_string())?;
            let export_peak = std::fs::read_to_string(&export)
                .ok()
                .and_then(|text| massif::parse_massif_peak(&text, "export").ok())
                .map(|peak| peak.heap_bytes);
            let figures =
                heaptrack::combine(&summary, &totals, export_peak, &data.display().to_string())?;
            let relative_dir = relative_base
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let files = [&data, &printed, &histogram, &export]
                .iter()
                .filter_map(|path| path.file_name().map(|name| relative_dir.join(name)))
                .collect();
            Ok(ToolRun {
                figures: ToolFigures::Heaptrack(figures),
                memproof_inside: measured.final_figures,
                files,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_named_as_tools_takes_them() {
        assert_eq!("massif".parse::<Tool>(), Ok(Tool::Massif));
        assert_eq!(
            "perf".parse::<Tool>(),
            Err("unknown tool \"perf\": expected one of time, massif, heaptrack".to_string())
        );
        for tool in ALL_TOOLS {
            assert_eq!(tool.name().parse::<Tool>(), Ok(tool));
        }
    }
}
