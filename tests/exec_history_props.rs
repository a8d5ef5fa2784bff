//! The three trim techniques are equals: on arbitrary stores (random workflows, timestamps with ties, record sizes,
//! the fields at the front or past the 400-byte prefix, escaped quotes and `\u` escapes in workflow ids, startedAt
//! as RFC 3339, with an offset, as epoch millis or in a format nobody reads, records that are not JSON), `parse_all`,
//! `raw_prefix_scan` and `indexed_columns_delete` delete exactly the same keys, report the same unreadable keys,
//! and leave the same table. (A record whose head is valid and whose tail is corrupt is the documented exception,
//! see `trim_fields`; it is tested there, not generated here.)

use memproof::exec_history::record::{ExecutionRecordSpec, FieldPlacement, execution_record_json};
use memproof::exec_history::store::ExecutionStore;
use memproof::exec_history::trim::{TrimTechnique, trim_workflow};
use proptest::prelude::*;

const WORKFLOW_IDS: [&str; 4] = ["wf-0", "wf \"1\"", "wf-é2", "wf\\3"];

#[derive(Debug, Clone)]
enum Shape {
    Placed(FieldPlacement),
    /// `é` in the workflow id written as `\u00e9`.
    UnicodeEscapedWorkflowId,
    /// A startedAt no technique can read.
    UnreadableStartedAt,
    /// The first bytes overwritten: not JSON.
    CorruptHead,
}

#[derive(Debug, Clone)]
struct GeneratedRecord {
    workflow: usize,
    started_at_second: i64,
    payload_bytes: usize,
    shape: Shape,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        4 => Just(Shape::Placed(FieldPlacement::Front)),
        2 => (300usize..900).prop_map(|bytes| Shape::Placed(FieldPlacement::AfterLargeMember { bytes })),
        1 => Just(Shape::Placed(FieldPlacement::StartedAtEpochMillis)),
        1 => (-720i32..720).prop_map(|offset_minutes| Shape::Placed(FieldPlacement::StartedAtWithOffset { offset_minutes })),
        1 => Just(Shape::UnicodeEscapedWorkflowId),
        1 => Just(Shape::UnreadableStartedAt),
        1 => Just(Shape::CorruptHead),
    ]
}

fn generated_record() -> impl Strategy<Value = GeneratedRecord> {
    (0..WORKFLOW_IDS.len(), 0i64..12, 0usize..3000, shape()).prop_map(
        |(workflow, started_at_second, payload_bytes, shape)| GeneratedRecord {
            workflow,
            started_at_second,
            payload_bytes,
            shape,
        },
    )
}

fn record_text(index: usize, record: &GeneratedRecord) -> String {
    let placement = match &record.shape {
        Shape::Placed(placement) => placement.clone(),
        _ => FieldPlacement::Front,
    };
    let mut text = execution_record_json(&ExecutionRecordSpec {
        execution_id: format!("e{index}"),
        workflow_id: WORKFLOW_IDS[record.workflow].to_string(),
        // Whole milliseconds, so the epoch-millis shape states the same instant.
        started_at_ns: 1_780_404_960_000_000_000 + record.started_at_second * 1_000_000_000,
        target_bytes: record.payload_bytes,
        placement,
        payload_seed: index as u64,
    });
    match record.shape {
        Shape::UnicodeEscapedWorkflowId => text = text.replacen('é', "\\u00e9", 1),
        Shape::UnreadableStartedAt => {
            let start = text.find(r#""startedAt":""#).unwrap() + r#""startedAt":""#.len();
            let end = start + text[start..].find('"').unwrap();
            text.replace_range(start..end, "June 2, 2026 12:56");
        }
        Shape::CorruptHead => text.replace_range(..8, "#corrupt"),
        Shape::Placed(_) => {}
    }
    text
}

/// Everything a trim decided and left behind.
#[derive(Debug, PartialEq, Eq)]
struct TrimOutcome {
    deleted_keys: Vec<String>,
    unreadable_keys: Vec<String>,
    table: Vec<(String, String)>,
}

fn trim_with(
    technique: TrimTechnique,
    records: &[GeneratedRecord],
    workflow: usize,
    keep: usize,
) -> TrimOutcome {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ExecutionStore::open(&dir.path().join("store.db")).unwrap();
    for (index, record) in records.iter().enumerate() {
        store
            .insert(
                &format!("workflow_execution/{index:04}"),
                &record_text(index, record),
            )
            .unwrap();
    }
    let report = trim_workflow(&mut store, technique, WORKFLOW_IDS[workflow], keep).unwrap();
    assert_eq!(report.rows_deleted, report.deleted_keys.len() as u64);
    TrimOutcome {
        deleted_keys: report.deleted_keys,
        unreadable_keys: report.unreadable_keys,
        table: store.contents_by_key().unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn the_three_trims_delete_the_same_records_and_leave_the_same_table(
        records in proptest::collection::vec(generated_record(), 0..30),
        workflow in 0..WORKFLOW_IDS.len(),
        keep in 0usize..5,
    ) {
        let parse_all = trim_with(TrimTechnique::ParseAll, &records, workflow, keep);
        let raw_prefix_scan = trim_with(TrimTechnique::RawPrefixScan, &records, workflow, keep);
        let indexed = trim_with(TrimTechnique::IndexedColumnsDelete, &records, workflow, keep);
        // The reference's own answer, worked out here from what was generated.
        let readable_of_workflow = records
            .iter()
            .filter(|r| r.workflow == workflow)
            .filter(|r| !matches!(r.shape, Shape::UnreadableStartedAt | Shape::CorruptHead))
            .count();
        prop_assert_eq!(parse_all.deleted_keys.len(), readable_of_workflow.saturating_sub(keep));
        let unreadable = records
            .iter()
            .filter(|r| matches!(r.shape, Shape::UnreadableStartedAt | Shape::CorruptHead))
            .count();
        prop_assert_eq!(parse_all.unreadable_keys.len(), unreadable);
        prop_assert_eq!(&raw_prefix_scan, &parse_all);
        prop_assert_eq!(&indexed, &parse_all);
    }
}
