//! What the harness's integration tests share: launches through this build's `memproof-launch`, from
//! [`runner::test_support::launch`], so each test states only what it changes.
#![allow(dead_code)]

use runner::Launch;

/// `program` with `args`, through this build's launcher.
pub fn launch(
    program: impl Into<std::path::PathBuf>,
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
) -> Launch {
    runner::test_support::launch(env!("CARGO_BIN_EXE_memproof-launch"), program, args)
}

/// `sh -c script`, through this build's launcher.
pub fn shell(script: &str) -> Launch {
    launch("sh", ["-c", script])
}

/// `tests/programs/hidden_memory.c` (memory a watchdog can miss, one mode each), compiled once.
pub fn hidden_memory() -> &'static std::path::Path {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let binary = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("hidden_memory");
        let source =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs/hidden_memory.c");
        let status = std::process::Command::new("cc")
            .args(["-O0", "-pthread", "-o"])
            .arg(&binary)
            .arg(&source)
            .status()
            .expect("a C compiler (cc) is installed");
        assert!(status.success(), "cc {} failed", source.display());
        binary
    })
}
