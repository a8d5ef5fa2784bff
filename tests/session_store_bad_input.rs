//! Seed D's store facing files it cannot trust: a state file that is truncated, not JSON, of an unknown schema
//! version, or holding a sequence number twice is refused by every technique with an error that names the file
//! and what is wrong, and the file is left byte for byte as it was. A bad event gets its error and the store goes
//! on.

use memproof::session_store::journal_with_snapshot::journal_path_for;
use memproof::session_store::{SessionStore, StoreConfig, StoreTechnique};
use std::path::Path;
use std::time::Instant;

const GOOD: &str = r#"{"schema_version":1,"generation":0,"sessions":[{"id":"s","status":"active","last_seq":2,"events":[{"seq":1,"hook":"Stop","body":"a"},{"seq":2,"hook":"Stop","body":"b"}]}]}"#;

/// Writes `contents` as the state file, opens it with every technique, and checks each refuses it with an error
/// containing `expected`, leaving the file as it was.
fn check_refused(contents: &str, expected: &str) {
    for technique in StoreTechnique::ALL {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        std::fs::write(&path, contents).unwrap();
        let error = match technique.open(&path, StoreConfig::default(), Instant::now()) {
            Ok(_) => panic!("{} accepted {contents:?}", technique.name()),
            Err(error) => error.to_string(),
        };
        let shown = path.display().to_string();
        assert!(
            error.starts_with(&format!("{shown}: ")),
            "{}: {error}",
            technique.name()
        );
        assert!(error.contains(expected), "{}: {error}", technique.name());
        assert!(error.ends_with("; the file was left as it is"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), contents);
        assert!(
            !journal_path_for(&path).exists(),
            "{} wrote a journal",
            technique.name()
        );
    }
}

#[test]
fn a_truncated_file_is_refused() {
    check_refused(
        &GOOD[..GOOD.len() - 30],
        "truncated: the JSON ends at line 1 column",
    );
}

#[test]
fn a_file_that_is_not_json_is_refused() {
    check_refused(
        "sessions: [s]\n",
        "not JSON: expected value at line 1 column 1",
    );
}

#[test]
fn an_unknown_schema_version_is_refused() {
    check_refused(
        &GOOD.replace("\"schema_version\":1", "\"schema_version\":7"),
        "unknown schema version 7: this store reads version 1",
    );
    check_refused(
        r#"{"schema_version":2,"state":{"sessions":{}}}"#,
        "unknown schema version 2: this store reads version 1",
    );
}

#[test]
fn a_duplicate_sequence_number_is_refused() {
    check_refused(
        &GOOD.replace("{\"seq\":2", "{\"seq\":1"),
        "session \"s\": duplicate sequence number 1",
    );
}

#[test]
fn a_session_given_twice_is_refused() {
    let twice = GOOD.replace(
        "\"sessions\":[",
        "\"sessions\":[{\"id\":\"s\",\"status\":\"active\",\"last_seq\":0,\"events\":[]},",
    );
    check_refused(&twice, "session \"s\" appears twice");
}

fn open_journal_store(path: &Path) -> Box<dyn SessionStore> {
    StoreTechnique::JournalWithSnapshot
        .open(path, StoreConfig::default(), Instant::now())
        .unwrap()
}

#[test]
fn a_journal_with_a_duplicate_sequence_number_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.json");
    let mut store = open_journal_store(&path);
    let now = Instant::now();
    store.open_session("s", now).unwrap();
    store.append_event("s", "Stop", "one", now).unwrap();
    drop(store);
    let journal = journal_path_for(&path);
    let mut text = std::fs::read_to_string(&journal).unwrap();
    let last_line = text.lines().last().unwrap().to_string();
    text.push_str(&last_line);
    text.push('\n');
    std::fs::write(&journal, &text).unwrap();
    let error = StoreTechnique::JournalWithSnapshot
        .open(&path, StoreConfig::default(), now)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        error,
        format!(
            "{}: line 4: session \"s\": duplicate sequence number 1 (last was 1); the file was left as it is",
            journal.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), text);
}

#[test]
fn a_torn_journal_tail_was_never_acknowledged_and_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.json");
    let mut store = open_journal_store(&path);
    let now = Instant::now();
    store.open_session("s", now).unwrap();
    store.append_event("s", "Stop", "kept", now).unwrap();
    drop(store);
    let journal = journal_path_for(&path);
    let mut bytes = std::fs::read(&journal).unwrap();
    let torn: &[u8] = br#"{"op":"append","session":"s","seq":2,"ho"#;
    bytes.extend_from_slice(torn);
    std::fs::write(&journal, &bytes).unwrap();
    let store = open_journal_store(&path);
    assert_eq!(
        store.load_report().torn_journal_tail_bytes,
        torn.len() as u64
    );
    assert_eq!(store.state().n_events(), 1);
    assert_eq!(store.next_seq("s"), Some(2));
}

#[test]
fn bad_events_get_their_error_and_the_store_goes_on() {
    for technique in StoreTechnique::ALL {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        let config = StoreConfig {
            max_event_bytes: 64,
            ..StoreConfig::default()
        };
        let now = Instant::now();
        let mut store = technique.open(&path, config, now).unwrap();
        store.open_session("s", now).unwrap();
        let unknown = store.append_event("ghost", "Stop", "{}", now).unwrap_err();
        assert!(unknown.is_rejected_input(), "{unknown}");
        let large = store
            .append_event("s", "Stop", &"x".repeat(100), now)
            .unwrap_err();
        assert_eq!(
            large.to_string(),
            "an event of 104 bytes for session \"s\" is over the limit of 64 bytes"
        );
        assert_eq!(store.append_event("s", "Stop", "{}", now).unwrap(), 1);
        store.flush().unwrap();
        drop(store);
        let reopened = technique.open(&path, config, now).unwrap();
        assert_eq!(reopened.state().n_events(), 1, "{}", technique.name());
    }
}
