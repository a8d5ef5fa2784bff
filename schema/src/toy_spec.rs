//! Scenario specs as TOML text, for tests: a toy scenario's header and its verdicts, written once. A spec parses
//! only with its whole header (`scenario`, `title`, `summary`, `variants`), so every test of the spec reader, the
//! planner, the judge's check parser and the cross-check wrote it out again around the one part it was about.
//! Behind the `test-support` feature (and in this crate's own tests): nothing that runs a suite uses it.

/// A spec's text: scenario `scenario`, titled "A toy", whose `variants` are `(role, technique)` pairs, one a line,
/// then `rest` (profiles, verdicts, technique tables) as given. It starts with a blank line, as a raw string in a
/// test does, so the line of a position in an error is the line the test reads.
pub fn toy_spec(scenario: &str, variants: &[(&str, &str)], rest: &str) -> String {
    let mut text = format!(
        "\nscenario = \"{scenario}\"\ntitle = \"A toy\"\nsummary = \"It allocates.\"\nvariants = [\n"
    );
    for (role, technique) in variants {
        text += &format!("  {{ role = \"{role}\", technique = \"{technique}\" }},\n");
    }
    text += "]\n";
    text += rest;
    text
}

/// A `[[verdicts]]` table: `id`, its `kind`, its words and its `check`, each a line; a test appends any other key.
pub fn verdict(id: &str, kind: &str, text: &str, check: &str) -> String {
    format!(
        "[[verdicts]]\nid = \"{id}\"\nkind = \"{kind}\"\ntext = \"{text}\"\ncheck = \"{check}\"\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;
    use std::path::Path;

    #[test]
    fn a_toy_spec_parses_into_what_it_was_given() {
        let rest = format!(
            "[profiles.ci]\nsize = {{ name = \"n\", unit = \"items\", values = [10] }}\n{}",
            verdict(
                "v",
                "claim",
                "words",
                "before.peak_heap_bytes / after.peak_heap_bytes >= 2"
            )
        );
        let text = toy_spec("toy", &[("before", "a"), ("after", "b")], &rest);
        let spec = Spec::parse(Path::new("toy.toml"), &text).unwrap();
        assert_eq!(spec.scenario, "toy");
        let variants: Vec<(&str, &str)> = spec
            .variants
            .iter()
            .map(|v| (v.role.as_str(), v.technique.as_str()))
            .collect();
        assert_eq!(variants, [("before", "a"), ("after", "b")]);
        assert_eq!(spec.verdicts[0].id, "v");
        assert_eq!(
            text.lines().nth(1),
            Some("scenario = \"toy\""),
            "line 2, as in a raw string"
        );
    }
}
