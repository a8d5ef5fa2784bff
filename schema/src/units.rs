//! Sizes and durations as people write them on a command line or in a spec: `512MiB`, `1.5GB`, `800000`; `30s`,
//! `5ms`. A malformed value is an error that quotes it and lists the accepted forms.

use std::time::Duration;

const SIZE_FORMS: &str = "a number of bytes with an optional unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. `512MiB`, `1.5GB`, `800000`";
const DURATION_FORMS: &str = "a number with a unit: ns, us, ms, s, m, h, e.g. `30s`, `5ms`, `1.5m`";

/// A value that does not read as a size or a duration, or reads as one too large to hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {text:?} is {problem}: expected {forms}")]
pub struct UnitError {
    what: &'static str,
    text: String,
    /// `not valid` or `too large`.
    problem: &'static str,
    forms: &'static str,
}

fn split_number(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let number: f64 = number.replace('_', "").parse().ok()?;
    (number.is_finite() && number >= 0.0).then_some((number, unit.trim()))
}

/// Parses a size in bytes: `512MiB`, `1.5GB`, `800000`.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let error = || UnitError {
        what: "size",
        text: text.to_string(),
        problem: "not valid",
        forms: SIZE_FORMS,
    };
    let (number, unit) = split_number(text).ok_or_else(error)?;
    let scale: f64 = match unit {
        "" | "B" | "b" => 1.0,
        "KB" | "kB" | "K" | "k" => 1e3,
        "MB" | "M" => 1e6,
        "GB" | "G" => 1e9,
        "TB" | "T" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(error()),
    };
    let bytes = number * scale;
    if bytes >= u64::MAX as f64 {
        return Err(UnitError {
            problem: "too large",
            forms: "at most 16 EiB (2^64 - 1 bytes)",
            ..error()
        });
    }
    if unit.is_empty() && number.fract() != 0.0 {
        return Err(error());
    }
    Ok(bytes.round() as u64)
}

/// Parses a duration: `30s`, `5ms`, `1.5m`.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let error = || UnitError {
        what: "duration",
        text: text.to_string(),
        problem: "not valid",
        forms: DURATION_FORMS,
    };
    let (number, unit) = split_number(text).ok_or_else(error)?;
    let seconds = match unit {
        "ns" => number / 1e9,
        "us" | "µs" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" | "min" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(error()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| UnitError {
        problem: "too large",
        forms: "at most 584 billion years",
        ..error()
    })
}

/// Formats bytes the way reports print them: `1.50 GiB`, `38.0 MiB`, `512 B`.
pub fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else if value.abs() >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else if value.abs() >= 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_decimal_and_binary_units() {
        assert_eq!(parse_size("512MiB"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("800000"), Ok(800_000));
        assert_eq!(parse_size("64 KiB"), Ok(65_536));
        assert_eq!(parse_size("1_000"), Ok(1000));
    }

    #[test]
    fn a_malformed_size_quotes_itself_and_lists_the_forms() {
        let error = parse_size("12 parsecs").unwrap_err().to_string();
        assert_eq!(
            error,
            "size \"12 parsecs\" is not valid: expected a number of bytes with an optional unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), e.g. `512MiB`, `1.5GB`, `800000`"
        );
        assert!(parse_size("").is_err());
        assert!(parse_size("-5MB").is_err());
        assert!(
            parse_size("1.5").is_err(),
            "a fraction of a byte is not a size"
        );
    }

    #[test]
    fn a_size_too_large_to_hold_says_so() {
        assert_eq!(
            parse_size("99999999TiB").unwrap_err().to_string(),
            "size \"99999999TiB\" is too large: expected at most 16 EiB (2^64 - 1 bytes)"
        );
        assert!(
            parse_duration("1e30h").is_err() && parse_duration("99999999999999999999h").is_err()
        );
        assert_eq!(
            parse_duration("99999999999999999999h")
                .unwrap_err()
                .to_string(),
            "duration \"99999999999999999999h\" is too large: expected at most 584 billion years"
        );
    }

    #[test]
    fn durations_read_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5ms"), Ok(Duration::from_millis(5)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        let error = parse_duration("30").unwrap_err().to_string();
        assert!(
            error.starts_with("duration \"30\" is not valid: expected a number with a unit"),
            "{error}"
        );
    }

    #[test]
    fn bytes_format_in_binary_units() {
        assert_eq!(format_bytes(512.0), "512 B");
        assert_eq!(format_bytes(1.5 * 1024.0 * 1024.0 * 1024.0), "1.50 GiB");
        assert_eq!(format_bytes(38.0 * 1024.0 * 1024.0), "38.0 MiB");
        assert_eq!(format_bytes(512.0 * 1024.0 * 1024.0), "512 MiB");
    }
}
