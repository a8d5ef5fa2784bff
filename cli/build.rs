//! Builds what the installed `memproof` carries inside it: the launcher (`memproof-launch`, from the harness) and the
//! preload library (`libmemproof_preload.so`). `cargo install` installs a package's binaries only, and a user's
//! machine has no checkout to build them from later, so both are built here, in release, and embedded with
//! `include_bytes!` (`src/support.rs` writes them out at run time).
//!
//! They are built by a cargo of their own into one directory beside this build's target directory
//! (`<target>/memproof-support`), shared by the debug, release and check builds, so each edit of the harness builds
//! them once.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest_dir
        .parent()
        .expect("cli/ sits in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    for watched in [
        // The launcher is the runner's, which builds on the meter and the schema.
        "runner/src",
        "runner/Cargo.toml",
        "meter/src",
        "meter/Cargo.toml",
        "schema/src",
        "schema/Cargo.toml",
        "preload/src",
        "preload/Cargo.toml",
        "Cargo.lock",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    // OUT_DIR is <target>/[<triple>/]<profile>/build/<package>-<hash>/out.
    let target_dir = out_dir.ancestors().nth(4).map_or_else(
        || out_dir.join("support"),
        |dir| dir.join("memproof-support"),
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--package",
            "memproof-runner",
            "--bin",
            "memproof-launch",
            "--package",
            "memproof-preload",
            "--lib",
            "--target-dir",
        ])
        .arg(&target_dir);
    // The outer build's settings are for this crate, not for the support build: a target triple, rustflags meant
    // for it, and a jobserver whose descriptors the inner cargo does not hold.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_NET_OFFLINE"
            || [
                "RUSTFLAGS",
                "MAKEFLAGS",
                "MFLAGS",
                "TARGET",
                "HOST",
                "OUT_DIR",
                "RUSTC_WRAPPER",
            ]
            .contains(&key.as_ref())
        {
            command.env_remove(key.as_ref());
        }
    }
    let status = command.status().unwrap_or_else(|error| {
        panic!("cannot run cargo to build memproof's support files: {error}")
    });
    assert!(
        status.success(),
        "building memproof-launch and the preload library failed ({status})"
    );
    let release = target_dir.join("release");
    copy(
        &release.join("memproof-launch"),
        &out_dir.join("memproof-launch"),
    );
    copy(
        &release.join("libmemproof_preload.so"),
        &out_dir.join("libmemproof_preload.so"),
    );
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to)
        .unwrap_or_else(|error| panic!("{} -> {}: {error}", from.display(), to.display()));
}
