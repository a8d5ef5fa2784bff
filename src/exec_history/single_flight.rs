//! The merged fix's guard: at most one trim per workflow in flight. In seed A every 5th message of a workflow
//! fired a trim that took tens of seconds on a 3+ GB table, so trims piled up and their transient memory added up
//! to 20 GB of RSS. The fix kept a set of workflows with a trim running and skipped triggers for them.
//!
//! Skipping alone would lose the records written while the running trim was listing. This guard coalesces
//! instead: a trigger that arrives while its workflow's trim runs sets a flag, and when the trim ends its owner
//! runs once more over the latest state. However many triggers arrive meanwhile, one more trim covers them all.

use std::collections::HashMap;
use std::sync::Mutex;

/// Whether a trigger may start a trim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// No trim of this workflow runs: the caller runs one (and must call [`SingleFlightGuard::finish`]).
    Run,
    /// A trim runs; it will run once more when it ends.
    Coalesced,
}

/// Per-workflow single-flight with coalescing.
#[derive(Debug, Default)]
pub struct SingleFlightGuard {
    /// Workflows with a trim in flight, and whether a trigger arrived since it started.
    running: Mutex<HashMap<String, bool>>,
}

impl SingleFlightGuard {
    pub fn new() -> SingleFlightGuard {
        SingleFlightGuard::default()
    }

    /// Admits a trigger for `workflow_id`.
    pub fn admit(&self, workflow_id: &str) -> Admission {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match running.get_mut(workflow_id) {
            Some(triggered_again) => {
                *triggered_again = true;
                Admission::Coalesced
            }
            None => {
                running.insert(workflow_id.to_string(), false);
                Admission::Run
            }
        }
    }

    /// Called by the owner when its trim ends: `true` means triggers arrived meanwhile and the owner must trim
    /// again (it still holds the slot); `false` releases the slot.
    pub fn finish(&self, workflow_id: &str) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match running.get_mut(workflow_id) {
            Some(triggered_again) if *triggered_again => {
                *triggered_again = false;
                true
            }
            _ => {
                running.remove(workflow_id);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_per_workflow_and_no_trigger_lost() {
        let guard = SingleFlightGuard::new();
        assert_eq!(guard.admit("a"), Admission::Run);
        assert_eq!(guard.admit("b"), Admission::Run);
        assert_eq!(guard.admit("a"), Admission::Coalesced);
        assert_eq!(guard.admit("a"), Admission::Coalesced);
        // Two coalesced triggers: one more run, then release.
        assert!(guard.finish("a"));
        assert!(!guard.finish("a"));
        assert!(!guard.finish("b"));
        assert_eq!(guard.admit("a"), Admission::Run);
    }
}
