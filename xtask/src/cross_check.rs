//! `cargo xtask cross-check`: (being written) memproof's figures beside independent tools'.

use crate::Finished;

/// Runs cases under memproof and under tools that share none of its code, and prints both figures.
#[derive(clap::Args)]
pub struct CrossCheck {}

impl CrossCheck {
    pub fn run(self) -> anyhow::Result<Finished> {
        anyhow::bail!("cross-check is not built yet")
    }
}
