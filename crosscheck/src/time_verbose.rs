//! Reading GNU time's `-v` report: its "Maximum resident set size", the independent witness of memproof's peak RSS.
//!
//! GNU time forks the command, waits for it with `wait4` and prints the child's `ru_maxrss`, in KiB. It shares no
//! code with memproof: for a memproof case, memproof's figure is the case's own `VmHWM` read from
//! `/proc/self/status` as its last act; for an external command it is `ru_maxrss` as `memproof-launch` got it.

use anyhow::{Context as _, bail};

/// The line GNU time writes the peak resident set on, followed by `: <KiB>`.
const MAX_RSS_LABEL: &str = "Maximum resident set size (kbytes)";
/// The line GNU time writes the command's exit status on.
const EXIT_STATUS_LABEL: &str = "Exit status";

/// What a `/usr/bin/time -v` report says about one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeVerbose {
    /// The command's `ru_maxrss`, converted from the KiB GNU time prints to bytes.
    pub max_rss_bytes: u64,
    /// The command's exit status, when the report has one (GNU time omits it for a command killed by a signal).
    pub exit_status: Option<i32>,
}

/// Parses a `/usr/bin/time -v` report (the file `-o` wrote). `origin` names it in errors.
pub fn parse_time_verbose(text: &str, origin: &str) -> anyhow::Result<TimeVerbose> {
    let value_of = |label: &str| {
        text.lines().find_map(|line| {
            let (key, value) = line.trim().split_once(": ")?;
            (key == label).then(|| value.trim().to_string())
        })
    };
    let Some(kib_text) = value_of(MAX_RSS_LABEL) else {
        bail!("{origin}: no \"{MAX_RSS_LABEL}\" line: expected the report of GNU time's -v");
    };
    let kib: u64 = kib_text.parse().with_context(|| {
        format!("{origin}: \"{MAX_RSS_LABEL}: {kib_text}\": expected a whole number of KiB")
    })?;
    let exit_status = match value_of(EXIT_STATUS_LABEL) {
        Some(status) => Some(status.parse().with_context(|| {
            format!("{origin}: \"{EXIT_STATUS_LABEL}: {status}\": expected a whole number")
        })?),
        None => None,
    };
    Ok(TimeVerbose {
        max_rss_bytes: kib * 1024,
        exit_status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real report: `/usr/bin/time -v -o FILE memproof-case case --scenario calibration … --size-value 16777216`.
    const CALIBRATION_16_MIB: &str = include_str!("fixtures/time-v-calibration-16MiB.txt");

    #[test]
    fn the_peak_is_read_in_kib_and_given_in_bytes() {
        let report = parse_time_verbose(CALIBRATION_16_MIB, "time.txt").unwrap();
        assert_eq!(
            report,
            TimeVerbose {
                max_rss_bytes: 18692 * 1024,
                exit_status: Some(0)
            }
        );
    }

    #[test]
    fn a_report_without_the_peak_is_an_error_naming_the_file() {
        let error = parse_time_verbose("Command exited with non-zero status 1\n", "out/time.txt")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "out/time.txt: no \"Maximum resident set size (kbytes)\" line: expected the report of GNU time's -v"
        );
        let error = parse_time_verbose(
            "\tMaximum resident set size (kbytes): lots\n",
            "out/time.txt",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "out/time.txt: \"Maximum resident set size (kbytes): lots\": expected a whole number of KiB"
        );
    }
}
