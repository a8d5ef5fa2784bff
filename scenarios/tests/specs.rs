//! Every spec in `scenarios/` names a registered scenario and maps each role to a technique that scenario runs, and
//! every counterfactual a verdict names is a technique that scenario runs, and every registered scenario has a spec: a typo in either shows here, not as a failed case in a load test.

use std::path::Path;

#[test]
fn every_spec_names_a_registered_scenario_and_its_techniques() {
    let specs = schema::spec::read_dir(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    for spec in &specs {
        let scenario = scenarios::find(&spec.scenario).unwrap();
        for variant in &spec.variants {
            assert!(
                scenario.techniques().contains(&variant.technique.as_str()),
                "{}: role {} maps to {:?}, which scenario {} does not run (it runs {:?})",
                spec.path.display(),
                variant.role,
                variant.technique,
                spec.scenario,
                scenario.techniques()
            );
        }
        for verdict in &spec.verdicts {
            if let Some(schema::spec::Counterfactual::Technique { technique, .. }) =
                &verdict.counterfactual
            {
                assert!(
                    scenario.techniques().contains(&technique.as_str()),
                    "{}: verdict {}: counterfactual technique {technique:?} is not one scenario {} runs (it runs {:?})",
                    spec.path.display(),
                    verdict.id,
                    spec.scenario,
                    scenario.techniques()
                );
            }
        }
        for profile in ["ci", "full"] {
            assert!(
                spec.profiles.contains_key(profile),
                "{}: no {profile} profile",
                spec.path.display()
            );
        }
    }
    for scenario in scenarios::registry() {
        assert!(
            specs.iter().any(|spec| spec.scenario == scenario.name()),
            "scenario {} has no spec in scenarios/",
            scenario.name()
        );
    }
}
