//! A program memproof did not build, measured with the heap figures it reports on the probe protocol: through a
//! reference client (`clients/`: Python, Node, Go) or the preload library (`preload/`, for malloc users).
//!
//! What memproof takes from such a program and what it never does: its heap samples, phases, metrics and final heap
//! figures are its to report (nothing else can read them); its peak RSS, outcome and time are the kernel's and the
//! runner's. The runner enforces that for every program it gives the channel to as `ProbeAccess::Program`: a final
//! report's `vm_hwm_bytes` and `error` are ignored, the peak RSS is a kernel high-water mark, the outcome is the exit
//! status (and the watchdog's and the timeout's kills), and a program that sent heap samples but no final report is
//! not failed for it.
//!
//! Where preload cannot see, [`preload_blind_spot`] says why before the run and [`heap_of`] after it, so a blind
//! run never reports a heap of zero.

use meter::wire::FinalFigures;
use runner::Measured;
use schema::results::{Case, CaseIdentity, OutputFiles};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where a measured program's heap figures come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeapSource {
    /// Nowhere: the heap is `null`.
    None,
    /// The program's own probe client, on the channel.
    Probe,
    /// The preload library at this path, loaded into the program with `LD_PRELOAD`.
    Preload(PathBuf),
}

/// The heap figures a program reported in its final report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportedHeap {
    pub peak_bytes: Option<u64>,
    pub total_bytes: Option<u64>,
    pub count: Option<u64>,
    pub end_bytes: Option<u64>,
}

impl From<&FinalFigures> for ReportedHeap {
    fn from(figures: &FinalFigures) -> ReportedHeap {
        ReportedHeap {
            peak_bytes: figures.peak_heap_bytes,
            total_bytes: figures.total_alloc_bytes,
            count: figures.alloc_count,
            end_bytes: figures.end_heap_bytes,
        }
    }
}

/// The heap figures of a run, or why there are none: `Ok(None)` when no heap was asked for, `Err(reason)` when one
/// was and the program never reported it.
pub fn heap_of(measured: &Measured, source: &HeapSource) -> Result<Option<ReportedHeap>, String> {
    if *source == HeapSource::None {
        return Ok(None);
    }
    match &measured.final_figures {
        Some(figures) => Ok(Some(figures.into())),
        None => Err(match source {
            HeapSource::Preload(_) if measured.timeline.iter().all(|s| s.heap_bytes.is_none()) => {
                "the preload library never reported: the program did not load it (a static binary, or a \
                 program that clears LD_PRELOAD) or did not start at all"
                    .to_string()
            }
            HeapSource::Probe if measured.timeline.iter().all(|s| s.heap_bytes.is_none()) => {
                "the program never reported on the probe channel: it has no probe client, or did not call \
                 start()"
                    .to_string()
            }
            _ => "the program sent heap samples but no final report (it was killed, or exited without \
                  finish()): its timeline has them, its peak heap is unknown"
                .to_string(),
        }),
    }
}

/// The environment entry that loads the preload library into the program: `LD_PRELOAD=LIBRARY`, for
/// [`runner::Launch::env`]. The runner sets it on the program's own exec (never on the launcher, which would
/// load the library too, and never through a command such as `env`, which would read a program path holding `=`
/// as an assignment).
pub fn preload_env(library: &Path) -> (OsString, OsString) {
    (OsString::from("LD_PRELOAD"), library.as_os_str().to_owned())
}

/// The heap source a program really gets when `wanted` is asked for: the preload library is not loaded where it
/// cannot see the heap, or would see only part of it ([`preload_blind_spot`], [`preload_partial_view`]), and the
/// reason is returned instead, so a run reports no heap rather than a heap of zero or a part as the whole. The one
/// decision `measure` and a spec's command case share; `env` is what the program gets beyond memproof's own
/// environment (a technique's `env`; empty under `measure`).
pub fn effective_heap_source(
    wanted: HeapSource,
    program: &Path,
    env: &std::collections::BTreeMap<String, String>,
) -> (HeapSource, Option<String>) {
    if !matches!(wanted, HeapSource::Preload(_)) {
        return (wanted, None);
    }
    match preload_blind_spot(program).or_else(|| preload_partial_view(program, env)) {
        Some(why) => (HeapSource::None, Some(why)),
        None => (wanted, None),
    }
}

/// Why the preload library cannot see a program's heap, when that can be told from its file: a static binary has
/// no dynamic loader to load the library, and a Go program's heap never goes through malloc. `None` when the
/// library can see it (or the file cannot be read: the run itself will say).
pub fn preload_blind_spot(program: &Path) -> Option<String> {
    let path = find_program(program)?;
    let bytes = std::fs::read(&path).ok()?;
    if let Some(interpreter) = script_interpreter(&bytes) {
        return preload_blind_spot(&interpreter);
    }
    let kind = elf_kind(&bytes)?;
    let name = path.display();
    if bytes.windows(GO_BUILDINFO.len()).any(|w| w == GO_BUILDINFO) {
        return Some(format!(
            "{name} is a Go program: its heap never goes through malloc, so preload cannot see it; use the Go probe \
             client (clients/go) with --probe"
        ));
    }
    if kind == ElfKind::Static {
        return Some(format!(
            "{name} is statically linked: no dynamic loader loads the preload library into it, so its heap cannot \
             be seen"
        ));
    }
    None
}

/// The magic that starts a Go binary's build information section.
const GO_BUILDINFO: &[u8] = b"\xff Go buildinf:";

/// The allocator environment variable of CPython, and the values under which its objects come from malloc.
const PYTHON_MALLOC_ENV: &str = "PYTHONMALLOC";
const PYTHON_MALLOC_THROUGH_MALLOC: [&str; 2] = ["malloc", "malloc_debug"];

/// Why the preload library would see only part of a program's heap, when that can be told from its file and the
/// environment it gets: CPython serves objects of up to 512 bytes from arenas pymalloc maps itself, never through
/// malloc (preload saw 35 MB of a process tracemalloc measured at 150 MB), unless `PYTHONMALLOC=malloc`. `None`
/// when the whole heap goes through malloc as far as memproof can tell.
pub fn preload_partial_view(
    program: &Path,
    technique_env: &std::collections::BTreeMap<String, String>,
) -> Option<String> {
    let path = find_program(program)?;
    let bytes = std::fs::read(&path).ok()?;
    let interpreter = script_interpreter(&bytes);
    let (path, bytes) = match interpreter.and_then(|i| Some((find_program(&i)?, i))) {
        Some((found, _)) => {
            let bytes = std::fs::read(&found).ok()?;
            (found, bytes)
        }
        None => (path, bytes),
    };
    let is_cpython = [b"PyObject_Malloc".as_slice(), b"libpython".as_slice()]
        .iter()
        .any(|marker| bytes.windows(marker.len()).any(|w| w == *marker));
    if !is_cpython {
        return None;
    }
    let allocator = technique_env
        .get(PYTHON_MALLOC_ENV)
        .cloned()
        .or_else(|| std::env::var(PYTHON_MALLOC_ENV).ok());
    if allocator.is_some_and(|value| PYTHON_MALLOC_THROUGH_MALLOC.contains(&value.as_str())) {
        return None;
    }
    Some(format!(
        "{} is CPython: pymalloc serves its small objects from arenas it maps itself, so the preload library \
         would see only part of the heap; set {PYTHON_MALLOC_ENV}=malloc (in a spec, `env = {{ {PYTHON_MALLOC_ENV} = \
         \"malloc\" }}` on the technique), or use the Python probe client (heap = \"probe\", or measure --probe)",
        path.display()
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElfKind {
    Dynamic,
    Static,
}

/// Whether a 64-bit little-endian ELF file asks for a dynamic loader (a `PT_INTERP` program header); `None` for
/// anything else.
fn elf_kind(bytes: &[u8]) -> Option<ElfKind> {
    const PT_INTERP: u32 = 3;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return None;
    }
    let u16_at = |at: usize| {
        Some(u16::from_le_bytes(
            bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
        ))
    };
    let u32_at = |at: usize| {
        Some(u32::from_le_bytes(
            bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let u64_at = |at: usize| {
        Some(u64::from_le_bytes(
            bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
        ))
    };
    let table = usize::try_from(u64_at(0x20)?).ok()?;
    let entry_size = usize::from(u16_at(0x36)?);
    let entries = usize::from(u16_at(0x38)?);
    for index in 0..entries {
        if u32_at(table.checked_add(index.checked_mul(entry_size)?)?)? == PT_INTERP {
            return Some(ElfKind::Dynamic);
        }
    }
    Some(ElfKind::Static)
}

/// The interpreter a `#!` script names (`/usr/bin/env NAME` names NAME).
fn script_interpreter(bytes: &[u8]) -> Option<PathBuf> {
    let first = bytes.strip_prefix(b"#!")?.split(|&b| b == b'\n').next()?;
    let first = std::str::from_utf8(first).ok()?;
    let mut words = first.split_whitespace();
    let interpreter = words.next()?;
    if interpreter.ends_with("/env") {
        words.find(|w| !w.starts_with('-')).map(PathBuf::from)
    } else {
        Some(PathBuf::from(interpreter))
    }
}

/// The file a command name runs: itself when it has a slash, else the first match on `PATH`.
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The record of one measured run: the runner's figures, the heap figures the program reported (`None` when
/// it reported none, or none was asked for), no profile run, no repeats.
pub fn recorded_case(
    identity: CaseIdentity,
    measured: Measured,
    heap: Option<ReportedHeap>,
    output: Option<OutputFiles>,
) -> Case {
    Case {
        counterfactual: identity.counterfactual,
        id: identity.id,
        scenario: identity.scenario,
        role: identity.role,
        technique: identity.technique,
        size: identity.size,
        outcome: measured.outcome,
        exit: measured.exit,
        limit_bytes: identity.limit_bytes,
        limit: measured.limit,
        peak_rss_bytes: measured.peak_rss_bytes,
        peak_heap_bytes: heap.and_then(|h| h.peak_bytes),
        total_alloc_bytes: heap.and_then(|h| h.total_bytes),
        alloc_count: heap.and_then(|h| h.count),
        end_heap_bytes: heap.and_then(|h| h.end_bytes),
        wall_ms: measured.wall_ms,
        timeline: measured.timeline,
        phases: measured.phases,
        metrics: measured.metrics,
        dhat_file: None,
        dhat_run: None,
        tree: Some(measured.tree),
        output,
        repeat: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_program_is_seen_and_a_script_is_judged_by_its_interpreter() {
        assert_eq!(preload_blind_spot(Path::new("/bin/sh")), None);
        assert_eq!(
            elf_kind(&std::fs::read("/bin/sh").unwrap()),
            Some(ElfKind::Dynamic)
        );
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("run");
        std::fs::write(&script, "#!/usr/bin/env -S sh\necho\n").unwrap();
        assert_eq!(
            script_interpreter(&std::fs::read(&script).unwrap()),
            Some("sh".into())
        );
        assert_eq!(preload_blind_spot(&script), None);
    }

    #[test]
    fn a_static_elf_is_a_blind_spot() {
        // The first bytes of an ELF header with one program header, of type PT_LOAD (1), not PT_INTERP.
        let mut elf = vec![0u8; 64 + 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        elf[64..68].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(elf_kind(&elf), Some(ElfKind::Static));
        elf[64..68].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(elf_kind(&elf), Some(ElfKind::Dynamic));
        elf[64..68].copy_from_slice(&1u32.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("static");
        std::fs::write(&path, &elf).unwrap();
        let why = preload_blind_spot(&path).unwrap();
        assert!(why.contains("statically linked"), "{why}");
        elf.extend_from_slice(GO_BUILDINFO);
        std::fs::write(&path, &elf).unwrap();
        assert!(preload_blind_spot(&path).unwrap().contains("Go program"));
    }

    #[test]
    fn truncated_or_foreign_files_are_not_judged() {
        assert_eq!(elf_kind(b"\x7fELF"), None);
        assert_eq!(elf_kind(&[0u8; 128]), None);
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(elf_kind(&elf), None);
    }
}
