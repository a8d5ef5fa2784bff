//! One trim of one workflow's execution history: keep its newest `keep` records (by `startedAt`, ties broken by
//! key), delete the rest, and report every record whose fields could not be read, by key, without deleting it.
//!
//! Three techniques do the same thing with very different memory (seed A: a 3+ GB table, records of several
//! hundred KB):
//! - [`TrimTechnique::ParseAll`], the seed's faulty trim: lists every record of the table with its value fully
//!   JSON-parsed and all of them held at once, then picks the workflow's records out of that. Peak: the parsed
//!   table.
//! - [`TrimTechnique::RawPrefixScan`], the merged fix: lists every raw value string (no parse), reads the two
//!   fields with the 400-byte prefix regex (a full parse of just that record when the prefix cannot read it).
//!   Peak: still the whole table's raw text, once per trim in flight.
//! - [`TrimTechnique::IndexedColumnsDelete`]: no value leaves SQLite. The fields were written as indexed columns
//!   at insert, so the trim is one `DELETE … RETURNING key` over the index. Peak: flat in the table's size.

use super::store::{ExecutionStore, thread_cpu_ns};
use super::trim_fields::{self, FieldsRead, TrimFields};
use std::collections::BTreeSet;

/// How a trim finds the records to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrimTechnique {
    ParseAll,
    RawPrefixScan,
    IndexedColumnsDelete,
}

/// What one trim did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrimReport {
    /// Records the trim listed (the whole table for the listing techniques, none for the index).
    pub records_listed: u64,
    /// Keys the trim chose to delete, sorted.
    pub deleted_keys: Vec<String>,
    /// Rows its `DELETE`s removed: fewer than `deleted_keys` when a concurrent trim removed some first.
    pub rows_deleted: u64,
    /// Keys of records whose fields could not be read, sorted; they stay in the table.
    pub unreadable_keys: Vec<String>,
    /// CPU time spent reading the two fields out of the listed values (the full parse, or the prefix regex with
    /// its fallbacks), summed over the records; 0 for the index technique, which reads no value.
    pub extraction_cpu_ns: u64,
    /// Records the prefix regex could not read, which a full parse of that record then read (or found unreadable).
    pub prefix_misses: u64,
}

/// The keys of `workflow_id` beyond its newest `keep` records, sorted.
pub fn keys_beyond_newest<'a>(
    records: impl Iterator<Item = (&'a str, &'a TrimFields)>,
    workflow_id: &str,
    keep: usize,
) -> Vec<String> {
    let mut of_workflow: Vec<(i64, &str)> = records
        .filter(|(_, fields)| fields.workflow_id == workflow_id)
        .map(|(key, fields)| (fields.started_at_ns, key))
        .collect();
    // Newest first: later instant first, then the larger key.
    of_workflow.sort_unstable_by(|a, b| b.cmp(a));
    let mut doomed: Vec<String> = of_workflow
        .into_iter()
        .skip(keep)
        .map(|(_, key)| key.to_string())
        .collect();
    doomed.sort_unstable();
    doomed
}

/// Trims `workflow_id` to its newest `keep` records with `technique`.
pub fn trim_workflow(
    store: &mut ExecutionStore,
    technique: TrimTechnique,
    workflow_id: &str,
    keep: usize,
) -> anyhow::Result<TrimReport> {
    trim_workflow_holding(store, technique, workflow_id, keep, || ())
}

/// [`trim_workflow`], calling `hold` once the trim has deleted and before it lets go of anything it read: its
/// listing, and `store`'s page cache as long as the caller keeps `store`. A trim that is slow (the seed's took tens
/// of seconds on a 3+ GB table) holds its working set that long, so two trims in flight at once hold two; `hold`
/// is where a scenario makes a small table's trim take that long without its working set leaving early.
pub fn trim_workflow_holding(
    store: &mut ExecutionStore,
    technique: TrimTechnique,
    workflow_id: &str,
    keep: usize,
    hold: impl FnOnce(),
) -> anyhow::Result<TrimReport> {
    match technique {
        TrimTechnique::ParseAll => trim_by_parse_all(store, workflow_id, keep, hold),
        TrimTechnique::RawPrefixScan => trim_by_raw_prefix_scan(store, workflow_id, keep, hold),
        TrimTechnique::IndexedColumnsDelete => {
            trim_by_indexed_columns_delete(store, workflow_id, keep, hold)
        }
    }
}

fn trim_by_parse_all(
    store: &mut ExecutionStore,
    workflow_id: &str,
    keep: usize,
    hold: impl FnOnce(),
) -> anyhow::Result<TrimReport> {
    let listing = store.list_entries()?;
    let entries = &listing.entries;
    let mut readable = Vec::with_capacity(entries.len());
    let mut unreadable_keys = BTreeSet::new();
    let fields_started = thread_cpu_ns();
    for entry in entries {
        match entry
            .value
            .as_ref()
            .ok()
            .map(trim_fields::from_parsed_value)
        {
            Some(Ok(fields)) => readable.push((entry.key.as_str(), fields)),
            _ => {
                unreadable_keys.insert(entry.key.clone());
            }
        }
    }
    let extraction_cpu_ns = listing.parse_cpu_ns + (thread_cpu_ns() - fields_started);
    let read = FieldsOfListing {
        readable: &readable,
        unreadable_keys,
        records_listed: entries.len() as u64,
        extraction_cpu_ns,
        prefix_misses: 0,
    };
    delete_beyond_newest(store, read, workflow_id, keep, hold)
}

/// What a listing trim read of the table: the fields of every record it could read, and the keys it could not.
struct FieldsOfListing<'a> {
    readable: &'a [(&'a str, TrimFields)],
    unreadable_keys: BTreeSet<String>,
    records_listed: u64,
    extraction_cpu_ns: u64,
    prefix_misses: u64,
}

/// The part both listing trims share: delete all but the newest `keep` readable records of `workflow_id`, then
/// `hold`, the listing `read` borrows still alive.
fn delete_beyond_newest(
    store: &mut ExecutionStore,
    read: FieldsOfListing<'_>,
    workflow_id: &str,
    keep: usize,
    hold: impl FnOnce(),
) -> anyhow::Result<TrimReport> {
    let doomed = keys_beyond_newest(
        read.readable.iter().map(|(key, fields)| (*key, fields)),
        workflow_id,
        keep,
    );
    let rows_deleted = store.delete_keys(&doomed)?;
    hold();
    Ok(TrimReport {
        rows_deleted,
        extraction_cpu_ns: read.extraction_cpu_ns,
        records_listed: read.records_listed,
        deleted_keys: doomed,
        unreadable_keys: read.unreadable_keys.into_iter().collect(),
        prefix_misses: read.prefix_misses,
    })
}

fn trim_by_raw_prefix_scan(
    store: &mut ExecutionStore,
    workflow_id: &str,
    keep: usize,
    hold: impl FnOnce(),
) -> anyhow::Result<TrimReport> {
    let raw = store.list_raw()?;
    let mut readable = Vec::with_capacity(raw.len());
    let mut unreadable_keys = BTreeSet::new();
    let mut prefix_misses = 0;
    let extraction_started = thread_cpu_ns();
    for (key, raw_value) in &raw {
        let read = trim_fields::with_fallback(raw_value);
        if !matches!(read, FieldsRead::Prefix(_)) {
            prefix_misses += 1;
        }
        match read {
            FieldsRead::Prefix(fields) | FieldsRead::FullParseFallback(fields) => {
                readable.push((key.as_str(), fields))
            }
            FieldsRead::Unreadable(_) => {
                unreadable_keys.insert(key.clone());
            }
        }
    }
    let extraction_cpu_ns = thread_cpu_ns() - extraction_started;
    let read = FieldsOfListing {
        readable: &readable,
        unreadable_keys,
        records_listed: raw.len() as u64,
        extraction_cpu_ns,
        prefix_misses,
    };
    delete_beyond_newest(store, read, workflow_id, keep, hold)
}

fn trim_by_indexed_columns_delete(
    store: &mut ExecutionStore,
    workflow_id: &str,
    keep: usize,
    hold: impl FnOnce(),
) -> anyhow::Result<TrimReport> {
    let mut deleted_keys = store.delete_all_but_newest_by_index(workflow_id, keep)?;
    deleted_keys.sort_unstable();
    let unreadable_keys = store.unreadable_keys_by_index()?;
    hold();
    Ok(TrimReport {
        rows_deleted: deleted_keys.len() as u64,
        extraction_cpu_ns: 0,
        records_listed: 0,
        deleted_keys,
        unreadable_keys,
        prefix_misses: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(workflow_id: &str, started_at_ns: i64) -> TrimFields {
        TrimFields {
            workflow_id: workflow_id.into(),
            started_at_ns,
        }
    }

    #[test]
    fn keeps_the_newest_and_breaks_ties_by_key() {
        let records = [
            ("a", fields("w", 1)),
            ("b", fields("w", 3)),
            ("c", fields("w", 3)),
            ("d", fields("v", 9)),
            ("e", fields("w", 2)),
        ];
        let check = |keep: usize, expected: &[&str]| {
            let got = keys_beyond_newest(records.iter().map(|(k, f)| (*k, f)), "w", keep);
            assert_eq!(got, expected, "keep {keep}");
        };
        check(0, &["a", "b", "c", "e"]);
        check(1, &["a", "b", "e"]);
        check(2, &["a", "e"]);
        check(4, &[]);
    }

    #[test]
    fn the_three_techniques_agree_hold_after_deleting_and_name_corrupt_records() {
        let records: Vec<(&str, String)> = vec![
            (
                "k1",
                r#"{"workflowId":"w","startedAt":"1970-01-01T00:00:01Z"}"#.into(),
            ),
            (
                "k2",
                format!(
                    r#"{{"pad":"{}","workflowId":"w","startedAt":2000}}"#,
                    "p".repeat(450)
                ),
            ),
            (
                "k3",
                r#"{"workflowId":"w \"x\" é","startedAt":"1970-01-01T00:00:03Z"}"#.into(),
            ),
            (
                "k4",
                r#"{"workflowId":"w","startedAt":"1970-01-01 01:00:04+01:00"}"#.into(),
            ),
            (
                "k5",
                r#"{"workflowId":"w","startedAt":"last tuesday"}"#.into(),
            ),
            ("k6", "\u{0}garbage".into()),
            (
                "k7",
                r#"{"workflowId":"v","startedAt":"1970-01-01T00:00:07Z"}"#.into(),
            ),
        ];
        let mut outcomes = Vec::new();
        for technique in [
            TrimTechnique::ParseAll,
            TrimTechnique::RawPrefixScan,
            TrimTechnique::IndexedColumnsDelete,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut store = ExecutionStore::open(&dir.path().join("s.db")).unwrap();
            for (key, value) in &records {
                store.insert(key, value).unwrap();
            }
            // The hold comes after the delete: another connection sees the two rows gone while it runs.
            let mut held = None;
            let report = trim_workflow_holding(&mut store, technique, "w", 1, || {
                let other = ExecutionStore::open(&dir.path().join("s.db")).unwrap();
                held = Some(other.n_records().unwrap());
            })
            .unwrap();
            assert_eq!(held, Some(records.len() as u64 - 2), "{technique:?}");
            assert_eq!(report.deleted_keys, ["k1", "k2"], "{technique:?}");
            assert_eq!(report.unreadable_keys, ["k5", "k6"], "{technique:?}");
            outcomes.push(store.contents_by_key().unwrap());
        }
        assert_eq!(outcomes[0], outcomes[1]);
        assert_eq!(outcomes[0], outcomes[2]);
    }
}
