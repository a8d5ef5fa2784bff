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

#[cfg(test)]
mod tests {
    use super::*;

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
