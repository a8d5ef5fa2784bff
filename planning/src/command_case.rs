//! A case whose technique is a program of the user's, given as a command in its spec (`schema::external_command`),
//! with the spec's driver beside it (`runner::driver`).
//!
//! A heap meter inside a program costs memory and time of its own: tracemalloc doubled the resident set of a
//! Python process parsing a 128 MiB export (1.23 to 2.72 GiB), and the preload library keeps a side table per
//! live block. So a command with a heap meter runs twice, each run a process tree of its own in a fresh work
//! directory:
//!
//! - the **measurement run**, with no meter in the program (no probe channel, so a probe client stays silent and
//!   traces nothing; no preload library): the case's peak RSS, tree, outcome under the limit and the timeout, wall
//!   time, RSS timeline, and the driver's figures;
//! - the **heap run**, with the meter on: the heap figures, the heap timeline, the phases and the program's own
//!   metrics, recorded as the case's `profile` (its outcome and wall time, reason `heap`). Its limit and timeout
//!   are widened as a dhat run's are, and its RSS is never reported.
//!
//! A command without a heap meter (`heap = "none"`) runs once. What memproof takes from such a program and what it
//! never does is `crate::external`'s rule.

use crate::external::{self, HeapSource};
use crate::suite::{Binaries, PlannedCase, SuiteEvent, SuiteOptions};
use anyhow::Context as _;
use runner::driver::{DRIVER_GRACE, Driver, StopRequest};
use runner::{self, Launch, Measured};
use schema::external_command::{CaseValues, ExternalTechnique, HeapFrom};
use schema::results::{Case, DhatRun, Outcome};
use schema::spec::Spec;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// How much room the heap run's limit and timeout give the meter, as a dhat run's do.
const HEAP_RUN_LIMIT_FACTOR: u64 = 3;
const HEAP_RUN_TIMEOUT_FACTOR: u32 = 10;

/// A scenario's build directory in a run's directory (`{build_dir}`): where its `[prepare]` command builds.
pub fn build_dir(out_dir: &Path, scenario: &str) -> PathBuf {
    out_dir.join("build").join(scenario)
}

/// Runs the `[prepare]` command of every spec that has one and a case in `planned`, once, before any case: in its
/// build directory, outside every measurement, its output in `prepare.log` there. A prepare that fails is an error
/// of the run (exit 2), quoting the end of its output.
pub fn prepare(specs: &[Spec], planned: &[PlannedCase], out_dir: &Path) -> anyhow::Result<()> {
    for spec in specs {
        let Some(prepare) = &spec.prepare else {
            continue;
        };
        if !planned.iter().any(|case| case.scenario == spec.scenario) {
            continue;
        }
        let spec_dir = spec.dir()?;
        let build_dir = build_dir(out_dir, &spec.scenario);
        std::fs::create_dir_all(&build_dir)
            .with_context(|| format!("{}: cannot create", build_dir.display()))?;
        let command =
            schema::external_command::expand_prepare(&prepare.command, &spec_dir, &build_dir);
        let log = build_dir.join("prepare.log");
        let output = std::fs::File::create(&log)
            .with_context(|| format!("{}: cannot create", log.display()))?;
        eprintln!(
            "memproof: {}: prepare: {}",
            spec.scenario,
            command.join(" ")
        );
        let status = std::process::Command::new(&command[0])
            .args(&command[1..])
            .current_dir(&build_dir)
            .env("MEMPROOF_SPEC_DIR", &spec_dir)
            .env("MEMPROOF_BUILD_DIR", &build_dir)
            .stdin(std::process::Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .status()
            .with_context(|| {
                format!(
                    "{}: prepare: cannot start {}",
                    spec.path.display(),
                    command[0]
                )
            })?;
        if !status.success() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            anyhow::bail!(
                "{}: prepare: {} failed ({status}); its output is in {}\n{}",
                spec.path.display(),
                command.join(" "),
                log.display(),
                runner::output_capture::show_tail(&tail.join("\n"))
            );
        }
    }
    Ok(())
}

/// Runs one command case: its measurement run and, when the technique has a heap meter, its heap run.
pub fn run(
    case: &PlannedCase,
    spec: &Spec,
    technique: &ExternalTechnique,
    binaries: &Binaries,
    preload: Option<&Path>,
    options: &SuiteOptions,
    on_event: &mut dyn FnMut(SuiteEvent<'_>),
) -> anyhow::Result<Case> {
    let spec_dir = spec.dir()?;
    let source = match technique.heap {
        HeapFrom::Probe => HeapSource::Probe,
        HeapFrom::None => HeapSource::None,
        HeapFrom::Preload => HeapSource::Preload(
            preload
                .context(
                    "a technique asks for heap = \"preload\" but no preload library was built",
                )?
                .to_path_buf(),
        ),
    };
    let program = technique
        .command
        .first()
        .expect("checked when the spec was read");
    let program = program.replace("{spec_dir}", &spec_dir.to_string_lossy());
    let (source, blind_spot) =
        external::effective_heap_source(source, Path::new(&program), &technique.env);
    let (relative_case_dir, case_dir) = crate::suite::case_dir(case, options)?;
    let run = TechniqueRun {
        case,
        spec,
        technique,
        binaries,
        options,
        spec_dir: &spec_dir,
        case_dir: &case_dir,
    };
    on_event(SuiteEvent::Started {
        case,
        run: "timeline",
    });
    let mut measured = run.once(&HeapSource::None, "timeline", on_event)?;
    let mut heap = None;
    let mut profile = None;
    match &source {
        HeapSource::None => {}
        meter => {
            on_event(SuiteEvent::Started { case, run: "heap" });
            let heap_run = run.once(meter, "heap", on_event)?;
            heap = match external::heap_of(&heap_run, meter) {
                Ok(heap) => heap,
                Err(why) => {
                    measured
                        .metrics
                        .insert("heap_unavailable".into(), why.into());
                    None
                }
            };
            profile = Some(take_heap_run(&mut measured, heap_run));
        }
    }
    if let Some(why) = blind_spot {
        measured
            .metrics
            .insert("heap_unavailable".into(), why.into());
    }
    let output = crate::suite::output_files(
        &relative_case_dir,
        &measured.stdout_file,
        &measured.stderr_file,
    );
    let mut result = crate::external::recorded_case(case.identity(), measured, heap, output);
    result.dhat_run = profile;
    let _ = std::fs::remove_dir(&case_dir);
    on_event(SuiteEvent::Finished { case: &result });
    Ok(result)
}

/// The measurement run keeps its RSS, outcome, time and driver figures; the heap run gives the heap samples, the
/// phases and the program's own metrics, and is recorded as the case's profile run.
fn take_heap_run(measured: &mut Measured, heap_run: Measured) -> DhatRun {
    measured
        .timeline
        .retain(|sample| sample.heap_bytes.is_none());
    measured.timeline.extend(
        heap_run
            .timeline
            .iter()
            .filter(|sample| sample.heap_bytes.is_some())
            .cloned(),
    );
    measured.timeline.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    measured.phases = heap_run.phases.clone();
    for (name, value) in &heap_run.metrics {
        measured
            .metrics
            .entry(name.clone())
            .or_insert_with(|| value.clone());
    }
    let figures = heap_run.final_figures.as_ref();
    DhatRun {
        outcome: heap_run.outcome,
        peak_heap_bytes: figures.and_then(|f| f.peak_heap_bytes),
        total_alloc_bytes: figures.and_then(|f| f.total_alloc_bytes),
        alloc_count: figures.and_then(|f| f.alloc_count),
        wall_ms: heap_run.wall_ms,
        reason: Some(schema::results::HEAP_RUN_REASON.into()),
    }
}

/// What one run of a command case needs.
struct TechniqueRun<'a> {
    case: &'a PlannedCase,
    spec: &'a Spec,
    technique: &'a ExternalTechnique,
    binaries: &'a Binaries,
    options: &'a SuiteOptions,
    spec_dir: &'a Path,
    case_dir: &'a Path,
}

impl TechniqueRun<'_> {
    /// One run of the technique (with `meter` in it, or none) and its driver, in a fresh work directory; its
    /// output goes to `<name>.stdout`, `<name>.stderr` and `<name>-driver.*` in the case's directory.
    fn once(
        &self,
        meter: &HeapSource,
        name: &str,
        on_event: &mut dyn FnMut(SuiteEvent<'_>),
    ) -> anyhow::Result<Measured> {
        let case = self.case;
        let work_root = crate::suite::work_root(self.options)?;
        let work_dir = crate::suite::case_work_dir(case, &work_root)?;
        let values = CaseValues {
            size: case.size.value,
            size_name: case.size.name.clone(),
            params: case.params.clone(),
            role: case.role.clone(),
            technique: case.technique.clone(),
            work_dir: work_dir.path().to_string_lossy().into_owned(),
            spec_dir: self.spec_dir.to_string_lossy().into_owned(),
            build_dir: build_dir(&self.options.out_dir, &self.spec.scenario)
                .to_string_lossy()
                .into_owned(),
        };
        let in_spec =
            |error: anyhow::Error| anyhow::anyhow!("{}: {error}", self.spec.path.display());
        let command = values.expand(&self.technique.command).map_err(in_spec)?;
        let mut env: Vec<(OsString, OsString)> = values
            .environment()
            .into_iter()
            .map(|(key, value)| (key.into(), value.into()))
            .collect();
        env.push((
            meter::probe::SAMPLE_MS_ENV.into(),
            self.options.sample_ms.to_string().into(),
        ));
        let driver_env = env.clone();
        env.extend(
            self.technique
                .env
                .iter()
                .map(|(key, value)| (key.into(), value.into())),
        );
        let (program, args) = command
            .split_first()
            .expect("checked when the spec was read");
        let args: Vec<OsString> = args.iter().map(Into::into).collect();
        let program = PathBuf::from(program);
        let stop = std::sync::Arc::new(StopRequest::default());
        let driver = match &self.spec.driver {
            Some(driver) => Some(Driver::start(
                &values.expand(&driver.command).map_err(in_spec)?,
                &driver_env,
                work_dir.path(),
                &self.case_dir.join(format!("{name}-driver")),
                std::sync::Arc::clone(&stop),
            )?),
            None => None,
        };
        // The program's only, never the driver's: set on the program's own exec, with no command in front of it.
        if let HeapSource::Preload(library) = meter {
            env.push(external::preload_env(library));
        }
        let measuring_heap = *meter != HeapSource::None;
        let launch = Launch {
            launcher: self.binaries.launcher.clone(),
            program,
            args,
            env,
            current_dir: Some(work_dir.path().to_path_buf()),
            limit_bytes: match measuring_heap {
                false => case.limit_bytes,
                true => case
                    .limit_bytes
                    .map(|limit| limit.saturating_mul(HEAP_RUN_LIMIT_FACTOR)),
            },
            timeout: match measuring_heap {
                false => case.timeout,
                true => case.timeout.saturating_mul(HEAP_RUN_TIMEOUT_FACTOR),
            },
            interval: self.options.interval,
            // The program's own lines are its heap, phases and metrics; never its peak RSS, outcome or time.
            probe: match measuring_heap {
                false => runner::ProbeAccess::Off,
                true => runner::ProbeAccess::Program,
            },
            output_stem: Some(self.case_dir.join(name)),
        };
        let measured = runner::run_until(&launch, Some(&stop), |progress| {
            on_event(SuiteEvent::Running { case, progress })
        });
        let driven = driver.map(|driver| driver.finish(DRIVER_GRACE));
        let mut measured = measured?;
        drop(work_dir);
        if let Some(reason) = stop.reason() {
            // The driver ended the run: its words say why, not the signal that stopped the technique.
            measured.outcome = Outcome::Failed;
            measured.exit.message = Some(match driven {
                // The driver's own account: how it failed, and the end of its stderr.
                Some(Err(why)) => why,
                _ => reason,
            });
        } else if let Some(driven) = driven {
            match driven {
                Ok(figures) => measured.metrics.extend(figures),
                Err(why) if measured.outcome == Outcome::Ok => {
                    measured.outcome = Outcome::Failed;
                    measured.exit.message = Some(why);
                }
                // The technique's own outcome (killed, timed out, failed) explains the driver's failure.
                Err(_) => {}
            }
        }
        Ok(measured)
    }
}
