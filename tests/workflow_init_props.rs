//! Seed B's three init techniques agree: for any generated module the same compiled form, and for any corrupt spec
//! (malformed hex, a bad compressed stream, a truncated or invalid module) the same failure.

use memproof::payload::Rng;
use memproof::workflow_init::InitTechnique;
use memproof::workflow_init::init_techniques::compile_workflow;
use memproof::workflow_init::module_generation::{ModuleShape, generate_module};
use memproof::workflow_init::spec_store::{
    SpecCorruption, generate_and_store_workflow, spec_path, write_spec,
};
use proptest::prelude::*;
use std::io::{Seek, SeekFrom, Write};

fn shape(module_bytes: usize, data_percent: u32) -> ModuleShape {
    ModuleShape {
        module_bytes,
        data_fraction: data_percent as f64 / 100.0,
        defect: None,
    }
}

/// Compiles the spec at `path` with every technique and asserts they agree; returns the first outcome's text.
fn check_all_techniques_agree(path: &std::path::Path) -> Result<String, TestCaseError> {
    let outcomes: Vec<_> = InitTechnique::ALL
        .iter()
        .map(|&technique| {
            compile_workflow(technique, path)
                .map(|workflow| (workflow.compiled, workflow.compressed_bytes))
        })
        .collect();
    for (technique, outcome) in InitTechnique::ALL.iter().zip(&outcomes) {
        prop_assert_eq!(
            outcome,
            &outcomes[0],
            "{} disagrees with {}",
            technique.name(),
            InitTechnique::ALL[0].name()
        );
    }
    Ok(match &outcomes[0] {
        Ok((compiled, _)) => format!("ok: {} functions", compiled.function_count),
        Err(error) => error.to_string(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_technique_compiles_any_module_to_the_same_form(
        seed in any::<u64>(),
        module_bytes in 200usize..120_000,
        data_percent in 0u32..60,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = spec_path(dir.path(), "wf-prop");
        let module = generate_module(&mut Rng::new(seed), &shape(module_bytes, data_percent));
        write_spec(&path, "wf-prop", &module).unwrap();
        let outcome = check_all_techniques_agree(&path)?;
        prop_assert!(outcome.starts_with("ok"), "{}", outcome);
    }

    #[test]
    fn every_technique_refuses_a_corrupt_spec_with_the_same_error(
        seed in any::<u64>(),
        module_bytes in 2_000usize..60_000,
        corruption in prop::sample::select(SpecCorruption::ALL.to_vec()),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = spec_path(dir.path(), "wf-corrupt");
        generate_and_store_workflow(&path, "wf-corrupt", &mut Rng::new(seed), &shape(module_bytes, 25), Some(corruption))
            .unwrap();
        let outcome = check_all_techniques_agree(&path)?;
        prop_assert!(outcome.starts_with("workflow wf-corrupt ("), "{}: {}", corruption.name(), outcome);
    }

    /// Arbitrary damage anywhere in the hex text: a bad character, an odd length, or valid hex that garbles the
    /// compressed stream or the module. Whatever it hits, the techniques agree.
    #[test]
    fn every_technique_agrees_on_arbitrary_damage_to_the_hex_text(
        seed in any::<u64>(),
        position_permille in 0u64..1000,
        damage in prop::sample::select(vec![&b"g"[..], b"0", b"ff", b"00", b"7", b"\xc3\xbf"]),
        cut_tail in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = spec_path(dir.path(), "wf-damaged");
        let module = generate_module(&mut Rng::new(seed), &shape(20_000, 25));
        let stored = write_spec(&path, "wf-damaged", &module).unwrap();
        let hex_len = 2 * stored.compressed_bytes;
        let at = stored.hex_offset + hex_len * position_permille / 1000;
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        if cut_tail {
            // Cut the hex text short at `at` (possibly to an odd length) and close the JSON again.
            file.set_len(at).unwrap();
            file.seek(SeekFrom::End(0)).unwrap();
            file.write_all(b"\"}\n").unwrap();
        } else {
            // Whole damage only (a lone 0xc3 would make the file invalid UTF-8: see the documented contract).
            let at = at.min(stored.hex_offset + hex_len - damage.len() as u64);
            file.seek(SeekFrom::Start(at)).unwrap();
            file.write_all(damage).unwrap();
        }
        drop(file);
        check_all_techniques_agree(&path)?;
    }
}
