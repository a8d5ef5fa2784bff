//! The execution records the store holds: what seed A's service wrote for every processed syslog message. Each is a
//! JSON object with `workflowId` and `startedAt` near the front and, after them, the workflow's node outputs with
//! the full alert payloads (`resp_body`, `req_header`, …) that made each record several hundred KB.
//!
//! The payload is many alerts of a few KB, not one big string, so that parsing it builds a tree of many nodes as
//! the seed's `json.loads` did. [`FieldPlacement`] writes the edge cases the prefix regex has to survive.

use super::started_at::{UnixNanos, format_rfc3339};
use crate::payload::{Rng, filler_text};

/// Where and how the two trim fields are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPlacement {
    /// `{"workflowId":…,"startedAt":"<RFC 3339>",…}`: what the service writes.
    Front,
    /// A member of `bytes` bytes is written before the fields, so they sit past the regex's prefix.
    AfterLargeMember { bytes: usize },
    /// `startedAt` as whole epoch milliseconds (JSON integer) instead of a string.
    StartedAtEpochMillis,
    /// `startedAt` as RFC 3339 with a `+hh:mm` offset and a space for the `T`.
    StartedAtWithOffset { offset_minutes: i32 },
}

/// One execution record to write.
#[derive(Debug, Clone)]
pub struct ExecutionRecordSpec {
    pub execution_id: String,
    pub workflow_id: String,
    pub started_at_ns: UnixNanos,
    /// The size the whole JSON text aims at (it ends within a few hundred bytes above it).
    pub target_bytes: usize,
    pub placement: FieldPlacement,
    /// Seeds the payload text.
    pub payload_seed: u64,
}

/// Bytes of one alert's `resp_body`; an alert with its headers is about 1.6 KB of JSON.
const RESP_BODY_BYTES: usize = 1024;
const HEADERS_PER_ALERT: usize = 8;

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialise")
}

fn started_at_member(spec: &ExecutionRecordSpec) -> String {
    match spec.placement {
        FieldPlacement::StartedAtEpochMillis => {
            format!(
                r#""startedAt":{}"#,
                spec.started_at_ns.div_euclid(1_000_000)
            )
        }
        FieldPlacement::StartedAtWithOffset { offset_minutes } => {
            let shifted = spec.started_at_ns + i64::from(offset_minutes) * 60_000_000_000;
            let local = format_rfc3339(shifted).replace('T', " ");
            let sign = if offset_minutes < 0 { '-' } else { '+' };
            let magnitude = offset_minutes.unsigned_abs();
            let text = format!(
                "{}{sign}{:02}:{:02}",
                local.trim_end_matches('Z'),
                magnitude / 60,
                magnitude % 60
            );
            format!(r#""startedAt":{}"#, json_string(&text))
        }
        _ => format!(
            r#""startedAt":{}"#,
            json_string(&format_rfc3339(spec.started_at_ns))
        ),
    }
}

/// Writes the record's JSON text.
pub fn execution_record_json(spec: &ExecutionRecordSpec) -> String {
    let mut rng = Rng::new(spec.payload_seed);
    let mut text = String::with_capacity(spec.target_bytes + 4096);
    text.push('{');
    if let FieldPlacement::AfterLargeMember { bytes } = spec.placement {
        text.push_str(r#""trace":"#);
        text.push_str(&json_string(&filler_text(&mut rng, bytes)));
        text.push(',');
    }
    text.push_str(&format!(
        r#""workflowId":{},{},"executionId":{},"status":"success","trigger":"syslog","nodes":{{"dedup_and_write":{{"alerts":["#,
        json_string(&spec.workflow_id),
        started_at_member(spec),
        json_string(&spec.execution_id),
    ));
    let mut alert_index = 0usize;
    // The closing brackets below add 4 bytes.
    while text.len() + 4 < spec.target_bytes {
        if alert_index > 0 {
            text.push(',');
        }
        text.push_str(&format!(r#"{{"alert_id":{alert_index},"req_header":{{"#));
        for header in 0..HEADERS_PER_ALERT {
            if header > 0 {
                text.push(',');
            }
            let value = filler_text(&mut rng, 40);
            text.push_str(&format!(r#""h{header}":{}"#, json_string(&value)));
        }
        let room = spec.target_bytes.saturating_sub(text.len() + 40);
        let body = filler_text(&mut rng, RESP_BODY_BYTES.min(room));
        text.push_str(&format!(r#"}},"resp_body":{}}}"#, json_string(&body)));
        alert_index += 1;
    }
    text.push_str("]}}}");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec_history::trim_fields::{self, TrimFields};

    fn spec(placement: FieldPlacement, target_bytes: usize) -> ExecutionRecordSpec {
        ExecutionRecordSpec {
            execution_id: "e-1".into(),
            workflow_id: "wf \"7\" é".into(),
            started_at_ns: 1_780_404_960_123_000_000,
            target_bytes,
            placement,
            payload_seed: 9,
        }
    }

    #[test]
    fn every_placement_is_valid_json_near_its_target_size_with_the_same_fields() {
        let expected = TrimFields {
            workflow_id: "wf \"7\" é".into(),
            started_at_ns: 1_780_404_960_123_000_000,
        };
        for placement in [
            FieldPlacement::Front,
            FieldPlacement::AfterLargeMember { bytes: 500 },
            FieldPlacement::StartedAtEpochMillis,
            FieldPlacement::StartedAtWithOffset {
                offset_minutes: -330,
            },
        ] {
            for target in [0, 2_000, 100_000] {
                let text = execution_record_json(&spec(placement.clone(), target));
                assert!(
                    text.len() >= target && text.len() < target + 3_000,
                    "{}",
                    text.len()
                );
                assert_eq!(
                    trim_fields::by_full_parse(&text),
                    Ok(expected.clone()),
                    "{placement:?}"
                );
                assert_eq!(
                    trim_fields::with_fallback(&text).fields().ok(),
                    Some(&expected),
                    "{placement:?}"
                );
            }
        }
    }

    #[test]
    fn front_placement_is_read_by_the_prefix_and_a_large_member_hides_it() {
        let front = execution_record_json(&spec(FieldPlacement::Front, 10_000));
        assert!(trim_fields::by_prefix_regex(&front).is_some());
        let hidden = execution_record_json(&spec(
            FieldPlacement::AfterLargeMember { bytes: 500 },
            10_000,
        ));
        assert!(trim_fields::by_prefix_regex(&hidden).is_none());
    }
}
