//! One workflow init per technique (seed B): read the stored spec, decode, decompress, validate, keep the compiled
//! form. The trigger wait is left out: it is a sleep, the same for every technique.

use criterion::{Criterion, criterion_group, criterion_main};
use memproof::payload::Rng;
use memproof::workflow_init::InitTechnique;
use memproof::workflow_init::init_techniques::compile_workflow;
use memproof::workflow_init::module_generation::{ModuleShape, generate_module};
use memproof::workflow_init::spec_store::{spec_path, write_spec};

fn one_init_per_technique(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = spec_path(dir.path(), "wf-bench");
    let shape = ModuleShape {
        module_bytes: 1024 * 1024,
        data_fraction: 0.25,
        defect: None,
    };
    let module = generate_module(&mut Rng::new(42), &shape);
    write_spec(&path, "wf-bench", &module).expect("store the spec");
    let mut group = c.benchmark_group("workflow_init_1MiB_module");
    group.sample_size(20);
    for technique in InitTechnique::ALL {
        group.bench_function(technique.name(), |b| {
            b.iter(|| compile_workflow(technique, &path).expect("the spec compiles"))
        });
    }
    group.finish();
}

criterion_group!(benches, one_init_per_technique);
criterion_main!(benches);
