//! Compares two results files into a directory, to look at compare.md and compare.html by hand:
//! `cargo run -p memproof-reports --example compare_files -- OLD.json NEW.json OUT_DIR`.

use schema::results::Results;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [old, new, out] = args.as_slice() else {
        anyhow::bail!("usage: compare_files OLD.json NEW.json OUT_DIR");
    };
    let comparison =
        reports::compare::compare(&Results::read(old)?, &Results::read(new)?, &[], None, out)?;
    println!(
        "{}: {}",
        comparison.headline(),
        out.join("compare.html").display()
    );
    Ok(())
}
