//! `junit.xml`: one test case per verdict, so CI dashboards that read JUnit show memproof's verdicts beside the
//! unit tests; a failing verdict carries its whole failure text (headline and allocation sites).

use super::text_escaping::escape_markup;
use schema::results::{Results, Verdict};

fn scenario_of(verdict: &Verdict) -> &str {
    verdict.id.split('/').next().unwrap_or(&verdict.id)
}

/// The JUnit XML of a run's verdicts, one `<testsuite>` per scenario.
pub fn render_junit(results: &Results) -> String {
    let verdicts = &results.verdicts;
    let failures = verdicts.iter().filter(|v| !v.pass).count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites name=\"memproof {}\" tests=\"{}\" failures=\"{failures}\">\n",
        escape_markup(&results.run.profile),
        verdicts.len()
    ));
    let mut scenarios: Vec<&str> = Vec::new();
    for verdict in verdicts {
        if !scenarios.contains(&scenario_of(verdict)) {
            scenarios.push(scenario_of(verdict));
        }
    }
    for scenario in scenarios {
        let members: Vec<&Verdict> = verdicts
            .iter()
            .filter(|v| scenario_of(v) == scenario)
            .collect();
        xml.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" timestamp=\"{}\">\n",
            escape_markup(scenario),
            members.len(),
            members.iter().filter(|v| !v.pass).count(),
            escape_markup(&results.run.started_at)
        ));
        for verdict in members {
            let opening = format!(
                "    <testcase classname=\"memproof.{}.{}\" name=\"{}\" time=\"0\"",
                escape_markup(scenario),
                escape_markup(verdict.kind.as_str()),
                escape_markup(&verdict.id)
            );
            if let (true, Some(proof)) = (
                verdict.pass,
                crate::judge::counterfactual::proof_text(verdict),
            ) {
                xml.push_str(&format!(
                    "{opening}>\n      <system-out>{}</system-out>\n    </testcase>\n",
                    escape_markup(&proof)
                ));
            } else if verdict.pass {
                xml.push_str(&format!("{opening}/>\n"));
            } else {
                let headline = verdict.text.lines().next().unwrap_or_default();
                xml.push_str(&format!(
                    "{opening}>\n      <failure type=\"{}\" message=\"{}\">{}\nexpected: {}\nmeasured: {}</failure>\n    </testcase>\n",
                    escape_markup(verdict.kind.as_str()),
                    escape_markup(headline),
                    escape_markup(&verdict.text),
                    escape_markup(&verdict.expected),
                    escape_markup(&crate::judge::counterfactual::measured_with_proof(verdict))
                ));
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}
