//! What the reports crate's integration tests share: the hand-made fixture run of `tests/fixtures` (its
//! `results.json` and the spec it was judged by), read, judged and edited case by case, so that every test file
//! reads the same fixture the same way. Each test binary uses only some of it.
#![allow(dead_code)]

use schema::results::{Case, Results};
use schema::spec::Spec;
use std::path::{Path, PathBuf};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture run, not judged.
pub fn fixture_results() -> Results {
    Results::read(&fixtures().join("results.json")).unwrap()
}

/// The spec the fixture run is judged by.
pub fn fixture_spec() -> Spec {
    Spec::read(&fixtures().join("large-session.toml")).unwrap()
}

/// `results` with the verdicts of `spec`, judged with the fixture's dhat profiles.
pub fn judged(mut results: Results, spec: &Spec) -> Results {
    results.verdicts = reports::judge::judge_with_profiles(
        &results,
        &fixtures(),
        std::slice::from_ref(spec),
        None,
    );
    results
}

/// The fixture run, judged, and its spec.
pub fn judged_fixture() -> (Results, Spec) {
    let spec = fixture_spec();
    (judged(fixture_results(), &spec), spec)
}

/// The case of `results` with `id`, to change one figure of it.
pub fn case_mut<'a>(results: &'a mut Results, id: &str) -> &'a mut Case {
    results.cases.iter_mut().find(|case| case.id == id).unwrap()
}
