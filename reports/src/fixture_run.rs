//! The hand-made run of `tests/fixtures/results.json`, for the unit tests: the baseline, the noise and the
//! summary are each tested on it, and read it from one place so that moving or replacing the fixture is one change.

use schema::results::Results;
use std::path::Path;

/// The fixture run, as `results.json` holds it (not judged).
pub fn results() -> Results {
    Results::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/results.json"))
        .unwrap()
}
