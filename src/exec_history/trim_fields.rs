//! Reading the two fields a trim needs, `workflowId` and `startedAt`, out of a stored execution record.
//!
//! Seed A's records are JSON values of several hundred KB (full alert payloads) with the two fields near the front.
//! The faulty trim parsed each whole value to read them ([`from_parsed_value`] after `serde_json::from_str`); the
//! merged fix ran a regex over the first 400 bytes instead, "~100x cheaper than a full parse"
//! ([`by_prefix_regex`]). A prefix regex invites mistakes the full parse cannot make, so this one is strict:
//!
//! - it matches only **top-level** members: it is anchored at the opening `{` and may only step over members whose
//!   values are scalars, so a `workflowId` nested in an object, or spelled inside a string, is never taken;
//! - a string value must be closed inside the prefix and is unescaped as JSON (escaped quotes, `\u` escapes and
//!   raw UTF-8 come out as the full parse gives them); a number must be followed by `,` or `}` inside the prefix,
//!   so a number cut at byte 400 is never read short; the prefix ends on a character boundary;
//! - whatever it cannot read (the fields past byte 400, a large or nested member in front of them, a `startedAt` it
//!   does not know) is a miss, and [`with_fallback`] parses that one record in full and counts the miss.
//!
//! What stays different by contract: the prefix never sees the bytes after the fields, so a record whose head is
//! valid and whose tail is corrupt is read (and trimmed) by the prefix techniques, where the full parse reports it.
//! Duplicate top-level keys (which RFC 8259 leaves undefined) are read first-wins by the regex, last-wins by
//! `serde_json`.

use super::started_at::{UnixNanos, from_epoch_millis, parse_rfc3339};
use regex::Regex;
use std::sync::LazyLock;

/// How many bytes of a value the prefix reader looks at, as in the seed's fix.
pub const PREFIX_BYTES: usize = 400;

/// The fields a trim groups and orders by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrimFields {
    pub workflow_id: String,
    pub started_at_ns: UnixNanos,
}

/// Why a record cannot be trimmed: reported by key, kept in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// The value is not JSON (the parser's message).
    NotJson(String),
    /// The value is JSON but not an object.
    NotAnObject,
    /// `workflowId` is missing or not a string.
    NoWorkflowId,
    /// `startedAt` is missing or neither an RFC 3339 string nor whole epoch milliseconds.
    NoStartedAt,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::NotJson(message) => write!(f, "not valid JSON: {message}"),
            Unreadable::NotAnObject => write!(f, "not a JSON object"),
            Unreadable::NoWorkflowId => write!(f, "no string workflowId"),
            Unreadable::NoStartedAt => write!(
                f,
                "no startedAt as an RFC 3339 string or whole epoch milliseconds"
            ),
        }
    }
}

/// Reads the fields from a fully parsed record (the full-parse technique, and the fast path's fallback).
pub fn from_parsed_value(value: &serde_json::Value) -> Result<TrimFields, Unreadable> {
    let object = value.as_object().ok_or(Unreadable::NotAnObject)?;
    let workflow_id = object
        .get("workflowId")
        .and_then(serde_json::Value::as_str)
        .ok_or(Unreadable::NoWorkflowId)?;
    let started_at_ns = object
        .get("startedAt")
        .and_then(started_at_from_json)
        .ok_or(Unreadable::NoStartedAt)?;
    Ok(TrimFields {
        workflow_id: workflow_id.to_string(),
        started_at_ns,
    })
}

fn started_at_from_json(value: &serde_json::Value) -> Option<UnixNanos> {
    match value {
        serde_json::Value::String(text) => parse_rfc3339(text),
        serde_json::Value::Number(number) => number.as_i64().and_then(from_epoch_millis),
        _ => None,
    }
}

/// Parses a whole raw value and reads its fields: what the seed's faulty trim did for every record.
pub fn by_full_parse(raw_value: &str) -> Result<TrimFields, Unreadable> {
    let value: serde_json::Value =
        serde_json::from_str(raw_value).map_err(|error| Unreadable::NotJson(error.to_string()))?;
    from_parsed_value(&value)
}

/// Skips top-level members with scalar values from the opening brace up to the member named by the caller.
const TOP_LEVEL_SCALAR_MEMBERS: &str = r#"(?s)^\s*\{(?:\s*"(?:[^"\\]|\\.)*"\s*:\s*(?:"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+\-]*|true|false|null)\s*,)*?\s*"#;

static WORKFLOW_ID_IN_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"{TOP_LEVEL_SCALAR_MEMBERS}"workflowId"\s*:\s*("(?:[^"\\]|\\.)*")"#
    ))
    .expect("the workflowId regex compiles")
});

static STARTED_AT_IN_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r#"{TOP_LEVEL_SCALAR_MEMBERS}"startedAt"\s*:\s*(?:("(?:[^"\\]|\\.)*")|(-?[0-9]+)\s*[,}}])"#
    ))
    .expect("the startedAt regex compiles")
});

/// The first [`PREFIX_BYTES`] bytes of `raw_value`, shortened to a character boundary.
pub fn value_prefix(raw_value: &str) -> &str {
    let mut end = raw_value.len().min(PREFIX_BYTES);
    while !raw_value.is_char_boundary(end) {
        end -= 1;
    }
    &raw_value[..end]
}

/// Reads the fields with a regex over the first [`PREFIX_BYTES`] bytes; `None` when the prefix does not show them
/// in a form it can read for sure (see the module comment).
pub fn by_prefix_regex(raw_value: &str) -> Option<TrimFields> {
    let prefix = value_prefix(raw_value);
    let workflow_quoted = WORKFLOW_ID_IN_PREFIX.captures(prefix)?.get(1)?.as_str();
    let workflow_id: String = serde_json::from_str(workflow_quoted).ok()?;
    let started = STARTED_AT_IN_PREFIX.captures(prefix)?;
    let started_at_ns = if let Some(quoted) = started.get(1) {
        let text: String = serde_json::from_str(quoted.as_str()).ok()?;
        parse_rfc3339(&text)?
    } else {
        from_epoch_millis(started.get(2)?.as_str().parse().ok()?)?
    };
    Some(TrimFields {
        workflow_id,
        started_at_ns,
    })
}

/// How a record's fields were read by [`with_fallback`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldsRead {
    /// The prefix regex read them.
    Prefix(TrimFields),
    /// The prefix could not; a full parse of this one record did.
    FullParseFallback(TrimFields),
    /// Neither could: the record is reported.
    Unreadable(Unreadable),
}

impl FieldsRead {
    /// The fields, whichever way they were read.
    pub fn fields(&self) -> Result<&TrimFields, &Unreadable> {
        match self {
            FieldsRead::Prefix(fields) | FieldsRead::FullParseFallback(fields) => Ok(fields),
            FieldsRead::Unreadable(why) => Err(why),
        }
    }
}

/// The prefix regex, and a full parse of this record only when the prefix cannot read it.
pub fn with_fallback(raw_value: &str) -> FieldsRead {
    match by_prefix_regex(raw_value) {
        Some(fields) => FieldsRead::Prefix(fields),
        None => match by_full_parse(raw_value) {
            Ok(fields) => FieldsRead::FullParseFallback(fields),
            Err(why) => FieldsRead::Unreadable(why),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOON: UnixNanos = 1_780_404_960_000_000_000;

    fn fields(workflow_id: &str, started_at_ns: UnixNanos) -> TrimFields {
        TrimFields {
            workflow_id: workflow_id.to_string(),
            started_at_ns,
        }
    }

    /// Checks the prefix reader and the full parse on one value: `prefix` is what the regex must give.
    fn check(raw_value: &str, prefix: Option<TrimFields>, full: Result<TrimFields, Unreadable>) {
        assert_eq!(by_prefix_regex(raw_value), prefix, "prefix of {raw_value}");
        let full_got = by_full_parse(raw_value).map_err(|why| match why {
            Unreadable::NotJson(_) => Unreadable::NotJson(String::new()),
            other => other,
        });
        assert_eq!(full_got, full, "full parse of {raw_value}");
        // Whatever the prefix reads, the full parse agrees with (for valid JSON).
        if let (Some(prefix), Ok(full)) = (by_prefix_regex(raw_value), &full_got) {
            assert_eq!(&prefix, full);
        }
    }

    #[test]
    fn fields_at_the_front() {
        check(
            r#"{"workflowId":"wf-1","startedAt":"2026-06-02T12:56:00Z","payload":"x"}"#,
            Some(fields("wf-1", NOON)),
            Ok(fields("wf-1", NOON)),
        );
        check(
            r#" { "id" : "e-7", "n": 3, "ok": true, "startedAt": 1780404960000 , "workflowId" : "wf-2"}"#,
            Some(fields("wf-2", NOON)),
            Ok(fields("wf-2", NOON)),
        );
    }

    #[test]
    fn escaped_quotes_and_unicode_come_out_as_the_full_parse_gives_them() {
        check(
            r#"{"workflowId":"wf \"q\" \u00e9 日本","startedAt":"2026-06-02T12:56:00Z"}"#,
            Some(fields("wf \"q\" é 日本", NOON)),
            Ok(fields("wf \"q\" é 日本", NOON)),
        );
    }

    #[test]
    fn fields_past_the_prefix_fall_back_to_a_full_parse() {
        let big = "y".repeat(PREFIX_BYTES);
        let value =
            format!(r#"{{"note":"{big}","workflowId":"wf-1","startedAt":"2026-06-02T12:56:00Z"}}"#);
        check(&value, None, Ok(fields("wf-1", NOON)));
        assert_eq!(
            with_fallback(&value),
            FieldsRead::FullParseFallback(fields("wf-1", NOON))
        );
    }

    #[test]
    fn a_number_cut_by_the_prefix_is_not_read_short() {
        let pad = "p".repeat(PREFIX_BYTES - 40);
        let value = format!(r#"{{"workflowId":"w","a":"{pad}","startedAt":1780404960000}}"#);
        assert!(value.find("1780404960000").unwrap() + 13 > PREFIX_BYTES);
        check(&value, None, Ok(fields("w", NOON)));
    }

    #[test]
    fn nested_and_quoted_lookalikes_are_never_taken() {
        check(
            r#"{"meta":{"workflowId":"wrong"},"workflowId":"wf-1","startedAt":"2026-06-02T12:56:00Z"}"#,
            None,
            Ok(fields("wf-1", NOON)),
        );
        check(
            r#"{"msg":"\"workflowId\":\"wrong\",","workflowId":"wf-1","startedAt":"2026-06-02T12:56:00Z"}"#,
            Some(fields("wf-1", NOON)),
            Ok(fields("wf-1", NOON)),
        );
    }

    #[test]
    fn other_started_at_formats() {
        check(
            r#"{"workflowId":"w","startedAt":"2026-06-02 14:56:00+02:00"}"#,
            Some(fields("w", NOON)),
            Ok(fields("w", NOON)),
        );
        check(
            r#"{"workflowId":"w","startedAt":"June 2, 2026"}"#,
            None,
            Err(Unreadable::NoStartedAt),
        );
        check(
            r#"{"workflowId":"w","startedAt":1.5e12}"#,
            None,
            Err(Unreadable::NoStartedAt),
        );
    }

    #[test]
    fn not_json_is_unreadable_and_a_corrupt_tail_is_the_documented_difference() {
        check(
            "not json at all",
            None,
            Err(Unreadable::NotJson(String::new())),
        );
        check(
            r#"{"workflowId":"w","#,
            None,
            Err(Unreadable::NotJson(String::new())),
        );
        check(r#"[1,2]"#, None, Err(Unreadable::NotAnObject));
        check(
            r#"{"startedAt":"2026-06-02T12:56:00Z"}"#,
            None,
            Err(Unreadable::NoWorkflowId),
        );
        // Documented contract: the prefix never reads the tail.
        check(
            r#"{"workflowId":"w","startedAt":"2026-06-02T12:56:00Z","payload":"cut"#,
            Some(fields("w", NOON)),
            Err(Unreadable::NotJson(String::new())),
        );
    }

    #[test]
    fn prefix_ends_on_a_character_boundary() {
        let value = format!("{}é", "a".repeat(PREFIX_BYTES - 1));
        assert_eq!(value_prefix(&value).len(), PREFIX_BYTES - 1);
    }
}
