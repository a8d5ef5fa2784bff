//! Seed A: the execution-history trim. A service wrote one execution record per processed syslog message into
//! SQLite, a JSON value of several hundred KB (full alert payloads). Every 5th message of a workflow fired a
//! background trim that kept the newest N executions of that workflow; it listed every record of the table and
//! JSON-parsed each one just to read `workflowId` and `startedAt`. On a 3+ GB table each trim took tens of seconds,
//! several ran at once, and RSS climbed to 20 GB. The merged fix lists raw strings, reads the two fields with a
//! regex on the first 400 bytes ("~100x cheaper than a full parse") and allows one trim per workflow in flight; it
//! still materialises every raw value of the table per trim.
//!
//! - [`store`]: the SQLite table (a real file), with SQLite's allocator routed through Rust's ([`sqlite_alloc`]).
//! - [`record`]: the records the service writes, and the edge cases the prefix regex must survive.
//! - [`started_at`], [`trim_fields`]: reading the two fields, by full parse or by prefix regex with fallback.
//! - [`trim`]: the three trim techniques (`parse_all`, `raw_prefix_scan`, `indexed_columns_delete`).
//! - [`single_flight`], [`trim_dispatch`]: when trims fire and how many run at once.

pub mod record;
pub mod single_flight;
pub mod sqlite_alloc;
pub mod started_at;
pub mod store;
pub mod trim;
pub mod trim_dispatch;
pub mod trim_fields;
