//! `memproof client LANGUAGE`: prints memproof's probe client for a language, one file of its standard library
//! only, for a user to copy next to their program (`memproof client python > memproof_probe.py`). The installed
//! binary carries them, so a user's repository needs nothing of memproof's checkout: the client is versioned with
//! the protocol it speaks, and a copy in the user's repository stays what their program was measured with.

use crate::Finished;

/// Prints a probe client to stdout.
#[derive(clap::Args)]
pub struct Client {
    /// The client's language.
    #[arg(value_enum)]
    language: Language,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Language {
    /// `memproof_probe.py`: tracemalloc's heap.
    Python,
    /// `memproof_probe.js`: V8's heap.
    Node,
    /// `probe.go` (package memproofprobe): the Go runtime's heap.
    Go,
}

impl Language {
    fn source(self) -> &'static str {
        match self {
            Language::Python => include_str!("../../clients/python/memproof_probe.py"),
            Language::Node => include_str!("../../clients/node/memproof_probe.js"),
            Language::Go => include_str!("../../clients/go/memproofprobe/probe.go"),
        }
    }
}

impl Client {
    pub fn run(self) -> anyhow::Result<Finished> {
        use std::io::Write as _;
        std::io::stdout().write_all(self.language.source().as_bytes())?;
        Ok(Finished::Passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_is_the_repositorys_file() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        for (language, path) in [
            (Language::Python, "clients/python/memproof_probe.py"),
            (Language::Node, "clients/node/memproof_probe.js"),
            (Language::Go, "clients/go/memproofprobe/probe.go"),
        ] {
            assert_eq!(
                language.source(),
                std::fs::read_to_string(root.join(path)).unwrap()
            );
        }
    }
}
