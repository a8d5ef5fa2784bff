//! What the integration tests that run real cases share.

use std::path::{Path, PathBuf};

/// The launcher is a binary of the harness package; build it when this package is tested on its own.
pub fn launcher() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_memproof-case"))
        .parent()
        .unwrap();
    let path = dir.join("memproof-launch");
    if !path.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--package",
                "memproof-harness",
                "--bin",
                "memproof-launch",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "cannot build memproof-launch");
    }
    path
}
