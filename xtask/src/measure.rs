//! `cargo xtask measure -- CMD ARGS`: measures any program, in any language, the way a case is measured: RSS
//! timeline, the kernel's peak, outcome under a limit and a timeout, wall time, into results.json. Heap figures are
//! `null` unless the program reports them on the probe protocol: `--probe` for a program with a probe client
//! (`clients/`), `--heap preload` for a malloc user, which loads memproof's preload library (and implies `--probe`).
//! What memproof trusts from the program is in `harness::external`.

use crate::Finished;
use crate::build;
use crate::load_test::{parse_duration, parse_size};
use anyhow::Context as _;
use harness::external::{self, HeapSource};
use harness::results::{Case, Outcome, Results, SCHEMA, Size};
use harness::runner::{self, Launch};
use harness::units::format_bytes;
use std::ffi::OsString;
use std::path::PathBuf;

/// Measures one command: peak RSS, RSS timeline, outcome, wall time.
#[derive(clap::Args)]
pub struct Measure {
    /// Kill the command when its resident set goes over this, as the OOM killer would, e.g. `512MiB`, `1.5GB`.
    #[arg(long, value_parser = parse_size)]
    limit: Option<u64>,
    /// Kill the command when it runs longer than this, e.g. `30s`.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    timeout: std::time::Duration,
    /// How often to poll the command's resident set (and check the limit), e.g. `5ms`.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    interval: std::time::Duration,
    /// Where to write results.json and the reports [default: target/memproof/measure].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Take heap samples, phases, metrics and final heap figures from the command's probe client (`clients/`).
    #[arg(long)]
    probe: bool,
    /// Where the heap figures come from: `preload` loads memproof's malloc-counting library into the command with
    /// LD_PRELOAD (implies --probe).
    #[arg(long, value_name = "METER", value_parser = ["preload"])]
    heap: Option<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

impl Measure {
    pub fn run(self) -> anyhow::Result<Finished> {
        let bin_dir = build::build_release(&["memproof-harness"], &["memproof-launch"])?;
        let out_dir = build::output_dir(self.out.as_deref(), "measure")?;
        let (program, args) = self.command.split_first().context("no command given")?;
        let blind_spot = self
            .heap
            .is_some()
            .then(|| external::preload_blind_spot(std::path::Path::new(program)))
            .flatten();
        let source = if let Some(why) = &blind_spot {
            // Not loaded where it cannot see: a heap of zero would be a lie.
            eprintln!("memproof: no heap figures: {why}");
            HeapSource::None
        } else if self.heap.is_some() {
            HeapSource::Preload(build::build_preload()?)
        } else if self.probe {
            HeapSource::Probe
        } else {
            HeapSource::None
        };
        let (program_run, args_run) = match &source {
            HeapSource::Preload(library) => external::with_preload(library, program, args),
            HeapSource::Probe => (PathBuf::from(program), args.to_vec()),
            HeapSource::None => external::without_channel(program, args),
        };
        let launch = Launch {
            launcher: bin_dir.join("memproof-launch"),
            program: program_run,
            args: args_run,
            env: Vec::new(),
            current_dir: None,
            limit_bytes: self.limit,
            timeout: self.timeout,
            interval: self.interval,
            pass_output_through: true,
        };
        let run_info = harness::host::run_info("measure", &build::workspace_root());
        let measured = runner::run(&launch, |_| {})?;
        let mut measured = external::trust_kernel_only(measured, self.limit);
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
        if source == HeapSource::None {
            // Without --probe the command's lines are not taken (its timeline keeps only the kernel's RSS).
            measured.timeline.retain(|s| s.rss_bytes.is_some());
            measured.phases.clear();
            measured.metrics.clear();
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
        let mut metrics = measured.metrics.clone();
        if let Some(maxrss) = measured.maxrss_bytes {
            metrics.insert("ru_maxrss_bytes".into(), maxrss.into());
        }
        if let Some(sampled) = measured.sampled_peak_rss_bytes {
            metrics.insert("sampled_peak_rss_bytes".into(), sampled.into());
        }
        let command_line: Vec<String> = self
            .command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        metrics.insert("command".into(), command_line.join(" ").into());
        let case = Case {
            id: Case::make_id("measure", &name, &size),
            scenario: "measure".into(),
            variant: name,
            technique: None,
            size,
            outcome: measured.outcome,
            exit: measured.exit,
            limit_bytes: self.limit,
            limit: measured.limit,
            peak_rss_bytes: measured.peak_rss_bytes,
            peak_heap_bytes: heap.and_then(|h| h.peak_bytes),
            total_alloc_bytes: heap.and_then(|h| h.total_bytes),
            alloc_count: heap.and_then(|h| h.count),
            end_heap_bytes: heap.and_then(|h| h.end_bytes),
            wall_ms: measured.wall_ms,
            timeline: measured.timeline,
            phases: measured.phases,
            metrics,
            profile_file: None,
            profile: None,
        };
        let bytes = |b: Option<u64>| {
            b.map_or("-".into(), |b| {
                format!("{} ({b} B)", format_bytes(b as f64))
            })
        };
        eprintln!(
            "memproof: {}  {}  peak RSS {}  {:.2} s",
            command_line.join(" "),
            case.outcome,
            bytes(case.peak_rss_bytes),
            case.wall_ms / 1e3
        );
        if heap.is_some() {
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
        let passed = case.outcome == Outcome::Ok;
        let results = Results {
            schema: SCHEMA.into(),
            run: run_info,
            cases: vec![case],
            verdicts: Vec::new(),
        };
        let path = out_dir.join(harness::results::RESULTS_FILE);
        results.write(&path)?;
        reports::write_reports(&results, &[], &out_dir)?;
        eprintln!("memproof: results in {}", path.display());
        Ok(if passed {
            Finished::Passed
        } else {
            Finished::Failed
        })
    }
}
