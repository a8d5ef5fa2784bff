//! The startup storm of seed B: every stored workflow is initialised at engine start, at most `concurrency` at a
//! time (the seed's `maxConcurrency = 12`), and each init, once compiled, waits for its trigger subscriptions (the
//! seed's "seconds per workflow") before it counts as done and frees its slot.
//!
//! What is pinned: whatever an init still holds when it starts waiting stays put for the whole wait, for up to
//! `concurrency` inits at once. The startup reads the live heap (through [`StartupObserver`]) at the moment each
//! init enters its wait and keeps the highest reading above the heap before startup: [`StartupReport::
//! pinned_peak_heap_bytes`]. Divided by the mean compressed module size it is the seed's "pinned multiple": about
//! 3x per waiting init for the technique that holds the hex text (2x) and the decoded bytes (1x), so about 36x at
//! 12, plus small change (compiled forms, task frames); near zero for the others. With a current-thread runtime
//! (as the `startup` scenario runs it) no other init is mid-compile at such a moment, so the reading is exactly
//! what the waiting inits hold; on a multi-thread runtime another init's decompression buffers can add to it.
//!
//! A batch: with a semaphore nothing arrives in batches, so a batch here is every `concurrency` completions
//! (initialised or failed), plus the remainder at the end. After each, the technique that gives back calls
//! [`give_back::trim_free_heap_memory`] and records RSS around it.
//!
//! The engine's long-lived compiled modules are outside this model: each init drops its compiled form when its
//! wait ends, having reported its size, so the heap shows the init window alone.

use super::give_back::{self, GiveBackRecord};
use super::init_techniques::{InitTechnique, WorkflowInitError, compile_workflow};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// How the startup runs.
#[derive(Debug, Clone)]
pub struct StartupSettings {
    pub technique: InitTechnique,
    /// Inits in flight at most (compile and trigger wait both count); the seed's default is 12.
    pub concurrency: usize,
    /// How long each compiled init waits for its trigger subscriptions.
    pub trigger_wait: Duration,
    /// Whether to give free memory back to the OS after each batch.
    pub give_back_after_each_batch: bool,
}

impl StartupSettings {
    /// Settings with the technique's own give-back choice (only the merged fix gives back).
    pub fn for_technique(
        technique: InitTechnique,
        concurrency: usize,
        trigger_wait: Duration,
    ) -> StartupSettings {
        StartupSettings {
            technique,
            concurrency: concurrency.max(1),
            trigger_wait,
            give_back_after_each_batch: technique.gives_back_after_each_batch(),
        }
    }
}

/// What the startup can read and mark from outside: the heap meter, RSS, and the timeline's phases.
pub trait StartupObserver: Send + Sync {
    /// Live heap bytes of this process now, if a meter runs.
    fn live_heap_bytes(&self) -> Option<u64>;
    /// Resident set of this process now.
    fn resident_bytes(&self) -> Option<u64>;
    /// Marks a phase of the startup on the timeline.
    fn phase(&self, name: &str);
}

/// An observer that sees nothing (unit tests, benchmarks).
pub struct UnobservedStartup;

impl StartupObserver for UnobservedStartup {
    fn live_heap_bytes(&self) -> Option<u64> {
        None
    }
    fn resident_bytes(&self) -> Option<u64> {
        None
    }
    fn phase(&self, _name: &str) {}
}

/// One initialised workflow's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitializedFigures {
    pub name: String,
    pub compressed_bytes: u64,
    pub compiled_form_bytes: u64,
    pub function_count: u32,
    pub code_digest: u64,
    pub largest_stream_buffer_bytes: Option<usize>,
}

/// What a startup did.
#[derive(Debug, Clone)]
pub struct StartupReport {
    pub workflows: usize,
    /// Workflows that compiled and finished their trigger wait, in completion order.
    pub initialised: Vec<InitializedFigures>,
    /// Workflows that failed, each with its reason.
    pub failures: Vec<WorkflowInitError>,
    /// Live heap when the startup began, if metered.
    pub baseline_live_heap_bytes: Option<u64>,
    /// The highest live heap above the baseline at the moment an init entered its trigger wait.
    pub pinned_peak_heap_bytes: Option<u64>,
    /// The most spec text and decoded bytes held at once by waiting inits, by their capacities.
    pub held_peak_bytes: u64,
    /// Give-back steps, in order (empty when the technique does not give back).
    pub give_backs: Vec<GiveBackRecord>,
    /// From the start until the last init finished its wait.
    pub all_ready: Duration,
}

impl StartupReport {
    /// Total compressed module bytes of the initialised workflows.
    pub fn compressed_bytes_total(&self) -> u64 {
        self.initialised.iter().map(|w| w.compressed_bytes).sum()
    }

    /// Mean compressed module size of the initialised workflows (0 when none initialised).
    pub fn mean_compressed_module_bytes(&self) -> f64 {
        if self.initialised.is_empty() {
            0.0
        } else {
            self.compressed_bytes_total() as f64 / self.initialised.len() as f64
        }
    }

    /// The pinned peak as a multiple of the mean compressed module: the seed's "36x".
    pub fn pinned_multiple(&self) -> Option<f64> {
        let mean = self.mean_compressed_module_bytes();
        self.pinned_peak_heap_bytes
            .filter(|_| mean > 0.0)
            .map(|pinned| pinned as f64 / mean)
    }

    /// The held spec text and decoded bytes at their peak, as a multiple of the mean compressed module.
    pub fn held_multiple(&self) -> Option<f64> {
        let mean = self.mean_compressed_module_bytes();
        (mean > 0.0).then(|| self.held_peak_bytes as f64 / mean)
    }
}

struct SharedFigures {
    baseline_live_heap_bytes: Option<u64>,
    pinned_peak_heap_bytes: AtomicU64,
    pinned_was_read: std::sync::atomic::AtomicBool,
    held_now: AtomicU64,
    held_peak: AtomicU64,
    completed: AtomicUsize,
    give_backs: Mutex<Vec<GiveBackRecord>>,
}

impl SharedFigures {
    fn give_back(&self, observer: &dyn StartupObserver, completed: usize) {
        let rss_before_bytes = observer.resident_bytes();
        let released_any = give_back::trim_free_heap_memory();
        let rss_after_bytes = observer.resident_bytes();
        self.give_backs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(GiveBackRecord {
                completed,
                rss_before_bytes,
                rss_after_bytes,
                released_any,
            });
    }
}

/// Initialises every workflow in `spec_paths` with `settings`, and reports what it held and when.
pub async fn initialise_all(
    spec_paths: &[PathBuf],
    settings: &StartupSettings,
    observer: Arc<dyn StartupObserver>,
) -> StartupReport {
    let started = Instant::now();
    let shared = Arc::new(SharedFigures {
        baseline_live_heap_bytes: observer.live_heap_bytes(),
        pinned_peak_heap_bytes: AtomicU64::new(0),
        pinned_was_read: std::sync::atomic::AtomicBool::new(false),
        held_now: AtomicU64::new(0),
        held_peak: AtomicU64::new(0),
        completed: AtomicUsize::new(0),
        give_backs: Mutex::new(Vec::new()),
    });
    observer.phase("startup");
    let semaphore = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut initialised = Vec::with_capacity(spec_paths.len());
    let mut failures = Vec::new();
    let mut collect =
        |outcome: Result<Result<InitializedFigures, WorkflowInitError>, _>| match outcome {
            Ok(Ok(figures)) => initialised.push(figures),
            Ok(Err(error)) => failures.push(error),
            Err(join_error) => {
                std::panic::resume_unwind(tokio::task::JoinError::into_panic(join_error))
            }
        };
    for spec_path in spec_paths {
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .expect("the startup never closes its semaphore");
        tasks.spawn(initialise_one(
            spec_path.clone(),
            settings.clone(),
            Arc::clone(&shared),
            Arc::clone(&observer),
            permit,
        ));
        while let Some(outcome) = tasks.try_join_next() {
            collect(outcome);
        }
    }
    while let Some(outcome) = tasks.join_next().await {
        collect(outcome);
    }
    let completed = shared.completed.load(Ordering::SeqCst);
    if settings.give_back_after_each_batch && !completed.is_multiple_of(settings.concurrency.max(1))
    {
        shared.give_back(observer.as_ref(), completed);
    }
    let all_ready = started.elapsed();
    observer.phase("all ready");
    let give_backs = std::mem::take(
        &mut *shared
            .give_backs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()),
    );
    StartupReport {
        workflows: spec_paths.len(),
        initialised,
        failures,
        baseline_live_heap_bytes: shared.baseline_live_heap_bytes,
        pinned_peak_heap_bytes: shared
            .pinned_was_read
            .load(Ordering::SeqCst)
            .then(|| shared.pinned_peak_heap_bytes.load(Ordering::SeqCst)),
        held_peak_bytes: shared.held_peak.load(Ordering::SeqCst),
        give_backs,
        all_ready,
    }
}

/// One init: compile, wait for triggers, let go; then count the completion and give back at a batch's end.
async fn initialise_one(
    spec_path: PathBuf,
    settings: StartupSettings,
    shared: Arc<SharedFigures>,
    observer: Arc<dyn StartupObserver>,
    permit: OwnedSemaphorePermit,
) -> Result<InitializedFigures, WorkflowInitError> {
    let outcome = match compile_workflow(settings.technique, &spec_path) {
        Err(error) => Err(error),
        Ok(mut workflow) => {
            let held = workflow.held_bytes();
            let held_now = shared.held_now.fetch_add(held, Ordering::SeqCst) + held;
            shared.held_peak.fetch_max(held_now, Ordering::SeqCst);
            if let (Some(live), Some(baseline)) =
                (observer.live_heap_bytes(), shared.baseline_live_heap_bytes)
            {
                shared
                    .pinned_peak_heap_bytes
                    .fetch_max(live.saturating_sub(baseline), Ordering::SeqCst);
                shared.pinned_was_read.store(true, Ordering::SeqCst);
            }
            tokio::time::sleep(settings.trigger_wait).await;
            workflow.release_held_buffers();
            shared.held_now.fetch_sub(held, Ordering::SeqCst);
            Ok(InitializedFigures {
                name: std::mem::take(&mut workflow.name),
                compressed_bytes: workflow.compressed_bytes,
                compiled_form_bytes: workflow.compiled.retained_bytes(),
                function_count: workflow.compiled.function_count,
                code_digest: workflow.compiled.code_digest,
                largest_stream_buffer_bytes: workflow.largest_stream_buffer_bytes,
            })
        }
    };
    drop(permit);
    let completed = shared.completed.fetch_add(1, Ordering::SeqCst) + 1;
    if settings.give_back_after_each_batch && completed.is_multiple_of(settings.concurrency.max(1))
    {
        shared.give_back(observer.as_ref(), completed);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Rng;
    use crate::workflow_init::module_generation::ModuleShape;
    use crate::workflow_init::spec_store::{
        SpecCorruption, generate_and_store_workflow, spec_path,
    };

    fn store_workflows(dir: &std::path::Path, n: usize, corrupt: &[usize]) -> Vec<PathBuf> {
        let shape = ModuleShape {
            module_bytes: 40_000,
            data_fraction: 0.25,
            defect: None,
        };
        (0..n)
            .map(|i| {
                let name = format!("wf-{i:04}");
                let path = spec_path(dir, &name);
                let corruption = corrupt
                    .iter()
                    .position(|&c| c == i)
                    .map(|k| SpecCorruption::ALL[k % SpecCorruption::ALL.len()]);
                generate_and_store_workflow(
                    &path,
                    &name,
                    &mut Rng::new(i as u64),
                    &shape,
                    corruption,
                )
                .unwrap();
                path
            })
            .collect()
    }

    fn run(paths: &[PathBuf], settings: &StartupSettings) -> StartupReport {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(initialise_all(paths, settings, Arc::new(UnobservedStartup)))
    }

    #[test]
    fn corrupt_workflows_fail_alone_and_the_rest_initialise() {
        let dir = tempfile::tempdir().unwrap();
        let paths = store_workflows(dir.path(), 10, &[2, 5, 7, 9]);
        for technique in InitTechnique::ALL {
            let settings = StartupSettings::for_technique(technique, 3, Duration::from_millis(2));
            let report = run(&paths, &settings);
            assert_eq!(report.initialised.len(), 6, "{}", technique.name());
            let mut failed: Vec<&str> = report
                .failures
                .iter()
                .map(|f| f.workflow.as_str())
                .collect();
            failed.sort();
            assert_eq!(failed, ["wf-0002", "wf-0005", "wf-0007", "wf-0009"]);
            // 10 completions in batches of 3: after 3, 6, 9 and the remainder at 10.
            let expected_give_backs = if technique.gives_back_after_each_batch() {
                4
            } else {
                0
            };
            assert_eq!(report.give_backs.len(), expected_give_backs);
        }
    }

    #[test]
    fn the_holding_technique_holds_three_compressed_modules_per_waiting_init() {
        let dir = tempfile::tempdir().unwrap();
        let paths = store_workflows(dir.path(), 8, &[]);
        let settings = StartupSettings::for_technique(
            InitTechnique::HoldThroughTriggerWait,
            4,
            Duration::from_millis(20),
        );
        let report = run(&paths, &settings);
        let held = report.held_multiple().unwrap();
        // Four inits wait together, 3x each (mixed sizes around the mean, so not exactly 12).
        assert!((10.0..14.0).contains(&held), "held multiple {held}");
        let released = StartupSettings::for_technique(
            InitTechnique::ReleaseAfterCompile,
            4,
            Duration::from_millis(20),
        );
        assert_eq!(run(&paths, &released).held_peak_bytes, 0);
    }
}
