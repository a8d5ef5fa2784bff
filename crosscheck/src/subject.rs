//! What the cross-check measures: memproof cases (the calibration case, a case that allocates nothing, one small
//! case of each seed scenario) and programs in other languages, each as a command any tool can be put in front of.

use anyhow::Context as _;
use planning::suite::PlannedCase;
use runner::{self, Launch, Measured};
use schema::file_stem::file_stem;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whether a subject is a memproof case (it reports its own heap and VmHWM) or any other program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    /// `memproof-case case …`: memproof's figures are the case's own (heap meter, VmHWM).
    MemproofCase,
    /// Any program: memproof knows only its RSS, from `wait4` (the path of `cargo xtask measure`).
    ExternalProgram,
}

/// One command to measure under memproof and under each independent tool.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The case id (`calibration/known/bytes=16777216`) or a short name of the program.
    pub label: String,
    pub kind: SubjectKind,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// A memproof case's scratch directory argument is made afresh for each run: `--work-dir` is appended here.
    pub needs_work_dir: bool,
    pub timeout: Duration,
    /// Bytes the program is known to hold at its peak, when it is known; its peak RSS must cover them.
    pub known_bytes: Option<u64>,
    /// What the program does, in a few words, for the table's note.
    pub description: String,
}

impl Subject {
    /// A memproof case run by the `memproof-case` binary.
    pub fn memproof_case(
        case_binary: &Path,
        case: &PlannedCase,
        seed: u64,
        description: &str,
    ) -> Subject {
        Subject {
            label: case.id.clone(),
            kind: SubjectKind::MemproofCase,
            program: case_binary.to_path_buf(),
            args: planning::suite::case_arguments(case, seed),
            needs_work_dir: true,
            timeout: case.timeout,
            known_bytes: None,
            description: description.to_string(),
        }
    }

    /// The full argument list for one run, with a fresh scratch directory when the subject needs one.
    pub fn arguments_for_run(&self, work_dir: &Path) -> Vec<OsString> {
        let mut args = self.args.clone();
        if self.needs_work_dir {
            args.push("--work-dir".into());
            args.push(work_dir.into());
        }
        args
    }
}

/// How every run of the cross-check is started.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The `memproof-launch` binary.
    pub launcher: PathBuf,
    /// Where scratch directories and the tools' files go.
    pub out_dir: PathBuf,
    /// The RSS poll interval of the runner.
    pub interval: Duration,
}

/// Runs `program args…` (a tool in front of the subject, or the subject itself) through memproof's runner with the
/// probe pipe connected, in a fresh scratch directory, with `timeout`.
pub fn run_through_runner(
    settings: &RunSettings,
    subject: &Subject,
    wrapper: Option<(&Path, Vec<OsString>)>,
    timeout: Duration,
) -> anyhow::Result<Measured> {
    let work_root = settings.out_dir.join("work");
    std::fs::create_dir_all(&work_root)
        .with_context(|| format!("{}: cannot create", work_root.display()))?;
    let work_dir = tempfile::Builder::new()
        .prefix(&file_stem(&subject.label))
        .tempdir_in(&work_root)?;
    let subject_args = subject.arguments_for_run(work_dir.path());
    let (program, args) = match wrapper {
        Some((tool, mut tool_args)) => {
            tool_args.push(subject.program.clone().into());
            tool_args.extend(subject_args);
            (tool.to_path_buf(), tool_args)
        }
        None => (subject.program.clone(), subject_args),
    };
    let launch = Launch {
        launcher: settings.launcher.clone(),
        program,
        args,
        env: Vec::new(),
        current_dir: Some(work_dir.path().to_path_buf()),
        limit_bytes: None,
        timeout,
        interval: settings.interval,
        probe: match subject.kind {
            SubjectKind::MemproofCase => runner::ProbeAccess::MemproofCase,
            SubjectKind::ExternalProgram => runner::ProbeAccess::Off,
        },
        output_stem: None,
    };
    runner::run(&launch, |_| {})
}

/// memproof's own figures for a subject, from a normal run through the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemproofFigures {
    pub peak_rss_bytes: Option<u64>,
    pub peak_heap_bytes: Option<u64>,
    pub total_alloc_bytes: Option<u64>,
    pub alloc_count: Option<u64>,
}

impl MemproofFigures {
    /// The figures a run reported: a case's final figures, and the runner's peak RSS.
    pub fn of(measured: &Measured) -> MemproofFigures {
        let heap = measured.final_figures.as_ref();
        MemproofFigures {
            peak_rss_bytes: measured.peak_rss_bytes,
            peak_heap_bytes: heap.and_then(|f| f.peak_heap_bytes),
            total_alloc_bytes: heap.and_then(|f| f.total_alloc_bytes),
            alloc_count: heap.and_then(|f| f.alloc_count),
        }
    }

    /// One figure by its name in the table.
    pub fn get(&self, figure: super::table::Figure) -> Option<u64> {
        use super::table::Figure;
        match figure {
            Figure::PeakRssBytes => self.peak_rss_bytes,
            Figure::PeakHeapBytes => self.peak_heap_bytes,
            Figure::TotalAllocBytes => self.total_alloc_bytes,
            Figure::AllocCount => self.alloc_count,
        }
    }
}

/// A C program that mallocs a known number of bytes, writes every byte, holds them 100 ms and frees them.
pub const C_TOUCH_SOURCE: &str = r#"/* memproof cross-check: malloc a known number of bytes, write all of them, hold them, free them. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
int main(int argc, char **argv) {
    if (argc != 2) return 2;
    size_t bytes = strtoull(argv[1], 0, 10);
    char *block = malloc(bytes);
    if (!block) return 1;
    memset(block, 1, bytes);
    struct timespec hold = {0, 100000000};
    nanosleep(&hold, 0);
    unsigned long sum = 0;
    for (size_t i = 0; i < bytes; i += 4096) sum += (unsigned char)block[i];
    free(block);
    return sum == 0;
}
"#;

/// Finds an executable on `PATH` (or checks a path given with a `/`).
pub fn find_executable(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let is_executable = |path: &Path| {
        path.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable(&path).then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
}

/// Programs in other languages, measured through `measure`'s path: a Python one-liner that holds a known, touched
/// `bytearray`, a C program compiled now into `out_dir`, and a shell pipeline. A program whose interpreter or
/// compiler is missing comes back as `Err` with the package that provides it.
pub fn external_programs(out_dir: &Path) -> Vec<Result<Subject, (String, String)>> {
    const PYTHON_BYTES: u64 = 200 << 20;
    const C_BYTES: u64 = 100 << 20;
    let mut subjects = Vec::new();
    subjects.push(match find_executable("python3") {
        Some(python) => Ok(Subject {
            label: "python3: bytearray of 200 MiB".into(),
            kind: SubjectKind::ExternalProgram,
            program: python,
            args: vec![
                "-c".into(),
                format!(
                    "b = bytearray(b'x') * {PYTHON_BYTES}; import time; time.sleep(0.2); assert b[-1] == 120"
                )
                .into(),
            ],
            needs_work_dir: false,
            timeout: Duration::from_secs(60),
            known_bytes: Some(PYTHON_BYTES),
            description: format!("holds a bytearray of {PYTHON_BYTES} B, every byte written"),
        }),
        None => Err((
            "python3: bytearray of 200 MiB".into(),
            "python3 is not installed: apt-get install python3".into(),
        )),
    });
    let c_label = "C: malloc and write 100 MiB".to_string();
    subjects.push(match find_executable("cc") {
        Some(cc) => compile_c_touch(&cc, out_dir)
            .map(|binary| Subject {
                label: c_label.clone(),
                kind: SubjectKind::ExternalProgram,
                program: binary,
                args: vec![C_BYTES.to_string().into()],
                needs_work_dir: false,
                timeout: Duration::from_secs(60),
                known_bytes: Some(C_BYTES),
                description: format!(
                    "mallocs {C_BYTES} B and writes every byte (compiled with cc -O2)"
                ),
            })
            .map_err(|error| (c_label.clone(), format!("{error:#}"))),
        None => Err((c_label, "no C compiler (cc): apt-get install gcc".into())),
    });
    subjects.push(match find_executable("sh") {
        Some(sh) => Ok(Subject {
            label: "sh: a 32 MB shell variable".into(),
            kind: SubjectKind::ExternalProgram,
            program: sh,
            // A shell holding a 32 MB string in a variable: deterministic, unlike `sort`, whose buffers depend
            // on timing (it measured 8.05 and 8.30 MiB in two runs, a 3% spread).
            args: vec![
                "-c".into(),
                "x=$(head -c 32000000 /dev/zero | tr '\\0' a); test ${#x} -eq 32000000".into(),
            ],
            needs_work_dir: false,
            timeout: Duration::from_secs(60),
            known_bytes: Some(32_000_000),
            description: "holds a 32 MB string of its own making in a shell variable; its peak RSS is the shell's"
                .into(),
        }),
        None => Err(("sh".into(), "no /bin/sh: apt-get install dash".into())),
    });
    subjects
}

fn compile_c_touch(cc: &Path, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = out_dir.join("programs");
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let source = dir.join("touch.c");
    let binary = dir.join("touch");
    std::fs::write(&source, C_TOUCH_SOURCE)
        .with_context(|| format!("{}: cannot write", source.display()))?;
    let output = std::process::Command::new(cc)
        .arg("-O2")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
        .with_context(|| format!("cannot run {}", cc.display()))?;
    if !output.status.success() {
        anyhow::bail!(
            "{} -O2 -o {} {} failed ({})\n{}",
            cc.display(),
            binary.display(),
            source.display(),
            output.status,
            runner::output_capture::show_tail(&String::from_utf8_lossy(&output.stderr))
        );
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use schema::results::Size;

    #[test]
    fn a_case_runs_with_the_arguments_memproof_case_expects() {
        let case = PlannedCase {
            counterfactual: None,
            id: "calibration/known/bytes=16".into(),
            scenario: "calibration".into(),
            role: "known".into(),
            technique: "touch_known_steps".into(),
            size: Size {
                name: "bytes".into(),
                value: 16.0,
                unit: "bytes".into(),
            },
            limit_bytes: None,
            timeout: Duration::from_secs(30),
            params: serde_json::json!({ "steps": 4 })
                .as_object()
                .unwrap()
                .clone(),
            dhat_run: false,
        };
        let subject = Subject::memproof_case(Path::new("/bin/memproof-case"), &case, 7, "d");
        let args: Vec<String> = subject
            .arguments_for_run(Path::new("/tmp/w"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args.join(" "),
            "case --scenario calibration --role known --technique touch_known_steps --size-name bytes \
             --size-value 16 --params {\"steps\":4} --seed 7 --work-dir /tmp/w"
        );
    }
}
