//! `cargo xtask measure -- CMD ARGS`: measures any program, in any language, the way a case is measured: RSS
//! timeline, the kernel's peak, outcome under a limit and a timeout, wall time, into results.json. Heap figures are
//! `null`: memproof cannot see inside another program's allocator.

use crate::Finished;
use crate::build;
use crate::load_test::{parse_duration, parse_size};
use anyhow::Context as _;
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
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

impl Measure {
    pub fn run(self) -> anyhow::Result<Finished> {
        let bin_dir = build::build_release(&["memproof-harness"], &["memproof-launch"])?;
        let out_dir = build::output_dir(self.out.as_deref(), "measure")?;
        let (program, args) = self.command.split_first().context("no command given")?;
        let launch = Launch {
            launcher: bin_dir.join("memproof-launch"),
            program: PathBuf::from(program),
            args: args.to_vec(),
            env: Vec::new(),
            current_dir: None,
            limit_bytes: self.limit,
            timeout: self.timeout,
            interval: self.interval,
            pass_output_through: true,
        };
        let run_info = harness::host::run_info("measure", &build::workspace_root());
        let measured = runner::run(&launch, |_| {})?;
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
            peak_heap_bytes: None,
            total_alloc_bytes: None,
            alloc_count: None,
            end_heap_bytes: None,
            wall_ms: measured.wall_ms,
            timeline: measured.timeline,
            phases: measured.phases,
            metrics,
            profile_file: None,
            profile: None,
            repeat: None,
        };
        eprintln!(
            "memproof: {}  {}  peak RSS {}  {:.2} s",
            command_line.join(" "),
            case.outcome,
            case.peak_rss_bytes.map_or("-".into(), |b| format!(
                "{} ({b} B)",
                format_bytes(b as f64)
            )),
            case.wall_ms / 1e3
        );
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
