//! Scenario `startup` (seed B): an engine restart initialises hundreds of stored workflows, at most `concurrency`
//! at a time, each waiting for its triggers after the compile. The seed's PR counted "12 x 3x compressed WASM each
//! = 36x compressed WASM pinned" through those waits, and its reviewer asked for "a load-test chart confirming a
//! smoother memory profile on reboot": this scenario draws that chart, before beside after and best.
//!
//! The stored specs are the load from outside, and every case of a profile reads the same ones: they are the
//! scenario's shared fixture (`planning::fixtures`), generated once per store request (`workflows`, `module_bytes`,
//! `size_spread`, `data_fraction`, `corrupt_workflows`, seed; not the concurrency) by a process of its own before
//! the first case: the Wasm modules, compressed and hex-encoded into JSON spec files (a few of them corrupt,
//! `corrupt_workflows`). Each case reads them where they lie, read-only, so storing them never counts against the
//! measured startup. In `full` that store is 120 workflows of 12 MiB, which every one of the 12 cases stored again
//! before the fixture; it was most of the scenario's 40 minutes. The case then runs
//! [`memproof::workflow_init::initialise_all`] on a current-thread tokio runtime: every init's compile runs on the
//! one runtime thread, so at the moment an init starts its trigger wait no other init is mid-compile, and the heap
//! read there is exactly what the waiting inits pin (see `memproof::workflow_init::startup`).
//!
//! The size swept is the concurrency (1, 4, 12, 32 inits); the parameters give the store: `workflows`,
//! `module_bytes` (uncompressed, mixed by ±`size_spread`), `data_fraction`, `trigger_wait`, `corrupt_workflows`.
//!
//! Metrics: `workflows`, `workflows_initialised`, `workflows_failed`, `compressed_bytes_total`,
//! `compressed_module_bytes_mean`, `pinned_peak_heap_bytes` and `pinned_multiple` (the highest live heap above
//! the start at a wait's beginning, and that over the mean compressed module), `held_multiple` (spec text and
//! decoded bytes held by waiting inits, counted by capacity), `peak_multiple` (the case's whole heap peak above the
//! start, transients included, over the mean compressed module), `time_to_all_ready_ms`, `compiled_form_bytes_mean`,
//! `largest_stream_buffer_bytes` (streaming only), `give_back_count` and `rss_released_by_give_back_bytes` (summed
//! over all; both 0 where nothing gives back), for the technique that gives back `rss_before_give_back_bytes` /
//! `rss_after_give_back_bytes` (around the give-back that released the most), and `rss_at_all_ready_bytes`.

use crate::{CaseContext, Scenario};
use anyhow::{Context as _, bail};
use memproof::payload::Rng;
use memproof::workflow_init::module_generation::ModuleShape;
use memproof::workflow_init::spec_store::{
    SpecCorruption, generate_and_store_workflow, list_specs, spec_path,
};
use memproof::workflow_init::{InitTechnique, StartupObserver, StartupSettings, initialise_all};
use meter::probe;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// The `startup` scenario.
pub struct Startup;

/// The spec store's directory inside the fixture's data directory.
pub const SPECS_DIR: &str = "specs";

/// What the fixture stores (`dir` relative to the fixture's data directory, or anywhere when called directly).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreRequest {
    pub dir: PathBuf,
    pub workflows: usize,
    pub module_bytes: u64,
    pub size_spread: f64,
    pub data_fraction: f64,
    pub corrupt_workflows: usize,
    pub seed: u64,
}

/// Which workflows of `workflows` are corrupt: `corrupt` of them, spread evenly, never the first.
pub fn corrupt_indices(workflows: usize, corrupt: usize) -> Vec<usize> {
    let corrupt = corrupt.min(workflows.saturating_sub(1));
    (1..=corrupt)
        .map(|k| k * workflows / (corrupt + 1))
        .collect()
}

/// The scenario's parameters (the module's doc says what each does); a key it does not read is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartupParams {
    /// Workflows in the store.
    pub workflows: usize,
    /// Each workflow's uncompressed module, before the spread.
    #[serde(deserialize_with = "crate::params::size")]
    pub module_bytes: u64,
    /// Module sizes mix by ± this fraction.
    pub size_spread: f64,
    /// The fraction of a module that is data.
    pub data_fraction: f64,
    /// How long each init waits for its triggers after the compile.
    #[serde(deserialize_with = "crate::params::duration")]
    pub trigger_wait: std::time::Duration,
    /// Stored workflows written corrupt.
    pub corrupt_workflows: usize,
}

/// The store to generate and the trigger wait, from a case's parameters; every missing, mistyped or unknown
/// parameter is an error naming it.
pub fn startup_params(case: &CaseContext) -> anyhow::Result<(StoreRequest, std::time::Duration)> {
    let params: StartupParams = case.read_params()?;
    let request = StoreRequest {
        dir: PathBuf::from(SPECS_DIR),
        workflows: params.workflows,
        module_bytes: params.module_bytes,
        size_spread: params.size_spread,
        data_fraction: params.data_fraction,
        corrupt_workflows: params.corrupt_workflows,
        seed: case.seed,
    };
    Ok((request, params.trigger_wait))
}

/// Generates and stores the workflows; returns the store's figures.
pub fn store_workflows(request: &StoreRequest) -> anyhow::Result<serde_json::Value> {
    std::fs::create_dir_all(&request.dir)
        .with_context(|| format!("{}: cannot create the spec store", request.dir.display()))?;
    let corrupt = corrupt_indices(request.workflows, request.corrupt_workflows);
    let mut rng = Rng::new(request.seed);
    let mut module_bytes_total = 0u64;
    let mut compressed_bytes_total = 0u64;
    let mut spec_bytes_total = 0u64;
    let mut corrupt_names = Vec::new();
    for index in 0..request.workflows {
        let name = format!("wf-{index:05}");
        let spread = request.size_spread.clamp(0.0, 0.95);
        let factor = 1.0 - spread + 2.0 * spread * (rng.below(1 << 20) as f64 / (1 << 20) as f64);
        let shape = ModuleShape {
            module_bytes: (request.module_bytes as f64 * factor) as usize,
            data_fraction: request.data_fraction,
            defect: None,
        };
        let corruption = corrupt
            .iter()
            .position(|&at| at == index)
            .map(|k| SpecCorruption::ALL[k % SpecCorruption::ALL.len()]);
        if let Some(corruption) = corruption {
            corrupt_names.push(format!("{name}:{}", corruption.name()));
        }
        let mut module_rng = Rng::new(rng.next_u64());
        let stored = generate_and_store_workflow(
            &spec_path(&request.dir, &name),
            &name,
            &mut module_rng,
            &shape,
            corruption,
        )?;
        module_bytes_total += stored.module_bytes;
        compressed_bytes_total += stored.compressed_bytes;
        spec_bytes_total += stored.spec_bytes;
    }
    Ok(serde_json::json!({
        "workflows": request.workflows,
        "module_bytes_total": module_bytes_total,
        "compressed_bytes_total": compressed_bytes_total,
        "spec_bytes_total": spec_bytes_total,
        "corrupt": corrupt_names,
    }))
}

/// Reads the heap through the probe, RSS from `/proc`, and marks phases on the case's timeline.
struct ProbeObserver;

impl StartupObserver for ProbeObserver {
    fn live_heap_bytes(&self) -> Option<u64> {
        probe::heap_figures().map(|heap| heap.live_bytes)
    }

    fn resident_bytes(&self) -> Option<u64> {
        let mut buffer = Vec::with_capacity(2048);
        meter::procfs::memory_of(std::process::id(), &mut buffer).map(|memory| memory.rss_bytes)
    }

    fn phase(&self, name: &str) {
        probe::phase(name);
    }
}

/// The counterfactual of the merged fix's give-back (`load-test --prove`): `release_after_compile` with the
/// give-back after each batch undone, and nothing else changed.
const WITHOUT_GIVE_BACK: &str = "release_after_compile_without_give_back";

impl Scenario for Startup {
    fn name(&self) -> &'static str {
        "startup"
    }

    fn techniques(&self) -> Vec<&'static str> {
        let mut names = InitTechnique::NAMES.to_vec();
        names.push(WITHOUT_GIVE_BACK);
        names
    }

    fn check_params(
        &self,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> anyhow::Result<()> {
        crate::params::read::<StartupParams>(params).map(drop)
    }

    fn run_case(&self, case: &CaseContext) -> anyhow::Result<()> {
        let (technique, give_back) = if case.technique == WITHOUT_GIVE_BACK {
            (InitTechnique::ReleaseAfterCompile, false)
        } else {
            let Some(technique) = InitTechnique::from_name(&case.technique) else {
                bail!("startup: unknown technique {:?}", case.technique);
            };
            (technique, technique.gives_back_after_each_batch())
        };
        if case.size_name != "concurrency" {
            bail!(
                "startup: the size is the concurrency (size name \"concurrency\"), not {:?}",
                case.size_name
            );
        }
        let concurrency = case.size_u64().max(1) as usize;
        let (request, trigger_wait) = startup_params(case)?;

        let fixture = case.fixture()?;
        let stored = fixture.manifest.figures;
        let spec_dir = fixture.data_dir.join(&request.dir);
        let spec_paths = list_specs(&spec_dir)?;
        if spec_paths.len() != request.workflows {
            bail!(
                "startup: the fixture holds {} specs in {}, expected {}",
                spec_paths.len(),
                spec_dir.display(),
                request.workflows
            );
        }

        let settings = StartupSettings {
            give_back_after_each_batch: give_back,
            ..StartupSettings::for_technique(technique, concurrency, trigger_wait)
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .context("startup: cannot build the tokio runtime")?;
        let observer: Arc<dyn StartupObserver> = Arc::new(ProbeObserver);
        let report = runtime.block_on(initialise_all(
            &spec_paths,
            &settings,
            Arc::clone(&observer),
        ));
        let rss_at_all_ready = observer.resident_bytes();
        let peak_heap = probe::heap_figures().map(|heap| heap.peak_bytes);
        drop(runtime);

        for failure in &report.failures {
            eprintln!("memproof-case: startup: {failure}");
        }
        let mean = report.mean_compressed_module_bytes();
        probe::metric("concurrency", concurrency);
        probe::metric("workflows", report.workflows);
        probe::metric("workflows_initialised", report.initialised.len());
        probe::metric("workflows_failed", report.failures.len());
        probe::metric("compressed_bytes_total", report.compressed_bytes_total());
        probe::metric("compressed_module_bytes_mean", mean);
        probe::metric(
            "stored_spec_bytes_total",
            stored.get("spec_bytes_total").cloned(),
        );
        probe::metric(
            "time_to_all_ready_ms",
            report.all_ready.as_secs_f64() * 1000.0,
        );
        if let Some(pinned) = report.pinned_peak_heap_bytes {
            probe::metric("pinned_peak_heap_bytes", pinned);
        }
        if let Some(multiple) = report.pinned_multiple() {
            probe::metric("pinned_multiple", multiple);
        }
        if let Some(multiple) = report.held_multiple() {
            probe::metric("held_multiple", multiple);
        }
        if let (Some(peak), Some(baseline)) = (peak_heap, report.baseline_live_heap_bytes)
            && mean > 0.0
        {
            probe::metric("peak_multiple", peak.saturating_sub(baseline) as f64 / mean);
        }
        if !report.initialised.is_empty() {
            let compiled: u64 = report
                .initialised
                .iter()
                .map(|w| w.compiled_form_bytes)
                .sum();
            probe::metric(
                "compiled_form_bytes_mean",
                compiled as f64 / report.initialised.len() as f64,
            );
        }
        if let Some(largest) = report
            .initialised
            .iter()
            .filter_map(|w| w.largest_stream_buffer_bytes)
            .max()
        {
            probe::metric("largest_stream_buffer_bytes", largest);
        }
        if let Some(rss) = rss_at_all_ready {
            probe::metric("rss_at_all_ready_bytes", rss);
        }
        // Reported for every technique (0 where nothing gives back), so the give-back's verdict measures a
        // figure on its counterfactual instead of a missing metric.
        probe::metric("give_back_count", report.give_backs.len());
        probe::metric(
            "rss_released_by_give_back_bytes",
            report
                .give_backs
                .iter()
                .map(|g| g.rss_released_bytes())
                .sum::<u64>(),
        );
        {
            let largest_release = report
                .give_backs
                .iter()
                .max_by_key(|g| (g.rss_released_bytes(), g.completed));
            if let Some(largest) = largest_release
                && let (Some(before), Some(after)) =
                    (largest.rss_before_bytes, largest.rss_after_bytes)
            {
                probe::metric("rss_before_give_back_bytes", before);
                probe::metric("rss_after_give_back_bytes", after);
            }
        }
        Ok(())
    }

    fn fixture_key(&self, case: &CaseContext) -> anyhow::Result<Option<serde_json::Value>> {
        let (request, _) = startup_params(case)?;
        Ok(Some(serde_json::to_value(&request)?))
    }

    fn make_fixture(
        &self,
        key: &serde_json::Value,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<serde_json::Value> {
        let mut request: StoreRequest = serde_json::from_value(key.clone())
            .context("startup fixture: the key is not a store request")?;
        request.dir = data_dir.join(&request.dir);
        store_workflows(&request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_workflows_are_spread_and_never_the_first() {
        assert_eq!(corrupt_indices(48, 4), vec![9, 19, 28, 38]);
        assert_eq!(corrupt_indices(3, 5), vec![1, 2]);
        assert!(corrupt_indices(10, 0).is_empty());
    }
}
