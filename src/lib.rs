//! memproof's seed models, one per incident (the table below): each out-of-memory bug's faulty code path (`before`), the merged fix (`after`),
//! and where the fix still keeps an O(n) term, a version without it (`best`). Code is named for the technique it
//! uses; the scenario specs in `scenarios/` map techniques to roles.
//!
//! | module | seed | bug |
//! |---|---|---|
//! | [`exec_history`] | A | a trim JSON-parsed every stored execution record, many trims at once: RSS to 20 GB |
//! | [`workflow_init`] | B | 12 concurrent inits pinned ~3x the compressed module each through a trigger wait |
//! | [`event_log`] | C | each GET read a whole JSONL event log of hundreds of MB: OOM-killed at 512 MiB |
//! | [`session_store`] | D | each appended event cloned and rewrote the whole 22 MB state: 4 GB heap, 595 restarts |

pub mod event_log;
pub mod exec_history;
pub mod payload;
pub mod session_store;
pub mod technique;
pub mod workflow_init;
