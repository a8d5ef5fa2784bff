//! `cargo xtask load-test`: the calibration case, then every registered scenario's cases for a profile, each in a
//! process of its own; then the verdicts and the reports.

use crate::Finished;
use crate::build;
use crate::home::{self, SpecHome};
use crate::preflight;
use crate::progress::Printer;
use anyhow::bail;
use clap::builder::PossibleValuesParser;
use planning::suite::{self, Binaries, SuiteOptions};
use schema::results::{Outcome, Results, Verdict};
use schema::spec::{self, Spec};
use std::path::{Path, PathBuf};

/// Runs the load scenarios, judges them, and writes the reports.
#[derive(clap::Args)]
pub struct LoadTest {
    /// The profile to size the cases for: `smoke` (seconds), `ci` (under two minutes), `full` (the seeds' magnitudes).
    #[arg(long, default_value = "ci", value_parser = PossibleValuesParser::new(spec::PROFILES))]
    profile: String,
    /// Run only this scenario (repeatable). The calibration case always runs first.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Where to write results.json and the reports [default: target/memproof/<profile>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// How often the watchdog polls each case's resident set, e.g. `5ms`.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    interval: std::time::Duration,
    /// How often each case samples its own heap, e.g. `10ms`.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    heap_interval: std::time::Duration,
    /// The baseline to judge regressions against [default: the one beside the specs, when it exists:
    /// `reports/baseline.json` in memproof's checkout, `DIR/baseline.json` for `--spec-dir DIR`]. A path given here
    /// must exist.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// The measured noise each figure's regression tolerance comes from (the `noise` command writes it)
    /// [default: the one beside the specs: `reports/noise.json` in memproof's checkout, `DIR/noise.json` for
    /// `--spec-dir DIR`].
    #[arg(long)]
    noise: Option<PathBuf>,
    /// Which cases also get a dhat profile run (DHAT's viewer opens its file; dhat is 4.7x to about 50x slower than
    /// the timeline run): `spec` (as each scenario's spec says: the largest size, unless the spec turns them off;
    /// then, as `failed` does, the failed verdicts' cases it did not profile), `failed` (after judging, only the
    /// cases of the failed verdicts, at the sweep's largest size, or the case a regression names), `all` (every
    /// case), or `none`. Each profile records why it was made. A command scenario's cases never get one: their
    /// allocation sites come from their own language's tools (the report names them).
    #[arg(long, value_enum, default_value_t = DhatRuns::Spec)]
    dhat: DhatRuns,
    /// Run each case of the roles a spec marks as repeated this many times (default: the spec's count) and judge
    /// the median of every figure.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    repeat: Option<u32>,
    /// The seed handed to every case, for anything random in it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print where the specs, baseline, noise and reports are, and the cases planned, then stop: build and run
    /// nothing.
    #[arg(long)]
    dry_run: bool,
    /// Read the scenario specs from this directory [default: `scenarios/` in memproof's checkout, `memproof/` in the
    /// current directory for the installed binary]. Its baseline and noise files are the ones beside the specs
    /// (`DIR/baseline.json`, `DIR/noise.json`).
    #[arg(long, value_name = "DIR")]
    spec_dir: Option<PathBuf>,
    /// Also run each fix verdict's counterfactual (the fix minus the one change the verdict is about) and fail
    /// every verdict that passes on it: "cannot fail: it passes without the fix".
    #[arg(long)]
    prove: bool,
    /// Judge no regressions at all, whatever baseline exists (`xtask mutants`: a mutant must be caught by a
    /// verdict of its spec, not by a figure that moved with the machine's load).
    #[arg(skip)]
    no_baseline: bool,
    /// Cases to run at once, each still a process of its own, never more than memory allows (the running cases'
    /// limits sum to at most the available memory; a case without a limit runs alone). Above 1, results.json
    /// records it (`run.jobs`): the wall times shared the machine.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    jobs: u32,
    /// Run only shard K of N (`--shard 2/8`): a deterministic share of the cases balanced by the baseline's wall
    /// times, plus the calibration cases. Writes results.json only; `cargo xtask merge` joins, judges and renders.
    #[arg(long, value_name = "K/N")]
    shard: Option<schema::results::Shard>,
}

/// Which cases get a dhat profile run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DhatRuns {
    /// As each scenario's spec says (the largest size, unless the spec turns them off), then the failed verdicts'
    /// cases it did not profile.
    Spec,
    /// After judging, only the cases of the failed verdicts.
    Failed,
    /// Every case.
    All,
    /// None.
    None,
}

impl std::fmt::Display for DhatRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum as _;
        let value = self.to_possible_value().expect("no variant is skipped");
        f.write_str(value.get_name())
    }
}

/// The packages and binaries a load test runs its cases with.
pub const CASE_PACKAGES: [&str; 2] = ["memproof-scenarios", "memproof-runner"];
pub const CASE_BINARIES: [&str; 3] = ["memproof-case", "memproof-dhat", "memproof-launch"];

pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    schema::units::parse_duration(text).map_err(|error| error.to_string())
}

pub fn parse_size(text: &str) -> Result<u64, String> {
    schema::units::parse_size(text).map_err(|error| error.to_string())
}

/// The specs of a run: `home`'s, narrowed to `wanted` (all when empty). Where a scenario plays a built-in technique
/// (memproof's own case binaries), the calibration case runs first, nothing else being believed until the meters
/// are: from the directory's own calibration spec, else the checkout's. The installed binary has no case binaries:
/// a spec that needs them is an error naming it.
pub fn select_specs(home: &SpecHome, wanted: &[String]) -> anyhow::Result<Vec<Spec>> {
    let mut specs = spec::read_dir(&home.dir)?;
    let known: Vec<String> = specs.iter().map(|s| s.scenario.clone()).collect();
    for name in wanted {
        if !known.contains(name) {
            bail!(
                "unknown scenario {name:?}: expected one of {}",
                known.join(", ")
            );
        }
    }
    let calibration = schema::spec::CALIBRATION_SCENARIO;
    specs
        .retain(|s| s.scenario == calibration || wanted.is_empty() || wanted.contains(&s.scenario));
    let needs_case_binaries = specs
        .iter()
        .any(|s| s.scenario != calibration && !s.built_in_techniques().is_empty());
    match &home.checkout {
        None => {
            if let Some(spec) = specs.iter().find(|s| !s.built_in_techniques().is_empty()) {
                bail!(
                    "{}: scenario {:?} plays {}, not a command: an installed memproof runs programs given as \
                     commands (`command = [...]` on a variant, or a [techniques.NAME] table)\n\nmemproof's own \
                     scenarios run in its checkout, with `cargo xtask load-test`.",
                    spec.path.display(),
                    spec.scenario,
                    spec.built_in_techniques().join(", ")
                );
            }
        }
        Some(root) => {
            if needs_case_binaries && !specs.iter().any(|s| s.scenario == calibration) {
                let path = root.join("scenarios").join(format!("{calibration}.toml"));
                specs.push(Spec::read(&path)?);
            }
        }
    }
    // The calibration case first: nothing else is believed until the meters are.
    specs.sort_by_key(|s| s.scenario != calibration);
    Ok(specs)
}

impl LoadTest {
    /// The baseline this run judges against (`--baseline`, or the one beside its specs), `None` with
    /// `--no-baseline`; checked before any case runs. `out` is the run's directory (named in the hint to bless one).
    fn read_baseline(&self, home: &SpecHome, out: &Path) -> anyhow::Result<Option<Results>> {
        if self.no_baseline {
            return Ok(None);
        }
        preflight::baseline(self.baseline.as_deref(), home, &self.profile, out)
    }

    /// The flags of a `--prove` load test of one scenario on `profile`, writing to `out`, judging no regressions.
    pub fn proving(profile: &str, scenario: &str, out: &Path) -> LoadTest {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            load_test: LoadTest,
        }
        let args = [
            "load-test".into(),
            "--profile".into(),
            profile.into(),
            "--prove".into(),
            // Pass or fail is all a mutant's run is for: no profile runs, not even of the verdicts it fails.
            "--dhat".into(),
            "none".into(),
            "--scenario".into(),
            scenario.into(),
            "--out".into(),
            out.as_os_str().to_owned(),
        ];
        let mut load_test =
            <Flags as clap::Parser>::parse_from::<_, std::ffi::OsString>(args).load_test;
        load_test.no_baseline = true;
        load_test
    }

    pub fn run(self) -> anyhow::Result<Finished> {
        let home = SpecHome::resolve(self.spec_dir.as_deref())?;
        self.run_in(&home, None)
    }

    /// Runs the load test of the specs at `home`, with the case binaries in `bin_dir` when the caller built them
    /// (`xtask mutants`, for a mutated copy of the tree), else built here when a scenario needs them. The stages, in
    /// order: [`Self::plan`] (which cases, checked), [`Self::prepare`] (binaries, output directory, baseline and
    /// noise, all before the first case), [`Self::run_cases`], [`Self::judge_and_profile`] (judged, then the failed
    /// verdicts' cases profiled under dhat and judged again), and [`finish`] (the reports and the exit status). A
    /// dry run stops after planning; an interrupted run and a shard stop after running.
    pub fn run_in(&self, home: &SpecHome, bin_dir: Option<&Path>) -> anyhow::Result<Finished> {
        let plan = self.plan(home)?;
        if self.dry_run {
            return self.print_dry_run(home, plan);
        }
        let prepared = self.prepare(home, &plan, bin_dir)?;
        let mut results = self.run_cases(home, &plan, &prepared)?;
        let out_dir = &prepared.out_dir;
        if results
            .cases
            .iter()
            .any(|case| case.outcome == Outcome::Interrupted)
        {
            return finish_interrupted(&mut results, &plan.specs, out_dir, prepared.cases.len());
        }
        let _ = std::fs::remove_dir(out_dir.join("work"));
        if let Some(shard) = self.shard {
            // A shard holds part of each sweep: growth and claims are judged on all of them, by the merge.
            results.verdicts = reports::judge::calibration::verdicts(&results.cases);
            return finish_shard(&results, shard, out_dir);
        }
        self.judge_and_profile(&mut results, &plan, &prepared)?;
        finish(&results, &plan.specs, out_dir)
    }

    /// The cases of this run: the specs chosen and checked, every case of the profile (and, under `--prove`, the
    /// counterfactuals'), each with the dhat run `--dhat` asks for, and every program they start found.
    fn plan(&self, home: &SpecHome) -> anyhow::Result<Plan> {
        preflight::check_interval("--interval", self.interval)?;
        preflight::check_interval("--heap-interval", self.heap_interval)?;
        let specs = select_specs(home, &self.scenarios)?;
        reports::judge::check_specs(&specs)?;
        let mut cases = suite::plan(&specs, &self.profile)?;
        if self.prove {
            cases.extend(suite::plan_counterfactuals(&specs, &self.profile)?);
        }
        for case in &mut cases {
            // A command has no dhat run: its heap comes from its own probe or the preload library.
            case.dhat_run = !is_command_case(&specs, case)
                && match self.dhat {
                    DhatRuns::All => true,
                    DhatRuns::None | DhatRuns::Failed => false,
                    DhatRuns::Spec => case.dhat_run,
                };
        }
        preflight::commands(&specs, &cases, None)?;
        Ok(Plan { specs, cases })
    }

    /// `--dry-run`: where the specs, baseline, noise and reports are, and the cases planned (this shard's share).
    fn print_dry_run(&self, home: &SpecHome, plan: Plan) -> anyhow::Result<Finished> {
        let out = match &self.out {
            Some(out) => out.clone(),
            None => crate::output_dir::default_out(&self.profile)?,
        };
        let mut planned = plan.cases;
        if let Some(shard) = self.shard {
            // The share this shard would run, balanced as the run itself balances it.
            planned = select_shard(planned, shard, self.read_baseline(home, &out)?.as_ref());
        }
        println!("specs: {}", home.dir.display());
        if let Some(root) = &home.checkout {
            println!("workspace: {}", root.display());
            println!(
                "binaries: {}",
                build::workspace_target()?.join("release").display()
            );
        }
        println!(
            "baseline: {}",
            self.baseline.as_ref().unwrap_or(&home.baseline).display()
        );
        println!(
            "noise: {}",
            self.noise.as_ref().unwrap_or(&home.noise).display()
        );
        println!("reports: {}", std::path::absolute(&out)?.display());
        for case in &planned {
            println!("case: {}", case.id);
        }
        Ok(Finished::Passed)
    }

    /// Everything a run needs before its first case, so that none of it fails an hour in: the case binaries (built
    /// when a scenario needs them) and the preload library, the output directory (locked), each scenario's
    /// `[prepare]`, the baseline, its site summaries and the noise.
    fn prepare(
        &self,
        home: &SpecHome,
        plan: &Plan,
        bin_dir: Option<&Path>,
    ) -> anyhow::Result<Prepared> {
        let (specs, planned) = (&plan.specs, &plan.cases);
        let needs_preload = planned.iter().any(|case| {
            specs
                .iter()
                .find(|s| s.scenario == case.scenario)
                .and_then(|s| s.external_technique(&case.technique))
                .is_some_and(|t| t.heap == schema::external_command::HeapFrom::Preload)
        });
        let preload = if needs_preload {
            Some(home::preload()?)
        } else {
            None
        };
        let needs_case_binaries = planned.iter().any(|case| !is_command_case(specs, case));
        let binaries = match bin_dir {
            Some(dir) => Binaries::in_dir(dir),
            None if needs_case_binaries => {
                Binaries::in_dir(&build::build_release(&CASE_PACKAGES, &CASE_BINARIES)?)
            }
            // Command scenarios only: the launcher is all they run under.
            None => Binaries::in_dir(home::launcher()?.parent().unwrap_or(Path::new("."))),
        };
        preflight::scenario_params(specs, planned, &self.profile, &binaries.case)?;
        let out_dir = crate::output_dir::output_dir(self.out.as_deref(), &self.profile)?;
        planning::command_case::prepare(specs, planned, &out_dir)?;
        preflight::commands(specs, planned, Some(&out_dir))?;
        let baseline = self.read_baseline(home, &out_dir)?;
        // Read before the first case too: a regression against the baseline names the sites that grew, from the
        // top sites bless kept.
        let baseline_sites = match &baseline {
            Some(_) => reports::baseline::read_baseline_sites(
                self.baseline.as_deref().unwrap_or(&home.baseline),
            )?,
            None => Default::default(),
        };
        // Read before the first case too: a noise file that cannot be read stops the run now, not after an hour.
        let noise_path = self.noise.clone().unwrap_or_else(|| home.noise.clone());
        let noise = reports::noise::Noise::read(&noise_path)?;
        if baseline.is_some() && noise.as_ref().is_none_or(|n| n.profile != self.profile) {
            eprintln!(
                "memproof: no measured noise of profile {} at {}: regressions are judged with the conservative default tolerances.\n\nConsider `{}` to measure it.",
                self.profile,
                noise_path.display(),
                home.command(&format!("noise --profile {}", self.profile)),
            );
        }
        let options = SuiteOptions {
            profile: self.profile.clone(),
            out_dir: out_dir.to_path_buf(),
            interval: self.interval,
            sample_ms: self.heap_interval.as_millis().max(1) as u64,
            seed: self.seed,
        };
        let mut cases = planned.clone();
        if let Some(shard) = self.shard {
            cases = select_shard(cases, shard, baseline.as_ref());
        }
        // A repeated case counts once per run, so the counter ends at the number of runs it printed.
        let runs: usize = cases
            .iter()
            .map(|case| {
                planning::repeat::runs_for(specs, &self.profile, case, self.repeat).max(1) as usize
            })
            .sum();
        Ok(Prepared {
            cases,
            printer: std::sync::Mutex::new(Printer::new(runs)),
            binaries,
            preload,
            needs_case_binaries,
            out_dir,
            options,
            baseline,
            baseline_sites,
            noise,
        })
    }

    /// Runs this machine's share of the planned cases (`--jobs` at once, repeated roles as often as asked), each in
    /// a process of its own, writing results.json after every case so an interrupt, a crash or a full disk keeps
    /// every case that finished. The results are not judged yet.
    fn run_cases(
        &self,
        home: &SpecHome,
        plan: &Plan,
        prepared: &Prepared,
    ) -> anyhow::Result<Results> {
        let specs = &plan.specs;
        let (binaries, options, out_dir) =
            (&prepared.binaries, &prepared.options, &prepared.out_dir);
        let planned = &prepared.cases;
        runner::interrupt::install()?;
        let shard_text = self
            .shard
            .map_or(String::new(), |shard| format!(", shard {shard}"));
        eprintln!(
            "memproof: load test, profile {}{shard_text}, {} cases in {} scenarios, {} at once, writing to {}",
            self.profile,
            planned.len(),
            specs.len(),
            self.jobs,
            out_dir.display()
        );
        let mut run = planning::host::run_info(&self.profile, &home::repository()?);
        run.jobs = self.jobs;
        run.shard = self.shard;
        run.invocation = Some(home.invocation());
        let on_event = |event: suite::SuiteEvent<'_>| prepared.print(event);
        let run_one = |case: &suite::PlannedCase| {
            let spec = specs.iter().find(|s| s.scenario == case.scenario);
            let external = spec.and_then(|s| Some((s, s.external_technique(&case.technique)?)));
            let runs = planning::repeat::runs_for(specs, &self.profile, case, self.repeat);
            planning::repeat::run_repeated(runs, |index| {
                // One dhat profile is enough: only the first run makes it.
                let mut run = case.clone();
                run.dhat_run &= index == 0;
                match external {
                    Some((spec, technique)) => planning::command_case::run(
                        &run,
                        spec,
                        technique,
                        binaries,
                        prepared.preload.as_deref(),
                        options,
                        &mut |event| on_event(event),
                    ),
                    None => suite::run_case(&run, binaries, options, &mut |event| on_event(event)),
                }
            })
        };
        let results_path = out_dir.join(schema::results::RESULTS_FILE);
        // A write that fails stops the run. An interrupted case stops new cases from starting.
        let after_each = |done: &[&schema::results::Case]| -> anyhow::Result<bool> {
            let partial =
                Results::unjudged(run.clone(), done.iter().map(|&case| case.clone()).collect());
            partial.write(&results_path)?;
            Ok(done.iter().any(|case| case.outcome == Outcome::Interrupted))
        };
        let available = planning::parallel::available_memory()?;
        let order = start_order(planned, self.jobs, prepared.baseline.as_ref());
        let cases = planning::parallel::run_all(
            planned,
            &order,
            self.jobs as usize,
            available,
            &run_one,
            &after_each,
        )?;
        Ok(Results::unjudged(run, cases))
    }

    /// The verdicts of a whole run: judged against the specs, the baseline and the noise; then, under `--dhat spec`
    /// and `failed`, the cases of failed verdicts that have no dhat run get one and the run is judged again, so a
    /// failure names its allocation sites; then the cases the baseline does not hold are named.
    fn judge_and_profile(
        &self,
        results: &mut Results,
        plan: &Plan,
        prepared: &Prepared,
    ) -> anyhow::Result<()> {
        let (specs, planned) = (&plan.specs, &prepared.cases);
        let out_dir = &prepared.out_dir;
        if self.dhat == DhatRuns::All {
            for profile in results.cases.iter_mut().filter_map(|c| c.dhat_run.as_mut()) {
                profile.reason = Some("all".into());
            }
        }
        let judge = |results: &Results| {
            let mut verdicts = judge_run(
                results,
                specs,
                prepared.baseline.as_ref(),
                prepared.noise.as_ref(),
                out_dir,
            );
            reports::site_diff::explain_against_baseline(
                &mut verdicts,
                results,
                out_dir,
                &prepared.baseline_sites,
            );
            verdicts
        };
        results.verdicts = judge(results);
        if matches!(self.dhat, DhatRuns::Failed | DhatRuns::Spec) {
            // A failure names its allocation sites whatever the spec profiles: a spec that leaves a sweep's
            // profile runs out (hook-storm's at ci: 7 s of a 65 s run) still gets them where a verdict failed.
            // A command never gets one: its sites come from its own language's tools.
            let wanted = cases_to_profile(planned, &results.verdicts);
            let mut profiled_any = false;
            for (at, verdict_id) in &wanted {
                let case = &planned[*at];
                if is_command_case(specs, case) {
                    continue;
                }
                let Some(result) = results.cases.iter_mut().find(|c| c.id == case.id) else {
                    continue;
                };
                if result.dhat_run.is_some() {
                    continue;
                }
                profiled_any = true;
                suite::profile_after(
                    case,
                    result,
                    &prepared.binaries,
                    &prepared.options,
                    &format!("failed: {verdict_id}"),
                    &mut |event| prepared.print(event),
                )?;
            }
            let _ = std::fs::remove_dir(out_dir.join("work"));
            if profiled_any {
                // Judged again, so a failed verdict's text names the allocation sites from its new profile.
                results.verdicts = judge(results);
            }
        }
        if let Some(baseline) = &prepared.baseline {
            results.without_baseline =
                reports::baseline::cases_without_baseline(results, baseline, specs);
        }
        if let Some(notice) =
            reports::baseline::without_baseline_notice(&results.without_baseline, &results.run)
        {
            eprintln!("memproof: {notice}");
        }
        let profiled: Vec<String> = results
            .profiled()
            .map(|(case, reason)| format!("{} ({reason})", case.id))
            .collect();
        if prepared.needs_case_binaries {
            eprintln!(
                "memproof: dhat profiles ({}): {}",
                self.dhat,
                if profiled.is_empty() {
                    "none".to_string()
                } else {
                    profiled.join(", ")
                }
            );
        }
        Ok(())
    }
}

/// The planned run: the specs it judges and every case it may run (a shard runs its share of them).
struct Plan {
    specs: Vec<Spec>,
    cases: Vec<suite::PlannedCase>,
}

/// What a run made ready before its first case.
struct Prepared {
    /// The cases this machine runs: the plan's, or this shard's share of them.
    cases: Vec<suite::PlannedCase>,
    /// The progress lines, shared by the cases' runs and the dhat runs after judging.
    printer: std::sync::Mutex<Printer>,
    binaries: Binaries,
    preload: Option<PathBuf>,
    /// Whether any case runs memproof's own case binaries (only then are dhat profiles spoken of).
    needs_case_binaries: bool,
    out_dir: crate::output_dir::OutputDir,
    options: SuiteOptions,
    baseline: Option<Results>,
    baseline_sites: reports::site_diff::BaselineSites,
    noise: Option<reports::noise::Noise>,
}

impl Prepared {
    fn print(&self, event: suite::SuiteEvent<'_>) {
        self.printer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .event(event);
    }
}

/// Whether a planned case runs a program given as a command in its spec (never a dhat run, never a case binary).
pub fn is_command_case(specs: &[Spec], case: &suite::PlannedCase) -> bool {
    specs
        .iter()
        .find(|s| s.scenario == case.scenario)
        .is_some_and(|s| s.external_technique(&case.technique).is_some())
}

/// Ends a run that SIGINT or SIGTERM stopped: results.json keeps the cases that finished and the interrupted one,
/// nothing is judged (one failed verdict says why), the reports render, and the exit status is 128 + the signal.
fn finish_interrupted(
    results: &mut Results,
    specs: &[Spec],
    out_dir: &std::path::Path,
    planned: usize,
) -> anyhow::Result<Finished> {
    let signal = runner::interrupt::received().unwrap_or(libc::SIGINT);
    let _ = std::fs::remove_dir_all(out_dir.join("work"));
    let last = results
        .cases
        .last()
        .map_or(String::new(), |case| case.id.clone());
    results.verdicts = vec![Verdict {
        change: None,
        id: "run/interrupted".into(),
        kind: schema::results::VerdictKind::Case,
        subject: last.clone(),
        text: format!(
            "the run was interrupted by {} during {last}: {} of {planned} cases ran, nothing was judged",
            runner::interrupt::name(signal),
            results.cases.len()
        ),
        expected: "the run finishes".into(),
        measured: "interrupted".into(),
        pass: false,
        counterfactual: None,
    }];
    finish(results, specs, out_dir)?;
    Ok(Finished::Interrupted(signal))
}

/// The calibration verdicts, then every spec's verdicts and the regressions against the baseline.
pub fn judge_run(
    results: &Results,
    specs: &[Spec],
    baseline: Option<&Results>,
    noise: Option<&reports::noise::Noise>,
    out_dir: &Path,
) -> Vec<schema::results::Verdict> {
    let mut verdicts = reports::judge::calibration::verdicts(&results.cases);
    verdicts.extend(reports::judge::judge(results, specs, None));
    if let Some(baseline) = baseline {
        verdicts.extend(reports::judge::regression::regression_verdicts(
            results,
            baseline,
            specs,
            Some(out_dir),
            "the baseline",
            noise,
        ));
    }
    verdicts
}

/// The order cases start in: the plan's with one job; with more, the calibration first (nothing is believed before
/// the meters are), then the rest longest baseline time first, so the last to start are the shortest and no job
/// runs on alone at the end (`full --jobs 2`: docs/profiles.md).
fn start_order(
    planned: &[suite::PlannedCase],
    jobs: u32,
    baseline: Option<&Results>,
) -> Vec<usize> {
    if jobs <= 1 {
        return (0..planned.len()).collect();
    }
    let weights = baseline
        .map(planning::shard::baseline_weights)
        .unwrap_or_default();
    let ids: Vec<&str> = planned.iter().map(|case| case.id.as_str()).collect();
    let calibration = |at: usize| planned[at].scenario == schema::spec::CALIBRATION_SCENARIO;
    let (mut first, rest): (Vec<usize>, Vec<usize>) =
        planning::shard::longest_first(&ids, &weights)
            .into_iter()
            .partition(|&at| calibration(at));
    first.sort_unstable();
    first.extend(rest);
    first
}

/// This shard's cases of the plan: balanced by the baseline's wall times (equal weights without a baseline of
/// this profile), the calibration cases in every shard.
fn select_shard(
    planned: Vec<suite::PlannedCase>,
    shard: schema::results::Shard,
    baseline: Option<&Results>,
) -> Vec<suite::PlannedCase> {
    let weights = baseline
        .map(planning::shard::baseline_weights)
        .unwrap_or_default();
    let ids: Vec<&str> = planned.iter().map(|case| case.id.as_str()).collect();
    let always = |at: usize| planned[at].scenario == schema::spec::CALIBRATION_SCENARIO;
    let mine = planning::shard::select(&ids, &always, &weights, shard);
    mine.into_iter().map(|at| planned[at].clone()).collect()
}

/// A shard writes its results.json only; says whether its calibration held.
fn finish_shard(
    results: &Results,
    shard: schema::results::Shard,
    out_dir: &std::path::Path,
) -> anyhow::Result<Finished> {
    let results_path = out_dir.join(schema::results::RESULTS_FILE);
    results.write(&results_path)?;
    let failed: Vec<_> = results.verdicts.iter().filter(|v| !v.pass).collect();
    eprintln!(
        "memproof: shard {shard}: {} cases in {}; `cargo xtask merge` judges and renders the shards together",
        results.cases.len(),
        results_path.display()
    );
    Ok(list_failed(&failed))
}

/// The cases whose allocation sites the failed verdicts need, as (index into the plan, the first verdict naming
/// it), in plan order: a regression's own case; for any other verdict of a scenario, the cases of the roles its
/// subject names (`before.peak_heap_bytes / after.peak_heap_bytes`: before and after; every role when it names
/// none) at the scenario's largest size, where the spec's own profile runs would have been.
pub fn cases_to_profile(
    planned: &[suite::PlannedCase],
    verdicts: &[schema::results::Verdict],
) -> Vec<(usize, String)> {
    let mut wanted: Vec<(usize, String)> = Vec::new();
    for verdict in verdicts.iter().filter(|v| !v.pass) {
        let scenario = verdict.id.split('/').next().unwrap_or_default();
        if scenario == schema::spec::CALIBRATION_SCENARIO {
            continue;
        }
        let own: Vec<usize> = (0..planned.len())
            .filter(|&at| planned[at].id == verdict.subject)
            .collect();
        let chosen = if own.is_empty() {
            let of_scenario: Vec<usize> = (0..planned.len())
                .filter(|&at| planned[at].scenario == scenario)
                .collect();
            let largest = of_scenario
                .iter()
                .map(|&at| planned[at].size.value)
                .fold(f64::NEG_INFINITY, f64::max);
            let named = |role: &str| {
                verdict
                    .subject
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
                    .any(|word| word.starts_with(&format!("{role}.")))
            };
            let any_named = of_scenario.iter().any(|&at| named(&planned[at].role));
            of_scenario
                .into_iter()
                .filter(|&at| planned[at].size.value == largest)
                .filter(|&at| !any_named || named(&planned[at].role))
                .collect()
        } else {
            own
        };
        for at in chosen {
            if !wanted.iter().any(|(have, _)| *have == at) {
                wanted.push((at, verdict.id.clone()));
            }
        }
    }
    wanted.sort_by_key(|(at, _)| *at);
    wanted
}

/// Writes results.json and every report, prints the verdicts, and says whether the run passed.
pub fn finish(
    results: &Results,
    specs: &[Spec],
    out_dir: &std::path::Path,
) -> anyhow::Result<Finished> {
    let results_path = out_dir.join(schema::results::RESULTS_FILE);
    results.write(&results_path)?;
    reports::write_reports(results, specs, out_dir)?;
    let failed: Vec<_> = results.verdicts.iter().filter(|v| !v.pass).collect();
    eprintln!(
        "memproof: {} verdicts, {} passed, {} failed; results in {}",
        results.verdicts.len(),
        results.verdicts.len() - failed.len(),
        failed.len(),
        results_path.display()
    );
    Ok(list_failed(&failed))
}

/// Lists the failed verdicts on stderr, one line each; the run failed if there is one.
fn list_failed(failed: &[&Verdict]) -> Finished {
    for verdict in failed {
        eprintln!(
            "  FAILED {} ({}): {}",
            verdict.id, verdict.kind, verdict.text
        );
    }
    if failed.is_empty() {
        Finished::Passed
    } else {
        Finished::Failed
    }
}

#[cfg(test)]
mod profile_choice_tests {
    use super::*;
    use schema::results::{Size, Verdict};

    fn planned(scenario: &str, role: &str, value: f64) -> suite::PlannedCase {
        let size = Size {
            name: "n".into(),
            value,
            unit: "items".into(),
        };
        suite::PlannedCase {
            counterfactual: None,
            id: schema::results::Case::make_id(scenario, role, &size),
            scenario: scenario.into(),
            role: role.into(),
            technique: "t".into(),
            size,
            limit_bytes: None,
            timeout: std::time::Duration::from_secs(1),
            params: Default::default(),
            dhat_run: false,
        }
    }

    fn failed(id: &str, subject: &str) -> Verdict {
        Verdict {
            change: None,
            id: id.into(),
            kind: schema::results::VerdictKind::Claim,
            subject: subject.into(),
            text: String::new(),
            expected: String::new(),
            measured: String::new(),
            pass: false,
            counterfactual: None,
        }
    }

    #[test]
    fn a_failed_verdict_profiles_the_roles_it_names_at_the_largest_size() {
        let plan: Vec<suite::PlannedCase> = [10.0, 40.0]
            .into_iter()
            .flat_map(|size| ["before", "after", "best"].map(|role| planned("toy", role, size)))
            .chain([planned("other", "before", 5.0)])
            .collect();
        let ids = |wanted: Vec<(usize, String)>| -> Vec<(String, String)> {
            wanted
                .into_iter()
                .map(|(at, why)| (plan[at].id.clone(), why))
                .collect()
        };
        let claim = failed(
            "toy/smaller",
            "before.peak_heap_bytes / after.peak_heap_bytes",
        );
        assert_eq!(
            ids(cases_to_profile(&plan, std::slice::from_ref(&claim))),
            [
                ("toy/before/n=40".to_string(), "toy/smaller".to_string()),
                ("toy/after/n=40".to_string(), "toy/smaller".to_string())
            ]
        );
        let regression = failed("toy/best/n=10/peak_heap_bytes", "toy/best/n=10");
        assert_eq!(
            ids(cases_to_profile(&plan, &[regression])),
            [(
                "toy/best/n=10".to_string(),
                "toy/best/n=10/peak_heap_bytes".to_string()
            )]
        );
        let passed = Verdict {
            pass: true,
            ..claim
        };
        assert!(cases_to_profile(&plan, &[passed]).is_empty());
        let calibration = failed("calibration/exact", "peak_heap_bytes");
        assert!(cases_to_profile(&plan, &[calibration]).is_empty());
        let unnamed = failed("other/outcome", "outcome");
        assert_eq!(
            ids(cases_to_profile(&plan, &[unnamed])),
            [("other/before/n=5".to_string(), "other/outcome".to_string())]
        );
    }
}

#[cfg(test)]
mod spec_dir_tests {
    use super::*;

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    fn scenarios_of(specs: &[Spec]) -> Vec<&str> {
        specs.iter().map(|s| s.scenario.as_str()).collect()
    }

    #[test]
    fn a_spec_dir_replaces_scenarios_and_calibration_runs_once_where_case_binaries_run() {
        let root = workspace();
        let copy = tempfile::tempdir().unwrap();
        for name in ["calibration.toml", "hook-storm.toml"] {
            std::fs::copy(root.join("scenarios").join(name), copy.path().join(name)).unwrap();
        }
        let home = SpecHome::resolve_in(Some(copy.path()), Some(root.clone())).unwrap();
        assert_eq!(home.baseline, copy.path().join("baseline.json"));
        assert_eq!(home.noise, copy.path().join("noise.json"));
        let specs = select_specs(&home, &[]).unwrap();
        assert_eq!(scenarios_of(&specs), ["calibration", "hook-storm"]);
        // Without a calibration spec of its own, the directory still gets the checkout's, first.
        std::fs::remove_file(copy.path().join("calibration.toml")).unwrap();
        let specs = select_specs(&home, &[]).unwrap();
        assert_eq!(scenarios_of(&specs), ["calibration", "hook-storm"]);
        let error = select_specs(&home, &["startup".to_string()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "unknown scenario \"startup\": expected one of hook-storm"
        );
        // Installed, a scenario that needs memproof's case binaries is refused in words.
        let installed = SpecHome::resolve_in(Some(copy.path()), None).unwrap();
        let error = select_specs(&installed, &[]).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!(
                "{}: scenario \"hook-storm\" plays ",
                copy.path().join("hook-storm.toml").display()
            )) && error.contains("not a command"),
            "{error}"
        );
    }

    #[test]
    fn command_scenarios_run_without_the_calibration_case() {
        let root = workspace();
        let examples = root.join("scenarios").join("examples");
        for checkout in [Some(root.clone()), None] {
            let home = SpecHome::resolve_in(Some(&examples), checkout).unwrap();
            let specs = select_specs(&home, &[]).unwrap();
            assert!(!specs.is_empty());
            assert!(
                specs
                    .iter()
                    .all(|s| s.scenario != schema::spec::CALIBRATION_SCENARIO
                        && s.built_in_techniques().is_empty())
            );
        }
    }
}
