//! memproof's answers: verdicts judged on a run's `results.json`, and the reports rendered from it.
//!
//! The spine measures; this crate says what the measurements mean to the three people memproof answers: CI (did
//! memory regress? [`judge`], `junit.xml`, `bmf.json`), an engineer chasing an OOM (where did the memory go, and
//! when? the timeline charts and `index.html`), and a reviewer (does this PR's claim hold? `summary.md`). It never
//! runs a case: every output is rendered from `results.json` alone, so `cargo xtask report DIR` re-renders a run.

pub mod allocation_sites;
pub mod baseline;
pub mod charts;
pub mod compare;
#[cfg(test)]
mod fixture_run;
pub mod judge;
pub mod noise;
pub mod render;
pub mod site_diff;

pub use render::write_reports;
