//! The schema every other crate reads: scenario specs ([`spec`], with the user's own programs in
//! [`external_command`]), the results a run writes ([`results`]), and the units both are written in ([`units`]).
//!
//! A leaf: it depends on no other memproof crate, so the spec a contributor writes and the results.json a reviewer
//! reads have one definition, and the crates that plan, run and judge cases meet only through it.

pub mod external_command;
pub mod file_stem;
pub mod results;
pub mod spec;
pub mod text_escaping;
#[cfg(any(test, feature = "test-support"))]
pub mod toy_spec;
pub mod units;
