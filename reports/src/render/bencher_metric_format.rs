//! `bmf.json`: the run in Bencher Metric Format, so a benchmark-tracking service can chart every case across
//! commits: one benchmark per case id, with the measures peak heap, peak RSS, total allocated and wall time, each as
//! `{"value": …}`. A figure that is `null` in results.json (a killed case's heap totals) is left out, never zero.

use schema::results::Results;
use serde_json::{Map, Value, json};

/// The BMF document of a run.
pub fn bencher_metrics(results: &Results) -> Value {
    let mut benchmarks = Map::new();
    for case in &results.cases {
        let mut measures = Map::new();
        let figures = [
            ("peak_heap_bytes", case.peak_heap_bytes.map(|v| v as f64)),
            ("peak_rss_bytes", case.peak_rss_bytes.map(|v| v as f64)),
            (
                "total_alloc_bytes",
                case.total_alloc_bytes.map(|v| v as f64),
            ),
            ("wall_ms", Some(case.wall_ms)),
        ];
        for (measure, value) in figures {
            if let Some(value) = value {
                measures.insert(measure.to_string(), json!({ "value": value }));
            }
        }
        benchmarks.insert(case.id.clone(), Value::Object(measures));
    }
    Value::Object(benchmarks)
}
