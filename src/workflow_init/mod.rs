//! Seed B: a workflow engine's startup initialises every stored workflow, at most 12 at a time. Each stored spec
//! carries the workflow's WebAssembly module compressed and hex-encoded (the hex text is 2x the compressed size);
//! an init decodes the hex (1x), compiles the module, then waits seconds for its trigger subscriptions. The faulty
//! engine kept the hex text and the decoded bytes reachable through that whole wait — the seed counts
//! "12 x 3x compressed WASM each = 36x compressed WASM pinned" — and the fix drops both right after the compile and
//! prompts the runtime to give memory back after each batch.
//!
//! This module replays that startup with real parts: real Wasm modules ([`module_generation`], wasm-encoder, code
//! and data from [`crate::payload`]), real zlib compression and hex text in real JSON spec files ([`spec_store`]),
//! a real decompress-and-validate compile with wasmparser that keeps a compact [`compiled_form::CompiledModule`],
//! and a real tokio runtime with a semaphore and a timed trigger wait ([`startup`]). Three init techniques
//! ([`init_techniques`]) differ only in what they keep alive and when:
//!
//! - [`InitTechnique::HoldThroughTriggerWait`]: the parsed spec (hex text) and the decoded compressed bytes stay
//!   alive until the trigger wait ends, as in the seed's faulty code.
//! - [`InitTechnique::ReleaseAfterCompile`]: both are dropped right after the compile, and after each batch of
//!   completions glibc's `malloc_trim(0)` asks the allocator to hand free memory back ([`give_back`]).
//! - [`InitTechnique::StreamHexToValidator`]: no full-size copy at all: the spec file streams through a hex decoder
//!   ([`hex_stream`]) into the zlib decompressor and on into wasmparser's incremental parser.
//!
//! All three return the same [`compiled_form::CompiledModule`] for the same spec, and the same
//! [`InitFailure`] for a corrupt one (property-tested in `tests/workflow_init_props.rs`).

pub mod compiled_form;
pub mod give_back;
pub mod hex_stream;
pub mod init_techniques;
pub mod module_generation;
pub mod spec_store;
pub mod startup;

pub use compiled_form::CompiledModule;
pub use init_techniques::{InitFailure, InitTechnique, InitializedWorkflow, WorkflowInitError};
pub use startup::{StartupObserver, StartupReport, StartupSettings, initialise_all};
