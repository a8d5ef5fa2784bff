//! The instant a trim orders executions by. Seed A's records carry `startedAt` as an RFC 3339 string; records
//! written by other code paths carry it in other shapes, and a trim that compares the raw text would keep the wrong
//! executions. Every technique turns the field into nanoseconds since the Unix epoch with this one function, so
//! they order records identically; a shape it does not know makes the record unreadable for trimming (reported,
//! never guessed).

/// Nanoseconds since 1970-01-01T00:00:00Z.
pub type UnixNanos = i64;

/// `startedAt` as an RFC 3339 timestamp (`2026-06-02T12:56:00.123Z`, `…+02:00`; a space may stand for the `T`;
/// up to 9 fraction digits kept, more are an error).
pub fn parse_rfc3339(text: &str) -> Option<UnixNanos> {
    let bytes = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = bytes.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, &b| {
            b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
        })
    };
    let year = digits(0, 4)?;
    let month = digits(5, 2)?;
    let day = digits(8, 2)?;
    let hour = digits(11, 2)?;
    let minute = digits(14, 2)?;
    let second = digits(17, 2)?;
    if bytes.get(4) != Some(&b'-')
        || bytes.get(7) != Some(&b'-')
        || !matches!(bytes.get(10), Some(b'T' | b't' | b' '))
        || bytes.get(13) != Some(&b':')
        || bytes.get(16) != Some(&b':')
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut at = 19;
    let mut nanos = 0i64;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let fraction = &text[start..at];
        if fraction.is_empty() || fraction.len() > 9 {
            return None;
        }
        nanos = fraction.parse::<i64>().ok()? * 10i64.pow(9 - fraction.len() as u32);
    }
    let offset_seconds = match bytes.get(at) {
        Some(b'Z' | b'z') if at + 1 == bytes.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == bytes.len() && bytes[at + 3] == b':' => {
            let hours = digits(at + 1, 2)?;
            let minutes = digits(at + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let magnitude = hours * 3600 + minutes * 60;
            if *sign == b'+' { magnitude } else { -magnitude }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// `startedAt` as a JSON integer: milliseconds since the epoch (what `Date.now()` writes).
pub fn from_epoch_millis(millis: i64) -> Option<UnixNanos> {
    millis.checked_mul(1_000_000)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Formats nanoseconds since the epoch as RFC 3339 with nanoseconds and `Z`; the inverse of [`parse_rfc3339`]
/// for the records the scenario writes.
pub fn format_rfc3339(at: UnixNanos) -> String {
    let seconds = at.div_euclid(1_000_000_000);
    let nanos = at.rem_euclid(1_000_000_000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Option<UnixNanos>) {
        assert_eq!(parse_rfc3339(text), expected, "{text}");
    }

    #[test]
    fn rfc3339_forms_and_rejections() {
        check("1970-01-01T00:00:00Z", Some(0));
        check("1970-01-01T00:00:01.5Z", Some(1_500_000_000));
        check("1970-01-01 01:00:00+01:00", Some(0));
        check(
            "2026-06-02T12:56:00.123456789Z",
            Some(1_780_404_960_123_456_789),
        );
        check("2024-02-29T00:00:00Z", Some(1_709_164_800_000_000_000));
        check("2023-02-29T00:00:00Z", None);
        check("2026-06-02T12:56:00", None);
        check("2026-06-02T12:56:00.Z", None);
        check("2026-06-02T12:56:00.1234567890Z", None);
        check("June 2, 2026", None);
        check("", None);
    }

    #[test]
    fn format_round_trips() {
        for at in [0, 1, -1, 1_780_404_960_123_456_789, -86_400_000_000_123] {
            assert_eq!(parse_rfc3339(&format_rfc3339(at)), Some(at), "{at}");
        }
    }

    #[test]
    fn epoch_millis() {
        assert_eq!(from_epoch_millis(1_500), Some(1_500_000_000));
        assert_eq!(from_epoch_millis(i64::MAX), None);
    }
}
