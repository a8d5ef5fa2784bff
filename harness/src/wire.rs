//! The probe pipe's line protocol: one JSON object per line, from a case (or the launcher) to the runner.
//!
//! Times travel as `CLOCK_MONOTONIC` nanoseconds ([`crate::probe::monotonic_ns`]), a clock parent and child share;
//! the runner turns them into milliseconds since it spawned the case.

use serde::{Deserialize, Serialize};

/// A line the runner reads from the probe pipe.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ChildLine {
    /// The launcher started the measured process.
    Launched { pid: u32 },
    /// The measured process has exited; `maxrss_bytes` is `ru_maxrss` from `wait4`, in bytes.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
        maxrss_bytes: u64,
    },
    /// The launcher could not start the command.
    LaunchFailed { message: String },
    /// A case's probe connected.
    /// `meter` borrows a static name, so the counting and the dhat run allocate the same bytes for this line.
    Hello {
        pid: u32,
        meter: std::borrow::Cow<'static, str>,
    },
    /// The heap of the case: the highest live figure since the previous heap sample.
    Heap { mono_ns: u64, heap_bytes: u64 },
    /// The case entered a phase; `heap_bytes` is what was live on the heap at the mark, when a meter counts.
    Phase {
        name: String,
        mono_ns: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heap_bytes: Option<u64>,
    },
    /// One of the scenario's own figures.
    Metric {
        name: String,
        value: serde_json::Value,
    },
    /// The case's last report.
    Final(FinalFigures),
}

/// What a case reports as its last act.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FinalFigures {
    pub peak_heap_bytes: Option<u64>,
    pub total_alloc_bytes: Option<u64>,
    pub alloc_count: Option<u64>,
    pub end_heap_bytes: Option<u64>,
    /// The case's own `VmHWM`: the kernel's high-water mark of its resident set.
    pub vm_hwm_bytes: Option<u64>,
    /// The case's error chain when it failed.
    pub error: Option<String>,
    pub mono_ns: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_samples_written_by_hand_parse_as_heap_lines() {
        // The sampler formats this line itself, without serde, to stay allocation-free.
        let line: ChildLine =
            serde_json::from_str(r#"{"type":"heap","mono_ns":12,"heap_bytes":34}"#).unwrap();
        assert_eq!(
            line,
            ChildLine::Heap {
                mono_ns: 12,
                heap_bytes: 34
            }
        );
    }
}
