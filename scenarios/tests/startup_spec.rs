//! `scenarios/startup.toml` parses, maps every role to a technique the scenario knows, sweeps the concurrency, and
//! gives every profile all the parameters the case reads.

use scenarios::startup::{Startup, startup_params};
use scenarios::{CaseContext, Scenario};

#[test]
fn the_startup_spec_is_complete_for_every_profile() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("startup.toml");
    let spec = schema::spec::Spec::read(&path).unwrap();
    assert_eq!(spec.scenario, Startup.name());
    let roles: Vec<&str> = spec.variants.iter().map(|v| v.role.as_str()).collect();
    assert_eq!(roles, ["before", "after", "best"]);
    for variant in &spec.variants {
        assert!(
            Startup.techniques().contains(&variant.technique.as_str()),
            "{variant:?}"
        );
    }
    for name in ["smoke", "ci", "full"] {
        let profile = &spec.profiles[name];
        assert_eq!(profile.size.name, "concurrency");
        assert_eq!(profile.size.unit, "inits");
        assert!(
            profile.size.values.len() >= 3,
            "{name}: a sweep needs 3 sizes"
        );
        let case = CaseContext {
            scenario: spec.scenario.clone(),
            role: "before".into(),
            technique: spec.variants[0].technique.clone(),
            size_name: profile.size.name.clone(),
            size_value: profile.size.values[0],
            params: profile.params.clone(),
            work_dir: std::env::temp_dir(),
            seed: 1,
            fixture_dir: None,
        };
        let (request, _) = startup_params(&case).unwrap();
        let largest = profile.size.values.iter().cloned().fold(0.0, f64::max) as usize;
        assert!(
            request.workflows >= largest,
            "{name}: fewer workflows than the largest concurrency"
        );
    }
    assert_eq!(spec.profiles["ci"].size.values, [1.0, 4.0, 12.0, 32.0]);
}
