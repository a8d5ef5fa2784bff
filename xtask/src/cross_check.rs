//! `cargo xtask cross-check`: memproof's figures beside those of independent tools (GNU time, Valgrind's massif,
//! heaptrack) on the calibration case, one small case of each seed scenario, and programs in other languages. The
//! work is in `crosscheck`; this command picks the cases, builds the binaries and writes the table.

use anyhow::Context as _;
use crosscheck::subject::{RunSettings, Subject, external_programs};
use crosscheck::table::{render_markdown, render_terminal};
use crosscheck::tools::Tool;
use crosscheck::{Plan, run_cross_check};
use memproof_cli::Finished;
use memproof_cli::build;
use memproof_cli::load_test::{parse_duration, select_specs};
use planning::suite::{self, PlannedCase};
use schema::spec::Spec;
use std::path::PathBuf;

/// Runs cases under memproof and under tools that share none of its code, and prints both figures side by side.
#[derive(clap::Args)]
pub struct CrossCheck {
    /// Where to write cross-check.md, cross-check.json and the tools' own outputs [default:
    /// target/memproof/cross-check].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The independent tools to run, comma-separated: time (peak RSS), massif (peak heap), heaptrack (peak heap,
    /// total allocated, allocation count). A tool that is not installed is reported as skipped.
    #[arg(long, value_delimiter = ',', default_value = "time,massif,heaptrack")]
    tools: Vec<Tool>,
    /// Leave out the seed scenarios' cases: only the calibration case and the programs in other languages.
    #[arg(long)]
    no_scenarios: bool,
    /// Leave out the programs in other languages (Python, C, shell).
    #[arg(long)]
    no_programs: bool,
    /// How often the runner polls each process's resident set, e.g. `5ms`.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    interval: std::time::Duration,
    /// The seed handed to every case.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The profile a scenario's cross-check case is sized from: `smoke` when the spec has one, else `ci`.
fn small_profile(spec: &Spec) -> anyhow::Result<&'static str> {
    ["smoke", "ci"]
        .into_iter()
        .find(|name| spec.profiles.contains_key(*name))
        .with_context(|| {
            format!(
                "{}: scenario {} has neither a smoke nor a ci profile",
                spec.path.display(),
                spec.scenario
            )
        })
}

/// The case to cross-check for a spec: its small profile's smallest size, its first role.
fn smallest_case(spec: &Spec) -> anyhow::Result<PlannedCase> {
    let profile = small_profile(spec)?;
    let planned = suite::plan(std::slice::from_ref(spec), profile)?;
    planned.into_iter().next().with_context(|| {
        format!(
            "{}: profile {profile} of scenario {} plans no case",
            spec.path.display(),
            spec.scenario
        )
    })
}

/// The calibration case made to allocate nothing of its own: what a heap tool sees in it beyond memproof's meter
/// is the startup excess.
fn empty_case(calibration: &PlannedCase) -> PlannedCase {
    let mut empty = calibration.clone();
    empty.size.value = 0.0;
    empty.id = schema::results::Case::make_id(&empty.scenario, &empty.role, &empty.size);
    empty.params.insert("steps".into(), 1.into());
    empty.params.insert("hold".into(), "0ms".into());
    empty
}

impl CrossCheck {
    pub fn run(self) -> anyhow::Result<Finished> {
        let mut tools = self.tools.clone();
        tools.sort();
        tools.dedup();
        let specs = select_specs(&memproof_cli::home::SpecHome::resolve(None)?, &[])?;
        let bin_dir = build::build_release(
            &["memproof-scenarios", "memproof-runner"],
            &["memproof-case", "memproof-launch"],
        )?;
        let out_dir = memproof_cli::output_dir::output_dir(self.out.as_deref(), "cross-check")?;
        let case_binary = bin_dir.join("memproof-case");

        let mut plan = Plan {
            startup_case: None,
            subjects: Vec::new(),
            unavailable: Vec::new(),
            tools,
        };
        for spec in &specs {
            let is_calibration = spec.scenario == schema::spec::CALIBRATION_SCENARIO;
            if !is_calibration && self.no_scenarios {
                continue;
            }
            let case = smallest_case(spec)?;
            if is_calibration {
                plan.startup_case = Some(Subject::memproof_case(
                    &case_binary,
                    &empty_case(&case),
                    self.seed,
                    "the calibration case at 0 bytes: allocates nothing of its own",
                ));
            }
            let description = format!("{} ({})", spec.title, case.technique);
            plan.subjects.push(Subject::memproof_case(
                &case_binary,
                &case,
                self.seed,
                &description,
            ));
        }
        if !self.no_programs {
            for program in external_programs(&out_dir) {
                match program {
                    Ok(subject) => plan.subjects.push(subject),
                    Err(skipped) => plan.unavailable.push(skipped),
                }
            }
        }
        let settings = RunSettings {
            launcher: bin_dir.join("memproof-launch"),
            out_dir: out_dir.clone(),
            interval: self.interval,
        };
        eprintln!(
            "memproof: cross-check of {} cases and programs under {}, writing to {}",
            plan.subjects.len(),
            plan.tools
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", "),
            out_dir.display()
        );
        let run_info = planning::host::run_info("cross-check", &build::workspace_root()?);
        let started = std::time::Instant::now();
        let report = run_cross_check(&plan, &settings, run_info, &mut |line| {
            eprintln!(
                "memproof: [{:>5.1} s] {line}",
                started.elapsed().as_secs_f64()
            )
        })?;
        let _ = std::fs::remove_dir(out_dir.join("work"));

        let markdown_path = out_dir.join("cross-check.md");
        let json_path = out_dir.join("cross-check.json");
        std::fs::write(&markdown_path, render_markdown(&report))
            .with_context(|| format!("{}: cannot write", markdown_path.display()))?;
        std::fs::write(&json_path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("{}: cannot write", json_path.display()))?;
        println!("{}", render_terminal(&report));
        let failures: Vec<_> = report.failures().collect();
        eprintln!(
            "memproof: {} comparisons, {} failed, in {:.0} s; table in {}",
            report.rows.len(),
            failures.len(),
            started.elapsed().as_secs_f64(),
            markdown_path.display()
        );
        for row in &failures {
            eprintln!(
                "  FAILED {} {} against {}: memproof {}, {} {}",
                row.case,
                row.figure.name(),
                row.tool,
                row.memproof.map_or("-".into(), |v| row.figure.format(v)),
                row.tool,
                row.tool_figure.map_or("-".into(), |v| row.figure.format(v)),
            );
        }
        Ok(if failures.is_empty() {
            Finished::Passed
        } else {
            Finished::Failed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crosscheck::tools::ALL_TOOLS;
    use schema::toy_spec::toy_spec;

    #[test]
    fn the_empty_case_is_the_calibration_case_at_zero_bytes() {
        let text = toy_spec(
            "calibration",
            &[("known", "touch_known_steps")],
            r#"[profiles.ci]
size = { name = "bytes", unit = "bytes", values = [67108864, 16777216] }
params = { steps = 8, hold = "200ms" }
"#,
        );
        let spec = Spec::parse(std::path::Path::new("calibration.toml"), &text).unwrap();
        let case = smallest_case(&spec).unwrap();
        assert_eq!(
            case.id, "calibration/known/bytes=16777216",
            "no smoke profile: the ci one, smallest size"
        );
        let empty = empty_case(&case);
        assert_eq!(empty.id, "calibration/known/bytes=0");
        assert_eq!(
            serde_json::Value::Object(empty.params).to_string(),
            r#"{"hold":"0ms","steps":1}"#
        );
    }

    #[test]
    fn every_tool_is_a_default() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            flags: CrossCheck,
        }
        let parsed = Wrapper::try_parse_from(["x"]).unwrap();
        assert_eq!(parsed.flags.tools, ALL_TOOLS);
        let parsed = Wrapper::try_parse_from(["x", "--tools", "massif,time"]).unwrap();
        assert_eq!(parsed.flags.tools, [Tool::Massif, Tool::Time]);
        assert!(Wrapper::try_parse_from(["x", "--tools", "perf"]).is_err());
    }
}
