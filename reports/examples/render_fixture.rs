//! Renders the hand-made fixture run of the tests into a directory, to look at the charts and pages:
//! `cargo run -p memproof-reports --example render_fixture -- /tmp/memproof-fixture-report`.

use schema::results::Results;
use schema::spec::Spec;
use std::path::{Path, PathBuf};

fn main() -> anyhow::Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("usage: render_fixture OUT_DIR"))?;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut results = Results::read(&fixtures.join("results.json"))?;
    let spec = Spec::read(&fixtures.join("large-session.toml"))?;
    results.verdicts =
        reports::judge::judge_with_profiles(&results, &fixtures, std::slice::from_ref(&spec), None);
    reports::render::write_reports_to(&results, &[spec], &out, None)?;
    println!("{}", out.join("index.html").display());
    Ok(())
}
