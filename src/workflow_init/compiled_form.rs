//! The "compile" step of an init: validate a WebAssembly module with wasmparser and keep a compact compiled form.
//!
//! The seed's engine compiles each module with wasmtime and then holds only the compiled artefact. This model does
//! not generate machine code; it does the part that costs memory in the same shape: the whole module passes through
//! a real validator (every function body is type-checked), and what survives is a small summary that stands for the
//! compiled module (signatures, function counts per signature, export names, a digest of the code). Its size is
//! counted by [`CompiledModule::retained_bytes`] so the report can show how little an init needs to keep.
//!
//! The validator is fed payloads by one [`ModuleCompiler`], whether the module lies whole in one buffer
//! ([`compile_module_from_slice`], used by the techniques that decode the whole module) or arrives through a reader
//! ([`compile_module_from_reader`], the streaming technique). wasmparser hands over each function body on its own,
//! but every other section only whole, so the streaming path holds at most the largest non-code section (the data
//! section, in these modules) plus one function body, never the whole module.

use std::io::Read;
use wasmparser::{
    BinaryReaderError, Chunk, FuncValidatorAllocations, Parser, Payload, ValidPayload, Validator,
};

/// What survives the compile of one module: small, and the same whichever technique produced it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompiledModule {
    /// Each function signature of the type section, written like `(i32, i32) -> (i32)`.
    pub signatures: Vec<String>,
    /// How many defined functions use each signature (indexed like `signatures`).
    pub functions_per_signature: Vec<u32>,
    /// Number of defined functions (code section entries).
    pub function_count: u32,
    /// Export names with their kind, e.g. `func:run`, `memory:memory`.
    pub exports: Vec<String>,
    /// Total bytes of all function bodies.
    pub code_bytes: u64,
    /// FNV-1a over every function body's bytes, in order: the stand-in for the generated machine code.
    pub code_digest: u64,
    /// Number of data segments and their total bytes.
    pub data_segments: u32,
    pub data_bytes: u64,
    /// Length of the decompressed module.
    pub module_bytes: u64,
}

impl CompiledModule {
    /// Heap bytes this compiled form keeps (capacities of its vectors and strings, plus the struct itself).
    pub fn retained_bytes(&self) -> u64 {
        let strings = |list: &Vec<String>| -> usize {
            list.capacity() * std::mem::size_of::<String>()
                + list.iter().map(String::capacity).sum::<usize>()
        };
        (std::mem::size_of::<CompiledModule>()
            + strings(&self.signatures)
            + strings(&self.exports)
            + self.functions_per_signature.capacity() * std::mem::size_of::<u32>()) as u64
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a_extend(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Why a module failed to compile: wasmparser's message and the byte offset in the decompressed module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRejection {
    pub message: String,
    pub offset: usize,
}

impl std::fmt::Display for ModuleRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (at byte {} of the module)",
            self.message, self.offset
        )
    }
}

impl From<BinaryReaderError> for ModuleRejection {
    fn from(error: BinaryReaderError) -> ModuleRejection {
        ModuleRejection {
            message: error.message().to_string(),
            offset: error.offset(),
        }
    }
}

/// Validates payloads one at a time and gathers the compiled form.
pub struct ModuleCompiler {
    validator: Validator,
    allocations: FuncValidatorAllocations,
    form: CompiledModule,
    function_signature_indices: Vec<u32>,
    ended: bool,
}

impl Default for ModuleCompiler {
    fn default() -> Self {
        ModuleCompiler::new()
    }
}

impl ModuleCompiler {
    pub fn new() -> ModuleCompiler {
        ModuleCompiler {
            validator: Validator::new(),
            allocations: FuncValidatorAllocations::default(),
            form: CompiledModule {
                code_digest: FNV_OFFSET,
                ..CompiledModule::default()
            },
            function_signature_indices: Vec::new(),
            ended: false,
        }
    }

    /// Validates one payload and records what the compiled form keeps of it. Returns `true` at the module's end.
    pub fn accept(&mut self, payload: &Payload<'_>) -> Result<bool, ModuleRejection> {
        match self.validator.payload(payload)? {
            ValidPayload::Ok => {}
            ValidPayload::Func(to_validate, body) => {
                let allocations = std::mem::take(&mut self.allocations);
                let mut function = to_validate.into_validator(allocations);
                function.validate(&body)?;
                self.allocations = function.into_allocations();
            }
            ValidPayload::Parser(_) => {
                return Err(ModuleRejection {
                    message: "nested modules and components are not workflow modules".to_string(),
                    offset: payload.as_section().map_or(0, |(_, range)| range.start),
                });
            }
            ValidPayload::End(_) => {
                self.ended = true;
            }
        }
        self.record(payload)?;
        Ok(self.ended)
    }

    fn record(&mut self, payload: &Payload<'_>) -> Result<(), ModuleRejection> {
        match payload {
            Payload::TypeSection(reader) => {
                for func_type in reader.clone().into_iter_err_on_gc_types() {
                    let func_type = func_type?;
                    let list = |types: &[wasmparser::ValType]| {
                        types
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    self.form.signatures.push(format!(
                        "({}) -> ({})",
                        list(func_type.params()),
                        list(func_type.results())
                    ));
                }
            }
            Payload::FunctionSection(reader) => {
                for index in reader.clone() {
                    self.function_signature_indices.push(index?);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    let export = export?;
                    let kind = match export.kind {
                        wasmparser::ExternalKind::Func => "func",
                        wasmparser::ExternalKind::Table => "table",
                        wasmparser::ExternalKind::Memory => "memory",
                        wasmparser::ExternalKind::Global => "global",
                        wasmparser::ExternalKind::Tag => "tag",
                        wasmparser::ExternalKind::FuncExact => "func",
                    };
                    self.form.exports.push(format!("{kind}:{}", export.name));
                }
            }
            Payload::CodeSectionEntry(body) => {
                let bytes = body.as_bytes();
                self.form.function_count += 1;
                self.form.code_bytes += bytes.len() as u64;
                self.form.code_digest = fnv1a_extend(self.form.code_digest, bytes);
            }
            Payload::DataSection(reader) => {
                for segment in reader.clone() {
                    let segment = segment?;
                    self.form.data_segments += 1;
                    self.form.data_bytes += segment.data.len() as u64;
                }
            }
            Payload::End(offset) => {
                self.form.module_bytes = *offset as u64;
            }
            _ => {}
        }
        Ok(())
    }

    /// The compiled form; call after [`ModuleCompiler::accept`] returned `true`.
    pub fn finish(mut self) -> CompiledModule {
        let mut per_signature = vec![0u32; self.form.signatures.len()];
        for &index in &self.function_signature_indices {
            if let Some(count) = per_signature.get_mut(index as usize) {
                *count += 1;
            }
        }
        self.form.functions_per_signature = per_signature;
        self.form.signatures.shrink_to_fit();
        self.form.exports.shrink_to_fit();
        self.form
    }
}

/// Validates a module that lies whole in `module` and returns its compiled form.
pub fn compile_module_from_slice(module: &[u8]) -> Result<CompiledModule, ModuleRejection> {
    let mut compiler = ModuleCompiler::new();
    let mut parser = Parser::new(0);
    let mut rest = module;
    loop {
        match parser.parse(rest, true)? {
            Chunk::NeedMoreData(_) => unreachable!("wasmparser never asks for more data at eof"),
            Chunk::Parsed { consumed, payload } => {
                let ended = compiler.accept(&payload)?;
                rest = &rest[consumed..];
                if ended {
                    return Ok(compiler.finish());
                }
            }
        }
    }
}

/// Why a streamed compile stopped: the source failed to deliver bytes, or the bytes are not a valid module.
#[derive(Debug)]
pub enum StreamedCompileError {
    Source(std::io::Error),
    Module(ModuleRejection),
}

/// How much a streamed compile reads from its source at a time (more when a payload needs more).
pub const STREAM_READ_BYTES: usize = 16 * 1024;

/// Figures of a streamed compile: the compiled form and the largest buffer the parser needed.
#[derive(Debug)]
pub struct StreamedCompile {
    pub compiled: CompiledModule,
    /// The largest capacity the parse buffer reached: the largest non-code section or function body, rounded
    /// up by one read.
    pub largest_buffer_bytes: usize,
}

/// Validates a module read from `source` a piece at a time, holding only what wasmparser needs for the payload in
/// hand. The source is read to its end (trailing bytes after the module are a module error, as for a slice).
pub fn compile_module_from_reader(
    source: &mut impl Read,
) -> Result<StreamedCompile, StreamedCompileError> {
    let mut compiler = ModuleCompiler::new();
    let mut parser = Parser::new(0);
    let mut buffer: Vec<u8> = Vec::with_capacity(STREAM_READ_BYTES);
    let mut start = 0usize;
    let mut eof = false;
    let mut largest_buffer_bytes = 0usize;
    loop {
        let chunk = parser
            .parse(&buffer[start..], eof)
            .map_err(|error| StreamedCompileError::Module(error.into()))?;
        match chunk {
            Chunk::NeedMoreData(hint) => {
                // Drop what was consumed, then read at least what the parser asked for.
                buffer.drain(..start);
                start = 0;
                let wanted = (hint as usize).max(STREAM_READ_BYTES);
                let filled = buffer.len();
                buffer.resize(filled + wanted, 0);
                let read = read_retrying(source, &mut buffer[filled..])
                    .map_err(StreamedCompileError::Source)?;
                buffer.truncate(filled + read);
                largest_buffer_bytes = largest_buffer_bytes.max(buffer.capacity());
                if read == 0 {
                    eof = true;
                }
            }
            Chunk::Parsed { consumed, payload } => {
                let ended = compiler
                    .accept(&payload)
                    .map_err(StreamedCompileError::Module)?;
                start += consumed;
                if ended {
                    return Ok(StreamedCompile {
                        compiled: compiler.finish(),
                        largest_buffer_bytes,
                    });
                }
                // A large section has been handled: let its buffer go rather than keep it for the next payload.
                if buffer.capacity() > 4 * STREAM_READ_BYTES
                    && buffer.len() - start < STREAM_READ_BYTES
                {
                    let rest = buffer[start..].to_vec();
                    buffer = Vec::with_capacity(STREAM_READ_BYTES.max(rest.len()));
                    buffer.extend_from_slice(&rest);
                    start = 0;
                }
            }
        }
    }
}

fn read_retrying(source: &mut impl Read, into: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match source.read(into) {
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Rng;
    use crate::workflow_init::module_generation::{ModuleDefect, ModuleShape, generate_module};

    fn shape(module_bytes: usize) -> ModuleShape {
        ModuleShape {
            module_bytes,
            data_fraction: 0.25,
            defect: None,
        }
    }

    #[test]
    fn slice_and_reader_give_the_same_compiled_form() {
        let module = generate_module(&mut Rng::new(5), &shape(200_000));
        let whole = compile_module_from_slice(&module).unwrap();
        let streamed = compile_module_from_reader(&mut &module[..]).unwrap();
        assert_eq!(whole, streamed.compiled);
        assert_eq!(whole.module_bytes, module.len() as u64);
        assert!(whole.function_count > 10 && whole.data_bytes > 0);
        assert!(streamed.largest_buffer_bytes < module.len());
    }

    #[test]
    fn compiled_form_is_small_beside_the_module() {
        let module = generate_module(&mut Rng::new(6), &shape(400_000));
        let compiled = compile_module_from_slice(&module).unwrap();
        assert!(compiled.retained_bytes() < 8 * 1024, "{compiled:?}");
    }

    #[test]
    fn a_type_error_is_rejected_with_the_same_offset_either_way() {
        let defective = ModuleShape {
            defect: Some(ModuleDefect::TypeMismatchInLastFunction),
            ..shape(50_000)
        };
        let module = generate_module(&mut Rng::new(7), &defective);
        let whole = compile_module_from_slice(&module).unwrap_err();
        let Err(StreamedCompileError::Module(streamed)) =
            compile_module_from_reader(&mut &module[..])
        else {
            panic!("the streamed compile accepted a defective module");
        };
        assert_eq!(whole, streamed);
        assert!(whole.message.contains("type mismatch"), "{whole}");
    }

    #[test]
    fn a_truncated_module_is_rejected_with_the_same_error_either_way() {
        let module = generate_module(&mut Rng::new(8), &shape(50_000));
        let truncated = &module[..module.len() * 3 / 5];
        let whole = compile_module_from_slice(truncated).unwrap_err();
        let Err(StreamedCompileError::Module(streamed)) =
            compile_module_from_reader(&mut &truncated[..])
        else {
            panic!("the streamed compile accepted a truncated module");
        };
        assert_eq!(whole, streamed);
    }
}
