//! RFC 5424 syslog lines: what seed A's service received, one datagram per alert. The driver writes them and the
//! receiver parses them; a datagram that is not a valid line (garbage, a truncated line) is an error that names
//! what was expected where, never a panic, so the receiver can count it and go on.
//!
//! A line: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`. The workflow and sequence
//! number travel as parameters of the structured-data element [`EXECUTION_SD_ID`].

use memproof::exec_history::started_at::{UnixNanos, format_rfc3339, parse_rfc3339};

/// The structured-data element that carries `workflowId` and `seq` (32473 is the example enterprise number).
pub const EXECUTION_SD_ID: &str = "exec@32473";

/// The parts of a line the receiver uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogAlert {
    pub priority: u8,
    pub timestamp_ns: UnixNanos,
    pub hostname: String,
    pub app_name: String,
    pub workflow_id: String,
    pub seq: u64,
    pub message: String,
}

/// Writes one line, escaping `"`, `\` and `]` in parameter values as RFC 5424 §6.3.3 asks.
pub fn format_line(alert: &SyslogAlert) -> String {
    let escape = |value: &str| {
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace(']', "\\]")
    };
    format!(
        "<{}>1 {} {} {} - ALERT [{EXECUTION_SD_ID} workflowId=\"{}\" seq=\"{}\"] {}",
        alert.priority,
        format_rfc3339(alert.timestamp_ns),
        alert.hostname,
        alert.app_name,
        escape(&alert.workflow_id),
        alert.seq,
        alert.message
    )
}

/// Why a datagram is not a line the receiver can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogError {
    /// Byte offset in the datagram where parsing stopped.
    pub at: usize,
    /// What was expected there.
    pub expected: String,
}

impl std::fmt::Display for SyslogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "syslog line, byte {}: expected {}",
            self.at, self.expected
        )
    }
}

impl std::error::Error for SyslogError {}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn fail<T>(&self, expected: impl Into<String>) -> Result<T, SyslogError> {
        Err(SyslogError {
            at: self.at,
            expected: expected.into(),
        })
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn expect(&mut self, literal: &str, what: &str) -> Result<(), SyslogError> {
        if self.rest().starts_with(literal) {
            self.at += literal.len();
            Ok(())
        } else {
            self.fail(what)
        }
    }

    /// A header field: printable ASCII up to the next space (which it consumes).
    fn field(&mut self, name: &str) -> Result<&'a str, SyslogError> {
        let rest = self.rest();
        let end = rest
            .find(' ')
            .map_or_else(|| self.fail(format!("{name} followed by a space")), Ok)?;
        let value = &rest[..end];
        if value.is_empty() || !value.bytes().all(|b| (33..=126).contains(&b)) {
            return self.fail(format!("{name} as printable ASCII"));
        }
        self.at += end + 1;
        Ok(value)
    }
}

/// Parses one datagram.
pub fn parse_line(datagram: &[u8]) -> Result<SyslogAlert, SyslogError> {
    let text = std::str::from_utf8(datagram).map_err(|error| SyslogError {
        at: error.valid_up_to(),
        expected: "UTF-8 text".into(),
    })?;
    let mut cursor = Cursor { text, at: 0 };
    cursor.expect("<", "'<' opening the priority")?;
    let digits: String = cursor
        .rest()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let priority = match digits.parse::<u8>() {
        Ok(value) if digits.len() <= 3 && value <= 191 => value,
        _ => return cursor.fail("a priority of 0 to 191"),
    };
    cursor.at += digits.len();
    cursor.expect(">1 ", "'>1 ' closing the priority, then version 1")?;
    let timestamp_text = cursor.field("TIMESTAMP")?;
    let timestamp_ns = match parse_rfc3339(timestamp_text) {
        Some(ns) => ns,
        None => {
            cursor.at -= timestamp_text.len() + 1;
            return cursor.fail("TIMESTAMP as RFC 3339");
        }
    };
    let hostname = cursor.field("HOSTNAME")?.to_string();
    let app_name = cursor.field("APP-NAME")?.to_string();
    cursor.field("PROCID")?;
    cursor.field("MSGID")?;
    let (workflow_id, seq) = parse_structured_data(&mut cursor)?;
    let message = match cursor.rest() {
        "" => String::new(),
        rest => match rest.strip_prefix(' ') {
            Some(message) => message.to_string(),
            None => return cursor.fail("a space before MSG"),
        },
    };
    Ok(SyslogAlert {
        priority,
        timestamp_ns,
        hostname,
        app_name,
        workflow_id,
        seq,
        message,
    })
}

/// Reads the structured-data elements and returns `workflowId` and `seq` of [`EXECUTION_SD_ID`].
fn parse_structured_data(cursor: &mut Cursor<'_>) -> Result<(String, u64), SyslogError> {
    let mut workflow_id = None;
    let mut seq = None;
    if cursor.rest().starts_with('-') {
        return cursor.fail(format!("a [{EXECUTION_SD_ID} …] element, not '-'"));
    }
    while cursor.rest().starts_with('[') {
        cursor.at += 1;
        let id_end = cursor
            .rest()
            .find([' ', ']'])
            .map_or_else(|| cursor.fail("an SD-ID closed by ']'"), Ok)?;
        let sd_id = &cursor.rest()[..id_end];
        cursor.at += id_end;
        while cursor.rest().starts_with(' ') {
            cursor.at += 1;
            let name_end = cursor
                .rest()
                .find('=')
                .map_or_else(|| cursor.fail("PARAM-NAME=\"value\""), Ok)?;
            let name = &cursor.rest()[..name_end];
            cursor.at += name_end + 1;
            cursor.expect("\"", "'\"' opening a PARAM-VALUE")?;
            let mut value = String::new();
            let mut chars = cursor.rest().char_indices();
            let closed_at = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, escaped @ ('"' | '\\' | ']'))) => value.push(escaped),
                        Some((_, other)) => {
                            value.push('\\');
                            value.push(other);
                        }
                        None => return cursor.fail("a PARAM-VALUE closed by '\"'"),
                    },
                    Some((_, c)) => value.push(c),
                    None => return cursor.fail("a PARAM-VALUE closed by '\"'"),
                }
            };
            cursor.at += closed_at + 1;
            if sd_id == EXECUTION_SD_ID {
                match name {
                    "workflowId" => workflow_id = Some(value),
                    "seq" => seq = Some(value),
                    _ => {}
                }
            }
        }
        cursor.expect("]", "']' closing the SD-ELEMENT")?;
    }
    let workflow_id = workflow_id.map_or_else(
        || cursor.fail(format!("{EXECUTION_SD_ID} with workflowId")),
        Ok,
    )?;
    let seq = seq.and_then(|text| text.parse::<u64>().ok()).map_or_else(
        || cursor.fail(format!("{EXECUTION_SD_ID} with a whole-number seq")),
        Ok,
    )?;
    Ok((workflow_id, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> SyslogAlert {
        SyslogAlert {
            priority: 134,
            timestamp_ns: 1_780_404_960_123_000_000,
            hostname: "edge-7".into(),
            app_name: "alertd".into(),
            workflow_id: "wf \"3\" ]é\\".into(),
            seq: 17,
            message: "upstream timeout status=503 日本".into(),
        }
    }

    #[test]
    fn a_written_line_parses_back() {
        let line = format_line(&alert());
        assert_eq!(parse_line(line.as_bytes()), Ok(alert()));
    }

    fn check_error(datagram: &[u8], expected: &str) {
        let error = parse_line(datagram).unwrap_err();
        assert_eq!(error.to_string(), expected);
    }

    #[test]
    fn bad_datagrams_say_where_and_what() {
        check_error(
            b"hello",
            "syslog line, byte 0: expected '<' opening the priority",
        );
        check_error(
            b"<999>1 x",
            "syslog line, byte 1: expected a priority of 0 to 191",
        );
        check_error(
            b"<13>2 x",
            "syslog line, byte 3: expected '>1 ' closing the priority, then version 1",
        );
        check_error(
            b"<13>1 yesterday h a - - [exec@32473 workflowId=\"w\" seq=\"1\"]",
            "syslog line, byte 6: expected TIMESTAMP as RFC 3339",
        );
        check_error(b"\xff\xfe", "syslog line, byte 0: expected UTF-8 text");
        check_error(
            b"<13>1 2026-06-02T12:56:00Z h a - - -",
            "syslog line, byte 35: expected a [exec@32473 …] element, not '-'",
        );
        let line = format_line(&alert());
        let truncated = &line.as_bytes()[..line.find("seq").unwrap() + 6];
        check_error(
            truncated,
            "syslog line, byte 106: expected a PARAM-VALUE closed by '\"'",
        );
    }
}
