//! memproof's measuring spine.
//!
//! A *case* (scenario, variant, size) runs in a fresh child process: memory a finished case freed stays in the
//! allocator's hands, so cases never share a process. In the child, [`alloc`] counts the heap and [`probe`] streams
//! heap samples, phase marks, metrics and final figures to the parent over a pipe ([`wire`]). In the parent,
//! [`runner`] starts the child through the small `memproof-launch` process (so `wait4`'s `ru_maxrss` is clean),
//! samples its resident set from `/proc` ([`procfs`]), enforces the memory limit and the timeout, and records the
//! outcome into [`results`]. [`spec`] reads the scenario specs that say which cases to run.

pub mod alloc;
pub mod calibration;
pub mod command_case;
pub mod crosscheck;
pub mod driver;
pub mod exit_records;
pub mod external;
pub mod external_command;
pub mod file_stem;
pub mod fixtures;
pub mod host;
pub mod interrupt;
pub mod missing_tool;
pub mod orphans;
pub mod output_capture;
pub mod parallel;
pub mod probe;
pub mod process_tree;
pub mod procfs;
pub mod repeat;
pub mod results;
pub mod runner;
pub mod shard;
pub mod shared_memory;
pub mod spec;
pub mod suite;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod text_escaping;
#[cfg(any(test, feature = "test-support"))]
pub mod toy_spec;
pub mod units;
pub mod wire;
