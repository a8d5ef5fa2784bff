//! memproof's load scenarios: the body of each case, the measured side, and its load driver, the other side.
//!
//! A scenario replays one seed bug's load against the model in the root crate. Its case body runs in a child
//! process the runner measures (`memproof-case`, or `memproof-dhat` for the profile run; the two names are the same length so that both runs allocate the same bytes for `argv[0]`); where the load comes
//! from outside (UDP datagrams, HTTP requests, hook events) a **driver** produces it from a process of its own
//! ([`spawn_driver`]), so that the load's memory never counts against the model.
//!
//! **Architecture Invariant:** a case body never prints to stdout and never reads the clock to decide what it
//! reports; every figure it reports is one it counted or measured.

use anyhow::{Context as _, bail};
use meter::probe::{HeapMeter, Probe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

pub mod calibration;
pub mod hook_storm;
pub mod large_session;
pub mod malloc_policy;
pub mod startup;
pub mod syslog_rate;

pub use meter::probe::DHAT_FILE_ENV;

/// What one case is asked to do.
#[derive(Debug, Clone)]
pub struct CaseContext {
    pub scenario: String,
    /// `before`, `after`, `best`, … as the spec names it.
    pub role: String,
    /// The technique that plays the role; the body dispatches on this, never on the role.
    pub technique: String,
    pub size_name: String,
    pub size_value: f64,
    /// The profile's `params` table.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// A scratch directory of this case's own, removed by the runner afterwards.
    pub work_dir: PathBuf,
    /// Seed for anything random, so a case is reproducible.
    pub seed: u64,
    /// The shared fixture's `data/` directory the harness checked and handed over (`--fixture`), if any.
    pub fixture_dir: Option<PathBuf>,
}

impl CaseContext {
    fn param(&self, name: &str) -> anyhow::Result<&serde_json::Value> {
        self.params.get(name).with_context(|| {
            let known: Vec<&str> = self.params.keys().map(String::as_str).collect();
            format!(
                "scenario {}: parameter {name:?} is missing (given: {})",
                self.scenario,
                known.join(", ")
            )
        })
    }

    /// A whole-number parameter; sizes may be written as strings with units (`"300KiB"`).
    pub fn param_u64(&self, name: &str) -> anyhow::Result<u64> {
        let value = self.param(name)?;
        match value {
            serde_json::Value::Number(number) if number.as_u64().is_some() => {
                Ok(number.as_u64().unwrap_or(0))
            }
            serde_json::Value::String(text) => schema::units::parse_size(text)
                .with_context(|| format!("scenario {}: parameter {name}", self.scenario)),
            other => bail!(
                "scenario {}: parameter {name} = {other}: expected a whole number",
                self.scenario
            ),
        }
    }

    /// A number parameter.
    pub fn param_f64(&self, name: &str) -> anyhow::Result<f64> {
        let value = self.param(name)?;
        value.as_f64().with_context(|| {
            format!(
                "scenario {}: parameter {name} = {value}: expected a number",
                self.scenario
            )
        })
    }

    /// A duration parameter, written like `"3s"` or `"250ms"`.
    pub fn param_duration(&self, name: &str) -> anyhow::Result<std::time::Duration> {
        let value = self.param(name)?;
        let text = value.as_str().with_context(|| {
            format!(
                "scenario {}: parameter {name} = {value}: expected a duration like \"3s\"",
                self.scenario
            )
        })?;
        schema::units::parse_duration(text)
            .with_context(|| format!("scenario {}: parameter {name}", self.scenario))
    }

    /// A string parameter.
    pub fn param_str(&self, name: &str) -> anyhow::Result<&str> {
        let value = self.param(name)?;
        value.as_str().with_context(|| {
            format!(
                "scenario {}: parameter {name} = {value}: expected a string",
                self.scenario
            )
        })
    }

    /// The size as a whole number.
    pub fn size_u64(&self) -> u64 {
        self.size_value.max(0.0).round() as u64
    }

    /// The input this case shares with others ([`Scenario::fixture_key`]): the one the harness generated, checked
    /// and handed over with `--fixture`, or, when run on its own (cross-check, by hand), one generated now by a
    /// process of its own into the case's work directory. Either way its generation is not in the case's figures.
    /// Read it; copy what the case changes into the work directory.
    pub fn fixture(&self) -> anyhow::Result<planning::fixtures::Fixture> {
        let data_dir = match &self.fixture_dir {
            Some(dir) => dir.clone(),
            None => {
                let exe = std::env::current_exe()
                    .context("cannot find the case binary to generate the fixture")?;
                let output = Command::new(exe)
                    .arg("fixture")
                    .args(fixture_arguments(self))
                    .arg("--cache")
                    .arg(self.work_dir.join(planning::fixtures::CACHE_DIR))
                    .env_remove(meter::probe::PROBE_FD_ENV)
                    .stdin(Stdio::null())
                    .output()
                    .with_context(|| format!("cannot start the {} fixture", self.scenario))?;
                if !output.status.success() {
                    bail!(
                        "the {} fixture failed ({})\n{}",
                        self.scenario,
                        output.status,
                        show_stderr(&output.stderr)
                    );
                }
                let answer: planning::fixtures::Answer = serde_json::from_slice(&output.stdout)
                    .with_context(|| format!("the {} fixture printed no answer", self.scenario))?;
                answer
                    .data_dir
                    .with_context(|| format!("scenario {} has no fixture", self.scenario))?
            }
        };
        let manifest = planning::fixtures::read_manifest(&data_dir)?;
        Ok(planning::fixtures::Fixture { data_dir, manifest })
    }

    /// The fixture's `file` copied to `to`, for a case that changes it (a store rewrites its state file, the trims
    /// delete from a table), and what generating it reported (the manifest's figures) read as `T`.
    pub fn copy_of_fixture<T: serde::de::DeserializeOwned>(
        &self,
        file: &str,
        to: &Path,
    ) -> anyhow::Result<T> {
        let fixture = self.fixture()?;
        let figures = serde_json::from_value(fixture.manifest.figures).with_context(|| {
            format!(
                "{}: the fixture's figures are not what the case reads",
                self.scenario
            )
        })?;
        std::fs::copy(fixture.data_dir.join(file), to).with_context(|| {
            format!(
                "{}: cannot copy the fixture's {file} to {}",
                self.scenario,
                to.display()
            )
        })?;
        Ok(figures)
    }
}

/// The case arguments `fixture` needs, from a case (the same flags as `case`, without the work directory).
fn fixture_arguments(case: &CaseContext) -> Vec<String> {
    vec![
        "--scenario".into(),
        case.scenario.clone(),
        "--role".into(),
        case.role.clone(),
        "--technique".into(),
        case.technique.clone(),
        "--size-name".into(),
        case.size_name.clone(),
        "--size-value".into(),
        case.size_value.to_string(),
        "--params".into(),
        serde_json::Value::Object(case.params.clone()).to_string(),
        "--seed".into(),
        case.seed.to_string(),
    ]
}

/// One scenario: its case body and, when the load comes from outside, its driver.
pub trait Scenario: Sync {
    /// The name specs and the command line use, e.g. `syslog-rate`.
    fn name(&self) -> &'static str;
    /// The techniques a spec may map roles to.
    fn techniques(&self) -> Vec<&'static str>;
    /// The measured side. Marks phases and reports metrics through `meter::probe`.
    fn run_case(&self, case: &CaseContext) -> anyhow::Result<()>;
    /// The load side, in a process of its own started by [`spawn_driver`]; returns its figures.
    fn run_driver(&self, args: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let _ = args;
        bail!("scenario {} has no driver", self.name())
    }
    /// The key of the input this case shares with other cases of its profile (workflow specs, a log, a starting
    /// state): everything that decides its bytes, and nothing else, so cases asking the same share one cache entry.
    /// `None`: the case shares nothing.
    fn fixture_key(&self, case: &CaseContext) -> anyhow::Result<Option<serde_json::Value>> {
        let _ = case;
        Ok(None)
    }
    /// Writes the shared input for `key` into `data_dir` and returns its figures. Runs in a process of its own
    /// (`memproof-case fixture`), before any case that uses it.
    fn make_fixture(
        &self,
        key: &serde_json::Value,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<serde_json::Value> {
        let _ = (key, data_dir);
        bail!("scenario {} has no fixture", self.name())
    }
}

/// Every registered scenario.
pub fn registry() -> Vec<&'static dyn Scenario> {
    vec![
        &calibration::Calibration,
        &hook_storm::HookStorm,
        &large_session::LargeSession,
        &startup::Startup,
        &syslog_rate::SyslogRate,
    ]
}

/// Finds a scenario by name; the error lists the known ones.
pub fn find(name: &str) -> anyhow::Result<&'static dyn Scenario> {
    let all = registry();
    let found = all.iter().find(|scenario| scenario.name() == name).copied();
    found.with_context(|| {
        let known: Vec<&str> = all.iter().map(|scenario| scenario.name()).collect();
        format!(
            "unknown scenario {name:?}: expected one of {}",
            known.join(", ")
        )
    })
}

/// A driver process producing load for a case.
pub struct Driver {
    child: std::process::Child,
    scenario: &'static str,
}

/// Starts the scenario's driver as a process of its own (this same binary, `driver` subcommand), so its memory is
/// not the case's. `args` is whatever the driver needs (addresses, rates, counts).
pub fn spawn_driver(
    scenario: &'static dyn Scenario,
    args: &serde_json::Value,
) -> anyhow::Result<Driver> {
    let exe = std::env::current_exe().context("cannot find the case binary to start the driver")?;
    let child = Command::new(exe)
        .args([
            "driver",
            "--scenario",
            scenario.name(),
            "--args",
            &args.to_string(),
        ])
        .env_remove(meter::probe::PROBE_FD_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start the {} driver", scenario.name()))?;
    Ok(Driver {
        child,
        scenario: scenario.name(),
    })
}

impl Driver {
    /// Waits for the driver to finish and returns the figures it printed; its stderr is in the error if it failed.
    pub fn wait(self) -> anyhow::Result<serde_json::Value> {
        let output = self.child.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "the {} driver failed ({})\n{}",
                self.scenario,
                output.status,
                show_stderr(&output.stderr)
            );
        }
        serde_json::from_slice(&output.stdout)
            .with_context(|| format!("the {} driver printed no figures", self.scenario))
    }

    /// The driver's process id, e.g. to signal it.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

/// A child's stderr between two divider lines, or `<stderr is empty>`: the runner's [`runner::show_tail`].
pub fn show_stderr(stderr: &[u8]) -> String {
    runner::output_capture::show_tail(&String::from_utf8_lossy(stderr))
}

/// The flags that say which case runs on what, each with a value: `memproof-case case` and `memproof-case fixture`
/// both take them, since a fixture is made for the case that will read it.
const CASE_IDENTITY_FLAGS: [&str; 6] = [
    "--scenario",
    "--role",
    "--technique",
    "--size-name",
    "--size-value",
    "--params",
];

/// The flags `memproof-case case` takes, each with a value: the case's, its work dir, seed and fixture.
const CASE_FLAGS: [&[&str]; 2] = [&CASE_IDENTITY_FLAGS, &["--work-dir", "--seed", "--fixture"]];

/// The flags `memproof-case fixture` takes, each with a value: the case's, and the cache instead of a work dir.
const FIXTURE_FLAGS: [&[&str]; 2] = [&CASE_IDENTITY_FLAGS, &["--seed", "--cache"]];

/// The flags `memproof-case driver` takes, each with a value.
const DRIVER_FLAGS: [&[&str]; 1] = [&["--scenario", "--args"]];

/// Checks that `args` (the subcommand, then flag and value pairs) holds only flags of `known`, each once: a
/// misspelt flag would otherwise be ignored and its default used without a word.
fn check_flags(args: &[String], known: &[&[&str]]) -> anyhow::Result<()> {
    let mut seen: Vec<&str> = Vec::new();
    for name in args.iter().skip(1).step_by(2) {
        if !known.iter().any(|flags| flags.contains(&name.as_str())) {
            bail!(
                "unknown flag {name:?}: expected {}",
                known.concat().join(", ")
            );
        }
        if seen.contains(&name.as_str()) {
            bail!("{name} is given twice: expected it once");
        }
        seen.push(name);
    }
    Ok(())
}

fn flag<'a>(args: &'a [String], name: &str) -> anyhow::Result<&'a str> {
    let at = args
        .iter()
        .position(|arg| arg == name)
        .with_context(|| format!("missing {name}"))?;
    args.get(at + 1)
        .map(String::as_str)
        .with_context(|| format!("{name} needs a value"))
}

fn parse_case(args: &[String], known: &[&[&str]]) -> anyhow::Result<CaseContext> {
    check_flags(args, known)?;
    let params: serde_json::Value =
        serde_json::from_str(flag(args, "--params")?).context("--params is not JSON")?;
    Ok(CaseContext {
        scenario: flag(args, "--scenario")?.to_string(),
        role: flag(args, "--role")?.to_string(),
        technique: flag(args, "--technique")?.to_string(),
        size_name: flag(args, "--size-name")?.to_string(),
        size_value: flag(args, "--size-value")?
            .parse()
            .context("--size-value is not a number")?,
        params: params
            .as_object()
            .cloned()
            .context("--params is not a JSON object")?,
        work_dir: PathBuf::from(flag(args, "--work-dir").or_else(|_| flag(args, "--cache"))?),
        seed: flag(args, "--seed")
            .ok()
            .map(str::parse)
            .transpose()
            .context("--seed")?
            .unwrap_or(1),
        fixture_dir: flag(args, "--fixture").ok().map(PathBuf::from),
    })
}

/// `memproof-case fixture CASE-FLAGS --cache DIR`: makes sure the case's shared input is in the cache, checked, and
/// says where.
fn run_fixture(args: &[String]) -> anyhow::Result<planning::fixtures::Answer> {
    let case = parse_case(args, &FIXTURE_FLAGS)?;
    let scenario = find(&case.scenario)?;
    let cache = PathBuf::from(flag(args, "--cache")?);
    let Some(mut key) = scenario.fixture_key(&case)? else {
        return Ok(planning::fixtures::Answer {
            data_dir: None,
            status: "none".into(),
        });
    };
    // The generator is this binary: a cache entry made by another build (a changed generator, a mutated tree) is
    // another entry, never reused.
    let scenario_key = key.clone();
    let exe = std::env::current_exe().context("cannot find the case binary")?;
    let generator = planning::fixtures::file_sha256(&exe)?;
    if let Some(fields) = key.as_object_mut() {
        fields.insert("generator_sha256".into(), generator.into());
    } else {
        key = serde_json::json!({"key": key, "generator_sha256": generator});
    }
    let (fixture, status) = planning::fixtures::ensure(&cache, scenario.name(), &key, |dir| {
        scenario.make_fixture(&scenario_key, dir)
    })?;
    Ok(planning::fixtures::Answer {
        data_dir: Some(fixture.data_dir),
        status: status.to_string(),
    })
}

fn run_case(args: &[String]) -> anyhow::Result<()> {
    let case = parse_case(args, &CASE_FLAGS)?;
    let scenario = find(&case.scenario)?;
    if !scenario.techniques().contains(&case.technique.as_str()) {
        bail!(
            "scenario {}: unknown technique {:?}: expected one of {}",
            case.scenario,
            case.technique,
            scenario.techniques().join(", ")
        );
    }
    scenario.run_case(&case)
}

/// The `main` of both case binaries.
///
/// `memproof-case case --scenario S --role R --technique T --size-name N --size-value V --params JSON --work-dir D`
/// runs one case; `memproof-case driver --scenario S --args JSON` runs a scenario's driver and prints its figures.
pub fn case_main(meter: HeapMeter) -> ExitCode {
    if let Err(error) = malloc_policy::pin_mmap_threshold() {
        eprintln!("memproof-case: {error:#}");
        return ExitCode::from(1);
    }
    // The probe starts before anything else allocates, so both meters cover the same allocations.
    let probe = Probe::start(meter);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("driver") => {
            drop(probe);
            let result = check_flags(&args, &DRIVER_FLAGS)
                .and_then(|()| flag(&args, "--scenario"))
                .and_then(find)
                .and_then(|scenario| {
                    let driver_args: serde_json::Value =
                        serde_json::from_str(flag(&args, "--args")?)
                            .context("--args is not JSON")?;
                    scenario.run_driver(&driver_args)
                });
            match result {
                Ok(figures) => {
                    println!("{figures}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("memproof-case driver: {error:#}");
                    ExitCode::from(1)
                }
            }
        }
        Some("fixture") => {
            drop(probe);
            match run_fixture(&args).and_then(|answer| Ok(serde_json::to_string(&answer)?)) {
                Ok(answer) => {
                    println!("{answer}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("memproof-case fixture: {error:#}");
                    ExitCode::from(1)
                }
            }
        }
        Some("case") => {
            let outcome = std::panic::catch_unwind(|| run_case(&args));
            let (error, code) = match outcome {
                Ok(Ok(())) => (None, ExitCode::SUCCESS),
                Ok(Err(error)) => (Some(format!("{error:#}")), ExitCode::from(1)),
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "a panic with no message".to_string());
                    (Some(format!("panicked: {message}")), ExitCode::from(101))
                }
            };
            if let Some(error) = &error {
                eprintln!("memproof-case: {error}");
            }
            probe.finish(error);
            code
        }
        _ => {
            eprintln!(
                "memproof-case: usage: memproof-case case --scenario S --role R --technique T --size-name N --size-value V --params JSON --work-dir DIR [--fixture DIR] | memproof-case fixture (the case's flags) --cache DIR | memproof-case driver --scenario S --args JSON"
            );
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split(' ').map(String::from).collect()
    }

    const CASE: &str = "case --scenario calibration --role known --technique touch_known_steps --size-name bytes \
                        --size-value 16 --params {\"steps\":4} --seed 7 --work-dir /tmp/w";

    #[test]
    fn a_case_with_every_flag_it_knows_parses() {
        let case = parse_case(&args(CASE), &CASE_FLAGS).unwrap();
        assert_eq!(case.technique, "touch_known_steps");
        assert_eq!(case.seed, 7);
    }

    #[test]
    fn an_unknown_or_repeated_flag_is_an_error_naming_it() {
        let error = parse_case(&args(&format!("{CASE} --sede 8")), &CASE_FLAGS).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown flag \"--sede\": expected --scenario, --role, --technique, --size-name, --size-value, --params, \
             --work-dir, --seed, --fixture"
        );
        let error = parse_case(&args(&format!("{CASE} --seed 8")), &CASE_FLAGS).unwrap_err();
        assert_eq!(error.to_string(), "--seed is given twice: expected it once");
        let error = check_flags(&args("driver --scenario x --arg {}"), &DRIVER_FLAGS).unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown flag \"--arg\": expected --scenario, --args"
        );
    }
}
