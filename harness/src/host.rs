//! What machine a run happened on, and which commit it measured: the `run` block of results.json.

use crate::results::{Host, RunInfo};
use std::path::Path;
use std::process::Command;

/// Describes this machine. `sysinfo` reads the OS name, kernel, CPUs and memory.
pub fn host() -> Host {
    let memory_bytes = sysinfo::System::new_with_specifics(
        sysinfo::RefreshKind::nothing()
            .with_memory(sysinfo::MemoryRefreshKind::nothing().with_ram()),
    )
    .map_or(0, |system| system.total_memory());
    Host {
        os: sysinfo::System::long_os_version().unwrap_or_else(|_| std::env::consts::OS.to_string()),
        kernel: sysinfo::System::kernel_version()
            .unwrap_or_default()
            .to_string(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_bytes,
        rustc: command_output("rustc", &["--version"]).unwrap_or_else(|| "unknown".into()),
    }
}

/// The commit of the checkout at `dir`, with `-dirty` when it has uncommitted changes.
pub fn git_commit(dir: &Path) -> Option<String> {
    let head = command_output_in("git", &["rev-parse", "HEAD"], dir)?;
    let dirty = command_output_in(
        "git",
        &["status", "--porcelain", "--untracked-files=no"],
        dir,
    )
    .is_some_and(|status| !status.is_empty());
    Some(if dirty { format!("{head}-dirty") } else { head })
}

/// The `run` block for a run starting now.
pub fn run_info(profile: &str, dir: &Path) -> RunInfo {
    RunInfo {
        started_at: now_rfc3339(),
        profile: profile.to_string(),
        git_commit: git_commit(dir),
        host: host(),
        jobs: 1,
        shard: None,
    }
}

/// The current UTC time as RFC 3339, to the second.
pub fn now_rfc3339() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    command_output_in(program, args, Path::new("."))
}

fn command_output_in(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_convert_to_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_415), (2025, 11, 23));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn the_host_has_memory_and_cpus() {
        let host = host();
        assert!(host.cpus >= 1);
        assert!(host.memory_bytes > 0);
    }
}
