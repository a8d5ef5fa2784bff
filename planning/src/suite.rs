//! A load test: the cases the specs ask for in one profile, each run in processes of its own, in order.
//!
//! Each case gets a **timeline run** (`memproof-case`: counting allocator, RSS untouched; every reported RSS, heap
//! and time figure comes from it) and, at the largest size of its sweep when the profile asks for it, a **profile
//! run** (`memproof-dhat`: dhat's exact heap figures and a profile file DHAT's viewer opens). The two are separate
//! processes because dhat changes what it measures: it has no zeroed-allocation path and serialises every
//! allocation, so its RSS and time are not the program's (docs/measured.md).
//!
//! **Architecture Invariant:** a case never shares a process with another case, or with its own profile run.

use crate::external;
use anyhow::Context as _;
use runner::{self, Launch, Progress};
use schema::file_stem::file_stem;
use schema::results::{
    Case, CaseIdentity, DhatRun, Outcome, OutputFiles, Size, counterfactual_role,
};
use schema::spec::{At, Counterfactual, Profile, Spec};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The directory of a run's output holding one directory per case: its stdout and stderr files.
pub const CASES_DIR: &str = "cases";

/// The binaries a load test runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub launcher: PathBuf,
    /// `memproof-case`: the timeline run.
    pub case: PathBuf,
    /// `memproof-dhat`: the profile run.
    pub dhat: PathBuf,
}

impl Binaries {
    /// The binaries in a cargo target profile directory (`target/release`).
    pub fn in_dir(dir: &Path) -> Binaries {
        Binaries {
            launcher: dir.join("memproof-launch"),
            case: dir.join("memproof-case"),
            dhat: dir.join("memproof-dhat"),
        }
    }
}

/// How a load test runs its cases.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    pub profile: String,
    /// Where results, profiles and the cases' scratch directories go.
    pub out_dir: PathBuf,
    /// The RSS poll and watchdog interval.
    pub interval: Duration,
    /// The child's heap sampling interval, in milliseconds.
    pub sample_ms: u64,
    /// Seed handed to every case.
    pub seed: u64,
}

/// One case to run.
#[derive(Debug, Clone)]
pub struct PlannedCase {
    pub id: String,
    pub scenario: String,
    pub role: String,
    pub technique: String,
    pub size: Size,
    pub limit_bytes: Option<u64>,
    pub timeout: Duration,
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Whether this case also gets a dhat run.
    pub dhat_run: bool,
    /// For a case `load-test --prove` adds, the technique standing in for a fix ([`Case::counterfactual`]).
    pub counterfactual: Option<String>,
}

impl PlannedCase {
    /// What its [`Case`] record says of who it is.
    pub fn identity(&self) -> CaseIdentity {
        CaseIdentity {
            id: self.id.clone(),
            scenario: self.scenario.clone(),
            role: self.role.clone(),
            technique: Some(self.technique.clone()),
            counterfactual: self.counterfactual.clone(),
            size: self.size.clone(),
            limit_bytes: self.limit_bytes,
        }
    }
}

/// The cases of `specs` in `profile`: per scenario, per size (smallest first), per role in spec order. A scenario
/// without that profile is an error naming it.
pub fn plan(specs: &[Spec], profile_name: &str) -> anyhow::Result<Vec<PlannedCase>> {
    let mut planned = Vec::new();
    for spec in specs {
        let profile: &Profile = spec.profiles.get(profile_name).with_context(|| {
            let known: Vec<&str> = spec.profiles.keys().map(String::as_str).collect();
            format!(
                "{}: scenario {} has no profile {profile_name:?} (it has: {})",
                spec.path.display(),
                spec.scenario,
                known.join(", ")
            )
        })?;
        let mut sizes = profile.size.values.clone();
        sizes.sort_by(f64::total_cmp);
        let largest = sizes.last().copied();
        for &value in &sizes {
            for variant in spec.roles_in(profile) {
                let size = Size {
                    name: profile.size.name.clone(),
                    value,
                    unit: profile.size.unit.clone(),
                };
                planned.push(PlannedCase {
                    id: Case::make_id(&spec.scenario, &variant.role, &size),
                    scenario: spec.scenario.clone(),
                    role: variant.role.clone(),
                    technique: variant.technique.clone(),
                    size,
                    limit_bytes: profile.limit_bytes,
                    timeout: profile.timeout,
                    params: Spec::params_of(profile, &variant.params),
                    dhat_run: profile.dhat_runs && Some(value) == largest,
                    counterfactual: None,
                });
            }
        }
    }
    Ok(planned)
}

/// The cases `load-test --prove` adds to [`plan`]'s: for each verdict of `profile_name` whose counterfactual is a
/// technique no role of its spec plays, that technique at the sizes the verdict is judged at (every size for a
/// growth verdict or `at = "all"`), each size once per technique, smallest first. A technique some role plays is
/// judged on that role's cases and adds none.
pub fn plan_counterfactuals(
    specs: &[Spec],
    profile_name: &str,
) -> anyhow::Result<Vec<PlannedCase>> {
    let mut planned: Vec<PlannedCase> = Vec::new();
    for spec in specs {
        let Some(profile) = spec.profiles.get(profile_name) else {
            continue;
        };
        let mut sizes = profile.size.values.clone();
        sizes.sort_by(f64::total_cmp);
        type Params = serde_json::Map<String, serde_json::Value>;
        let mut wanted: Vec<(String, Params, f64)> = Vec::new();
        for verdict in spec.verdicts_for(profile_name) {
            let Some(Counterfactual::Technique {
                technique, params, ..
            }) = &verdict.counterfactual
            else {
                continue;
            };
            if spec.role_playing(technique, params).is_some() {
                continue;
            }
            let at_sizes: Vec<f64> = match verdict.at {
                _ if verdict.kind == schema::results::VerdictKind::Growth => sizes.clone(),
                At::All => sizes.clone(),
                At::Largest => sizes.last().copied().into_iter().collect(),
                At::Smallest => sizes.first().copied().into_iter().collect(),
                At::Value(value) => vec![value],
            };
            for value in at_sizes {
                let entry = (technique.clone(), params.clone(), value);
                if !wanted.contains(&entry) {
                    wanted.push(entry);
                }
            }
        }
        wanted.sort_by(|a, b| a.2.total_cmp(&b.2));
        for (technique, params, value) in wanted {
            let size = Size {
                name: profile.size.name.clone(),
                value,
                unit: profile.size.unit.clone(),
            };
            let role = counterfactual_role(&technique, &params);
            planned.push(PlannedCase {
                id: Case::make_id(&spec.scenario, &role, &size),
                scenario: spec.scenario.clone(),
                role,
                counterfactual: Some(technique.clone()),
                technique,
                size,
                limit_bytes: profile.limit_bytes,
                timeout: profile.timeout,
                params: Spec::params_of(profile, &params),
                dhat_run: false,
            });
        }
    }
    Ok(planned)
}

/// What a load test tells its caller as it goes.
pub enum SuiteEvent<'a> {
    Started {
        case: &'a PlannedCase,
        run: &'static str,
    },
    Running {
        case: &'a PlannedCase,
        progress: Progress,
    },
    /// The case's shared fixture is ready: `status` says whether it was cached, generated, or regenerated and why.
    Fixture {
        case: &'a PlannedCase,
        status: String,
    },
    Finished {
        case: &'a Case,
    },
}

/// The arguments of `memproof-case case` (and `memproof-dhat case`) for a planned case, without `--work-dir`:
/// each run of a case gets a scratch directory of its own.
pub fn case_arguments(case: &PlannedCase, seed: u64) -> Vec<OsString> {
    let pairs = [
        ("--scenario", case.scenario.clone()),
        ("--role", case.role.clone()),
        ("--technique", case.technique.clone()),
        ("--size-name", case.size.name.clone()),
        ("--size-value", case.size.value.to_string()),
        (
            "--params",
            serde_json::Value::Object(case.params.clone()).to_string(),
        ),
        ("--seed", seed.to_string()),
    ];
    let mut args: Vec<OsString> = vec!["case".into()];
    for (key, value) in pairs {
        args.push(key.into());
        args.push(value.into());
    }
    args
}

fn case_args(
    case: &PlannedCase,
    work_dir: &Path,
    fixture: Option<&Path>,
    seed: u64,
) -> Vec<OsString> {
    let mut args = case_arguments(case, seed);
    args.push("--work-dir".into());
    args.push(work_dir.into());
    if let Some(fixture) = fixture {
        args.push("--fixture".into());
        args.push(fixture.into());
    }
    args
}

/// Makes sure the case's shared fixture is in the cache under the output directory, checked, by running
/// `memproof-case fixture` (a process of its own, before the case, so generating is in no case's figures). Returns
/// its data directory and how the cache answered; `None` when the scenario shares no input.
pub fn prepare_fixture(
    case: &PlannedCase,
    binaries: &Binaries,
    options: &SuiteOptions,
) -> anyhow::Result<Option<(PathBuf, String)>> {
    let cache = options.out_dir.join(crate::fixtures::CACHE_DIR);
    let output = std::process::Command::new(&binaries.case)
        .arg("fixture")
        .args(&case_arguments(case, options.seed)[1..])
        .arg("--cache")
        .arg(&cache)
        .env_remove(meter::probe::PROBE_FD_ENV)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("{}: cannot start", binaries.case.display()))?;
    if !output.status.success() {
        anyhow::bail!(
            "{}: its fixture could not be made ({})\n{}",
            case.id,
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    let answer: crate::fixtures::Answer = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("{}: the fixture command printed no answer", case.id))?;
    Ok(answer.data_dir.map(|dir| (dir, answer.status)))
}

/// The directory under the output directory that every run's work directory is made in, created if need be.
pub(crate) fn work_root(options: &SuiteOptions) -> anyhow::Result<PathBuf> {
    let work_root = options.out_dir.join("work");
    std::fs::create_dir_all(&work_root)
        .with_context(|| format!("{}: cannot create", work_root.display()))?;
    Ok(work_root)
}

/// A fresh work directory for one run of `case` in `work_root`, named for the case and removed when dropped: the
/// timeline run, the profile run and an external case's run each get their own.
pub(crate) fn case_work_dir(
    case: &PlannedCase,
    work_root: &Path,
) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&file_stem(&case.id))
        .tempdir_in(work_root)
        .with_context(|| format!("{}: cannot create a directory in it", work_root.display()))
}

/// The directory of `case`'s output files (its runs' stdout, stderr and timeline), created if need be: its path
/// relative to the output directory (as results.json names the files) and its whole path.
pub(crate) fn case_dir(
    case: &PlannedCase,
    options: &SuiteOptions,
) -> anyhow::Result<(String, PathBuf)> {
    let relative = format!("{CASES_DIR}/{}", file_stem(&case.id));
    let case_dir = options.out_dir.join(&relative);
    std::fs::create_dir_all(&case_dir)
        .with_context(|| format!("{}: cannot create", case_dir.display()))?;
    Ok((relative, case_dir))
}

/// Runs one case: its timeline run and, if planned, its profile run.
pub fn run_case(
    case: &PlannedCase,
    binaries: &Binaries,
    options: &SuiteOptions,
    on_event: &mut dyn FnMut(SuiteEvent<'_>),
) -> anyhow::Result<Case> {
    let work_root = work_root(options)?;
    let sample_env = (
        OsString::from(meter::probe::SAMPLE_MS_ENV),
        OsString::from(options.sample_ms.to_string()),
    );

    let fixture = prepare_fixture(case, binaries, options)?;
    if let Some((_, status)) = &fixture {
        on_event(SuiteEvent::Fixture {
            case,
            status: status.clone(),
        });
    }
    let fixture_dir = fixture.as_ref().map(|(dir, _)| dir.as_path());
    on_event(SuiteEvent::Started {
        case,
        run: "timeline",
    });
    let work_dir = case_work_dir(case, &work_root)?;
    let (relative_case_dir, case_dir) = case_dir(case, options)?;
    let launch = Launch {
        launcher: binaries.launcher.clone(),
        program: binaries.case.clone(),
        args: case_args(case, work_dir.path(), fixture_dir, options.seed),
        env: vec![sample_env],
        current_dir: Some(work_dir.path().to_path_buf()),
        limit_bytes: case.limit_bytes,
        timeout: case.timeout,
        interval: options.interval,
        probe: runner::ProbeAccess::MemproofCase,
        output_stem: Some(case_dir.join("timeline")),
    };
    let measured = runner::run(&launch, |progress| {
        on_event(SuiteEvent::Running { case, progress })
    })?;
    drop(work_dir);

    // An interrupt stops the case here: no profile run after it.
    let (profile, dhat_file) = if case.dhat_run && measured.outcome != Outcome::Interrupted {
        run_profile(case, binaries, options, fixture_dir, "spec", on_event)?
    } else {
        (None, None)
    };

    let output = output_files(
        &relative_case_dir,
        &measured.stdout_file,
        &measured.stderr_file,
    );
    let _ = std::fs::remove_dir(&case_dir);
    let heap = measured
        .final_figures
        .as_ref()
        .map(external::ReportedHeap::from);
    let mut result = crate::external::recorded_case(case.identity(), measured, heap, output);
    // An interrupted profile run interrupts the case: the run stops after it.
    if profile
        .as_ref()
        .is_some_and(|profile| profile.outcome == Outcome::Interrupted)
    {
        result.outcome = Outcome::Interrupted;
    }
    result.dhat_file = dhat_file;
    result.dhat_run = profile;
    on_event(SuiteEvent::Finished { case: &result });
    Ok(result)
}

/// The case's output files, relative to the run directory, for `Case::output`.
pub(crate) fn output_files(
    relative_case_dir: &str,
    stdout: &Option<PathBuf>,
    stderr: &Option<PathBuf>,
) -> Option<OutputFiles> {
    let relative = |path: &Option<PathBuf>| {
        path.as_ref().and_then(|path| {
            let name = path.file_name()?.to_string_lossy().into_owned();
            Some(format!("{relative_case_dir}/{name}"))
        })
    };
    (stdout.is_some() || stderr.is_some()).then(|| OutputFiles {
        stdout: relative(stdout),
        stderr: relative(stderr),
    })
}

/// The dhat profile run of a case (`memproof-dhat`, a process of its own): its figures and the profile file,
/// relative to the run directory (`None` when the run left none). `reason` says why it was profiled
/// ([`DhatRun::reason`]).
pub fn run_profile(
    case: &PlannedCase,
    binaries: &Binaries,
    options: &SuiteOptions,
    fixture_dir: Option<&Path>,
    reason: &str,
    on_event: &mut dyn FnMut(SuiteEvent<'_>),
) -> anyhow::Result<(Option<DhatRun>, Option<String>)> {
    on_event(SuiteEvent::Started {
        case,
        run: "profile",
    });
    let work_root = options.out_dir.join("work");
    let profiles = options.out_dir.join("profiles");
    std::fs::create_dir_all(&profiles)
        .with_context(|| format!("{}: cannot create", profiles.display()))?;
    let (_, case_dir) = case_dir(case, options)?;
    let relative = format!("profiles/{}.dhat.json", file_stem(&case.id));
    let file = options.out_dir.join(&relative);
    let _ = std::fs::remove_file(&file);
    let work_dir = case_work_dir(case, &work_root)?;
    let dhat_launch = Launch {
        launcher: binaries.launcher.clone(),
        program: binaries.dhat.clone(),
        args: case_args(case, work_dir.path(), fixture_dir, options.seed),
        env: vec![
            (
                OsString::from(meter::probe::SAMPLE_MS_ENV),
                OsString::from(options.sample_ms.to_string()),
            ),
            (meter::probe::DHAT_FILE_ENV.into(), file.clone().into()),
        ],
        current_dir: Some(work_dir.path().to_path_buf()),
        output_stem: Some(case_dir.join("profile")),
        // dhat's allocator touches zeroed blocks and keeps its own tables: give it room, but not unbounded.
        limit_bytes: case.limit_bytes.map(|limit| limit.saturating_mul(3)),
        // dhat serialises every allocation: 19x slower on one thread (docs/measured.md).
        timeout: case.timeout.saturating_mul(10),
        interval: options.interval,
        probe: runner::ProbeAccess::MemproofCase,
    };
    let run = runner::run(&dhat_launch, |progress| {
        on_event(SuiteEvent::Running { case, progress })
    })?;
    drop(work_dir);
    let _ = std::fs::remove_dir(&case_dir);
    let figures = run.final_figures.as_ref();
    let profile = DhatRun {
        outcome: run.outcome,
        peak_heap_bytes: figures.and_then(|f| f.peak_heap_bytes),
        total_alloc_bytes: figures.and_then(|f| f.total_alloc_bytes),
        alloc_count: figures.and_then(|f| f.alloc_count),
        wall_ms: run.wall_ms,
        reason: Some(reason.to_string()),
    };
    Ok((Some(profile), file.exists().then_some(relative)))
}

/// Profiles a case that already ran (its fixture from the cache, checked again), after its verdicts were judged:
/// the allocation sites a failed verdict needs, without paying dhat's cost on every case.
pub fn profile_after(
    case: &PlannedCase,
    result: &mut Case,
    binaries: &Binaries,
    options: &SuiteOptions,
    reason: &str,
    on_event: &mut dyn FnMut(SuiteEvent<'_>),
) -> anyhow::Result<()> {
    std::fs::create_dir_all(options.out_dir.join("work"))?;
    let fixture = prepare_fixture(case, binaries, options)?;
    let fixture_dir = fixture.as_ref().map(|(dir, _)| dir.as_path());
    let (profile, dhat_file) = run_profile(case, binaries, options, fixture_dir, reason, on_event)?;
    result.dhat_run = profile;
    result.dhat_file = dhat_file;
    Ok(())
}

/// Whether a case's heap figures can be believed: it reported them (ok or failed after its report).
pub fn has_heap_figures(case: &Case) -> bool {
    case.peak_heap_bytes.is_some() && case.outcome != Outcome::TimedOut
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::toy_spec::{toy_spec, verdict};

    /// The toy scenario both tests plan: `a` before, `b` after, at `sizes` of the ci profile, then `rest`.
    fn toy(sizes: &str, rest: &str) -> Spec {
        let text = toy_spec(
            "toy",
            &[("before", "a"), ("after", "b")],
            &format!(
                "[profiles.ci]\nsize = {{ name = \"n\", unit = \"items\", values = [{sizes}] }}\n{rest}"
            ),
        );
        Spec::parse(Path::new("toy.toml"), &text).unwrap()
    }

    #[test]
    fn the_plan_runs_every_role_at_every_size_and_profiles_the_largest() {
        let spec = toy("40, 10", "");
        let planned = plan(std::slice::from_ref(&spec), "ci").unwrap();
        let ids: Vec<&str> = planned.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "toy/before/n=10",
                "toy/after/n=10",
                "toy/before/n=40",
                "toy/after/n=40"
            ]
        );
        let profiled: Vec<bool> = planned.iter().map(|p| p.dhat_run).collect();
        assert_eq!(profiled, [false, false, true, true]);
        let error = plan(&[spec], "full").unwrap_err().to_string();
        assert_eq!(
            error,
            "toy.toml: scenario toy has no profile \"full\" (it has: ci)"
        );
    }

    #[test]
    fn counterfactual_cases_run_at_the_sizes_their_verdicts_are_judged_at_once_each() {
        // Each verdict: id, kind, check, the sizes it is judged at (`None`: the largest), its counterfactual.
        let verdicts = [
            (
                "largest",
                "budget",
                "after.peak_heap_bytes <= 1MiB",
                None,
                "b_minus_cap",
            ),
            (
                "all",
                "budget",
                "after.end_heap_bytes <= 1KiB",
                Some("all"),
                "b_minus_cap",
            ),
            (
                "smallest-other",
                "budget",
                "after.end_heap_bytes <= 1KiB",
                Some("smallest"),
                "b_minus_release",
            ),
            (
                "played-by-before",
                "claim",
                "before.peak_heap_bytes / after.peak_heap_bytes >= 2",
                None,
                "a",
            ),
        ];
        let mut rest = String::new();
        for (id, kind, check, at, technique) in verdicts {
            rest += &verdict(id, kind, "t", check);
            if let Some(at) = at {
                rest += &format!("at = \"{at}\"\n");
            }
            rest += &format!("counterfactual = {{ technique = \"{technique}\" }}\n");
        }
        let spec = toy("40, 10, 20", &rest);
        let planned = plan_counterfactuals(&[spec], "ci").unwrap();
        let ids: Vec<&str> = planned.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "toy/counterfactual:b_minus_cap/n=10",
                "toy/counterfactual:b_minus_release/n=10",
                "toy/counterfactual:b_minus_cap/n=20",
                "toy/counterfactual:b_minus_cap/n=40",
            ]
        );
        assert_eq!(planned[1].technique, "b_minus_release");
        assert!(planned.iter().all(|p| !p.dhat_run));
    }
}
