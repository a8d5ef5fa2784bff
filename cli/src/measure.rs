//! `cargo xtask measure -- CMD ARGS`: measures any program, in any language, the way a case is measured: the
//! process tree's memory timeline, the kernel's peak of its largest process beside the tree's total, outcome under a
//! limit and a timeout, wall time, into results.json. The command's stdout and stderr go to files in the output
//! directory. Heap figures are `null` unless the command reports them on the probe protocol: `--probe` for a program
//! with a probe client (`clients/`), `--heap preload` for a malloc user, which loads memproof's preload library (and
//! implies `--probe`). Whatever it reports, its peak RSS, outcome and wall time are the kernel's (`runner::ProbeAccess`).

use crate::Finished;
use crate::home;
use crate::load_test::{parse_duration, parse_size};
use crate::preflight;
use anyhow::Context as _;
use planning::external::{self, HeapSource};
use runner::{self, Launch, ProbeAccess};
use schema::results::{Case, CaseIdentity, Outcome, OutputFiles, Results, Size, TreeReport};
use schema::units::format_bytes;
use std::ffi::OsString;
use std::path::PathBuf;

/// Measures one command: peak RSS, RSS timeline, outcome, wall time.
#[derive(clap::Args)]
pub struct Measure {
    /// Kill the command and everything it started when their memory together (proportional set sizes summed, so
    /// shared pages count once) goes over this, as a container's limit would, e.g. `512MiB`, `1.5GB`. At most twice
    /// this machine's memory.
    #[arg(long, value_parser = parse_size)]
    limit: Option<u64>,
    /// Kill the command and everything it started when it runs longer than this, e.g. `30s`.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    timeout: std::time::Duration,
    /// How often to poll the process tree's memory (and check the limit), e.g. `5ms`; at least `1ms`.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    interval: std::time::Duration,
    /// Give the command memproof's probe pipe: its descriptor number is in the environment variable
    /// `MEMPROOF_PROBE_FD`; heap samples, phases and metrics written there as JSON lines are recorded. Nothing
    /// written there changes a memory figure, the outcome or the wall time.
    #[arg(long)]
    probe: bool,
    /// Where the heap figures come from: `preload` loads memproof's malloc-counting library into the command with
    /// LD_PRELOAD (implies --probe).
    #[arg(long, value_name = "METER", value_parser = ["preload"])]
    heap: Option<String>,
    /// Where to write results.json and the reports [default: target/memproof/measure].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

impl Measure {
    pub fn run(self) -> anyhow::Result<Finished> {
        preflight::check_interval("--interval", self.interval)?;
        preflight::check_timeout(self.timeout, self.interval)?;
        runner::check_timeout(self.timeout).context("--timeout")?;
        if let Some(limit) = self.limit {
            preflight::check_limit(limit, planning::host::host().memory_bytes)?;
        }
        let launcher = home::launcher()?;
        let out_dir = crate::output_dir::output_dir(self.out.as_deref(), "measure")?;
        let (program, args) = self.command.split_first().context("no command given")?;
        let wanted = if self.heap.is_some() {
            HeapSource::Preload(home::preload()?)
        } else if self.probe {
            HeapSource::Probe
        } else {
            HeapSource::None
        };
        let (source, blind_spot) = external::effective_heap_source(
            wanted,
            std::path::Path::new(program),
            &Default::default(),
        );
        if let Some(why) = &blind_spot {
            // Not loaded where it cannot see: a heap of zero, or part of it as the whole, would be a lie.
            eprintln!("memproof: no heap figures: {why}");
        }
        let launch = Launch {
            launcher,
            program: PathBuf::from(program),
            args: args.to_vec(),
            env: match &source {
                HeapSource::Preload(library) => vec![external::preload_env(library)],
                _ => Vec::new(),
            },
            current_dir: None,
            limit_bytes: self.limit,
            timeout: self.timeout,
            interval: self.interval,
            probe: match source {
                HeapSource::None => ProbeAccess::Off,
                _ => ProbeAccess::Program,
            },
            output_stem: Some(out_dir.join("command")),
        };
        let run_info = planning::host::run_info("measure", &home::repository()?);
        runner::interrupt::install()?;
        let mut measured = runner::run(&launch, |_| {})?;
        let heap = match external::heap_of(&measured, &source) {
            Ok(heap) => heap,
            Err(why) => {
                eprintln!("memproof: no heap figures: {why}");
                None
            }
        };
        if let Some(why) = blind_spot {
            measured
                .metrics
                .insert("heap_unavailable".into(), why.into());
        }
        for stray in &measured.stray_lines {
            eprintln!("memproof: not a probe protocol line, kept as a stray line: {stray}");
        }
        if !measured.stray_lines.is_empty() {
            measured.metrics.insert(
                "stray_probe_lines".into(),
                measured.stray_lines.clone().into(),
            );
        }
        let name = PathBuf::from(program)
            .file_name()
            .map_or("command".into(), |n| n.to_string_lossy().into_owned());
        let size = Size {
            name: "run".into(),
            value: 1.0,
            unit: "run".into(),
        };
        record_diagnostics(&mut measured);
        let command_line: Vec<String> = self
            .command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        measured
            .metrics
            .insert("command".into(), command_line.join(" ").into());
        let file_name = |path: &Option<PathBuf>| {
            path.as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
        };
        let output =
            (measured.stdout_file.is_some() || measured.stderr_file.is_some()).then(|| {
                OutputFiles {
                    stdout: file_name(&measured.stdout_file),
                    stderr: file_name(&measured.stderr_file),
                }
            });
        let (tree, output_paths) = (
            measured.tree.clone(),
            [measured.stdout_file.clone(), measured.stderr_file.clone()],
        );
        let identity = CaseIdentity {
            counterfactual: None,
            id: Case::make_id("measure", &name, &size),
            scenario: "measure".into(),
            role: name,
            technique: None,
            size,
            limit_bytes: self.limit,
        };
        let case = planning::external::recorded_case(identity, measured, heap, output);
        print_summary(&case, &tree, &command_line, heap.is_some());
        for file in output_paths.iter().flatten() {
            eprintln!("memproof: the command's output is in {}", file.display());
        }
        let outcome = case.outcome;
        let results = Results::unjudged(run_info, vec![case]);
        let path = out_dir.join(schema::results::RESULTS_FILE);
        results.write(&path)?;
        // What was measured is on disk: an interrupt while the reports render ends the run there.
        runner::interrupt::end_promptly()?;
        reports::write_reports(&results, &[], &out_dir)?;
        eprintln!("memproof: results in {}", path.display());
        Ok(match outcome {
            Outcome::Ok => Finished::Passed,
            Outcome::Interrupted => {
                Finished::Interrupted(runner::interrupt::received().unwrap_or(libc::SIGINT))
            }
            _ => Finished::Failed,
        })
    }
}

/// The run in a few lines on stderr: outcome, peak RSS of the largest process and of the tree, time, and the heap
/// when the program reported one.
fn print_summary(case: &Case, tree: &TreeReport, command_line: &[String], heap_reported: bool) {
    let bytes = |b: Option<u64>| {
        b.map_or("-".into(), |b| {
            format!("{} ({b} B)", format_bytes(b as f64))
        })
    };
    eprintln!(
        "memproof: {}  {}  peak RSS {} (largest process), tree total {} ({} at most)  {:.3} s",
        command_line.join(" "),
        case.outcome,
        bytes(case.peak_rss_bytes),
        bytes(tree.peak_pss_bytes),
        match tree.most_processes {
            1 => "1 process".to_string(),
            n => format!("{n} processes"),
        },
        case.wall_ms / 1e3
    );
    if heap_reported {
        eprintln!(
            "memproof: heap: peak {}  end {}  total {}  allocations {}",
            bytes(case.peak_heap_bytes),
            bytes(case.end_heap_bytes),
            bytes(case.total_alloc_bytes),
            case.alloc_count.map_or("-".into(), |n| n.to_string())
        );
    }
    if let Some(message) = &case.exit.message {
        eprintln!("{message}");
    }
}

/// What the runner saw beyond the figures results.json has fields for (the launcher's `ru_maxrss`, descendants left
/// running, the unreclaimable and file-page peaks, why a peak is a lower bound, shared memory left behind, time the
/// runner did not watch, the highest polled total), kept as the run's metrics so `measure` loses none of it.
fn record_diagnostics(measured: &mut runner::Measured) {
    if let Some(maxrss) = measured.maxrss_bytes {
        measured
            .metrics
            .insert("ru_maxrss_bytes".into(), maxrss.into());
    }
    if measured.left_running_count > 0 {
        measured.metrics.insert(
            "left_running_count".into(),
            measured.left_running_count.into(),
        );
    }
    for (name, bytes) in [
        ("peak_charged_bytes", measured.peak_charged_bytes),
        ("peak_file_bytes", measured.peak_file_bytes),
    ] {
        if let Some(bytes) = bytes {
            measured.metrics.insert(name.into(), bytes.into());
        }
    }
    for (name, notes) in [
        ("lower_bound", measured.lower_bound.clone()),
        ("left_behind", measured.left_behind.clone()),
    ] {
        if !notes.is_empty() {
            measured.metrics.insert(name.into(), notes.into());
        }
    }
    if measured.unwatched_ms > 0.0 {
        measured
            .metrics
            .insert("unwatched_ms".into(), measured.unwatched_ms.into());
    }
    if let Some(sampled) = measured.sampled_peak_rss_bytes {
        measured
            .metrics
            .insert("sampled_peak_rss_bytes".into(), sampled.into());
    }
}
