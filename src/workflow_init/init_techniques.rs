//! The three ways to turn one stored spec into a compiled module, named for what they keep and when.
//!
//! Seed B's init parsed the spec (its `binary` field: hex text, 2x the compressed module), hex-decoded it (the
//! compressed module, 1x), compiled, and then waited seconds for trigger subscriptions with both still reachable.
//! Here the compile itself is the same everywhere (decompress, validate, keep [`CompiledModule`]); the techniques
//! differ in the buffers around it:
//!
//! | technique | held through the trigger wait | largest transient |
//! |---|---|---|
//! | [`InitTechnique::HoldThroughTriggerWait`] | hex text + compressed bytes (3x compressed) + compiled form | + the decompressed module |
//! | [`InitTechnique::ReleaseAfterCompile`] | the compiled form | hex text + compressed bytes + decompressed module |
//! | [`InitTechnique::StreamHexToValidator`] | the compiled form | the largest non-code section + fixed buffers |
//!
//! Errors: each failure names the workflow and its file, and says which stage refused it. For a corrupt spec all
//! three report the same [`InitFailure`], because the streaming technique keeps reading after a failure to learn
//! what the whole-buffer techniques learn first: a malformed hex field wins over a bad compressed stream, which
//! wins over an invalid module. The documented difference: the streaming reader needs the spec as the writer lays
//! it out (`binary` last, plain hex), and words its [`InitFailure::MalformedSpec`] messages itself; bytes that JSON
//! forbids inside the field (an escape, a control character, invalid UTF-8) are a malformed spec to serde but
//! (except the escape) a bad hex character to the streaming reader.

use super::compiled_form::{
    CompiledModule, ModuleRejection, StreamedCompileError, compile_module_from_reader,
    compile_module_from_slice,
};
use super::hex_stream::{HexFieldError, HexFieldReader};
use super::spec_store::{WorkflowSpec, read_spec_header};
use std::io::Read;
use std::path::{Path, PathBuf};

crate::technique_enum! {
    /// How an init handles the spec text and the decoded bytes around the compile.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum InitTechnique {
        /// Parse the whole spec, hex-decode the whole field, compile, and keep both until the trigger wait ends.
        HoldThroughTriggerWait => "hold_through_trigger_wait",
        /// Same decode and compile, but drop the hex text right after decoding and the decoded bytes right after
        /// the compile; the startup gives free memory back to the OS after each batch.
        ReleaseAfterCompile => "release_after_compile",
        /// Stream the spec file through a hex decoder into the decompressor and the validator: no full-size copy.
        StreamHexToValidator => "stream_hex_to_validator",
    }
}

impl InitTechnique {
    /// Whether the startup asks the allocator to give free memory back after each batch (the seed's fix did).
    pub fn gives_back_after_each_batch(self) -> bool {
        self == InitTechnique::ReleaseAfterCompile
    }
}

/// Why one workflow did not initialise.
#[derive(Debug, Clone, PartialEq)]
pub enum InitFailure {
    /// The spec file could not be read.
    UnreadableSpec(String),
    /// The spec is not the JSON a spec writer produces.
    MalformedSpec(String),
    /// The `binary` field is not hex.
    MalformedHex(hex::FromHexError),
    /// The hex decodes, but the bytes are not a zlib stream that inflates.
    CorruptCompression(String),
    /// The module decompresses, but does not parse or validate (a truncated module lands here too).
    InvalidModule(ModuleRejection),
}

impl std::fmt::Display for InitFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitFailure::UnreadableSpec(why) => write!(f, "cannot read the spec: {why}"),
            InitFailure::MalformedSpec(why) => write!(f, "malformed spec: {why}"),
            InitFailure::MalformedHex(why) => write!(f, "the binary field is not hex: {why}"),
            InitFailure::CorruptCompression(why) => {
                write!(f, "the binary does not decompress: {why}")
            }
            InitFailure::InvalidModule(why) => {
                write!(f, "the module is not valid WebAssembly: {why}")
            }
        }
    }
}

/// One workflow's failure: which workflow, where its spec is, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowInitError {
    /// The workflow's name as its file names it (`wf-0007` for `wf-0007.json`).
    pub workflow: String,
    pub spec_path: PathBuf,
    pub failure: InitFailure,
}

impl std::fmt::Display for WorkflowInitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "workflow {} ({}): {}",
            self.workflow,
            self.spec_path.display(),
            self.failure
        )
    }
}

impl std::error::Error for WorkflowInitError {}

/// The spec text and decoded bytes an init holds on to (the seed's faulty frame).
#[derive(Debug)]
struct HeldSpecBuffers {
    spec: WorkflowSpec,
    decoded_binary: Vec<u8>,
}

/// A compiled workflow, and whatever its technique still holds.
#[derive(Debug)]
pub struct InitializedWorkflow {
    /// The name the spec gives.
    pub name: String,
    pub compiled: CompiledModule,
    /// Size of the compressed module (the hex field's decoded length).
    pub compressed_bytes: u64,
    /// For the streaming technique: the largest parse buffer it needed.
    pub largest_stream_buffer_bytes: Option<usize>,
    held: Option<HeldSpecBuffers>,
}

impl InitializedWorkflow {
    /// Heap bytes of spec text and decoded bytes this init still holds (capacities).
    pub fn held_bytes(&self) -> u64 {
        self.held.as_ref().map_or(0, |held| {
            (held.spec.binary.capacity()
                + held.spec.name.capacity()
                + held.spec.owner.capacity()
                + held.decoded_binary.capacity()) as u64
        })
    }

    /// Lets go of the held spec text and decoded bytes (the end of the seed's trigger wait).
    pub fn release_held_buffers(&mut self) {
        self.held = None;
    }
}

/// Compiles the workflow stored at `spec_path` with `technique`.
pub fn compile_workflow(
    technique: InitTechnique,
    spec_path: &Path,
) -> Result<InitializedWorkflow, WorkflowInitError> {
    let result = match technique {
        InitTechnique::HoldThroughTriggerWait => hold_through_trigger_wait(spec_path),
        InitTechnique::ReleaseAfterCompile => release_after_compile(spec_path),
        InitTechnique::StreamHexToValidator => stream_hex_to_validator(spec_path),
    };
    result.map_err(|failure| WorkflowInitError {
        workflow: spec_path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec_path.display().to_string()),
        spec_path: spec_path.to_path_buf(),
        failure,
    })
}

/// Reads and parses the whole spec, as the seed's engine did: the hex text becomes a string of its own.
fn parse_whole_spec(spec_path: &Path) -> Result<WorkflowSpec, InitFailure> {
    let text =
        std::fs::read(spec_path).map_err(|error| InitFailure::UnreadableSpec(error.to_string()))?;
    serde_json::from_slice(&text).map_err(|error| InitFailure::MalformedSpec(error.to_string()))
}

/// Hex-decodes the whole field into a buffer of exactly half its length, as Go's `hex.DecodeString` does
/// (`hex::decode` collects through an iterator and can round its buffer up to twice the length). Errors are
/// `hex::decode`'s: an odd length first, then the first bad character.
fn decode_hex_exact(hex_text: &str) -> Result<Vec<u8>, InitFailure> {
    let mut decoded = vec![0u8; hex_text.len() / 2];
    hex::decode_to_slice(hex_text, &mut decoded).map_err(InitFailure::MalformedHex)?;
    Ok(decoded)
}

/// Inflates the whole compressed module into one buffer and compiles it; the module buffer is dropped here.
fn decompress_whole_then_compile(compressed: &[u8]) -> Result<CompiledModule, InitFailure> {
    let mut module = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .read_to_end(&mut module)
        .map_err(|error| InitFailure::CorruptCompression(error.to_string()))?;
    compile_module_from_slice(&module).map_err(InitFailure::InvalidModule)
}

/// The seed's faulty init: spec text and decoded bytes stay in the returned workflow until it is released.
fn hold_through_trigger_wait(spec_path: &Path) -> Result<InitializedWorkflow, InitFailure> {
    let spec = parse_whole_spec(spec_path)?;
    let decoded_binary = decode_hex_exact(&spec.binary)?;
    let compiled = decompress_whole_then_compile(&decoded_binary)?;
    Ok(InitializedWorkflow {
        name: spec.name.clone(),
        compiled,
        compressed_bytes: decoded_binary.len() as u64,
        largest_stream_buffer_bytes: None,
        held: Some(HeldSpecBuffers {
            spec,
            decoded_binary,
        }),
    })
}

/// The merged fix: the hex text goes right after decoding, the decoded bytes right after the compile.
fn release_after_compile(spec_path: &Path) -> Result<InitializedWorkflow, InitFailure> {
    let WorkflowSpec { name, binary, .. } = parse_whole_spec(spec_path)?;
    let decoded_binary = decode_hex_exact(&binary)?;
    drop(binary);
    let compiled = decompress_whole_then_compile(&decoded_binary)?;
    let compressed_bytes = decoded_binary.len() as u64;
    drop(decoded_binary);
    Ok(InitializedWorkflow {
        name,
        compiled,
        compressed_bytes,
        largest_stream_buffer_bytes: None,
        held: None,
    })
}

/// Read size of the spec file.
const SPEC_READ_BUFFER_BYTES: usize = 32 * 1024;

/// No full-size copy: file → hex decoder → zlib → wasmparser, each holding a fixed buffer; the parser holds the
/// payload in hand (at most the largest non-code section).
fn stream_hex_to_validator(spec_path: &Path) -> Result<InitializedWorkflow, InitFailure> {
    let file = std::fs::File::open(spec_path)
        .map_err(|error| InitFailure::UnreadableSpec(error.to_string()))?;
    let mut source = std::io::BufReader::with_capacity(SPEC_READ_BUFFER_BYTES, file);
    let header = read_spec_header(&mut source).map_err(InitFailure::MalformedSpec)?;
    let mut decompressor = flate2::read::ZlibDecoder::new(HexFieldReader::new(source));
    let streamed = compile_module_from_reader(&mut decompressor);
    // Whatever happened, read on to the end so that an earlier stage's error wins, as it does for a whole buffer.
    let decompression_failure = match &streamed {
        Err(StreamedCompileError::Source(error)) => Some(error.to_string()),
        _ => std::io::copy(&mut decompressor, &mut std::io::sink())
            .err()
            .map(|error| error.to_string()),
    };
    let hex_field = decompressor.into_inner();
    let compressed_bytes = hex_field.decoded_bytes();
    match hex_field.finish_scan() {
        Err(HexFieldError::Layout(why)) => return Err(InitFailure::MalformedSpec(why)),
        Err(HexFieldError::Hex(why)) => return Err(InitFailure::MalformedHex(why)),
        Ok(()) => {}
    }
    if let Some(why) = decompression_failure {
        return Err(InitFailure::CorruptCompression(why));
    }
    let streamed = streamed.map_err(|error| match error {
        StreamedCompileError::Module(rejection) => InitFailure::InvalidModule(rejection),
        StreamedCompileError::Source(error) => InitFailure::CorruptCompression(error.to_string()),
    })?;
    Ok(InitializedWorkflow {
        name: header.name,
        compiled: streamed.compiled,
        compressed_bytes,
        largest_stream_buffer_bytes: Some(streamed.largest_buffer_bytes),
        held: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Rng;
    use crate::workflow_init::module_generation::ModuleShape;
    use crate::workflow_init::spec_store::{
        SpecCorruption, generate_and_store_workflow, spec_path,
    };

    fn store(dir: &Path, corruption: Option<SpecCorruption>) -> PathBuf {
        let path = spec_path(dir, "wf-0003");
        let shape = ModuleShape {
            module_bytes: 80_000,
            data_fraction: 0.25,
            defect: None,
        };
        generate_and_store_workflow(&path, "wf-0003", &mut Rng::new(11), &shape, corruption)
            .unwrap();
        path
    }

    #[test]
    fn every_technique_compiles_a_good_spec_to_the_same_form() {
        let dir = tempfile::tempdir().unwrap();
        let path = store(dir.path(), None);
        let results: Vec<InitializedWorkflow> = InitTechnique::ALL
            .iter()
            .map(|&technique| compile_workflow(technique, &path).unwrap())
            .collect();
        for result in &results {
            assert_eq!(result.compiled, results[0].compiled);
            assert_eq!(result.compressed_bytes, results[0].compressed_bytes);
            assert_eq!(result.name, "wf-0003");
        }
        assert_eq!(
            results[0].held_bytes(),
            3 * results[0].compressed_bytes + 16 + 7
        );
        assert_eq!(results[1].held_bytes(), 0);
        assert_eq!(results[2].held_bytes(), 0);
    }

    #[test]
    fn each_corruption_fails_with_the_same_error_naming_the_workflow() {
        let dir = tempfile::tempdir().unwrap();
        for corruption in SpecCorruption::ALL {
            let path = store(dir.path(), Some(corruption));
            let errors: Vec<WorkflowInitError> = InitTechnique::ALL
                .iter()
                .map(|&technique| compile_workflow(technique, &path).unwrap_err())
                .collect();
            for error in &errors {
                assert_eq!(error, &errors[0], "{}", corruption.name());
            }
            let text = errors[0].to_string();
            assert!(text.starts_with("workflow wf-0003 ("), "{text}");
            let expected_stage = match corruption {
                SpecCorruption::MalformedHex => {
                    "the binary field is not hex: Invalid character 'z'"
                }
                SpecCorruption::CorruptCompression => "the binary does not decompress",
                SpecCorruption::TruncatedModule | SpecCorruption::InvalidModule => {
                    "the module is not valid WebAssembly"
                }
            };
            assert!(
                text.contains(expected_stage),
                "{}: {text}",
                corruption.name()
            );
        }
    }
}
