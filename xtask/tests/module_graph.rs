//! No two modules of one crate import each other, directly or through others. A cycle makes two modules one
//! concept in two files: neither can be read, tested or moved without the other (the schema once named the
//! runner's and the planner's types, which named the schema's). Cargo already refuses a cycle between crates; this
//! test refuses one between the top-level modules of every crate of the workspace.
//!
//! A module's imports are its `crate::NAME` paths outside comments and outside its `#[cfg(test)]` module (a test may
//! reach anywhere). A module's submodules (`judge/regression.rs`) count as the module (`judge`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// The `src/` directories of the workspace's members, as its Cargo.toml lists them.
fn crate_sources() -> Vec<PathBuf> {
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let table: toml::Table = manifest.parse().unwrap();
    table["workspace"]["members"]
        .as_array()
        .expect("[workspace] members")
        .iter()
        .map(|member| workspace().join(member.as_str().unwrap()).join("src"))
        .collect()
}

/// Every `.rs` file under `dir`, but the binaries' (`src/bin/`, each a crate of its own).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name() != Some("bin".as_ref()) {
                rust_files(&path, out);
            }
        } else if path.extension() == Some("rs".as_ref()) {
            out.push(path);
        }
    }
}

/// `source` without its comments and its `#[cfg(test)]` module.
fn code_of(source: &str) -> String {
    let body = source
        .find("#[cfg(test)]\nmod tests")
        .map_or(source, |at| &source[..at]);
    body.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module names that follow `crate::` in `code`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .filter(|(at, _)| {
            // `memproof_cli::…` and `$crate::…` are not this crate's path.
            code[..*at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$'))
        })
        .map(|(at, text)| {
            code[at + text.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// The import graph of one crate's top-level modules.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let imports = crate_paths(&code_of(&std::fs::read_to_string(&file).unwrap()));
        let entry = graph.entry(top.clone()).or_default();
        entry.extend(imports.into_iter().filter(|name| *name != top));
    }
    graph
}

/// One cycle of `graph`, as the path that closes it, if it has any.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|seen| seen == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    let mut cycles = Vec::new();
    let sources = crate_sources();
    assert!(sources.len() >= 10, "{sources:?}");
    for src in sources {
        let graph = module_graph(&src);
        if let Some(cycle) = find_cycle(&graph) {
            cycles.push(format!("{}: {}", src.display(), cycle.join(" -> ")));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_check_sees_a_cycle_and_ignores_tests_comments_and_other_crates() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("noise", ["judge"].as_slice()),
        ("judge", ["tolerance"].as_slice()),
        ("tolerance", ["noise"].as_slice()),
        ("render", ["judge"].as_slice()),
    ]
    .into_iter()
    .map(|(node, next)| (node.into(), next.iter().map(|n| n.to_string()).collect()))
    .collect();
    assert_eq!(
        find_cycle(&graph),
        Some(vec![
            "judge".to_string(),
            "tolerance".into(),
            "noise".into(),
            "judge".into()
        ])
    );
    let mut acyclic = graph.clone();
    acyclic.get_mut("tolerance").unwrap().clear();
    assert_eq!(find_cycle(&acyclic), None);
    let source = "use crate::noise::Noise; // crate::judge\nlet x = memproof_cli::build::x();\n\
                  #[cfg(test)]\nmod tests {\n use crate::render;\n}\n";
    assert_eq!(
        crate_paths(&code_of(source)),
        ["noise".to_string()].into_iter().collect()
    );
}
