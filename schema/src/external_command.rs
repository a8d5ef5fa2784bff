//! Techniques and drivers played by programs of the user's own, in any language: a scenario in TOML alone.
//!
//! A spec gives a technique's command on its variant (`{ role = "before", technique = "whole", command = [...] }`)
//! or in a `[techniques.NAME]` table (which may also say where the heap figures come from: `heap = "probe"`, the
//! default, for a program with a probe client; `"preload"` for a malloc user; `"none"`), and optionally a
//! `[driver]` with a command of its own that produces the load. The case's size and params reach both as arguments
//! (placeholders in the command, below) and as environment variables:
//!
//! | placeholder | environment | value |
//! |---|---|---|
//! | `{size}` | `MEMPROOF_SIZE` | the size value of this case |
//! | `{size_name}` | `MEMPROOF_SIZE_NAME` | the size's name in the spec |
//! | `{params}` | `MEMPROOF_PARAMS` | the profile's params, as one JSON object |
//! | `{param.NAME}` | | one param (a string as is, anything else as JSON) |
//! | `{role}`, `{technique}` | `MEMPROOF_ROLE`, `MEMPROOF_TECHNIQUE` | which variant this is |
//! | `{work_dir}` | `MEMPROOF_WORK_DIR` | the case's scratch directory (its current directory too) |
//! | `{spec_dir}` | `MEMPROOF_SPEC_DIR` | the directory of the spec file, for paths to the programs |
//! | `{build_dir}` | `MEMPROOF_BUILD_DIR` | the scenario's build directory in the run directory, where `[prepare]` builds |
//!
//! A `[prepare]` command runs once before the scenario's first case, outside every measurement, in the build
//! directory (`{spec_dir}` and `{build_dir}` are its placeholders): a compiled program's build step, so a spec
//! can run from a clean checkout.
//!
//! The technique is the measured process; the driver runs beside it, outside the measurement, started at the same
//! moment in the same work directory. The technique must exit once its work is done (a driver can tell it to);
//! what the driver prints on stdout, a JSON object, joins the case's metrics.

use anyhow::bail;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Where an external technique's heap figures come from.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HeapFrom {
    /// The program's own probe client (`clients/`).
    #[default]
    Probe,
    /// memproof's preload library, for a program that allocates with malloc.
    Preload,
    /// Nowhere: RSS, outcome and time only.
    None,
}

/// A technique a program of the user's plays.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExternalTechnique {
    pub command: Vec<String>,
    #[serde(default)]
    pub heap: HeapFrom,
    /// Environment variables set for the technique's program (not its driver), e.g. `PYTHONMALLOC = "malloc"` so
    /// the preload library sees CPython's small objects.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// The program that produces a scenario's load.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExternalDriver {
    pub command: Vec<String>,
}

const PLACEHOLDERS: [&str; 8] = [
    "size",
    "size_name",
    "params",
    "role",
    "technique",
    "work_dir",
    "spec_dir",
    "build_dir",
];

/// The placeholders of a `[prepare]` command: it runs once, before any case has values.
const PREPARE_PLACEHOLDERS: [&str; 2] = ["spec_dir", "build_dir"];

/// Checks a `[prepare]` command: a command whose placeholders are [`PREPARE_PLACEHOLDERS`] only.
pub fn check_prepare(command: &[String]) -> anyhow::Result<()> {
    check_command(command)?;
    for arg in command {
        for name in placeholders(arg)? {
            if !PREPARE_PLACEHOLDERS.contains(&name) {
                bail!(
                    "command: {{{name}}} has no value before the cases run: expected only {{spec_dir}} and {{build_dir}}"
                );
            }
        }
    }
    Ok(())
}

/// `command` with `{spec_dir}` and `{build_dir}` replaced, for `[prepare]`.
pub fn expand_prepare(command: &[String], spec_dir: &Path, build_dir: &Path) -> Vec<String> {
    command
        .iter()
        .map(|arg| {
            arg.replace("{spec_dir}", &spec_dir.to_string_lossy())
                .replace("{build_dir}", &build_dir.to_string_lossy())
        })
        .collect()
}

/// Checks a command: not empty, and every `{…}` a known placeholder. The error says what was expected.
pub fn check_command(command: &[String]) -> anyhow::Result<()> {
    if command.first().is_none_or(|program| program.is_empty()) {
        bail!("command: expected a program and its arguments, e.g. [\"python3\", \"server.py\"]");
    }
    for arg in command {
        for name in placeholders(arg)? {
            if !PLACEHOLDERS.contains(&name) && !name.starts_with("param.") {
                bail!(
                    "command: unknown placeholder {{{name}}}: expected one of {}, or {{param.NAME}}",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                );
            }
        }
    }
    Ok(())
}

/// Checks, before any case runs, that a command's program can be started and that its arguments naming files in
/// the spec's directory (`{spec_dir}/…`) exist: the program on `PATH` (no `/`) or at an absolute path, executable.
/// A program given by a relative path would be looked for in the case's scratch directory, where it never is.
/// Parts that depend on a case's values (`{size}`, `{param.…}`) are left to the case.
///
/// `build_dir` is `None` before `[prepare]` ran: what lies in the build directory is checked after it.
pub fn check_programs_exist(
    command: &[String],
    spec_dir: &Path,
    build_dir: Option<&Path>,
) -> Result<(), String> {
    let spec_dir_text = spec_dir.to_string_lossy();
    let build_dir_text = build_dir.map(|dir| dir.to_string_lossy());
    let with_spec_dir = |arg: &str| -> Option<String> {
        let mut expanded = arg.replace("{spec_dir}", &spec_dir_text);
        if let Some(build_dir) = &build_dir_text {
            expanded = expanded.replace("{build_dir}", build_dir);
        }
        (!expanded.contains('{')).then_some(expanded)
    };
    let Some(program) = command.first() else {
        return Err("expected a program and its arguments".into());
    };
    if let Some(expanded) = with_spec_dir(program) {
        if expanded.contains('/') {
            let path = Path::new(&expanded);
            if !path.is_absolute() {
                return Err(format!(
                    "program {program:?} is a relative path, and a case runs in a scratch directory of its own: \
                     expected {{spec_dir}}/{expanded}, an absolute path, or a program on PATH"
                ));
            }
            if !is_executable(path) {
                return Err(format!(
                    "program {expanded:?} does not exist or is not executable"
                ));
            }
        } else if find_on_path(&expanded).is_none() {
            return Err(format!(
                "program {expanded:?} is not on PATH: expected an installed program or a path to one"
            ));
        }
    }
    for arg in &command[1..] {
        if !arg.starts_with("{spec_dir}") && !arg.starts_with("{build_dir}") {
            continue;
        }
        if let Some(expanded) = with_spec_dir(arg)
            && !Path::new(&expanded).exists()
        {
            return Err(format!("{arg:?}: {expanded}: no such file"));
        }
    }
    Ok(())
}

/// A program name as the launcher's `execvp` would find it on `PATH`.
fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The names of the `{…}` placeholders in `arg`.
fn placeholders(arg: &str) -> anyhow::Result<Vec<&str>> {
    let mut names = Vec::new();
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            bail!("command: {arg:?}: a \"{{\" without its \"}}\"");
        };
        names.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    Ok(names)
}

/// The values of one case, for the placeholders and the environment.
#[derive(Debug, Clone)]
pub struct CaseValues {
    pub size: f64,
    pub size_name: String,
    pub params: serde_json::Map<String, serde_json::Value>,
    pub role: String,
    pub technique: String,
    pub work_dir: String,
    pub spec_dir: String,
    pub build_dir: String,
}

impl CaseValues {
    fn value(&self, name: &str) -> anyhow::Result<String> {
        Ok(match name {
            "size" => format_size(self.size),
            "size_name" => self.size_name.clone(),
            "params" => serde_json::Value::Object(self.params.clone()).to_string(),
            "role" => self.role.clone(),
            "technique" => self.technique.clone(),
            "work_dir" => self.work_dir.clone(),
            "spec_dir" => self.spec_dir.clone(),
            "build_dir" => self.build_dir.clone(),
            other => {
                let key = other.strip_prefix("param.").unwrap_or(other);
                match self.params.get(key) {
                    Some(serde_json::Value::String(text)) => text.clone(),
                    Some(value) => value.to_string(),
                    None => {
                        let known: Vec<&str> = self.params.keys().map(String::as_str).collect();
                        bail!(
                            "command: {{{other}}}: the profile has no param {key:?} (it has: {})",
                            known.join(", ")
                        )
                    }
                }
            }
        })
    }

    /// The command with its placeholders replaced.
    pub fn expand(&self, command: &[String]) -> anyhow::Result<Vec<String>> {
        command
            .iter()
            .map(|arg| {
                let mut expanded = arg.clone();
                for name in placeholders(arg)? {
                    expanded = expanded.replace(&format!("{{{name}}}"), &self.value(name)?);
                }
                Ok(expanded)
            })
            .collect()
    }

    /// The environment variables every external command of the case gets.
    pub fn environment(&self) -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("MEMPROOF_SIZE", format_size(self.size)),
            ("MEMPROOF_SIZE_NAME", self.size_name.clone()),
            (
                "MEMPROOF_PARAMS",
                serde_json::Value::Object(self.params.clone()).to_string(),
            ),
            ("MEMPROOF_ROLE", self.role.clone()),
            ("MEMPROOF_TECHNIQUE", self.technique.clone()),
            ("MEMPROOF_WORK_DIR", self.work_dir.clone()),
            ("MEMPROOF_SPEC_DIR", self.spec_dir.clone()),
            ("MEMPROOF_BUILD_DIR", self.build_dir.clone()),
        ])
    }
}

/// A size as a program reads it: a whole number without a fraction.
fn format_size(size: f64) -> String {
    if size.fract() == 0.0 && size.abs() < 1e15 {
        format!("{}", size as i64)
    } else {
        size.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> CaseValues {
        let serde_json::Value::Object(params) = serde_json::json!({ "clients": 3, "mode": "fast" })
        else {
            unreachable!()
        };
        CaseValues {
            size: 33554432.0,
            size_name: "log_bytes".into(),
            params,
            role: "before".into(),
            technique: "whole".into(),
            work_dir: "/tmp/w".into(),
            spec_dir: "/s".into(),
            build_dir: "/b".into(),
        }
    }

    #[test]
    fn placeholders_expand_to_the_cases_values() {
        let command: Vec<String> = [
            "python3",
            "{spec_dir}/server.py",
            "--size={size}",
            "{param.clients}",
            "{param.mode}",
            "{technique}",
            "{params}",
        ]
        .map(String::from)
        .to_vec();
        check_command(&command).unwrap();
        assert_eq!(
            values().expand(&command).unwrap(),
            [
                "python3",
                "/s/server.py",
                "--size=33554432",
                "3",
                "fast",
                "whole",
                r#"{"clients":3,"mode":"fast"}"#
            ]
        );
        assert_eq!(values().environment()["MEMPROOF_SIZE"], "33554432");
    }

    #[test]
    fn bad_commands_say_what_was_expected() {
        let error = |command: &[&str]| {
            check_command(&command.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error(&[]),
            "command: expected a program and its arguments, e.g. [\"python3\", \"server.py\"]"
        );
        assert!(error(&["x", "{sise}"]).starts_with("command: unknown placeholder {sise}"));
        assert_eq!(
            error(&["x", "{size"]),
            "command: \"{size\": a \"{\" without its \"}\""
        );
        let missing = values()
            .expand(&["{param.rows}".to_string()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            missing,
            "command: {param.rows}: the profile has no param \"rows\" (it has: clients, mode)"
        );
    }

    #[test]
    fn a_program_that_cannot_be_found_is_named_before_any_case_runs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.py"), "").unwrap();
        let command =
            |parts: &[&str]| -> Vec<String> { parts.iter().map(|p| p.to_string()).collect() };
        let check = |parts: &[&str]| check_programs_exist(&command(parts), dir.path(), None);
        assert_eq!(check(&["sh", "{spec_dir}/server.py", "{size}"]), Ok(()));
        assert_eq!(
            check(&["no-such-interpreter-here", "{spec_dir}/server.py"]),
            Err("program \"no-such-interpreter-here\" is not on PATH: expected an installed program or a path to one".into())
        );
        assert_eq!(
            check(&["sh", "{spec_dir}/servr.py"]),
            Err(format!(
                "\"{{spec_dir}}/servr.py\": {}/servr.py: no such file",
                dir.path().display()
            ))
        );
        assert_eq!(
            check(&["{spec_dir}/server.py"]),
            Err(format!(
                "program \"{}/server.py\" does not exist or is not executable",
                dir.path().display()
            ))
        );
        assert!(
            check(&["bin/server"])
                .unwrap_err()
                .contains("is a relative path")
        );
        // What depends on a case's values is the case's to find out.
        assert_eq!(check(&["{spec_dir}/{param.binary}"]), Ok(()));
    }

    #[test]
    fn a_prepare_command_has_no_case_values() {
        let command =
            |parts: &[&str]| -> Vec<String> { parts.iter().map(|p| p.to_string()).collect() };
        assert!(check_prepare(&command(&["cc", "-o", "{build_dir}/x", "{spec_dir}/x.c"])).is_ok());
        assert_eq!(
            check_prepare(&command(&["make", "SIZE={size}"]))
                .unwrap_err()
                .to_string(),
            "command: {size} has no value before the cases run: expected only {spec_dir} and {build_dir}"
        );
        assert_eq!(
            expand_prepare(
                &command(&["cc", "-o", "{build_dir}/x", "{spec_dir}/x.c"]),
                Path::new("/s"),
                Path::new("/b")
            ),
            ["cc", "-o", "/b/x", "/s/x.c"]
        );
    }
}
