//! The two line protocols the runner reads, one JSON object per line: the probe pipe's, from a case to the runner
//! ([`ChildLine`]), and the launcher's control pipe's ([`LauncherLine`]).
//!
//! They travel on two pipes so that no measured program can forge what the launcher says: the control pipe is
//! close-on-exec in the launcher, so the program never holds it, and a `launched` or `exited` line written on the
//! probe pipe is a stray line, kept as text and believed by nothing.
//!
//! It is a public interface, versioned by [`PROTOCOL_VERSION`] (ARCHITECTURE.md, "The probe protocol"): the
//! reference clients in `clients/` (Python, Node, Go) and the preload library (`preload/`) speak it from programs
//! memproof did not build. A line that does not parse as one of these messages is kept as a stray line; it never
//! ends a run and never stands in for a figure.
//!
//! Times travel as `CLOCK_MONOTONIC` nanoseconds ([`crate::probe::monotonic_ns`]), a clock parent and child share;
//! the runner turns them into milliseconds since it spawned the case.

use serde::{Deserialize, Serialize};

/// The version of the probe protocol this build speaks, sent in every `hello`. It changes when a message changes
/// meaning; adding an optional field does not change it.
pub const PROTOCOL_VERSION: u32 = 1;

fn protocol_one() -> u32 {
    1
}

/// A line the launcher writes on its control pipe.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LauncherLine {
    /// The launcher started the measured process; `mono_ns` is taken just before the spawn.
    Launched { pid: u32, mono_ns: u64 },
    /// The measured process has exited; `maxrss_bytes` is `ru_maxrss` from `wait4`, in bytes (the largest of the
    /// process and the descendants it waited for); `mono_ns` is taken as `wait4` returned.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
        maxrss_bytes: u64,
        mono_ns: u64,
    },
    /// A descendant still running when the measured process had exited; the launcher killed it.
    LeftRunning { pid: u32, command: String },
    /// The launcher reaped a descendant other than the measured process (an orphan re-parented to it):
    /// `ru_maxrss` as `wait4` returned it.
    Reaped { pid: u32, maxrss_bytes: u64 },
    /// The launcher could not start the command.
    LaunchFailed { message: String },
}

/// A line the runner reads from the probe pipe.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ChildLine {
    /// A case's probe connected.
    /// `meter` borrows a static name, so the counting and the dhat run allocate the same bytes for this line.
    /// `protocol` is the version the sender speaks (a `hello` without one is version 1).
    Hello {
        #[serde(default = "protocol_one")]
        protocol: u32,
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

impl FinalFigures {
    /// The figures of two images of one process, one exec'd from the other (`self` the earlier): the higher peak,
    /// the totals added, the later image's end and everything else.
    pub fn then(&self, later: &FinalFigures) -> FinalFigures {
        let add = |a: Option<u64>, b: Option<u64>| Some(a? + b?);
        FinalFigures {
            peak_heap_bytes: self.peak_heap_bytes.max(later.peak_heap_bytes),
            total_alloc_bytes: add(self.total_alloc_bytes, later.total_alloc_bytes),
            alloc_count: add(self.alloc_count, later.alloc_count),
            ..later.clone()
        }
    }
}

/// The metric name under which a process of the tree that ran with the preload library, but is not the measured
/// process, names itself at its exit, followed by its pid (the library's `report::UNMEASURED_METRIC`): its value
/// is that process's peak heap, `null` for a forked copy. The runner takes these out of the metrics and says the
/// heap figures are one process's only, naming the others.
pub const UNMEASURED_METRIC: &str = "memproof.preload.unmeasured.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_names_its_protocol_version_and_defaults_to_one() {
        let line: ChildLine =
            serde_json::from_str(r#"{"type":"hello","protocol":1,"pid":7,"meter":"tracemalloc"}"#)
                .unwrap();
        assert_eq!(
            line,
            ChildLine::Hello {
                protocol: 1,
                pid: 7,
                meter: "tracemalloc".into()
            }
        );
        let old: ChildLine =
            serde_json::from_str(r#"{"type":"hello","pid":7,"meter":"counting"}"#).unwrap();
        assert!(matches!(old, ChildLine::Hello { protocol: 1, .. }));
    }

    #[test]
    fn lines_that_are_not_protocol_do_not_parse() {
        for stray in [
            "hello",
            r#"{"type":"heap","heap_bytes":"many"}"#,
            r#"{"type":"rss","rss_bytes":1}"#,
            r#"{"type":"heap","mono_ns":-1,"heap_bytes":3}"#,
            "",
        ] {
            assert!(serde_json::from_str::<ChildLine>(stray).is_err(), "{stray}");
        }
    }

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
