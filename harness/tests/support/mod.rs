//! What the harness's integration tests share: launches through this build's `memproof-launch`, from
//! [`harness::test_support::launch`], so each test states only what it changes.
#![allow(dead_code)]

use harness::runner::Launch;

/// `program` with `args`, through this build's launcher.
pub fn launch(
    program: impl Into<std::path::PathBuf>,
    args: impl IntoIterator<Item = impl Into<std::ffi::OsString>>,
) -> Launch {
    harness::test_support::launch(env!("CARGO_BIN_EXE_memproof-launch"), program, args)
}

/// `sh -c script`, through this build's launcher.
pub fn shell(script: &str) -> Launch {
    launch("sh", ["-c", script])
}
