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

/// Reading a profile's `params` as a scenario's own typed struct, and the units its fields are written in.
///
/// Each scenario declares its parameters as a `#[serde(deny_unknown_fields)]` struct, read once per case instead of
/// key by key, so a key no scenario reads (`min_trim_duraton`) is refused with the keys it expected, by the case and
/// before any case runs ([`Scenario::check_params`]). The helpers here read values as the spec writes them: a size as
/// a whole number or a string with units (`"16KiB"`), a duration as a string (`"60ms"`), with the parsers the spec's
/// own limits and timeouts use ([`schema::units`]).
pub mod params {
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;
    use std::time::Duration;

    /// `params` as `T`; the error is serde's message alone (unknown field `x`, expected one of …), so each caller
    /// says where the table stands. Borrows the table instead of copying it, so a case's figures see no more
    /// allocation than reading each key by name made.
    pub fn read<'a, T: serde::Deserialize<'a>>(
        params: &'a serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<T> {
        T::deserialize(params).map_err(|error| anyhow::anyhow!("{error}"))
    }

    /// A size: a whole number (bytes), or a string with units as `schema::units::parse_size` reads them (`"300KiB"`).
    pub fn size<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<u64>,
    {
        let bytes = deserializer.deserialize_any(SizeVisitor)?;
        T::try_from(bytes).map_err(|_| de::Error::custom(format!("size {bytes} is too large")))
    }

    /// Reads a size's whole number or text.
    struct SizeVisitor;

    impl Visitor<'_> for SizeVisitor {
        type Value = u64;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a whole number, or a size like \"300KiB\"")
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<u64, E> {
            Ok(value)
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<u64, E> {
            u64::try_from(value).map_err(|_| E::invalid_value(de::Unexpected::Signed(value), &self))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<u64, E> {
            schema::units::parse_size(text).map_err(E::custom)
        }
    }

    /// A duration, written like `"3s"` or `"250ms"` (`schema::units::parse_duration`).
    pub fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_str(DurationVisitor)
    }

    /// An optional [`duration`]: with `#[serde(default)]`, `None` when the key is absent.
    pub fn optional_duration<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        duration(deserializer).map(Some)
    }

    /// Reads a duration's text.
    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a duration like \"3s\"")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            schema::units::parse_duration(text).map_err(E::custom)
        }
    }

    /// A parameter a technique needs that its scenario's struct holds as optional (the calibration's techniques
    /// each read some of one table); the error names it.
    pub fn required<T>(value: Option<T>, scenario: &str, name: &str) -> anyhow::Result<T> {
        value.ok_or_else(|| anyhow::anyhow!("scenario {scenario}: params: missing field `{name}`"))
    }
}

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
    /// The profile's `params` read once as the scenario's own struct `T` (which refuses unknown keys), so that a
    /// misspelt key is an error naming it instead of a default used without a word; the error names the scenario.
    pub fn read_params<'a, T: serde::Deserialize<'a>>(&'a self) -> anyhow::Result<T> {
        params::read(&self.params).with_context(|| format!("scenario {}: params", self.scenario))
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
    /// Reads a profile's `params` as this scenario's own struct, as its cases will ([`params::read`]), so that the
    /// load test refuses a misspelt or unknown key before the first case (`memproof-case check-params`) rather than
    /// a run ignoring it. The error is serde's message: the unknown key and the ones expected.
    fn check_params(
        &self,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<()>;
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

/// The flags `memproof-case check-params` takes, each with a value.
const CHECK_PARAMS_FLAGS: [&[&str]; 1] = [&["--scenario", "--params"]];

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

/// `memproof-case check-params --scenario S --params JSON`: reads a profile's params as the scenario's struct, so
/// the load test (which never links the scenarios) can refuse an unknown key before its first case.
fn run_check_params(args: &[String]) -> anyhow::Result<()> {
    check_flags(args, &CHECK_PARAMS_FLAGS)?;
    let scenario = find(flag(args, "--scenario")?)?;
    let params: serde_json::Value =
        serde_json::from_str(flag(args, "--params")?).context("--params is not JSON")?;
    let params = params
        .as_object()
        .context("--params is not a JSON object")?;
    scenario.check_params(params)
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
/// runs one case; `memproof-case driver --scenario S --args JSON` runs a scenario's driver and prints its figures;
/// `memproof-case check-params --scenario S --params JSON` exits 0 when the scenario reads the params, else 1 with
/// the reason alone on stderr (the load test quotes it after the spec's `file:line:col`).
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
        Some("check-params") => {
            drop(probe);
            match run_check_params(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("{error:#}");
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
                "memproof-case: usage: memproof-case case --scenario S --role R --technique T --size-name N --size-value V --params JSON --work-dir DIR [--fixture DIR] | memproof-case fixture (the case's flags) --cache DIR | memproof-case driver --scenario S --args JSON | memproof-case check-params --scenario S --params JSON"
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

    /// The repository's own specs (`scenarios/*.toml`), each with its scenario.
    fn own_specs() -> Vec<(schema::spec::Spec, &'static dyn Scenario)> {
        let specs = schema::spec::read_dir(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        specs
            .into_iter()
            .map(|spec| {
                let scenario = find(&spec.scenario).unwrap();
                (spec, scenario)
            })
            .collect()
    }

    fn map(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn every_profile_of_the_repositorys_specs_has_params_its_scenario_reads() {
        let specs = own_specs();
        let mut covered: Vec<&str> = specs.iter().map(|(_, scenario)| scenario.name()).collect();
        covered.sort_unstable();
        let mut registered: Vec<&str> = registry().iter().map(|s| s.name()).collect();
        registered.sort_unstable();
        assert_eq!(covered, registered, "a scenario without a spec");
        for (spec, scenario) in &specs {
            assert!(!spec.profiles.is_empty(), "{}", spec.path.display());
            for name in spec.profiles.keys() {
                for case in cases_params(spec, name) {
                    scenario.check_params(&case.1).unwrap_or_else(|error| {
                        panic!("{}: {}: {error}", spec.path.display(), case.0)
                    });
                }
            }
        }
    }

    /// Every case of `spec`'s profile `name`, its counterfactuals' included, by id, with the params it gets.
    fn cases_params(
        spec: &schema::spec::Spec,
        name: &str,
    ) -> Vec<(String, serde_json::Map<String, serde_json::Value>)> {
        let specs = std::slice::from_ref(spec);
        let mut planned = planning::suite::plan(specs, name).unwrap();
        planned.extend(planning::suite::plan_counterfactuals(specs, name).unwrap());
        planned
            .into_iter()
            .map(|case| (case.id, case.params))
            .collect()
    }

    #[test]
    fn a_misspelt_key_is_refused_naming_it_and_the_keys_expected() {
        for (spec, scenario) in own_specs() {
            for name in spec.profiles.keys() {
                for (id, written) in cases_params(&spec, name) {
                    for key in written.keys() {
                        let mut params = written.clone();
                        let value = params.remove(key).unwrap();
                        let misspelt = format!("{key}x");
                        params.insert(misspelt.clone(), value);
                        let error = scenario.check_params(&params).unwrap_err().to_string();
                        assert!(
                            error.starts_with(&format!(
                                "unknown field `{misspelt}`, expected one of "
                            )),
                            "{id}: {error}"
                        );
                        assert!(error.contains(&format!("`{key}`")), "{error}");
                    }
                }
            }
        }
    }

    #[test]
    fn sizes_read_as_numbers_or_with_units_and_durations_as_text() {
        let syslog: syslog_rate::SyslogRateParams = params::read(&map(serde_json::json!({
            "record_bytes": "32KiB", "workflows": 2, "messages": 150, "rate_per_second": 500,
            "invalid_every": 30, "odd_records_every": 25, "min_trim_duration": "60ms"
        })))
        .unwrap();
        assert_eq!(syslog.record_bytes, 32 * 1024);
        assert_eq!(syslog.rate_per_second, 500.0);
        assert_eq!(
            syslog.min_trim_duration,
            std::time::Duration::from_millis(60)
        );
        // Optional: absent is no minimum, as before the struct.
        let syslog: syslog_rate::SyslogRateParams = params::read(&map(serde_json::json!({
            "record_bytes": 32768, "workflows": 2, "messages": 150, "rate_per_second": 500.5,
            "invalid_every": 30, "odd_records_every": 25
        })))
        .unwrap();
        assert_eq!(syslog.record_bytes, 32768);
        assert_eq!(syslog.min_trim_duration, std::time::Duration::ZERO);

        let calibration: calibration::CalibrationParams = params::read(&map(
            serde_json::json!({ "steps": 4, "hold": "50ms", "threads": 4 }),
        ))
        .unwrap();
        assert_eq!(calibration.steps, Some(4));
        assert_eq!(calibration.hold, Some(std::time::Duration::from_millis(50)));
        assert_eq!(calibration.leak, 0);
        let calibration: calibration::CalibrationParams =
            params::read(&map(serde_json::json!({ "threads": 2, "leak": "16KiB" }))).unwrap();
        assert_eq!((calibration.steps, calibration.hold), (None, None));
        assert_eq!(calibration.leak, 16 * 1024);

        let startup: startup::StartupParams = params::read(&map(serde_json::json!({
            "workflows": 36, "module_bytes": "192KiB", "size_spread": 0.25, "data_fraction": 0.25,
            "trigger_wait": "40ms", "corrupt_workflows": 3
        })))
        .unwrap();
        assert_eq!(startup.module_bytes, 192 * 1024);
        assert_eq!(startup.trigger_wait, std::time::Duration::from_millis(40));

        let large: large_session::LargeSessionParams = params::read(&map(serde_json::json!({
            "clients": 3, "requests_per_client": 2, "large_event_every": 400,
            "large_event_bytes": 300000, "overlong_event_bytes": "1MiB", "overlong_at_fraction": 0.9
        })))
        .unwrap();
        assert_eq!(large.overlong_event_bytes, 1 << 20);
        assert_eq!(large.overlong_at_fraction, 0.9);

        let hook: hook_storm::HookStormParams = params::read(&map(serde_json::json!({
            "storm_events": 60, "storm_sessions": 40, "new_sessions": 15, "ended_sessions": 8,
            "connections": 8, "events_per_second": 150, "debounce": "100ms",
            "max_events_per_session": 1000, "max_event_bytes": "256KiB",
            "compact_min_journal_bytes": "128KiB", "min_body_bytes": 200, "max_body_bytes": 10000,
            "long_session_events": 1500, "ending": "sigkill_restart"
        })))
        .unwrap();
        assert_eq!(hook.ending, hook_storm::Ending::SigkillRestart);
        assert_eq!(hook.debounce, std::time::Duration::from_millis(100));
        assert_eq!(hook.max_event_bytes, 256 * 1024);
        assert_eq!(hook.compact_min_journal_bytes, 128 * 1024);
    }

    #[test]
    fn a_mistyped_or_missing_param_is_an_error_naming_it() {
        let read = |value: serde_json::Value| {
            params::read::<startup::StartupParams>(&map(value))
                .unwrap_err()
                .to_string()
        };
        let good = serde_json::json!({
            "workflows": 36, "module_bytes": "192KiB", "size_spread": 0.25, "data_fraction": 0.25,
            "trigger_wait": "40ms", "corrupt_workflows": 3
        });
        let with = |key: &str, value: serde_json::Value| {
            let mut params = good.clone();
            params[key] = value;
            params
        };
        assert!(
            read(with("module_bytes", serde_json::json!(-1))).contains("expected a whole number"),
            "{}",
            read(with("module_bytes", serde_json::json!(-1)))
        );
        assert!(read(with("module_bytes", serde_json::json!("12 parsecs"))).contains("12 parsecs"));
        assert!(
            read(with("trigger_wait", serde_json::json!(40))).contains("a duration like \"3s\"")
        );
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("workflows");
        assert_eq!(read(missing), "missing field `workflows`");
        // A technique's own parameter the calibration's table holds as optional.
        let case = CaseContext {
            scenario: "calibration".into(),
            role: "known".into(),
            technique: "touch_known_steps".into(),
            size_name: "bytes".into(),
            size_value: 4096.0,
            params: map(serde_json::json!({ "steps": 1 })),
            work_dir: PathBuf::from("/nonexistent"),
            seed: 1,
            fixture_dir: None,
        };
        assert_eq!(
            calibration::Calibration
                .run_case(&case)
                .unwrap_err()
                .to_string(),
            "scenario calibration: params: missing field `hold`"
        );
        let case = CaseContext {
            params: map(serde_json::json!({ "steps": 1, "hodl": "1ms" })),
            ..case
        };
        assert_eq!(
            format!(
                "{:#}",
                calibration::Calibration.run_case(&case).unwrap_err()
            ),
            "scenario calibration: params: unknown field `hodl`, expected one of `steps`, `hold`, `threads`, `leak`"
        );
    }

    #[test]
    fn check_params_answers_for_the_scenario_it_names() {
        let check = |text: &str| run_check_params(&args(text));
        check("check-params --scenario calibration --params {\"steps\":4,\"hold\":\"5ms\"}")
            .unwrap();
        let error =
            check("check-params --scenario syslog-rate --params {\"min_trim_duraton\":\"60ms\"}")
                .unwrap_err()
                .to_string();
        assert!(
            error.starts_with("unknown field `min_trim_duraton`, expected one of `record_bytes`, "),
            "{error}"
        );
        let error = check("check-params --scenario nope --params {}")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("unknown scenario \"nope\""), "{error}");
        let error = check("check-params --scenario calibration --params []")
            .unwrap_err()
            .to_string();
        assert_eq!(error, "--params is not a JSON object");
    }

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
