//! `scenarios/syslog-rate.toml` on its `smoke` profile, run for real (the case binaries, a process per case, the
//! driver's datagrams over loopback) and judged by memproof's own judge: every verdict the spec registers for
//! `smoke` must hold, with the spec's own thresholds. Beside them, what every role must do whatever the verdicts say:
//! account for every datagram, count the malformed ones, and finish every trim it starts.

mod support;

#[test]
fn smoke_profile_meets_the_registered_verdicts() {
    let (results, verdicts) = support::judge_spec_profile("syslog-rate.toml", "smoke");
    support::assert_every_verdict_holds(&verdicts);
    for case in &results.cases {
        let metric = |name: &str| {
            case.metrics
                .get(name)
                .and_then(serde_json::Value::as_f64)
                .unwrap_or_else(|| panic!("{}: metric {name} missing", case.id))
        };
        let id = &case.id;
        assert_eq!(
            metric("messages_sent"),
            metric("messages_received") + metric("messages_dropped"),
            "{id}"
        );
        assert!(metric("messages_invalid") > 0.0, "{id}");
        assert!(metric("records_unreadable") > 0.0, "{id}");
        assert!(metric("fast_path_misses_at_insert") > 0.0, "{id}");
        assert_eq!(metric("trims_failed"), 0.0, "{id}");
        assert_eq!(metric("trims_started"), metric("trims_completed"), "{id}");
        if case.role == "after" {
            assert!(metric("fast_path_misses_in_trims") > 0.0, "{id}");
        }
    }
}
