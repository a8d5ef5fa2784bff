//! Property tests of seed D's store: for any sequence of opens, appends, endings and reloads, the merged fix
//! (`debounced_snapshot`) and the best version (`journal_with_snapshot`) hold the same sessions and events as the
//! seed's store (`clone_all_sync_write`) does once the documented retention rules (the cap, the startup prune) are
//! applied to its view, they accept and refuse the same mutations, and sequence numbers stay strictly increasing
//! per session across reloads.

use memproof::session_store::state::{RetentionRules, StoreState};
use memproof::session_store::{SessionStatus, SessionStore, StoreConfig, StoreTechnique};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

const CAP: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Open(u8),
    Append(u8, usize),
    End(u8, SessionStatus),
    Reload,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0u8..4).prop_map(Op::Open),
        8 => (0u8..5, 0usize..40).prop_map(|(s, len)| Op::Append(s, len)),
        1 => (0u8..4, prop_oneof![
            Just(SessionStatus::Completed),
            Just(SessionStatus::Failed),
            Just(SessionStatus::Closed)
        ])
        .prop_map(|(s, status)| Op::End(s, status)),
        1 => Just(Op::Reload),
    ]
}

fn config() -> StoreConfig {
    StoreConfig {
        rules: RetentionRules {
            max_events_per_session: Some(CAP),
            prune_ended_sessions_at_load: true,
        },
        debounce_window: Duration::from_secs(3),
        max_event_bytes: 30,
        // A tiny floor, so that compaction happens within a few appends and is exercised too.
        compact_min_journal_bytes: 200,
        undone: None,
    }
}

/// The seed store's view with the merged fix's rules applied: the events of sessions that had ended at some
/// reload are gone, the rest keep their last `CAP` events.
fn with_retention_rules(before: &StoreState, pruned: &BTreeSet<String>) -> StoreState {
    let mut expected = before.clone();
    expected.generation = 0;
    for (id, session) in &mut expected.sessions {
        if pruned.contains(id) {
            session.events.clear();
        }
        let excess = session.events.len().saturating_sub(CAP);
        session.events.drain(..excess);
    }
    expected
}

fn without_generation(state: &StoreState) -> StoreState {
    StoreState {
        generation: 0,
        sessions: state.sessions.clone(),
    }
}

fn reopen(technique: StoreTechnique, path: &Path) -> Box<dyn SessionStore> {
    technique.open(path, config(), Instant::now()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn fix_and_best_hold_what_the_seed_store_holds_under_the_retention_rules(
        ops in proptest::collection::vec(op(), 1..60)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<_> = StoreTechnique::ALL
            .iter()
            .map(|technique| dir.path().join(format!("{}.json", technique.name())))
            .collect();
        let mut stores: Vec<Box<dyn SessionStore>> = StoreTechnique::ALL
            .iter()
            .zip(&paths)
            .map(|(technique, path)| reopen(*technique, path))
            .collect();
        let mut pruned = BTreeSet::new();
        let mut highest_seq_seen: BTreeMap<String, u64> = BTreeMap::new();
        let now = Instant::now();
        for op in ops {
            match op {
                Op::Open(s) => {
                    let outcomes: Vec<String> = stores
                        .iter_mut()
                        .map(|store| format!("{:?}", store.open_session(&format!("s{s}"), now).map_err(|e| e.to_string())))
                        .collect();
                    prop_assert!(outcomes.iter().all(|o| o == &outcomes[0]), "{outcomes:?}");
                }
                Op::Append(s, len) => {
                    let session = format!("s{s}");
                    let body = "é".repeat(len / 2);
                    let outcomes: Vec<Result<u64, String>> = stores
                        .iter_mut()
                        .map(|store| store.append_event(&session, "Stop", &body, now).map_err(|e| e.to_string()))
                        .collect();
                    prop_assert!(outcomes.iter().all(|o| o == &outcomes[0]), "{outcomes:?}");
                    if let Ok(seq) = outcomes[0] {
                        let highest = highest_seq_seen.entry(session).or_insert(0);
                        prop_assert!(seq > *highest, "seq {seq} after {highest}");
                        *highest = seq;
                    }
                }
                Op::End(s, status) => {
                    let outcomes: Vec<String> = stores
                        .iter_mut()
                        .map(|store| format!("{:?}", store.end_session(&format!("s{s}"), status, now).map_err(|e| e.to_string())))
                        .collect();
                    prop_assert!(outcomes.iter().all(|o| o == &outcomes[0]), "{outcomes:?}");
                }
                Op::Reload => {
                    for id in stores[0].state().sessions.iter().filter(|(_, s)| s.status.is_terminal()).map(|(id, _)| id) {
                        pruned.insert(id.clone());
                    }
                    for (n, technique) in StoreTechnique::ALL.iter().enumerate() {
                        stores[n].flush().unwrap();
                        stores[n] = reopen(*technique, &paths[n]);
                    }
                }
            }
            let expected = with_retention_rules(stores[0].state(), &pruned);
            prop_assert_eq!(&without_generation(stores[1].state()), &expected);
            prop_assert_eq!(&without_generation(stores[2].state()), &expected);
            for id in expected.sessions.keys() {
                let next: Vec<Option<u64>> = stores.iter().map(|store| store.next_seq(id)).collect();
                prop_assert!(next.iter().all(|n| n == &next[0]), "next seq of {id}: {next:?}");
            }
        }
    }
}
