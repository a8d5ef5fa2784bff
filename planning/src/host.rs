//! What machine a run happened on, and which commit it measured: the `run` block of results.json.

use schema::results::{Host, RunInfo};
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
        invocation: None,
    }
}

/// The current UTC time as RFC 3339, to the second.
pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

fn rfc3339(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
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
    fn times_come_out_as_rfc3339_to_the_second() {
        let day = |days: u64, seconds: u64| {
            rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(days * 86_400 + seconds))
        };
        assert_eq!(day(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(day(20_415, 3_661), "2025-11-23T01:01:01Z");
        assert_eq!(day(11_016, 86_399), "2000-02-29T23:59:59Z");
    }

    #[test]
    fn the_host_has_memory_and_cpus() {
        let host = host();
        assert!(host.cpus >= 1);
        assert!(host.memory_bytes > 0);
    }
}
