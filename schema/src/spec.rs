//! Scenario specs: one TOML file per scenario in `scenarios/`, read by a reviewer as much as by memproof.
//!
//! TOML because a spec is reviewed in pull requests: it takes comments (the verdicts carry the PR's own words
//! beside the numbers), it has no significant indentation, and the `toml` crate reports every error with its
//! byte span, which becomes the `file:line:col` of the message.
//!
//! A spec names the roles (`before`, `after`, `best`) and the technique that plays each, the sizes and parameters of
//! each profile, the memory limit, and the verdicts. This module checks the shape; the verdict expressions are
//! checked by the judge (`memproof-reports`), which knows the metric names.
//!
//! ```toml
//! scenario = "syslog-rate"
//! seed = "A"
//! title = "Execution-history trim under syslog load"
//! summary = "Every 5th message fired a trim that JSON-parsed every stored record …"
//! variants = [
//!   { role = "before", technique = "parse_all" },
//!   { role = "after", technique = "raw_prefix_scan" },
//! ]
//! [profiles.ci]
//! limit = "1GiB"
//! timeout = "60s"
//! size = { name = "records", unit = "records", values = [200, 400, 800] }
//! params = { record_bytes = 300000 }
//!
//! [[verdicts]]
//! id = "prefix-scan-cuts-peak"
//! kind = "claim"
//! text = "the raw prefix scan cuts the trim's peak heap"
//! check = "before.peak_heap_bytes / after.peak_heap_bytes >= 10"
//!
//! # Only where a role's figures are not worth judging against a baseline: the roles judged, and for a role whose
//! # other figures follow the machine's load, the figures judged. Each figure's tolerance comes from its measured
//! # noise (`reports/noise.json`), never from the spec.
//! [regression]
//! roles = ["after", "best"]
//! figures = { after = ["peak_heap_bytes"] }
//! ```

use crate::external_command::{self, ExternalDriver, ExternalTechnique};
use crate::results::VerdictKind;
use anyhow::{Context as _, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// The profiles every scenario may define; `ci` is the default of `cargo xtask load-test`.
pub const PROFILES: [&str; 3] = ["smoke", "ci", "full"];

/// A scenario spec, checked.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Where it was read from, for error messages.
    pub path: PathBuf,
    pub scenario: String,
    /// The seed letter (A–D) the scenario replays, if any.
    pub seed: Option<String>,
    /// One line for headings.
    pub title: String,
    /// What the seed's bug was, in two lines, for the report.
    pub summary: String,
    /// Roles in the order reports list them, each with the technique that plays it.
    pub variants: Vec<Variant>,
    pub profiles: BTreeMap<String, Profile>,
    pub verdicts: Vec<VerdictSpec>,
    /// How regressions against a baseline are judged for this scenario.
    pub regression: RegressionSpec,
    /// Techniques played by programs of the user's own (`crate::external_command`), by technique name.
    pub external: BTreeMap<String, ExternalTechnique>,
    /// The program that produces the load of the external techniques, if any.
    pub driver: Option<ExternalDriver>,
    /// A command run once before the scenario's first case, outside every measurement, in the scenario's build
    /// directory (`{build_dir}`): a compiled program's build step.
    pub prepare: Option<ExternalDriver>,
}

/// Which roles, and which of their figures, a scenario's regression check judges. The tolerances are not the spec's
/// to set: each figure's comes from its measured noise (`reports/noise.json`, written by `cargo xtask noise`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegressionSpec {
    /// Only these roles are judged for regression; all when absent.
    pub roles: Option<Vec<String>>,
    /// For a role named here, only these figures ([`REGRESSION_FIGURES`]) are judged; every one for the others. For
    /// a role whose other figures follow what else the cores run (syslog-rate's merged fix: how many trim triggers
    /// coalesce sets its allocation count), so that it is judged on what does not.
    #[serde(default)]
    pub figures: BTreeMap<String, Vec<String>>,
}

/// The case figures a regression check can judge, by name (the judge's `JUDGED_FIELDS`; a test there keeps the two
/// lists one).
pub const REGRESSION_FIGURES: [&str; 5] = [
    "peak_heap_bytes",
    "peak_rss_bytes",
    "total_alloc_bytes",
    "alloc_count",
    "end_heap_bytes",
];

impl RegressionSpec {
    /// Whether any figure of `role` is judged.
    pub fn judges_role(&self, role: &str) -> bool {
        self.roles
            .as_ref()
            .is_none_or(|roles| roles.iter().any(|judged| judged == role))
    }

    /// Whether `role`'s figure `figure` (a name of [`REGRESSION_FIGURES`]) is judged.
    pub fn judges(&self, role: &str, figure: &str) -> bool {
        self.judges_role(role)
            && self
                .figures
                .get(role)
                .is_none_or(|figures| figures.iter().any(|judged| judged == figure))
    }
}

/// A role and the technique that plays it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub role: String,
    pub technique: String,
    /// The program that plays the technique, when it is not one of memproof's Rust cases.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// The role's own params, laid over the profile's for its cases ([`Spec::params_of`]): a role that needs
    /// another load than its technique's default (hook-storm's endings: a graceful shutdown, a SIGKILL, a pruned
    /// restart) declares it here instead of encoding it in its technique's name.
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    /// `(line, column)`, 1-based, of the role in the spec, so an error in its params points where it is written.
    #[serde(skip)]
    pub line_col: (usize, usize),
}

/// What one profile runs.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The memory limit of every case, enforced as the OOM killer would.
    pub limit_bytes: Option<u64>,
    /// How long a case may run before it is killed.
    pub timeout: Duration,
    pub size: SizeSweep,
    /// Parameters handed to every case of the profile.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// `(line, column)`, 1-based, of the `params` table in the spec (of the profile's name when it has none), so an
    /// error found in the params later, by the scenario that reads them, points where they are written.
    pub params_line_col: (usize, usize),
    /// Whether each role at the largest size also gets a dhat run (`dhat_runs`; v1 specs wrote `profile_runs`,
    /// which still reads).
    pub dhat_runs: bool,
    /// Roles to run in this profile; all when absent.
    pub roles: Option<Vec<String>>,
    /// Roles whose cases run several times, judged on the median (`repeat = { roles = ["before"], runs = 5 }`).
    pub repeat: Option<RepeatSpec>,
}

/// Roles whose figures spread by the nature of the bug (seed A's pile-up of trims), so one run is one sample:
/// their cases run `runs` times and every figure is the median (see `planning::repeat`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RepeatSpec {
    pub roles: Vec<String>,
    /// How many runs by default; `cargo xtask load-test --repeat N` overrides it.
    pub runs: u32,
    /// The sizes whose cases repeat (`at = [12]`); every size of the sweep when absent. Where the spread belongs to
    /// one size (startup's before at concurrency 12, 1.149x; 1.001x to 1.010x at the other three), repeating the
    /// others costs run time and buys nothing.
    #[serde(default)]
    pub at: Option<Vec<f64>>,
}

impl RepeatSpec {
    /// Whether a case of `role` at size `value` repeats.
    pub fn covers(&self, role: &str, value: f64) -> bool {
        self.roles.iter().any(|marked| marked == role)
            && self.at.as_ref().is_none_or(|sizes| sizes.contains(&value))
    }
}

/// The sizes a profile sweeps.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SizeSweep {
    pub name: String,
    pub unit: String,
    pub values: Vec<f64>,
}

/// The scenario every load test runs first and in every shard: the case whose figures are known in advance, so the
/// meters are checked before any other figure is believed.
pub const CALIBRATION_SCENARIO: &str = "calibration";

/// A verdict as written in a spec; the judge parses `check`.
#[derive(Debug, Clone)]
pub struct VerdictSpec {
    pub id: String,
    /// One of [`VerdictKind::WRITTEN_IN_SPECS`]: `budget`, `claim`, `outcome` or `growth`.
    pub kind: VerdictKind,
    /// The claim in words, quoted in reports.
    pub text: String,
    /// The expression, e.g. `before.peak_heap_bytes / after.peak_heap_bytes >= 30`.
    pub check: String,
    /// Where `check` stands in the spec, for error messages.
    pub check_line: usize,
    pub check_col: usize,
    /// At which size the verdict is judged; growth verdicts use the whole sweep.
    pub at: At,
    /// Profiles the verdict applies to; all when absent.
    pub profiles: Option<Vec<String>>,
    /// `true` for a finding: a claim recorded as refuted, which passes while it stays refuted.
    pub expect_refuted: bool,
    /// What the verdict must fail on to be evidence of its fix (see [`Counterfactual`]); `None` when the spec
    /// gives none (allowed only for verdicts that judge no fix: the judge's `check_specs` says which).
    pub counterfactual: Option<Counterfactual>,
}

/// The case a fix verdict must fail on: the fix minus the one change the verdict is about.
///
/// ```toml
/// counterfactual = { role = "after", technique = "raw_prefix_scan_fire_and_forget" }
/// counterfactual = { none = "every technique, before included, writes by atomic replace: no fix changed it" }
/// ```
///
/// `role` is the role of the check whose cases the counterfactual technique's cases stand in for (it defaults to
/// the check's one fix role). A technique that some role of the spec already plays (`before`'s, say) reuses that
/// role's cases; any other runs as cases of its own under `load-test --prove`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counterfactual {
    Technique {
        role: Option<String>,
        technique: String,
        /// Laid over the profile's params for the counterfactual's cases, as a role's are: the load the fix it
        /// stands in for runs under (hook-storm's `ending`).
        params: serde_json::Map<String, serde_json::Value>,
    },
    /// The verdict guards a behaviour no fix changed (it holds for `before` too): the reason, shown in reports.
    None { reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCounterfactual {
    role: Option<String>,
    technique: Option<String>,
    params: Option<toml::Table>,
    none: Option<String>,
}

/// The size a verdict is judged at.
#[derive(Debug, Clone, PartialEq)]
pub enum At {
    Largest,
    Smallest,
    /// Every size of the sweep must satisfy it.
    All,
    Value(f64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    scenario: String,
    seed: Option<String>,
    title: String,
    summary: String,
    variants: Spanned<Vec<RawVariant>>,
    profiles: BTreeMap<Spanned<String>, RawProfile>,
    #[serde(default)]
    verdicts: Vec<RawVerdict>,
    regression: Option<Spanned<RegressionSpec>>,
    #[serde(default)]
    techniques: BTreeMap<Spanned<String>, ExternalTechnique>,
    driver: Option<Spanned<ExternalDriver>>,
    prepare: Option<Spanned<ExternalDriver>>,
}

/// A [`Variant`] with the spans its errors point at.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    role: Spanned<String>,
    technique: Spanned<String>,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    params: Option<toml::Table>,
}

impl RawVariant {
    fn into_variant(self, text: &str) -> anyhow::Result<Variant> {
        Ok(Variant {
            line_col: line_col(text, self.role.span().start),
            role: self.role.into_inner(),
            technique: self.technique.into_inner(),
            command: self.command,
            params: json_map(self.params)?,
        })
    }
}

/// A TOML table as the JSON object a case is handed; an absent table is empty.
fn json_map(
    table: Option<toml::Table>,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    match table.map(serde_json::to_value).transpose()? {
        Some(serde_json::Value::Object(map)) => Ok(map),
        _ => Ok(serde_json::Map::new()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    limit: Option<String>,
    timeout: Option<String>,
    size: SizeSweep,
    params: Option<Spanned<toml::Table>>,
    #[serde(default = "default_true", alias = "profile_runs")]
    dhat_runs: bool,
    roles: Option<Vec<String>>,
    repeat: Option<RepeatSpec>,
}

fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerdict {
    id: String,
    kind: Spanned<String>,
    text: String,
    check: Spanned<String>,
    at: Option<toml::Value>,
    profiles: Option<Vec<String>>,
    expect: Option<String>,
    counterfactual: Option<RawCounterfactual>,
}

/// `line:col` (1-based) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    (line, col)
}

/// A spec's text and where it was read from: turns the parser's byte spans into the `{path}:{line}:{col}` that
/// starts every error.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn place(&self, span: Range<usize>) -> String {
        let (line, col) = line_col(self.text, span.start);
        format!("{}:{line}:{col}", self.path.display())
    }
}

impl VerdictSpec {
    /// `{spec path}:{line}:{col}` of the character `column_offset` into the verdict's `check`, where its errors
    /// point.
    pub fn place(&self, spec_path: &Path, column_offset: usize) -> String {
        format!(
            "{}:{}:{}",
            spec_path.display(),
            self.check_line,
            self.check_col + column_offset
        )
    }
}

impl Spec {
    /// Reads and checks one spec file.
    pub fn read(path: &Path) -> anyhow::Result<Spec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        Spec::parse(path, &text)
    }

    /// Checks a spec's text; errors read `{path}:{line}:{col}: {what was expected}`, the position taken from the
    /// span of the value at fault.
    pub fn parse(path: &Path, text: &str) -> anyhow::Result<Spec> {
        let source = Source { path, text };
        let raw: RawSpec = toml::from_str(text).map_err(|error| {
            let place = source.place(error.span().unwrap_or(0..0));
            anyhow::anyhow!("{place}: {}", error.message().trim_end())
        })?;
        check_roles(&source, &raw.variants)?;
        let roles: Vec<String> = raw
            .variants
            .get_ref()
            .iter()
            .map(|variant| variant.role.get_ref().clone())
            .collect();
        let external = external_techniques(&source, raw.variants.get_ref(), raw.techniques)?;
        check_driver(&source, raw.driver.as_ref(), &external)?;
        if let Some(prepare) = &raw.prepare {
            let place = source.place(prepare.span());
            external_command::check_prepare(&prepare.get_ref().command)
                .map_err(|error| anyhow::anyhow!("{place}: prepare: {error}"))?;
        }
        let profiles = check_profiles(&source, raw.profiles, &roles)?;
        let regression = check_regression(&source, raw.regression, &roles)?;
        let verdicts = check_verdicts(&source, raw.verdicts, &roles)?;
        Ok(Spec {
            path: path.to_path_buf(),
            scenario: raw.scenario,
            seed: raw.seed,
            title: raw.title,
            summary: raw.summary,
            variants: raw
                .variants
                .into_inner()
                .into_iter()
                .map(|variant| variant.into_variant(source.text))
                .collect::<anyhow::Result<_>>()?,
            profiles,
            verdicts,
            regression,
            external,
            driver: raw.driver.map(Spanned::into_inner),
            prepare: raw.prepare.map(Spanned::into_inner),
        })
    }
    /// The directory the spec file is in, absolute: `{spec_dir}` of its commands.
    pub fn dir(&self) -> std::io::Result<PathBuf> {
        std::path::absolute(self.path.parent().unwrap_or(Path::new(".")))
    }

    /// The program that plays `technique`, when it is not a Rust case.
    pub fn external_technique(&self, technique: &str) -> Option<&ExternalTechnique> {
        self.external.get(technique)
    }

    /// The techniques this spec plays (its roles' and its verdicts' counterfactuals') that are not commands: they
    /// run in memproof's own case binaries, which only memproof's checkout builds.
    pub fn built_in_techniques(&self) -> Vec<&str> {
        let counterfactuals = self
            .verdicts
            .iter()
            .filter_map(|v| match &v.counterfactual {
                Some(Counterfactual::Technique { technique, .. }) => Some(technique.as_str()),
                _ => None,
            });
        let mut built_in: Vec<&str> = self
            .variants
            .iter()
            .map(|v| v.technique.as_str())
            .chain(counterfactuals)
            .filter(|technique| !self.external.contains_key(*technique))
            .collect();
        built_in.sort_unstable();
        built_in.dedup();
        built_in
    }

    /// The technique that plays `role`.
    pub fn technique(&self, role: &str) -> Option<&str> {
        self.variants
            .iter()
            .find(|v| v.role == role)
            .map(|v| v.technique.as_str())
    }

    /// The role that plays `technique` under the same own params, if one does (its cases then stand for the
    /// technique: a counterfactual some role already plays needs no cases of its own).
    pub fn role_playing(
        &self,
        technique: &str,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<&str> {
        self.variants
            .iter()
            .find(|v| v.technique == technique && v.params == *params)
            .map(|v| v.role.as_str())
    }

    /// The params a case of `variant` gets in `profile`: the profile's, with the role's own laid over them.
    pub fn params_of(
        profile: &Profile,
        own: &serde_json::Map<String, serde_json::Value>,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut params = profile.params.clone();
        params.extend(own.clone());
        params
    }

    /// The roles that run in `profile`, in spec order.
    pub fn roles_in(&self, profile: &Profile) -> Vec<&Variant> {
        self.variants
            .iter()
            .filter(|v| {
                profile
                    .roles
                    .as_ref()
                    .is_none_or(|roles| roles.contains(&v.role))
            })
            .collect()
    }

    /// The verdicts that apply to `profile`.
    pub fn verdicts_for<'a>(
        &'a self,
        profile: &'a str,
    ) -> impl Iterator<Item = &'a VerdictSpec> + 'a {
        self.verdicts.iter().filter(move |v| {
            v.profiles
                .as_ref()
                .is_none_or(|p| p.iter().any(|name| name == profile))
        })
    }
}

/// At least one variant, and no role given twice (the error points at the second).
fn check_roles(source: &Source, variants: &Spanned<Vec<RawVariant>>) -> anyhow::Result<()> {
    if variants.get_ref().is_empty() {
        bail!(
            "{}: expected at least one variant",
            source.place(variants.span())
        );
    }
    for (index, variant) in variants.get_ref().iter().enumerate() {
        let role = variant.role.get_ref();
        if variants.get_ref()[..index]
            .iter()
            .any(|earlier| earlier.role.get_ref() == role)
        {
            bail!(
                "{}: role {role:?} is given twice",
                source.place(variant.role.span())
            );
        }
    }
    Ok(())
}

/// The external techniques of a spec: commands given on variants and in `[techniques.NAME]` tables, checked.
fn external_techniques(
    source: &Source,
    variants: &[RawVariant],
    tables: BTreeMap<Spanned<String>, ExternalTechnique>,
) -> anyhow::Result<BTreeMap<String, ExternalTechnique>> {
    let mut external = BTreeMap::new();
    for (name, technique) in tables {
        let place = source.place(name.span());
        let name = name.into_inner();
        external_command::check_command(&technique.command)
            .map_err(|error| anyhow::anyhow!("{place}: technique {name}: {error}"))?;
        if !variants.iter().any(|v| *v.technique.get_ref() == name) {
            bail!("{place}: technique {name}: no variant plays it");
        }
        external.insert(name, technique);
    }
    for variant in variants {
        let Some(command) = &variant.command else {
            continue;
        };
        let place = source.place(variant.technique.span());
        let technique = variant.technique.get_ref();
        if external.contains_key(technique) {
            bail!(
                "{place}: technique {technique}: a command on the variant and a [techniques.{technique}] table: expected one"
            );
        }
        external_command::check_command(command)
            .map_err(|error| anyhow::anyhow!("{place}: technique {technique}: {error}"))?;
        external.insert(
            technique.clone(),
            ExternalTechnique {
                command: command.clone(),
                heap: Default::default(),
                env: Default::default(),
            },
        );
    }
    Ok(external)
}

/// A `[driver]` has a well-formed command and an external technique to drive.
fn check_driver(
    source: &Source,
    driver: Option<&Spanned<ExternalDriver>>,
    external: &BTreeMap<String, ExternalTechnique>,
) -> anyhow::Result<()> {
    let Some(driver) = driver else {
        return Ok(());
    };
    let place = source.place(driver.span());
    external_command::check_command(&driver.get_ref().command)
        .map_err(|error| anyhow::anyhow!("{place}: driver: {error}"))?;
    if external.is_empty() {
        bail!("{place}: driver: expected a technique with a command for it to drive");
    }
    Ok(())
}

/// Every profile: a known name, a limit and timeout that parse, at least one size, known roles.
fn check_profiles(
    source: &Source,
    raw: BTreeMap<Spanned<String>, RawProfile>,
    roles: &[String],
) -> anyhow::Result<BTreeMap<String, Profile>> {
    let mut profiles = BTreeMap::new();
    for (name, profile) in raw {
        let place = source.place(name.span());
        let name_at = name.span().start;
        let name = name.into_inner();
        if !PROFILES.contains(&name.as_str()) {
            bail!(
                "{place}: unknown profile {name:?}: expected one of {}",
                PROFILES.join(", ")
            );
        }
        let params_at = profile
            .params
            .as_ref()
            .map_or(name_at, |params| params.span().start);
        let params_line_col = line_col(source.text, params_at);
        let profile = check_profile(profile, roles, params_line_col)
            .map_err(|error| anyhow::anyhow!("{place}: profile {name}: {error}"))?;
        profiles.insert(name, profile);
    }
    Ok(profiles)
}

/// One profile's values, its `params` table at `params_line_col`; the error is what follows `profile NAME: `.
fn check_profile(
    profile: RawProfile,
    roles: &[String],
    params_line_col: (usize, usize),
) -> anyhow::Result<Profile> {
    let limit_bytes = profile
        .limit
        .as_deref()
        .map(crate::units::parse_size)
        .transpose()?;
    let timeout = crate::units::parse_duration(profile.timeout.as_deref().unwrap_or("120s"))?;
    if profile.size.values.is_empty() {
        bail!("expected at least one size value");
    }
    if let Some(wanted) = &profile.roles {
        check_known_roles(wanted, roles, "")?;
    }
    if let Some(repeat) = &profile.repeat {
        if repeat.runs == 0 {
            bail!("repeat.runs = 0: expected 1 or more");
        }
        check_known_roles(&repeat.roles, roles, "repeat: ")?;
        if let Some(size) = repeat
            .at
            .iter()
            .flatten()
            .find(|size| !profile.size.values.contains(size))
        {
            let sweep: Vec<String> = profile.size.values.iter().map(f64::to_string).collect();
            bail!(
                "repeat.at = {size}: expected one of the sweep's sizes ({})",
                sweep.join(", ")
            );
        }
    }
    let params = serde_json::to_value(profile.params.map(Spanned::into_inner).unwrap_or_default())?
        .as_object()
        .cloned()
        .unwrap_or_default();
    Ok(Profile {
        limit_bytes,
        timeout,
        size: profile.size,
        params,
        params_line_col,
        dhat_runs: profile.dhat_runs,
        roles: profile.roles,
        repeat: profile.repeat,
    })
}

/// Every role of `wanted` is one of the spec's; the error reads `{context}unknown role "x": expected one of …`.
fn check_known_roles(wanted: &[String], roles: &[String], context: &str) -> anyhow::Result<()> {
    match wanted.iter().find(|role| !roles.contains(role)) {
        Some(unknown) => bail!(
            "{context}unknown role {unknown:?}: expected one of {}",
            roles.join(", ")
        ),
        None => Ok(()),
    }
}

/// The `[regression]` table names known roles only, and for `figures` judged roles and known figures.
fn check_regression(
    source: &Source,
    regression: Option<Spanned<RegressionSpec>>,
    roles: &[String],
) -> anyhow::Result<RegressionSpec> {
    let Some(regression) = regression else {
        return Ok(RegressionSpec::default());
    };
    let here =
        |error: anyhow::Error| anyhow::anyhow!("{}: {error}", source.place(regression.span()));
    let spec = regression.get_ref();
    if let Some(wanted) = &spec.roles {
        check_known_roles(wanted, roles, "regression: ").map_err(here)?;
    }
    for (role, figures) in &spec.figures {
        check_known_roles(std::slice::from_ref(role), roles, "regression.figures: ")
            .map_err(here)?;
        if !spec.judges_role(role) {
            return Err(here(anyhow::anyhow!(
                "regression.figures: role {role:?} is not in regression.roles, so none of its figures is judged"
            )));
        }
        if figures.is_empty() {
            return Err(here(anyhow::anyhow!(
                "regression.figures: {role} = []: expected at least one figure (leave the role out of regression.roles to judge none)"
            )));
        }
        if let Some(unknown) = figures
            .iter()
            .find(|f| !REGRESSION_FIGURES.contains(&f.as_str()))
        {
            return Err(here(anyhow::anyhow!(
                "regression.figures: {role}: unknown figure {unknown:?}: expected one of {}",
                REGRESSION_FIGURES.join(", ")
            )));
        }
    }
    Ok(regression.into_inner())
}

/// Every verdict, in spec order: a unique id, and `at`, `expect`, `profiles` and `counterfactual` that read.
/// Errors point at the verdict's `check`, the line a reader looks for.
fn check_verdicts(
    source: &Source,
    raw: Vec<RawVerdict>,
    roles: &[String],
) -> anyhow::Result<Vec<VerdictSpec>> {
    let mut verdicts: Vec<VerdictSpec> = Vec::new();
    for verdict in raw {
        // One past the opening quote: the expression's first character, which the judge's columns count from.
        let (check_line, check_col) = line_col(source.text, verdict.check.span().start + 1);
        let here = format!("{}:{check_line}:{check_col}", source.path.display());
        if verdicts.iter().any(|seen| seen.id == verdict.id) {
            bail!("{here}: verdict id {:?} is given twice", verdict.id);
        }
        let id = verdict.id;
        let in_verdict = |error: anyhow::Error| anyhow::anyhow!("{here}: verdict {id}: {error}");
        let Some(kind) = VerdictKind::WRITTEN_IN_SPECS
            .into_iter()
            .find(|kind| kind.as_str() == verdict.kind.get_ref())
        else {
            let (line, col) = line_col(source.text, verdict.kind.span().start);
            let written: Vec<&str> = VerdictKind::WRITTEN_IN_SPECS
                .iter()
                .map(|kind| kind.as_str())
                .collect();
            bail!(
                "{}:{line}:{col}: verdict {id}: kind {:?}: expected one of {}",
                source.path.display(),
                verdict.kind.get_ref(),
                written.join(", ")
            );
        };
        let at = parse_at(verdict.at.as_ref()).map_err(in_verdict)?;
        let expect_refuted = parse_expect(verdict.expect.as_deref()).map_err(in_verdict)?;
        if let Some(wanted) = &verdict.profiles
            && let Some(unknown) = wanted.iter().find(|p| !PROFILES.contains(&p.as_str()))
        {
            return Err(in_verdict(anyhow::anyhow!(
                "unknown profile {unknown:?}: expected one of {}",
                PROFILES.join(", ")
            )));
        }
        let counterfactual = verdict
            .counterfactual
            .map(|raw| parse_counterfactual(raw, roles))
            .transpose()
            .map_err(in_verdict)?;
        verdicts.push(VerdictSpec {
            id,
            kind,
            text: verdict.text,
            check: verdict.check.into_inner(),
            check_line,
            check_col,
            at,
            profiles: verdict.profiles,
            expect_refuted,
            counterfactual,
        });
    }
    Ok(verdicts)
}

/// A verdict's `at`: a word or a size value; `largest` when absent.
fn parse_at(at: Option<&toml::Value>) -> anyhow::Result<At> {
    const EXPECTED: &str = "expected \"largest\", \"smallest\", \"all\" or a size value";
    Ok(match at {
        None => At::Largest,
        Some(toml::Value::String(word)) => match word.as_str() {
            "largest" => At::Largest,
            "smallest" => At::Smallest,
            "all" => At::All,
            other => bail!("at = {other:?}: {EXPECTED}"),
        },
        Some(toml::Value::Integer(value)) => At::Value(*value as f64),
        Some(toml::Value::Float(value)) => At::Value(*value),
        Some(other) => bail!("at = {other}: {EXPECTED}"),
    })
}

/// A verdict's `expect`: whether it is a finding recorded as refuted.
fn parse_expect(expect: Option<&str>) -> anyhow::Result<bool> {
    match expect {
        None | Some("holds") => Ok(false),
        Some("refuted") => Ok(true),
        Some(other) => bail!("expect = {other:?}: expected \"holds\" or \"refuted\""),
    }
}

/// A verdict's `counterfactual`: a technique (with a known role, if given) or the reason there is none.
fn parse_counterfactual(
    raw: RawCounterfactual,
    roles: &[String],
) -> anyhow::Result<Counterfactual> {
    match raw {
        RawCounterfactual {
            role,
            technique: Some(technique),
            params,
            none: None,
        } if !technique.is_empty() => {
            if let Some(role) = &role
                && !roles.contains(role)
            {
                bail!(
                    "counterfactual role {role:?}: expected one of {}",
                    roles.join(", ")
                );
            }
            Ok(Counterfactual::Technique {
                role,
                technique,
                params: json_map(params)?,
            })
        }
        RawCounterfactual {
            role: None,
            technique: None,
            params: None,
            none: Some(reason),
        } if !reason.trim().is_empty() => Ok(Counterfactual::None { reason }),
        _ => bail!(
            "counterfactual: expected {{ technique = \"...\" }} (optionally with role = \"...\" and params = {{ ... }}) or {{ none = \"why no fix is judged\" }}"
        ),
    }
}

/// Reads every `*.toml` spec in `dir`, sorted by scenario name.
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<Spec>> {
    let mut specs = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the spec directory", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "toml")
            && path.file_name().is_some_and(|n| n != "Cargo.toml")
        {
            specs.push(Spec::read(&path)?);
        }
    }
    specs.sort_by(|a, b| a.scenario.cmp(&b.scenario));
    for pair in specs.windows(2) {
        if pair[0].scenario == pair[1].scenario {
            bail!(
                "{}: scenario {:?} is also defined in {}",
                pair[1].path.display(),
                pair[1].scenario,
                pair[0].path.display()
            );
        }
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toy_spec::{toy_spec, verdict};

    /// The spec every test here changes one part of; a position in an error counts its lines from 1, blank.
    fn good() -> String {
        let profile = r#"[profiles.ci]
limit = "64MiB"
timeout = "10s"
size = { name = "items", unit = "items", values = [10, 20, 40] }
params = { item_bytes = 1000 }

"#;
        let cuts = verdict(
            "cuts",
            "claim",
            "streaming cuts the peak",
            "before.peak_heap_bytes / after.peak_heap_bytes >= 3",
        );
        toy_spec(
            "toy",
            &[("before", "copy_all"), ("after", "stream")],
            &format!("{profile}{cuts}"),
        )
    }

    fn check_error(text: &str, expected: &str) {
        let error = Spec::parse(Path::new("scenarios/toy.toml"), text)
            .unwrap_err()
            .to_string();
        assert_eq!(error, expected);
    }

    #[test]
    fn external_commands_read_from_variants_and_technique_tables() {
        let text = r#"
scenario = "toy"
title = "A toy"
summary = "It allocates."
variants = [
  { role = "before", technique = "whole", command = ["python3", "{spec_dir}/s.py", "whole", "{size}"] },
  { role = "after", technique = "stream" },
]
[techniques.stream]
command = ["./stream", "{param.clients}"]
heap = "preload"
[driver]
command = ["python3", "{spec_dir}/d.py"]
[profiles.ci]
size = { name = "n", unit = "bytes", values = [10] }
params = { clients = 2 }
"#;
        let spec = Spec::parse(Path::new("toy.toml"), text).unwrap();
        let whole = spec.external_technique("whole").unwrap();
        assert_eq!(whole.command[3], "{size}");
        assert_eq!(whole.heap, external_command::HeapFrom::Probe);
        let stream = spec.external_technique("stream").unwrap();
        assert_eq!(stream.heap, external_command::HeapFrom::Preload);
        assert_eq!(spec.driver.unwrap().command[0], "python3");
        assert!(
            Spec::parse(Path::new("toy.toml"), &good())
                .unwrap()
                .external
                .is_empty()
        );
    }

    #[test]
    fn bad_external_commands_name_the_spot() {
        let with = |variants: &str, tail: &str| {
            format!(
                "scenario = \"toy\"\ntitle = \"t\"\nsummary = \"s\"\nvariants = [{variants}]\n{tail}\n[profiles.ci]\nsize = {{ name = \"n\", unit = \"b\", values = [1] }}\n"
            )
        };
        check_error(
            &with(r#"{ role = "before", technique = "a", command = [] }"#, ""),
            "scenarios/toy.toml:4:44: technique a: command: expected a program and its arguments, e.g. [\"python3\", \"server.py\"]",
        );
        check_error(
            &with(
                r#"{ role = "before", technique = "a" }"#,
                "[techniques.b]\ncommand = [\"x\"]",
            ),
            "scenarios/toy.toml:5:13: technique b: no variant plays it",
        );
        check_error(
            &with(
                r#"{ role = "before", technique = "a" }"#,
                "[driver]\ncommand = [\"x\"]",
            ),
            "scenarios/toy.toml:5:1: driver: expected a technique with a command for it to drive",
        );
        check_error(
            &with(
                r#"{ role = "before", technique = "a", command = ["x", "{sise}"] }"#,
                "",
            ),
            "scenarios/toy.toml:4:44: technique a: command: unknown placeholder {sise}: expected one of {size}, {size_name}, {params}, {role}, {technique}, {work_dir}, {spec_dir}, {build_dir}, or {param.NAME}",
        );
    }

    #[test]
    fn a_profiles_params_keep_where_they_are_written() {
        let text = r#"
scenario = "toy"
title = "t"
summary = "s"
variants = [{ role = "before", technique = "a" }]
[profiles.ci]
size = { name = "n", unit = "b", values = [1] }
params = { steps = 4, hold = "50ms" }
[profiles.smoke]
size = { name = "n", unit = "b", values = [1] }
[profiles.full]
size = { name = "n", unit = "b", values = [1] }
params.steps = 8
"#;
        let spec = Spec::parse(Path::new("toy.toml"), text).unwrap();
        // The inline table's opening brace.
        assert_eq!(spec.profiles["ci"].params_line_col, (8, 10));
        assert_eq!(
            spec.profiles["ci"].params["hold"],
            serde_json::json!("50ms")
        );
        // No params: the profile's name, where they would be written.
        assert_eq!(spec.profiles["smoke"].params_line_col, (9, 11));
        assert!(spec.profiles["smoke"].params.is_empty());
        // Dotted keys (`params.steps = 8`): the first of them.
        assert_eq!(spec.profiles["full"].params_line_col, (13, 1));
        assert_eq!(spec.profiles["full"].params["steps"], serde_json::json!(8));
    }

    #[test]
    fn a_good_spec_reads_whole() {
        let spec = Spec::parse(Path::new("toy.toml"), &good()).unwrap();
        assert_eq!(spec.scenario, "toy");
        assert_eq!(spec.technique("after"), Some("stream"));
        let ci = &spec.profiles["ci"];
        assert_eq!(ci.limit_bytes, Some(64 << 20));
        assert_eq!(ci.timeout, Duration::from_secs(10));
        assert_eq!(ci.size.values, vec![10.0, 20.0, 40.0]);
        assert_eq!(ci.params["item_bytes"], serde_json::json!(1000));
        assert!(ci.dhat_runs);
        let verdict = &spec.verdicts[0];
        assert_eq!(verdict.at, At::Largest);
        assert_eq!((verdict.check_line, verdict.check_col), (19, 10));
    }

    #[test]
    fn an_unknown_verdict_kind_points_at_the_kind() {
        let text = good().replace("kind = \"claim\"", "kind = \"ratio\"");
        let error = Spec::parse(Path::new("scenarios/toy.toml"), &text)
            .unwrap_err()
            .to_string();
        let line = text
            .lines()
            .position(|line| line.starts_with("kind = \"ratio\""))
            .unwrap()
            + 1;
        assert_eq!(
            error,
            format!(
                "scenarios/toy.toml:{line}:8: verdict cuts: kind \"ratio\": expected one of budget, claim, outcome, growth"
            )
        );
    }

    #[test]
    fn a_role_given_twice_points_at_the_second() {
        let text = good().replace(
            "  { role = \"after\", technique = \"stream\" },\n",
            "  { role = \"after\", technique = \"stream\" },\n  { role = \"before\", technique = \"copy_some\" },\n",
        );
        check_error(
            &text,
            "scenarios/toy.toml:8:12: role \"before\" is given twice",
        );
    }

    #[test]
    fn no_variant_is_an_error_at_the_list() {
        let text = good().replace(
            "variants = [\n  { role = \"before\", technique = \"copy_all\" },\n  { role = \"after\", technique = \"stream\" },\n]",
            "variants = []",
        );
        check_error(
            &text,
            "scenarios/toy.toml:5:12: expected at least one variant",
        );
    }

    #[test]
    fn a_syntax_error_names_file_line_and_column() {
        check_error(
            "scenario = \"toy\"\ntitle = \n",
            "scenarios/toy.toml:2:9: string values must be quoted, expected literal string",
        );
    }

    #[test]
    fn an_unknown_field_is_named_with_the_ones_expected() {
        let text = good().replace("timeout = \"10s\"", "timeot = \"10s\"");
        let error = Spec::parse(Path::new("scenarios/toy.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("scenarios/toy.toml:11:1: unknown field `timeot`, expected one of"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_limit_quotes_the_value() {
        let text = good().replace("\"64MiB\"", "\"64 mebibytes\"");
        let error = Spec::parse(Path::new("scenarios/toy.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "scenarios/toy.toml:9:11: profile ci: size \"64 mebibytes\" is not valid"
            ),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_profile_lists_the_known_ones() {
        let text = good().replace("[profiles.ci]", "[profiles.nightly]");
        check_error(
            &text,
            "scenarios/toy.toml:9:11: unknown profile \"nightly\": expected one of smoke, ci, full",
        );
    }

    #[test]
    fn a_regression_table_names_known_roles_only_and_no_tolerance() {
        let good = good();
        let text = format!("{good}\n[regression]\nroles = [\"after\"]\n");
        let spec = Spec::parse(Path::new("toy.toml"), &text).unwrap();
        assert_eq!(spec.regression.roles, Some(vec!["after".to_string()]));
        let text = format!("{good}\n[regression]\nheap = 0.5\n");
        let error = Spec::parse(Path::new("toy.toml"), &text).unwrap_err();
        assert!(
            format!("{error:#}").contains("unknown field `heap`"),
            "{error:#}"
        );
        let text = format!("{good}\n[regression]\nroles = [\"best\"]\n");
        check_error(
            &text,
            "scenarios/toy.toml:21:1: regression: unknown role \"best\": expected one of before, after",
        );
    }

    #[test]
    fn a_regression_table_narrows_a_judged_roles_figures_to_known_ones() {
        let good = good();
        let table =
            "[regression]\nroles = [\"after\"]\nfigures = { after = [\"peak_heap_bytes\"] }\n";
        let spec = Spec::parse(Path::new("toy.toml"), &format!("{good}\n{table}")).unwrap();
        assert!(spec.regression.judges("after", "peak_heap_bytes"));
        assert!(!spec.regression.judges("after", "alloc_count"));
        assert!(!spec.regression.judges("before", "peak_heap_bytes"));
        // Without `roles`, every role is judged, and a role without `figures` on every figure.
        let table = "[regression]\nfigures = { after = [\"peak_rss_bytes\"] }\n";
        let spec = Spec::parse(Path::new("toy.toml"), &format!("{good}\n{table}")).unwrap();
        assert!(spec.regression.judges("before", "alloc_count"));
        assert!(!spec.regression.judges("after", "peak_heap_bytes"));
        for (table, error) in [
            (
                "roles = [\"before\"]\nfigures = { after = [\"peak_heap_bytes\"] }",
                "regression.figures: role \"after\" is not in regression.roles, so none of its figures is judged",
            ),
            (
                "figures = { after = [\"peak_heap\"] }",
                "regression.figures: after: unknown figure \"peak_heap\": expected one of peak_heap_bytes, peak_rss_bytes, total_alloc_bytes, alloc_count, end_heap_bytes",
            ),
            (
                "figures = { best = [\"peak_heap_bytes\"] }",
                "regression.figures: unknown role \"best\": expected one of before, after",
            ),
            (
                "figures = { after = [] }",
                "regression.figures: after = []: expected at least one figure (leave the role out of regression.roles to judge none)",
            ),
        ] {
            check_error(
                &format!("{good}\n[regression]\n{table}\n"),
                &format!("scenarios/toy.toml:21:1: {error}"),
            );
        }
    }

    #[test]
    fn a_profile_repeats_known_roles_only() {
        let text = good().replace(
            "params = { item_bytes = 1000 }",
            "params = { item_bytes = 1000 }\nrepeat = { roles = [\"before\"], runs = 5 }",
        );
        let spec = Spec::parse(Path::new("toy.toml"), &text).unwrap();
        let repeat = spec.profiles["ci"].repeat.clone().unwrap();
        assert_eq!(
            (&repeat.roles[..], repeat.runs),
            (&["before".to_string()][..], 5)
        );
        check_error(
            &text.replace("[\"before\"]", "[\"best\"]"),
            "scenarios/toy.toml:9:11: profile ci: repeat: unknown role \"best\": expected one of before, after",
        );
        check_error(
            &text.replace("runs = 5", "runs = 0"),
            "scenarios/toy.toml:9:11: profile ci: repeat.runs = 0: expected 1 or more",
        );
        assert!(repeat.covers("before", 20.0) && !repeat.covers("after", 20.0));
        let at_20 = text.replace("runs = 5", "runs = 5, at = [20]");
        let repeat = Spec::parse(Path::new("toy.toml"), &at_20).unwrap().profiles["ci"]
            .repeat
            .clone()
            .unwrap();
        assert!(repeat.covers("before", 20.0) && !repeat.covers("before", 10.0));
        check_error(
            &text.replace("runs = 5", "runs = 5, at = [25]"),
            "scenarios/toy.toml:9:11: profile ci: repeat.at = 25: expected one of the sweep's sizes (10, 20, 40)",
        );
    }

    #[test]
    fn a_counterfactual_reads_as_a_technique_or_a_reason_and_nothing_else() {
        let good = good();
        let text =
            format!("{good}counterfactual = {{ role = \"after\", technique = \"copy_some\" }}\n");
        let spec = Spec::parse(Path::new("toy.toml"), &text).unwrap();
        assert_eq!(
            spec.verdicts[0].counterfactual,
            Some(Counterfactual::Technique {
                role: Some("after".into()),
                technique: "copy_some".into(),
                params: serde_json::Map::new(),
            })
        );
        assert_eq!(
            spec.role_playing("copy_all", &serde_json::Map::new()),
            Some("before")
        );
        // A counterfactual with params of its own, and a role with its own: each laid over the profile's.
        let text = good.replace(
            "{ role = \"after\", technique = \"stream\" }",
            "{ role = \"after\", technique = \"stream\", params = { item_bytes = 5 } }",
        ) + "counterfactual = { technique = \"copy_some\", params = { item_bytes = 7 } }\n";
        let spec = Spec::parse(Path::new("toy.toml"), &text).unwrap();
        let Some(Counterfactual::Technique { params, .. }) = &spec.verdicts[0].counterfactual
        else {
            panic!("{:?}", spec.verdicts[0].counterfactual);
        };
        assert_eq!(params["item_bytes"], 7);
        let ci = &spec.profiles["ci"];
        let after = &spec.variants[1];
        assert_eq!(Spec::params_of(ci, &after.params)["item_bytes"], 5);
        assert_eq!(
            Spec::params_of(ci, &spec.variants[0].params)["item_bytes"],
            1000
        );
        assert_eq!(spec.role_playing("stream", &after.params), Some("after"));
        assert_eq!(spec.role_playing("stream", &serde_json::Map::new()), None);
        let text = format!("{good}counterfactual = {{ none = \"no fix changed it\" }}\n");
        let spec = Spec::parse(Path::new("toy.toml"), &text).unwrap();
        assert_eq!(
            spec.verdicts[0].counterfactual,
            Some(Counterfactual::None {
                reason: "no fix changed it".into()
            })
        );
        let both =
            format!("{good}counterfactual = {{ technique = \"copy_some\", none = \"why\" }}\n");
        check_error(
            &both,
            "scenarios/toy.toml:19:10: verdict cuts: counterfactual: expected { technique = \"...\" } (optionally with role = \"...\" and params = { ... }) or { none = \"why no fix is judged\" }",
        );
        let unknown_role =
            format!("{good}counterfactual = {{ role = \"best\", technique = \"copy_some\" }}\n");
        check_error(
            &unknown_role,
            "scenarios/toy.toml:19:10: verdict cuts: counterfactual role \"best\": expected one of before, after",
        );
    }

    #[test]
    fn a_refuted_finding_and_an_explicit_size_read() {
        let good = good();
        let text = format!("{good}at = 20\nexpect = \"refuted\"\n");
        let spec = Spec::parse(Path::new("toy.toml"), &text).unwrap();
        assert_eq!(spec.verdicts[0].at, At::Value(20.0));
        assert!(spec.verdicts[0].expect_refuted);
        let text = format!("{good}expect = \"maybe\"\n");
        check_error(
            &text,
            "scenarios/toy.toml:19:10: verdict cuts: expect = \"maybe\": expected \"holds\" or \"refuted\"",
        );
    }
}
