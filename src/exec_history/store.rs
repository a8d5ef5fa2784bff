//! The execution-history store: one table in a real SQLite file, as in seed A's service, keyed by
//! `workflow_execution/<id>` with the record's JSON text as the value.
//!
//! Besides the value, every insert writes the two trim fields as columns (`workflow_id`, `started_at_ns`, read
//! from the value with [`trim_fields::with_fallback`]) with an index over them. All three trim techniques run on
//! this same table, byte for byte; only the index-based one reads the columns. The columns sit before the value in
//! each row, so reading them never walks a value's overflow pages. A record whose fields cannot be read gets NULL
//! columns and lands in a partial index of unreadable keys, which every trim reports.
//!
//! SQLite's own allocations go through Rust's global allocator ([`super::sqlite_alloc`]), so a case's heap figure
//! includes SQLite's page cache and the value buffers it hands back.

use super::sqlite_alloc::route_sqlite_through_global_allocator;
use super::trim_fields::{self, FieldsRead, TrimFields};
use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension as _, params};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a connection waits for another writer's lock before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS workflow_execution (
    key TEXT PRIMARY KEY NOT NULL,
    workflow_id TEXT,
    started_at_ns INTEGER,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS workflow_execution_by_workflow
    ON workflow_execution (workflow_id, started_at_ns, key);
CREATE INDEX IF NOT EXISTS workflow_execution_unreadable
    ON workflow_execution (key) WHERE workflow_id IS NULL;
";

/// One connection to the store's SQLite file.
pub struct ExecutionStore {
    connection: Connection,
    path: PathBuf,
}

/// How an insert read the record's trim fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertedFields {
    /// Read by the prefix regex.
    Prefix,
    /// The prefix missed; a full parse of the record read them.
    FullParseFallback,
    /// Unreadable: the record is stored with NULL trim columns and reported by every trim.
    Unreadable,
}

/// CPU time this thread has used, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`): what a piece of work cost even
/// when other threads share the cores.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Every record of the table, each value fully parsed.
#[derive(Debug)]
pub struct ParsedListing {
    pub entries: Vec<ParsedEntry>,
    /// CPU time spent in the JSON parser, summed over the records.
    pub parse_cpu_ns: u64,
}

/// A listed record whose value was fully parsed.
#[derive(Debug)]
pub struct ParsedEntry {
    pub key: String,
    /// The parsed value, or the parser's message.
    pub value: Result<serde_json::Value, String>,
}

impl ExecutionStore {
    /// Opens (and creates) the store at `path`, routing SQLite's allocator first (see the module comment).
    pub fn open(path: &Path) -> anyhow::Result<ExecutionStore> {
        route_sqlite_through_global_allocator()?;
        let connection = Connection::open(path)
            .with_context(|| format!("{}: cannot open the execution store", path.display()))?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .with_context(|| format!("{}: cannot switch to WAL", path.display()))?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection
            .execute_batch(SCHEMA)
            .with_context(|| format!("{}: cannot create the schema", path.display()))?;
        Ok(ExecutionStore {
            connection,
            path: path.to_path_buf(),
        })
    }

    /// The connection, for queries a test or a scenario runs beside the trims.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores one record (replacing any with the same key) with its trim columns.
    pub fn insert(&self, key: &str, raw_value: &str) -> anyhow::Result<InsertedFields> {
        let read = trim_fields::with_fallback(raw_value);
        let (fields, how) = match &read {
            FieldsRead::Prefix(fields) => (Some(fields), InsertedFields::Prefix),
            FieldsRead::FullParseFallback(fields) => {
                (Some(fields), InsertedFields::FullParseFallback)
            }
            FieldsRead::Unreadable(_) => (None, InsertedFields::Unreadable),
        };
        self.connection
            .prepare_cached(
                "INSERT OR REPLACE INTO workflow_execution (key, workflow_id, started_at_ns, value)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                key,
                fields.map(|f| f.workflow_id.as_str()),
                fields.map(|f| f.started_at_ns),
                raw_value
            ])
            .with_context(|| format!("{}: cannot insert {key}", self.path.display()))?;
        Ok(how)
    }

    /// Every record with its value fully parsed, all held at once: the seed's `list_entries`.
    pub fn list_entries(&self) -> anyhow::Result<ParsedListing> {
        let mut statement = self
            .connection
            .prepare("SELECT key, value FROM workflow_execution")?;
        let mut rows = statement.query([])?;
        let mut entries = Vec::new();
        let mut parse_cpu_ns = 0;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            let raw_value = row.get_ref(1)?.as_str()?;
            let parse_started = thread_cpu_ns();
            let value = serde_json::from_str(raw_value).map_err(|error| error.to_string());
            parse_cpu_ns += thread_cpu_ns() - parse_started;
            entries.push(ParsedEntry { key, value });
        }
        Ok(ParsedListing {
            entries,
            parse_cpu_ns,
        })
    }

    /// Every record's raw value text, all held at once, nothing parsed: the seed fix's `list_raw`.
    pub fn list_raw(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut statement = self
            .connection
            .prepare("SELECT key, value FROM workflow_execution")?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes `keys` in one transaction; returns how many rows went.
    pub fn delete_keys(&mut self, keys: &[String]) -> anyhow::Result<u64> {
        let transaction = self.connection.transaction()?;
        let mut deleted = 0;
        {
            let mut statement =
                transaction.prepare_cached("DELETE FROM workflow_execution WHERE key = ?1")?;
            for key in keys {
                deleted += statement.execute([key])? as u64;
            }
        }
        transaction.commit()?;
        Ok(deleted)
    }

    /// Deletes all of `workflow_id`'s records but the newest `keep` (by `started_at_ns`, then key) with one
    /// `DELETE` over the index; returns the deleted keys. No value is read.
    pub fn delete_all_but_newest_by_index(
        &self,
        workflow_id: &str,
        keep: usize,
    ) -> anyhow::Result<Vec<String>> {
        let mut statement = self.connection.prepare_cached(
            "DELETE FROM workflow_execution WHERE key IN (
                 SELECT key FROM workflow_execution WHERE workflow_id = ?1
                 ORDER BY started_at_ns DESC, key DESC LIMIT -1 OFFSET ?2)
             RETURNING key",
        )?;
        let keys = statement.query_map(params![workflow_id, keep as i64], |row| row.get(0))?;
        Ok(keys.collect::<Result<_, _>>()?)
    }

    /// Keys of the records whose trim fields could not be read at insert, from their partial index.
    pub fn unreadable_keys_by_index(&self) -> anyhow::Result<Vec<String>> {
        let mut statement = self.connection.prepare_cached(
            "SELECT key FROM workflow_execution WHERE workflow_id IS NULL ORDER BY key",
        )?;
        let keys = statement.query_map([], |row| row.get(0))?;
        Ok(keys.collect::<Result<_, _>>()?)
    }

    /// How many records the table holds.
    pub fn n_records(&self) -> anyhow::Result<u64> {
        let n: i64 =
            self.connection
                .query_row("SELECT count(*) FROM workflow_execution", [], |row| {
                    row.get(0)
                })?;
        Ok(n as u64)
    }

    /// Bytes of all values (their UTF-8 length; SQLite reads the lengths, not the values).
    pub fn value_bytes(&self) -> anyhow::Result<u64> {
        let bytes: Option<i64> = self
            .connection
            .query_row(
                "SELECT sum(octet_length(value)) FROM workflow_execution",
                [],
                |row| row.get(0),
            )
            .optional()?
            .flatten();
        Ok(bytes.unwrap_or(0) as u64)
    }

    /// Bytes of the database file as SQLite sees it (pages × page size).
    pub fn database_bytes(&self) -> anyhow::Result<u64> {
        let pages: i64 = self
            .connection
            .query_row("PRAGMA page_count", [], |row| row.get(0))?;
        let page_size: i64 = self
            .connection
            .query_row("PRAGMA page_size", [], |row| row.get(0))?;
        Ok((pages * page_size) as u64)
    }

    /// Every (key, value) in key order: the table's whole content, for tests that compare two stores.
    pub fn contents_by_key(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut contents = self.list_raw()?;
        contents.sort();
        Ok(contents)
    }

    /// The trim columns of one record, as the insert wrote them.
    pub fn trim_columns(&self, key: &str) -> anyhow::Result<Option<TrimFields>> {
        let columns: Option<(Option<String>, Option<i64>)> = self
            .connection
            .query_row(
                "SELECT workflow_id, started_at_ns FROM workflow_execution WHERE key = ?1",
                [key],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        Ok(match columns {
            Some((Some(workflow_id), Some(started_at_ns))) => Some(TrimFields {
                workflow_id,
                started_at_ns,
            }),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_writes_trim_columns_and_lists_agree() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ExecutionStore::open(&dir.path().join("store.db")).unwrap();
        let good = r#"{"workflowId":"w","startedAt":"1970-01-01T00:00:01Z","p":"x"}"#;
        let hidden = format!(
            r#"{{"trace":"{}","workflowId":"w","startedAt":2000}}"#,
            "t".repeat(500)
        );
        assert_eq!(store.insert("k1", good).unwrap(), InsertedFields::Prefix);
        assert_eq!(
            store.insert("k2", &hidden).unwrap(),
            InsertedFields::FullParseFallback
        );
        assert_eq!(
            store.insert("k3", "{broken").unwrap(),
            InsertedFields::Unreadable
        );
        assert_eq!(store.n_records().unwrap(), 3);
        assert_eq!(
            store.value_bytes().unwrap(),
            (good.len() + hidden.len() + "{broken".len()) as u64
        );
        assert_eq!(
            store.trim_columns("k2").unwrap(),
            Some(TrimFields {
                workflow_id: "w".into(),
                started_at_ns: 2_000_000_000
            })
        );
        assert_eq!(
            store.unreadable_keys_by_index().unwrap(),
            vec!["k3".to_string()]
        );
        let parsed = store.list_entries().unwrap().entries;
        assert_eq!(parsed.iter().filter(|e| e.value.is_err()).count(), 1);
        assert_eq!(store.list_raw().unwrap().len(), 3);
        assert_eq!(
            store.delete_all_but_newest_by_index("w", 1).unwrap(),
            vec!["k1".to_string()]
        );
        assert_eq!(store.delete_keys(&["k2".into(), "nope".into()]).unwrap(), 1);
        assert_eq!(
            store.contents_by_key().unwrap(),
            vec![("k3".into(), "{broken".into())]
        );
        assert!(store.database_bytes().unwrap() > 0);
    }
}
