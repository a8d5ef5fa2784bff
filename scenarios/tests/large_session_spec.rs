//! The `large-session` spec reads, and names only techniques the scenario knows.

use scenarios::Scenario as _;

#[test]
fn the_large_session_spec_reads_and_maps_known_techniques() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("large-session.toml");
    let spec = harness::spec::Spec::read(&path).unwrap();
    assert_eq!(spec.scenario, "large-session");
    let known = scenarios::large_session::LargeSession.techniques();
    for variant in &spec.variants {
        assert!(known.contains(&variant.technique.as_str()), "{variant:?}");
    }
    let ci = &spec.profiles["ci"];
    assert_eq!(ci.limit_bytes, Some(128 * 1024 * 1024));
    assert_eq!(spec.profiles["full"].limit_bytes, Some(512 * 1024 * 1024));
    assert!(ci.size.values.len() >= 3);
}
