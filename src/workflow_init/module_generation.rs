//! Real WebAssembly modules of a chosen size, for the stored workflows of seed B.
//!
//! The seed's workflows are compiled programs of many MB; what matters for memory is their size before and after
//! compression, so the modules here are built to a target size with wasm-encoder from two parts that compress the
//! way real modules do: function bodies of integer arithmetic with varied constants and calls (code compresses
//! about 2–3x), and data segments of [`crate::payload::filler_text`] (text compresses about 4–5x). Every module
//! validates, unless a [`ModuleDefect`] is asked for to make a corrupt workflow.

use crate::payload::{Rng, filler_text};
use wasm_encoder::{
    CodeSection, ConstExpr, DataCountSection, DataSection, ExportKind, ExportSection, Function,
    FunctionSection, MemorySection, MemoryType, Module, TypeSection, ValType,
};

/// The size and make-up of a generated module.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleShape {
    /// The target size of the encoded (uncompressed) module; the result lands within a few KiB of it.
    pub module_bytes: usize,
    /// The share of `module_bytes` that goes to data segments (the rest is code).
    pub data_fraction: f64,
    /// A deliberate defect, for corrupt workflows; `None` for a valid module.
    pub defect: Option<ModuleDefect>,
}

/// A deliberate defect that leaves the module parseable but invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleDefect {
    /// The last function returns an `i64` where its signature says `i32`: the validator's "type mismatch".
    TypeMismatchInLastFunction,
}

/// Signatures the functions use: `k` `i32` parameters to one `i32` result, for `k` in `0..N_SIGNATURES`.
const N_SIGNATURES: u32 = 4;
/// Largest single data segment.
const DATA_SEGMENT_BYTES: usize = 32 * 1024;
/// At most this many functions are exported (besides `run` and the memory).
const MAX_EXPORTED_FUNCTIONS: u32 = 16;

/// Builds one module of about `shape.module_bytes` bytes.
pub fn generate_module(rng: &mut Rng, shape: &ModuleShape) -> Vec<u8> {
    let data_target = (shape.module_bytes as f64 * shape.data_fraction.clamp(0.0, 0.95)) as usize;
    let code_target = shape.module_bytes.saturating_sub(data_target).max(64);

    let mut types = TypeSection::new();
    for n_params in 0..N_SIGNATURES {
        types.ty().function(
            std::iter::repeat_n(ValType::I32, n_params as usize),
            [ValType::I32],
        );
    }

    let mut functions = FunctionSection::new();
    let mut code = CodeSection::new();
    let mut signature_of: Vec<u32> = Vec::new();
    while code.byte_len() < code_target || signature_of.is_empty() {
        let signature = rng.below(N_SIGNATURES as u64) as u32;
        let body_target = rng.between(200, 4000) as usize;
        let body_target = body_target.min(code_target.saturating_sub(code.byte_len()).max(16));
        let body = arithmetic_function_body(rng, signature, &signature_of, body_target);
        functions.function(signature);
        code.function(&body);
        signature_of.push(signature);
    }
    if shape.defect == Some(ModuleDefect::TypeMismatchInLastFunction) {
        let mut body = Function::new([]);
        body.instructions().i64_const(1).end();
        functions.function(0);
        code.function(&body);
        signature_of.push(0);
    }
    let n_functions = signature_of.len() as u32;

    let mut data = DataSection::new();
    let mut data_offset: u32 = 0;
    let mut n_segments = 0u32;
    while (data_offset as usize) < data_target {
        let segment_bytes = (data_target - data_offset as usize).min(DATA_SEGMENT_BYTES);
        let text = filler_text(rng, segment_bytes);
        data.active(
            0,
            &ConstExpr::i32_const(data_offset as i32),
            text.as_bytes().iter().copied(),
        );
        data_offset += segment_bytes as u32;
        n_segments += 1;
    }
    let pages = (data_offset as u64).div_ceil(65536).max(1);
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: pages,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });

    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("run", ExportKind::Func, 0);
    let stride = (n_functions / MAX_EXPORTED_FUNCTIONS).max(1);
    for index in (stride..n_functions).step_by(stride as usize) {
        exports.export(&format!("handler_{index}"), ExportKind::Func, index);
    }

    let mut module = Module::new();
    module.section(&types);
    module.section(&functions);
    module.section(&memories);
    module.section(&exports);
    module.section(&DataCountSection { count: n_segments });
    module.section(&code);
    module.section(&data);
    module.finish()
}

/// A body of about `target_bytes` bytes: a running `i32` accumulator mixed with parameters, constants and calls
/// to earlier functions, returned at the end.
fn arithmetic_function_body(
    rng: &mut Rng,
    signature: u32,
    earlier_signatures: &[u32],
    target_bytes: usize,
) -> Function {
    let n_params = signature;
    let accumulator = n_params; // the first local after the parameters
    let mut body = Function::new([(1, ValType::I32)]);
    let mut sink = body.instructions();
    sink.i32_const(rng.next_u64() as i32).local_set(accumulator);
    let mut written = 8usize;
    while written < target_bytes {
        sink.local_get(accumulator);
        match rng.below(6) {
            0 if n_params > 0 => {
                sink.local_get(rng.below(n_params as u64) as u32).i32_add();
                written += 4;
            }
            1 if !earlier_signatures.is_empty() => {
                let callee = rng.below(earlier_signatures.len() as u64) as u32;
                sink.drop();
                for _ in 0..earlier_signatures[callee as usize] {
                    sink.i32_const(rng.below(1 << 20) as i32);
                }
                sink.call(callee);
                written += 4 + 4 * earlier_signatures[callee as usize] as usize;
            }
            2 => {
                sink.i32_const(rng.below(1 << 12) as i32).i32_mul();
                written += 4;
            }
            3 => {
                sink.i32_const(rng.next_u64() as i32).i32_xor();
                written += 7;
            }
            _ => {
                sink.i32_const(rng.below(1 << 16) as i32).i32_add();
                written += 5;
            }
        }
        sink.local_set(accumulator);
        written += 4;
    }
    sink.local_get(accumulator).end();
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_land_near_their_target_size_and_validate() {
        for target in [2_000usize, 100_000, 1_000_000] {
            let shape = ModuleShape {
                module_bytes: target,
                data_fraction: 0.25,
                defect: None,
            };
            let module = generate_module(&mut Rng::new(target as u64), &shape);
            let slack = 8 * 1024;
            assert!(
                module.len() + slack >= target && module.len() <= target + slack,
                "target {target}, got {}",
                module.len()
            );
            wasmparser::Validator::new().validate_all(&module).unwrap();
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_module() {
        let shape = ModuleShape {
            module_bytes: 30_000,
            data_fraction: 0.3,
            defect: None,
        };
        assert_eq!(
            generate_module(&mut Rng::new(1), &shape),
            generate_module(&mut Rng::new(1), &shape)
        );
    }

    #[test]
    fn a_defective_module_fails_validation() {
        let shape = ModuleShape {
            module_bytes: 10_000,
            data_fraction: 0.2,
            defect: Some(ModuleDefect::TypeMismatchInLastFunction),
        };
        let module = generate_module(&mut Rng::new(2), &shape);
        assert!(wasmparser::Validator::new().validate_all(&module).is_err());
    }
}
