//! `results.json`, schema `memproof.results/v2`: the one record of a run that every report is rendered from.
//!
//! v2 names what v1 left to be recovered from text: a case's `role` (v1: `variant`), its `counterfactual`
//! technique (v1: a `counterfactual:` prefix on the role), its `dhat_file` and `dhat_run` (v1: `profile_file`,
//! `profile`, which also meant the load profile), a verdict's `kind` as one of [`VerdictKind`] and a regression
//! verdict's [`Change`]. A v1 file still reads: [`Results::read`] upgrades it ([`upgrade_v1`]).
//!
//! The field names are a contract with other tools (CI dashboards, `cargo xtask compare`, our own checks), so they
//! are spelled out here once and documented field by field, in the manner of dhat's `HeapStats`. A figure that
//! cannot be known is `null`, never zero: an external command run under `cargo xtask measure` has no heap figures,
//! and a case killed before it reported its totals has none either.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The schema tag written into every results file.
pub const SCHEMA: &str = "memproof.results/v2";

/// The schema before v2, still read (baselines committed before it, runs kept by CI).
pub const SCHEMA_V1: &str = "memproof.results/v1";

/// The file name of the results inside a run's output directory.
pub const RESULTS_FILE: &str = "results.json";

/// A whole run: what ran, where, and what it measured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Results {
    /// Always [`SCHEMA`].
    pub schema: String,
    pub run: RunInfo,
    pub cases: Vec<Case>,
    /// Verdicts judged on the cases; empty until the judge has run.
    #[serde(default)]
    pub verdicts: Vec<Verdict>,
    /// Ids of the cases a baseline was compared for but that the baseline does not hold (a new scenario, a new
    /// size): they are not judged for regression, and every report says so. Absent when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_baseline: Vec<String>,
}

/// Where and when a run happened.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunInfo {
    /// RFC 3339 UTC time at which the run started.
    pub started_at: String,
    /// The profile the cases were sized for (`smoke`, `ci`, `full`), or `measure` for an external command.
    pub profile: String,
    /// `git rev-parse HEAD` of the working tree, with `-dirty` appended when it had uncommitted changes; `null`
    /// outside a git checkout.
    pub git_commit: Option<String>,
    pub host: Host,
    /// How many cases ran at once (`--jobs`); above 1 the cases' wall times shared the machine (no run judges wall
    /// time for regression). Absent in older results: 1.
    #[serde(default = "one_job")]
    pub jobs: u32,
    /// The shard this run holds (`--shard K/N`, `{"index": K, "count": N}`), `null` for a whole run, and for the
    /// run `cargo xtask merge` makes of all N.
    #[serde(default)]
    pub shard: Option<Shard>,
    /// How the run was started (`cargo xtask` in memproof's checkout, or the installed `memproof`, and the spec
    /// directory given), so that every command a report suggests works where the run was made. Absent in older
    /// results: `cargo xtask` with the checkout's own specs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation: Option<Invocation>,
}

fn one_job() -> u32 {
    1
}

/// The command that made a run, for the commands its reports suggest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Invocation {
    /// `cargo xtask` (memproof's checkout) or `memproof` (installed).
    pub program: String,
    /// The spec directory, as given on the command line (relative to where the command ran), when the specs were
    /// not the default ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_dir: Option<String>,
}

impl RunInfo {
    /// A command line for `subcommand` that works where this run was made: `memproof bless --spec-dir specs`,
    /// `cargo xtask bless`.
    pub fn command(&self, subcommand: &str) -> String {
        match &self.invocation {
            None => format!("cargo xtask {subcommand}"),
            Some(Invocation {
                program,
                spec_dir: None,
            }) => format!("{program} {subcommand}"),
            Some(Invocation {
                program,
                spec_dir: Some(dir),
            }) => format!("{program} {subcommand} --spec-dir {dir}"),
        }
    }
}

/// The machine a run happened on; memory figures only compare between runs on like machines.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Host {
    /// Operating system name and version, e.g. `Debian GNU/Linux 12`.
    pub os: String,
    /// Kernel release, e.g. `6.1.0-18-amd64`.
    pub kernel: String,
    /// Logical CPUs the run could use.
    pub cpus: u32,
    /// Physical memory in bytes.
    pub memory_bytes: u64,
    /// `rustc --version` of the toolchain that built the cases.
    pub rustc: String,
}

/// How a case ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Exited with status 0 and reported its final figures.
    Ok,
    /// Non-zero exit, a panic, a signal other than the watchdog's, or no final figures.
    Failed,
    /// Killed at its memory limit: a poll saw the process tree's total over it, and the whole tree was killed.
    OomKilled,
    /// Over its memory limit by a kernel high-water mark only: it went over between two polls and came back
    /// under, so nothing was killed and it ran to its end; a container's limit would have killed it.
    OverLimit,
    /// Still running when its timeout ran out, and killed.
    TimedOut,
    /// memproof was interrupted (SIGINT or SIGTERM) while the case ran; the whole tree was killed.
    Interrupted,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::Failed,
        Outcome::OomKilled,
        Outcome::OverLimit,
        Outcome::TimedOut,
        Outcome::Interrupted,
    ];

    /// The word used in results.json, reports and verdict expressions.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::OomKilled => "oom-killed",
            Outcome::OverLimit => "over-limit",
            Outcome::TimedOut => "timed-out",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// Parses the word [`Outcome::as_str`] writes.
    pub fn parse(word: &str) -> Option<Outcome> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == word)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One case: a scenario's role at one size, run in a process of its own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Case {
    /// `scenario/role/size-name=value`, unique within a run, stable across runs (baselines key on it).
    pub id: String,
    pub scenario: String,
    /// The role the case plays (`before`, `after`, `best`, …), as the scenario's spec names it; for a
    /// counterfactual case, `counterfactual:TECHNIQUE` (so its id is unique), with the technique in
    /// `counterfactual`.
    #[serde(alias = "variant")]
    pub role: String,
    /// For a case `load-test --prove` added: the technique that stands in for a fix (the fix minus one change).
    /// Such a case is evidence that a verdict can fail, never a figure to guard. Absent for every other case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterfactual: Option<String>,
    /// The technique behind the role (`parse_all`, `raw_prefix_scan`, …), or `null` for external commands.
    #[serde(default)]
    pub technique: Option<String>,
    pub size: Size,
    pub outcome: Outcome,
    pub exit: Exit,
    /// The memory limit the watchdog enforced, in bytes; `null` for none.
    pub limit_bytes: Option<u64>,
    /// How the limit was enforced and how far the case went past it; `null` when no limit was set.
    #[serde(default)]
    pub limit: Option<LimitReport>,
    /// A kernel high-water mark of one process's resident set, in bytes, never a polled sample. For a case: the
    /// case process's own `VmHWM` as its last act (or, if it died first, the highest the runner read). For a
    /// command under `measure`: the largest single process of its tree (`tree.largest_process`), from `VmHWM`
    /// polled or `ru_maxrss` as memproof's small launcher reaped it (so a large parent cannot inflate it). It
    /// counts every page the process ever had resident at once: heap, stacks, code, and memory the allocator kept
    /// after a free; not pages swapped out, nor other processes of the tree (see `tree.peak_pss_bytes`). `null`
    /// only when the launcher itself failed.
    pub peak_rss_bytes: Option<u64>,
    /// The most bytes the case's program held live on the heap at one moment, as requested (not as rounded up by
    /// the allocator): every Rust allocation and, where a case routes it, a linked C library's (SQLite's). It
    /// leaves out stacks, code, and the allocator's own overhead and retained free memory. From the counting
    /// allocator of the timeline run; `null` for external commands and for cases killed before they reported.
    pub peak_heap_bytes: Option<u64>,
    /// Bytes requested over the whole case, freed or not (each `realloc` counts its new size).
    pub total_alloc_bytes: Option<u64>,
    /// Number of allocations over the whole case (each `realloc` counts as one).
    pub alloc_count: Option<u64>,
    /// Bytes still live when the case reported its totals, just before exit.
    pub end_heap_bytes: Option<u64>,
    /// Wall time from spawn to exit, in milliseconds, of the timeline run.
    pub wall_ms: f64,
    /// Samples taken while the case ran: RSS by the parent, heap by the child, merged on one clock.
    pub timeline: Vec<Sample>,
    /// Phase marks the case made, in order.
    pub phases: Vec<Phase>,
    /// The scenario's own figures (messages sent, trims in flight, events lost, …).
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    /// Path of the dhat profile of this case, relative to the output directory; `null` when no profile run was made
    /// or it did not finish. DHAT's viewer (`dh_view.html`) opens it.
    #[serde(alias = "profile_file")]
    pub dhat_file: Option<String>,
    /// Figures of the dhat run of the same case, when one was made: a cross-check of the heap figures.
    #[serde(default, alias = "profile")]
    pub dhat_run: Option<DhatRun>,
    /// The process tree of the timeline run: its total, its largest process, what was left running.
    #[serde(default)]
    pub tree: Option<TreeReport>,
    /// The files the timeline run's stdout and stderr went to, relative to the output directory; `null` when
    /// nothing was written.
    #[serde(default)]
    pub output: Option<OutputFiles>,
    /// For a case its spec runs several times (`repeat` in a profile, or `--repeat N`): every run's figures. The
    /// case's own figures are then each the median over the runs; absent for a case run once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Repeated>,
}

/// The process tree of a run: the measured process and every descendant, as a container counts them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TreeReport {
    /// The highest total a poll saw: the proportional set size (`Pss` of `/proc/PID/smaps_rollup`) summed over
    /// every process of the tree, so a page shared between processes counts once. Sampled, so it can miss a
    /// spike shorter than the poll interval; `null` when no poll saw the tree.
    pub peak_pss_bytes: Option<u64>,
    /// The largest single process: the highest kernel high-water mark (`VmHWM` polled, or `ru_maxrss` from the
    /// launcher's `wait4`) of any one process of the tree.
    pub largest_process: Option<ProcessPeak>,
    /// The most processes a poll saw at once.
    pub most_processes: u32,
    /// Descendants still running when the measured process exited: the launcher killed each one.
    pub left_running: Vec<LeftRunning>,
    /// How many polls walked the tree (each reads every process's `VmRSS` and `VmHWM`).
    pub polls: u64,
    /// How many of them also read every process's proportional set size (at most a tenth of the runner's time
    /// goes to these), and their mean cost in milliseconds.
    pub pss_polls: u64,
    pub mean_pss_poll_ms: f64,
}

/// One process's kernel high-water mark.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProcessPeak {
    pub pid: u32,
    /// Its command line when it was read (`null` for a process reaped before a poll saw it).
    pub command: Option<String>,
    pub peak_rss_bytes: u64,
}

/// A descendant found still running after the measured process exited.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeftRunning {
    pub pid: u32,
    pub command: String,
}

/// Where a run's output went, relative to the output directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputFiles {
    pub stdout: Option<String>,
    pub stderr: Option<String>,
}

/// The runs of a repeated case (see `planning::repeat`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Repeated {
    /// How many times the case ran.
    pub runs: u32,
    /// Which run (0-based) the timeline, phases, exit and outcome come from: the one whose peak heap is the median.
    pub timeline_run: u32,
    /// Each run's outcome, in run order.
    pub outcomes: Vec<Outcome>,
    /// Per figure (`peak_heap_bytes`, …, `wall_ms`, and `metrics.<name>` for each numeric metric): the samples and
    /// their median, min, max and max/min.
    pub figures: BTreeMap<String, FigureSpread>,
}

/// One figure over the runs of a repeated case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FigureSpread {
    /// Every run's value, in run order.
    pub samples: Vec<f64>,
    /// The lower median: the middle value, or the lower of the two middle ones for an even count.
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// `max / min`; `null` when `min` is 0.
    pub ratio: Option<f64>,
}

/// The size a case was run at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Size {
    /// What is being sized: `records`, `log_bytes`, `concurrency`, …
    pub name: String,
    pub value: f64,
    /// The unit of `value`: `records`, `bytes`, `workflows`, …
    pub unit: String,
}

/// How a process ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Exit {
    /// Exit status, when it exited.
    pub code: Option<i32>,
    /// Signal number, when a signal ended it.
    pub signal: Option<i32>,
    /// What went wrong, in words: the panic message, the error chain, the last lines of stderr. `null` when ok.
    pub message: Option<String>,
}

/// How a memory limit was enforced on a case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LimitReport {
    /// `watchdog` (the parent polls RSS and sends SIGKILL, as the OOM killer would).
    pub mechanism: String,
    /// How often the watchdog polled, in milliseconds.
    pub poll_interval_ms: f64,
    /// How far the kernel high-water mark went past the limit, in bytes; 0 when it stayed under.
    pub overshoot_bytes: u64,
    /// True when the watchdog sent the kill; false when only the high-water mark showed the breach.
    pub killed_by_watchdog: bool,
}

/// One point of a case's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    /// Milliseconds since the case was spawned.
    pub t_ms: f64,
    /// The process tree's memory at that moment, read by the parent: every process's proportional set size
    /// (`/proc/PID/smaps_rollup`) summed, so a shared page counts once; `null` in a heap-only sample.
    pub rss_bytes: Option<u64>,
    /// Live heap bytes at that moment, read by the child from its allocator; `null` in an RSS-only sample.
    pub heap_bytes: Option<u64>,
}

/// A phase mark: from `t_ms` until the next mark the case was in phase `name`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Phase {
    pub name: String,
    pub t_ms: f64,
    /// Bytes live on the heap when the mark was made, read by the child's meter; `null` when no meter counted
    /// (`measure`) and for the runner's own `oom-kill` mark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_bytes: Option<u64>,
}

/// The figures of a case's separate dhat run. dhat serialises every allocation, so the run's RSS and time
/// are not comparable with the real program (docs/measured.md); its heap figures are exact.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DhatRun {
    pub outcome: Outcome,
    /// dhat's `max_bytes`: bytes live at the global peak.
    pub peak_heap_bytes: Option<u64>,
    /// dhat's `total_bytes`.
    pub total_alloc_bytes: Option<u64>,
    /// dhat's `total_blocks`.
    pub alloc_count: Option<u64>,
    pub wall_ms: f64,
    /// Why this case was profiled: `spec` (its spec profiles the sweep's largest size), `all` (`--dhat all`), or
    /// `failed: VERDICT-ID` (rerun under dhat after judging, because that verdict failed). Absent in older results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A judgement on the cases.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    /// Unique within a run: `scenario/verdict-id`.
    pub id: String,
    pub kind: VerdictKind,
    /// What is judged: a case id, a scenario, or `role.metric`.
    pub subject: String,
    /// The claim in words, as a person reads it; on failure, the failure text.
    pub text: String,
    /// The bound or the expected result, as written.
    pub expected: String,
    /// The measured figure, with its unit.
    pub measured: String,
    pub pass: bool,
    /// Under `load-test --prove`, the same check judged with the fix's cases replaced by its counterfactual's (the
    /// fix minus the one change the verdict is about); absent when the run did not prove it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterfactual: Option<CounterfactualResult>,
    /// For a regression verdict: how the figure moved against the baseline, beyond its tolerance or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

/// The `reason` of a command case's heap run, in its `dhat_run` block (a heap run, not a dhat run: a command has no
/// dhat, so the block holds what its own meter reported).
pub const HEAP_RUN_REASON: &str = "heap";

/// What a verdict judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictKind {
    /// A figure under a bound the spec sets.
    Budget,
    /// A pull request's claim: one role's figure against another's.
    Claim,
    /// How a case ended (ok, oom-killed, …).
    Outcome,
    /// How a figure grows with the size of the load.
    Growth,
    /// A figure against the same case of a baseline.
    Regression,
    /// The calibration case's figures against the answer known in advance.
    Calibration,
    /// A case that did not end the way its spec expects.
    Case,
}

impl VerdictKind {
    /// The kinds a spec may write (`kind = "…"` of a `[[verdicts]]` entry); the others the judge makes itself.
    pub const WRITTEN_IN_SPECS: [VerdictKind; 4] = [
        VerdictKind::Budget,
        VerdictKind::Claim,
        VerdictKind::Outcome,
        VerdictKind::Growth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Budget => "budget",
            VerdictKind::Claim => "claim",
            VerdictKind::Outcome => "outcome",
            VerdictKind::Growth => "growth",
            VerdictKind::Regression => "regression",
            VerdictKind::Calibration => "calibration",
            VerdictKind::Case => "case",
        }
    }
}

impl std::fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// criterion's three words for how a figure moved against its baseline, under its tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Regressed,
    Improved,
    WithinNoise,
}

impl Change {
    pub fn word(self) -> &'static str {
        match self {
            Change::Regressed => "regressed",
            Change::Improved => "improved",
            Change::WithinNoise => "within noise",
        }
    }
}

/// A verdict judged on its counterfactual. A verdict is evidence of its fix only if `failed` is true.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CounterfactualResult {
    /// The technique that stood in for the fix.
    pub technique: String,
    /// What the check measured on it, with units (`not judged: …` when it could not be judged).
    pub measured: String,
    /// Whether the check failed on it, as it must.
    pub failed: bool,
}

impl Results {
    /// A run's cases, not judged yet: the one way every command that runs cases (load-test, its shards' merge,
    /// measure) starts its results, so each writes the current [`SCHEMA`] and no verdict the judge did not make.
    pub fn unjudged(run: RunInfo, cases: Vec<Case>) -> Results {
        Results {
            schema: SCHEMA.to_string(),
            run,
            cases,
            verdicts: Vec::new(),
            without_baseline: Vec::new(),
        }
    }

    /// Reads and checks a results file, naming the file in any error.
    pub fn read(path: &Path) -> anyhow::Result<Results> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let results: Results = serde_json::from_str(&text).map_err(|error| {
            anyhow::anyhow!(
                "{}:{}:{}: not a memproof results file: {error}",
                path.display(),
                error.line(),
                error.column()
            )
        })?;
        match results.schema.as_str() {
            SCHEMA => Ok(results),
            SCHEMA_V1 => Ok(upgrade_v1(results)),
            other => anyhow::bail!(
                "{}: schema is {other:?}, expected {SCHEMA:?} (or {SCHEMA_V1:?})",
                path.display(),
            ),
        }
    }

    /// Writes the results, pretty-printed, replacing the file atomically.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        use anyhow::Context;
        let text = serde_json::to_string_pretty(self)?;
        let tmp = path.with_extension("json.tmp");
        if let Err(error) = std::fs::write(&tmp, text) {
            // A full disk leaves the last complete file in place and no half-written one beside it.
            let _ = std::fs::remove_file(&tmp);
            return Err(error).with_context(|| format!("{}: cannot write", path.display()));
        }
        std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(())
    }

    /// The cases of one scenario, in run order.
    pub fn scenario_cases<'a>(&'a self, scenario: &'a str) -> impl Iterator<Item = &'a Case> + 'a {
        self.cases
            .iter()
            .filter(move |case| case.scenario == scenario)
    }

    /// The cases that had a dhat profile run, each with why (`spec`, `all`, `failed: VERDICT-ID`): what the run
    /// prints at its end and the reports show, so a reader knows which allocation sites exist and why those.
    pub fn profiled(&self) -> impl Iterator<Item = (&Case, &str)> {
        self.cases.iter().filter_map(|case| {
            let reason = case.dhat_run.as_ref()?.reason.as_deref()?;
            Some((case, reason))
        })
    }
}

/// Who a case is, as opposed to what its run measured: the part of a [`Case`] its caller knows before the run.
#[derive(Debug, Clone)]
pub struct CaseIdentity {
    pub id: String,
    pub scenario: String,
    pub role: String,
    pub technique: Option<String>,
    /// The technique standing in for a fix, for a counterfactual case ([`Case::counterfactual`]).
    pub counterfactual: Option<String>,
    pub size: Size,
    pub limit_bytes: Option<u64>,
}

/// What a v1 role that names a counterfactual case starts with (v2 says it in [`Case::counterfactual`]).
const V1_COUNTERFACTUAL_PREFIX: &str = "counterfactual:";

/// The role a counterfactual case of `technique` is recorded under, `counterfactual:TECHNIQUE`, and, when the
/// counterfactual has params of its own, `+KEY=VALUE` for each (`counterfactual:never_flushes+ending=sigkill_restart`):
/// no spec role has a colon, so its case id cannot collide with a role's, nor two counterfactuals' with each other.
/// Readers ask [`Case::counterfactual`], never the role.
pub fn counterfactual_role(
    technique: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut role = format!("{V1_COUNTERFACTUAL_PREFIX}{technique}");
    for (key, value) in params {
        role.push_str(&format!("+{key}={}", param_text(value)));
    }
    role
}

/// A param's value as a person writes it: a string bare, anything else as JSON. Both a counterfactual's case role and
/// its name in a verdict's text spell its params so.
pub fn param_text(value: &serde_json::Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_string)
}

/// A v1 results file in v2's terms: the fields serde's aliases cannot carry over are recovered here, the one place
/// v1's text is read: a counterfactual case from its role's prefix, a regression verdict's change from its words.
pub fn upgrade_v1(mut results: Results) -> Results {
    for case in &mut results.cases {
        if case.counterfactual.is_none() {
            case.counterfactual = case
                .role
                .strip_prefix(V1_COUNTERFACTUAL_PREFIX)
                .map(str::to_string);
        }
    }
    for verdict in &mut results.verdicts {
        if verdict.kind == VerdictKind::Regression && verdict.change.is_none() {
            verdict.change = [Change::Regressed, Change::Improved, Change::WithinNoise]
                .into_iter()
                .find(|change| {
                    verdict
                        .text
                        .contains(&format!(": {} against", change.word()))
                });
        }
    }
    results.schema = SCHEMA.to_string();
    results
}

impl Case {
    /// The case id for a scenario, role and size, as results.json spells it.
    pub fn make_id(scenario: &str, role: &str, size: &Size) -> String {
        format!("{scenario}/{role}/{}={}", size.name, size.value)
    }
}

/// The numeric case fields of results.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseField {
    PeakRssBytes,
    PeakHeapBytes,
    TotalAllocBytes,
    AllocCount,
    EndHeapBytes,
    WallMs,
}

impl CaseField {
    /// Every field, in the order error messages list them.
    pub const ALL: [CaseField; 6] = [
        CaseField::PeakHeapBytes,
        CaseField::PeakRssBytes,
        CaseField::TotalAllocBytes,
        CaseField::AllocCount,
        CaseField::EndHeapBytes,
        CaseField::WallMs,
    ];

    /// The name results.json and specs use.
    pub fn name(self) -> &'static str {
        match self {
            CaseField::PeakRssBytes => "peak_rss_bytes",
            CaseField::PeakHeapBytes => "peak_heap_bytes",
            CaseField::TotalAllocBytes => "total_alloc_bytes",
            CaseField::AllocCount => "alloc_count",
            CaseField::EndHeapBytes => "end_heap_bytes",
            CaseField::WallMs => "wall_ms",
        }
    }

    /// The field's value in a case; `None` where results.json has `null`.
    pub fn value(self, case: &Case) -> Option<f64> {
        let bytes = match self {
            CaseField::PeakRssBytes => case.peak_rss_bytes,
            CaseField::PeakHeapBytes => case.peak_heap_bytes,
            CaseField::TotalAllocBytes => case.total_alloc_bytes,
            CaseField::AllocCount => case.alloc_count,
            CaseField::EndHeapBytes => case.end_heap_bytes,
            CaseField::WallMs => return Some(case.wall_ms),
        };
        bytes.map(|value| value as f64)
    }
}

/// Shard `index` of `count`, 1-based as people write it (`--shard 2/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("shard {text:?}: expected K/N with 1 <= K <= N, e.g. 2/8");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_words_round_trip_through_json() {
        for outcome in Outcome::ALL {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
        assert_eq!(Outcome::parse("killed"), None);
    }

    fn sample_results() -> Results {
        let size = Size {
            name: "records".into(),
            value: 400.0,
            unit: "records".into(),
        };
        Results {
            schema: SCHEMA.into(),
            run: RunInfo {
                started_at: "2026-11-23T16:00:00Z".into(),
                profile: "ci".into(),
                git_commit: None,
                jobs: 1,
                shard: None,
                invocation: None,
                host: Host {
                    os: "Linux".into(),
                    kernel: "6.1".into(),
                    cpus: 2,
                    memory_bytes: 1 << 34,
                    rustc: "rustc 1.95.0".into(),
                },
            },
            cases: vec![Case {
                counterfactual: None,
                id: Case::make_id("syslog-rate", "after", &size),
                scenario: "syslog-rate".into(),
                role: "after".into(),
                technique: Some("raw_prefix_scan".into()),
                size,
                outcome: Outcome::Ok,
                exit: Exit::default(),
                limit_bytes: None,
                limit: None,
                peak_rss_bytes: Some(1),
                peak_heap_bytes: None,
                total_alloc_bytes: None,
                alloc_count: None,
                end_heap_bytes: None,
                wall_ms: 1.0,
                timeline: vec![Sample {
                    t_ms: 0.0,
                    rss_bytes: Some(1),
                    heap_bytes: None,
                }],
                phases: vec![Phase {
                    name: "trim".into(),
                    heap_bytes: None,
                    t_ms: 0.0,
                }],
                metrics: BTreeMap::new(),
                dhat_file: None,
                dhat_run: None,
                tree: None,
                output: None,
                repeat: None,
            }],
            without_baseline: Vec::new(),
            verdicts: vec![Verdict {
                change: None,
                id: "a/b".into(),
                kind: VerdictKind::Claim,
                subject: "s".into(),
                text: "t".into(),
                expected: "e".into(),
                measured: "m".into(),
                pass: true,
                counterfactual: None,
            }],
        }
    }

    fn keys(value: &serde_json::Value) -> Vec<&str> {
        value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn results_carry_every_field_the_schema_names() {
        let json = serde_json::to_value(sample_results()).unwrap();
        let has_all = |value: &serde_json::Value, names: &[&str]| {
            let present = keys(value);
            for name in names {
                assert!(present.contains(name), "{name} missing from {present:?}");
            }
        };
        has_all(&json, &["schema", "run", "cases", "verdicts"]);
        has_all(
            &json["run"],
            &["started_at", "profile", "git_commit", "host"],
        );
        has_all(
            &json["run"]["host"],
            &["os", "kernel", "cpus", "memory_bytes", "rustc"],
        );
        let case = &json["cases"][0];
        has_all(
            case,
            &[
                "id",
                "scenario",
                "role",
                "size",
                "outcome",
                "exit",
                "limit_bytes",
                "peak_rss_bytes",
                "peak_heap_bytes",
                "total_alloc_bytes",
                "alloc_count",
                "end_heap_bytes",
                "wall_ms",
                "timeline",
                "phases",
                "metrics",
                "dhat_file",
            ],
        );
        has_all(&case["size"], &["name", "value", "unit"]);
        has_all(&case["exit"], &["code", "signal", "message"]);
        has_all(&case["timeline"][0], &["t_ms", "rss_bytes", "heap_bytes"]);
        has_all(&case["phases"][0], &["name", "t_ms"]);
        has_all(
            &json["verdicts"][0],
            &[
                "id", "kind", "subject", "text", "expected", "measured", "pass",
            ],
        );
        // Unknown heap figures are null, never zero.
        assert!(case["peak_heap_bytes"].is_null());
    }

    #[test]
    fn results_round_trip_through_a_file_and_a_wrong_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESULTS_FILE);
        let results = sample_results();
        results.write(&path).unwrap();
        assert_eq!(Results::read(&path).unwrap(), results);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(SCHEMA, "memproof.results/v0");
        std::fs::write(&path, text).unwrap();
        let error = Results::read(&path).unwrap_err().to_string();
        assert!(
            error.ends_with(
                "schema is \"memproof.results/v0\", expected \"memproof.results/v2\" (or \"memproof.results/v1\")"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_v1_file_reads_as_v2_with_its_roles_counterfactuals_dhat_runs_and_changes_named() {
        let mut results = sample_results();
        let mut counterfactual = results.cases[0].clone();
        counterfactual.role = counterfactual_role("undone", &serde_json::Map::new());
        counterfactual.counterfactual = Some("undone".into());
        results.cases.push(counterfactual);
        results.cases[0].dhat_file = Some("profiles/x.dhat.json".into());
        let mut regression = results.verdicts[0].clone();
        regression.kind = VerdictKind::Regression;
        regression.text =
            "toy/after/n=1 peak_heap_bytes: improved against the baseline: previously 2 MiB".into();
        regression.change = Some(Change::Improved);
        results.verdicts.push(regression);
        // v1 as it was written: the old names, no `counterfactual` or `change`.
        let mut v1 = serde_json::to_value(&results).unwrap();
        v1["schema"] = SCHEMA_V1.into();
        for case in v1["cases"].as_array_mut().unwrap() {
            let case = case.as_object_mut().unwrap();
            let role = case.remove("role").unwrap();
            case.insert("variant".into(), role);
            let file = case.remove("dhat_file").unwrap();
            case.insert("profile_file".into(), file);
            let run = case.remove("dhat_run").unwrap_or_default();
            case.insert("profile".into(), run);
            case.remove("counterfactual");
        }
        for verdict in v1["verdicts"].as_array_mut().unwrap() {
            verdict.as_object_mut().unwrap().remove("change");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESULTS_FILE);
        std::fs::write(&path, serde_json::to_string(&v1).unwrap()).unwrap();
        assert_eq!(Results::read(&path).unwrap(), results);
    }

    #[test]
    fn a_failed_write_names_the_file_and_keeps_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESULTS_FILE);
        let results = sample_results();
        results.write(&path).unwrap();
        // A directory where the temporary file would go makes the write fail as a full disk would.
        std::fs::create_dir(dir.path().join("results.json.tmp")).unwrap();
        let error = format!("{:#}", results.write(&path).unwrap_err());
        assert!(
            error.starts_with(&format!("{}: cannot write: ", path.display())),
            "{error}"
        );
        assert!(!error.contains('{'), "no debug dump: {error}");
        assert_eq!(Results::read(&path).unwrap(), results);
    }

    #[test]
    fn case_ids_name_scenario_variant_and_size() {
        let size = Size {
            name: "records".into(),
            value: 400.0,
            unit: "records".into(),
        };
        assert_eq!(
            Case::make_id("syslog-rate", "after", &size),
            "syslog-rate/after/records=400"
        );
    }
}
