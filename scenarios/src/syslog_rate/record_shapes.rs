//! The records the scenario writes: mostly what seed A's service wrote (the two fields at the front, several
//! hundred KB of alert payload after them), and every `odd_records_every`th record in one of the shapes the prefix
//! regex has to survive, in turn: fields past byte 400, `startedAt` as epoch milliseconds, `startedAt` with an
//! offset, and a corrupt record (its head overwritten, not JSON), which every trim must report by key and keep.

use memproof::exec_history::record::{ExecutionRecordSpec, FieldPlacement, execution_record_json};

/// Bytes of the member written before the fields in the "fields past the prefix" shape.
const LARGE_LEADING_MEMBER_BYTES: usize = 1024;

/// How the scenario shapes its records.
#[derive(Debug, Clone)]
pub struct RecordShapes {
    pub record_bytes: usize,
    /// Every n-th record (by its index) gets an odd shape; 0 writes none.
    pub odd_records_every: u64,
}

/// The shape of record `index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordShape {
    Written(FieldPlacement),
    /// Written as `Front`, then its first bytes overwritten so it is not JSON.
    CorruptHead,
}

impl RecordShapes {
    pub fn shape_of(&self, index: u64) -> RecordShape {
        let every = self.odd_records_every;
        if every == 0 || !(index + 1).is_multiple_of(every) {
            return RecordShape::Written(FieldPlacement::Front);
        }
        match (index / every) % 4 {
            0 => RecordShape::Written(FieldPlacement::AfterLargeMember {
                bytes: LARGE_LEADING_MEMBER_BYTES,
            }),
            1 => RecordShape::Written(FieldPlacement::StartedAtEpochMillis),
            2 => RecordShape::Written(FieldPlacement::StartedAtWithOffset {
                offset_minutes: 120,
            }),
            _ => RecordShape::CorruptHead,
        }
    }

    /// The JSON text (or corrupt text) of record `index`.
    pub fn record_json(
        &self,
        execution_id: &str,
        workflow_id: &str,
        started_at_ns: i64,
        index: u64,
    ) -> String {
        let shape = self.shape_of(index);
        let placement = match &shape {
            RecordShape::Written(placement) => placement.clone(),
            RecordShape::CorruptHead => FieldPlacement::Front,
        };
        let mut text = execution_record_json(&ExecutionRecordSpec {
            execution_id: execution_id.to_string(),
            workflow_id: workflow_id.to_string(),
            started_at_ns,
            target_bytes: self.record_bytes,
            placement,
            payload_seed: index,
        });
        if shape == RecordShape::CorruptHead {
            // `{"workflowId":` is ASCII, so byte 8 is a character boundary.
            text.replace_range(..8, "#corrupt");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memproof::exec_history::trim_fields::{self, FieldsRead};

    #[test]
    fn shapes_cycle_and_read_as_intended() {
        let shapes = RecordShapes {
            record_bytes: 5_000,
            odd_records_every: 3,
        };
        let reads: Vec<&str> = (0..12)
            .map(|index| {
                match trim_fields::with_fallback(&shapes.record_json("e", "w", 0, index)) {
                    FieldsRead::Prefix(_) => "prefix",
                    FieldsRead::FullParseFallback(_) => "fallback",
                    FieldsRead::Unreadable(_) => "unreadable",
                }
            })
            .collect();
        assert_eq!(
            reads,
            [
                "prefix",
                "prefix",
                "fallback",
                "prefix",
                "prefix",
                "prefix",
                "prefix",
                "prefix",
                "prefix",
                "prefix",
                "prefix",
                "unreadable"
            ]
        );
    }
}
