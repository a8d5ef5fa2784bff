//! Everything a run checks before its first case, so that a bad flag, a missing or broken baseline, or a busy
//! output directory is an error in the first second, not after an hour on `full` with nothing kept.

use crate::home::SpecHome;
use anyhow::{Context as _, bail};
use planning::suite::PlannedCase;
use schema::results::Results;
use schema::spec::Spec;
use schema::units::format_bytes;
use std::path::Path;
use std::time::Duration;

/// The shortest poll or sample interval: below it a poll loop is a busy loop on a core.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// A memory limit above this many times the machine's memory could never be reached without swap: it is a typo.
pub const LIMIT_MEMORY_FACTOR: u64 = 2;

/// An interval flag is at least [`MIN_INTERVAL`].
pub fn check_interval(flag: &str, interval: Duration) -> anyhow::Result<()> {
    if interval < MIN_INTERVAL {
        bail!(
            "{flag} {} is too short: expected at least 1ms (a shorter poll is a busy loop on a core)",
            seconds(interval)
        );
    }
    Ok(())
}

/// A timeout is longer than the poll interval, or the first poll would already be past it.
pub fn check_timeout(timeout: Duration, interval: Duration) -> anyhow::Result<()> {
    if timeout <= interval {
        bail!(
            "--timeout {} is not longer than --interval {}: expected a timeout longer than the poll interval",
            seconds(timeout),
            seconds(interval)
        );
    }
    Ok(())
}

/// A memory limit is above zero and at most [`LIMIT_MEMORY_FACTOR`] times the machine's memory.
pub fn check_limit(limit_bytes: u64, machine_memory_bytes: u64) -> anyhow::Result<()> {
    if limit_bytes == 0 {
        bail!("--limit 0 is not a limit: expected a size above zero, e.g. `512MiB`");
    }
    let most = machine_memory_bytes.saturating_mul(LIMIT_MEMORY_FACTOR);
    if machine_memory_bytes > 0 && limit_bytes > most {
        bail!(
            "--limit {} is too large: expected at most {LIMIT_MEMORY_FACTOR} times this machine's memory ({}), since no process tree could reach it",
            format_bytes(limit_bytes as f64),
            format_bytes(most as f64)
        );
    }
    Ok(())
}

fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}

/// The baseline a load test judges regressions against, read and checked before any case runs.
///
/// `explicit` is the `--baseline` flag: a path given there that does not exist is an error. Without it, the
/// baseline beside the specs (`home.baseline`) is used when it exists. A baseline that is not a memproof results
/// file (bad JSON, wrong schema) is an error either way. A baseline of another profile is set aside with a note:
/// case ids name the size, not the profile, so only a baseline of this profile can judge this run.
pub fn baseline(
    explicit: Option<&Path>,
    home: &SpecHome,
    profile: &str,
    out_dir: &Path,
) -> anyhow::Result<Option<Results>> {
    let path = explicit.unwrap_or(&home.baseline);
    let bless = |from: &Path| {
        let mut command = home.command("bless");
        command.push_str(&format!(" --from {}", from.display()));
        if explicit.is_some() {
            command.push_str(&format!(" --baseline {}", path.display()));
        }
        command
    };
    if explicit.is_some() && !path.exists() {
        bail!(
            "{}: no such baseline (given with --baseline)\n\nConsider `{}` to record one from a run.",
            path.display(),
            bless(Path::new("DIR"))
        );
    }
    let baseline = reports::baseline::read_baseline(path)
        .with_context(|| format!("{}: cannot be used as the baseline", path.display()))?;
    match baseline {
        Some(other) if other.run.profile != profile => {
            eprintln!(
                "memproof: the baseline at {} is of profile {}, this run is {profile}: regressions are not judged this run.",
                path.display(),
                other.run.profile,
            );
            Ok(None)
        }
        Some(baseline) => Ok(Some(baseline)),
        None => {
            eprintln!(
                "memproof: no baseline at {}: regressions are not judged this run.\n\nConsider `{}` to record a first baseline.",
                path.display(),
                bless(out_dir)
            );
            Ok(None)
        }
    }
}

/// Every program a planned command case, its driver or its `[prepare]` starts can be found, before the first case:
/// a misspelt interpreter or script path is a spec error (exit 2) in the first second, not a case that waits for
/// its timeout. With `out_dir` (after the prepare commands ran), what they built is checked too.
pub fn commands(
    specs: &[Spec],
    planned: &[PlannedCase],
    out_dir: Option<&Path>,
) -> anyhow::Result<()> {
    for spec in specs {
        let used: Vec<&str> = planned
            .iter()
            .filter(|case| case.scenario == spec.scenario)
            .map(|case| case.technique.as_str())
            .collect();
        if used.is_empty() {
            continue;
        }
        let spec_dir = spec.dir()?;
        let techniques = spec
            .external
            .iter()
            .filter(|(name, _)| used.contains(&name.as_str()))
            .map(|(name, technique)| (format!("technique {name}"), &technique.command));
        let commands_run = used.iter().any(|t| spec.external.contains_key(*t));
        let driver = spec
            .driver
            .iter()
            .filter(|_| commands_run)
            .map(|driver| ("the driver".to_string(), &driver.command));
        let prepare = spec
            .prepare
            .iter()
            .filter(|_| commands_run)
            .map(|prepare| ("prepare".to_string(), &prepare.command));
        let build_dir =
            out_dir.map(|out_dir| planning::command_case::build_dir(out_dir, &spec.scenario));
        for (what, command) in prepare.chain(techniques).chain(driver) {
            schema::external_command::check_programs_exist(
                command,
                &spec_dir,
                build_dir.as_deref(),
            )
            .map_err(|why| anyhow::anyhow!("{}: {what}: {why}", spec.path.display()))?;
        }
    }
    Ok(())
}

/// Refuses, before the first case, params that a memproof scenario does not read: `case_binary check-params` once
/// for each distinct params table a planned case of the spec gets (the profile's, with a role's or a
/// counterfactual's own laid over them). A scenario reads its params as a struct that refuses unknown keys, so a
/// misspelt optional key (`min_trim_duraton`) would otherwise fail every case of the scenario, or, before the
/// structs, be ignored and its default measured. The load test never links the scenarios, so the case binary
/// answers; the error is one line at the spec's `params` table, `{spec}:{line}:{col}: profile P: params: {why}`, or
/// at the role whose own params it gets, `… : role R in profile P: params: {why}`. A command scenario's params are
/// its own programs' (`{param.NAME}`): never checked.
pub fn scenario_params(
    specs: &[Spec],
    planned: &[PlannedCase],
    profile: &str,
    case_binary: &Path,
) -> anyhow::Result<()> {
    for spec in specs {
        let Some(written) = spec.profiles.get(profile) else {
            continue;
        };
        let mut checked: Vec<&serde_json::Map<String, serde_json::Value>> = Vec::new();
        for case in planned.iter().filter(|case| {
            case.scenario == spec.scenario && !spec.external.contains_key(&case.technique)
        }) {
            if checked.contains(&&case.params) {
                continue;
            }
            checked.push(&case.params);
            let output = std::process::Command::new(case_binary)
                .args(["check-params", "--scenario", &spec.scenario, "--params"])
                .arg(serde_json::Value::Object(case.params.clone()).to_string())
                .stdin(std::process::Stdio::null())
                .output()
                .with_context(|| format!("cannot run {}", case_binary.display()))?;
            if output.status.success() {
                continue;
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            let why = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
            // Where the params are written: the role's own, when it has any, else the profile's.
            let role = spec
                .variants
                .iter()
                .find(|v| v.role == case.role && !v.params.is_empty());
            let ((line, col), whose) = match role {
                Some(variant) => (
                    variant.line_col,
                    format!("role {} in profile {profile}", variant.role),
                ),
                None => (written.params_line_col, format!("profile {profile}")),
            };
            let place = format!("{}:{line}:{col}", spec.path.display());
            if output.status.code() == Some(1) {
                bail!("{place}: {whose}: params: {why}");
            }
            bail!(
                "{place}: {whose}: params: {} check-params failed ({}): {why}",
                case_binary.display(),
                output.status
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for `memproof-case`: logs each call's arguments, and refuses params that hold `item_bytez` as the
    /// real one does a key its scenario does not read.
    fn stand_in_case_binary(dir: &Path) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("memproof-case");
        let script = format!(
            "#!/bin/sh\necho \"$@\" >> {}\ncase \"$*\" in *item_bytez*) echo 'unknown field `item_bytez`, expected `item_bytes`' >&2; exit 1;; esac\n",
            dir.join("calls").display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_misspelt_param_of_a_built_in_scenario_is_refused_at_its_spec_line() {
        let dir = tempfile::tempdir().unwrap();
        let case_binary = stand_in_case_binary(dir.path());
        let profiles = |params: &str| {
            format!(
                "[profiles.ci]\nsize = {{ name = \"n\", unit = \"b\", values = [1, 2] }}\nparams = {params}\n\
                 [profiles.smoke]\nsize = {{ name = \"n\", unit = \"b\", values = [1] }}\nparams = {{ item_bytez = 1 }}\n"
            )
        };
        let toy = |params: &str| {
            let text = schema::toy_spec::toy_spec(
                "toy",
                &[("before", "copy_all"), ("after", "stream")],
                &profiles(params),
            );
            Spec::parse(Path::new("scenarios/toy.toml"), &text).unwrap()
        };
        // A command scenario's params are its programs' own: never checked, whatever they hold.
        let command = Spec::parse(
            Path::new("examples/cmd.toml"),
            &format!(
                "scenario = \"cmd\"\ntitle = \"t\"\nsummary = \"s\"\n\
                 variants = [{{ role = \"before\", technique = \"a\", command = [\"true\", \"{{param.item_bytez}}\"] }}]\n{}",
                profiles("{ item_bytez = 1 }")
            ),
        )
        .unwrap();

        let specs = [toy("{ item_bytes = 1 }"), command.clone()];
        let planned = planning::suite::plan(&specs, "ci").unwrap();
        scenario_params(&specs, &planned, "ci", &case_binary).unwrap();
        let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
        assert_eq!(
            calls, "check-params --scenario toy --params {\"item_bytes\":1}\n",
            "once per spec, for the run's profile only, never for a command scenario"
        );

        let specs = [toy("{ item_bytez = 1 }"), command];
        let planned = planning::suite::plan(&specs, "ci").unwrap();
        let error = scenario_params(&specs, &planned, "ci", &case_binary).unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            "scenarios/toy.toml:11:10: profile ci: params: unknown field `item_bytez`, expected `item_bytes`"
        );
        // No case of the spec planned (another scenario chosen): nothing to check.
        scenario_params(&specs, &[], "ci", &case_binary).unwrap();

        // A role's own params are laid over the profile's, checked as its cases get them, and an error in them
        // points at the role.
        let text = schema::toy_spec::toy_spec(
            "toy",
            &[("before", "copy_all"), ("after", "stream")],
            &profiles("{ item_bytes = 1 }"),
        )
        .replace(
            "{ role = \"after\", technique = \"stream\" }",
            "{ role = \"after\", technique = \"stream\", params = { item_bytez = 2 } }",
        );
        let line = text
            .lines()
            .position(|l| l.contains("item_bytez = 2"))
            .unwrap()
            + 1;
        let col = text
            .lines()
            .nth(line - 1)
            .unwrap()
            .find("\"after\"")
            .unwrap()
            + 1;
        let specs = [Spec::parse(Path::new("scenarios/toy.toml"), &text).unwrap()];
        let planned = planning::suite::plan(&specs, "ci").unwrap();
        let error = scenario_params(&specs, &planned, "ci", &case_binary).unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!(
                "scenarios/toy.toml:{line}:{col}: role after in profile ci: params: unknown field `item_bytez`, expected `item_bytes`"
            )
        );
    }

    #[test]
    fn flag_values_outside_their_range_are_refused_in_words() {
        assert_eq!(
            check_interval("--interval", Duration::ZERO)
                .unwrap_err()
                .to_string(),
            "--interval 0s is too short: expected at least 1ms (a shorter poll is a busy loop on a core)"
        );
        assert!(check_interval("--interval", Duration::from_millis(1)).is_ok());
        assert_eq!(
            check_timeout(Duration::ZERO, Duration::from_millis(5))
                .unwrap_err()
                .to_string(),
            "--timeout 0s is not longer than --interval 0.005s: expected a timeout longer than the poll interval"
        );
        assert!(check_timeout(Duration::from_secs(1), Duration::from_millis(5)).is_ok());
        assert_eq!(
            check_limit(0, 1 << 30).unwrap_err().to_string(),
            "--limit 0 is not a limit: expected a size above zero, e.g. `512MiB`"
        );
        assert_eq!(
            check_limit(3 << 30, 1 << 30).unwrap_err().to_string(),
            "--limit 3.00 GiB is too large: expected at most 2 times this machine's memory (2.00 GiB), since no process tree could reach it"
        );
        assert!(check_limit(2 << 30, 1 << 30).is_ok());
    }

    #[test]
    fn an_explicit_baseline_that_is_missing_or_broken_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let home = crate::home::SpecHome::resolve_in(Some(dir.path()), None).unwrap();
        let error = baseline(Some(&missing), &home, "ci", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(&format!("{}: no such baseline", missing.display())),
            "{error}"
        );
        assert!(
            error.ends_with(&format!(
                "Consider `cargo xtask bless --spec-dir {} --from DIR --baseline {}` to record one from a run.",
                dir.path().display(),
                missing.display()
            )),
            "{error}"
        );
        let garbage = dir.path().join("garbage.json");
        std::fs::write(&garbage, "{\"schema\": 3}").unwrap();
        let error = format!(
            "{:#}",
            baseline(Some(&garbage), &home, "ci", dir.path()).unwrap_err()
        );
        assert!(
            error.starts_with(&format!(
                "{}: cannot be used as the baseline: ",
                garbage.display()
            )),
            "{error}"
        );
        // No explicit path and nothing beside the specs: not judged, no error.
        assert!(baseline(None, &home, "ci", dir.path()).unwrap().is_none());
    }
}
