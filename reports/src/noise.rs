//! The measured noise of every figure: how far each case's figures moved over repeated runs of one profile on one
//! machine, written by `cargo xtask noise` to the committed `reports/noise.json`. The regression check takes each
//! figure's tolerance from it (see [`crate::judge::regression::tolerance_for`]) instead of one fixed slack for all.
//!
//! Why per case: the figures are not equally repeatable. A single-threaded case's heap repeats to the byte, so one
//! slack for all (5% plus 256 KiB) would let a 225 KiB case more than double unseen, while a case whose threads
//! overlap differently each run (seed A's pile-up of trims) needs a wide one. Only a measurement says which is which.
//!
//! The file is committed, so it is written to be reproduced and reviewed: the command it records names its paths
//! relative to the repository ([`repository_relative`]), and folding one scenario's measurement into it
//! ([`Noise::folded`]) leaves every other entry, and the header, byte-identical (figures are read back to the last
//! bit: serde_json's `float_roundtrip`).

use anyhow::{Context as _, bail};
use schema::results::CaseField;
use schema::results::{Host, Results};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The schema tag of the noise file.
pub const NOISE_SCHEMA: &str = "memproof.noise/v1";

/// Where the noise file lives in the repository.
pub const NOISE_PATH: &str = "reports/noise.json";

/// `path` as the command a noise file records names it: relative to `repository` (lexically, with `..` where it lies
/// outside), never absolute, so the file reads the same on every machine. A relative `path` is taken from `cwd`.
pub fn repository_relative(path: &Path, repository: &Path, cwd: &Path) -> String {
    use std::path::Component;
    fn normal(path: &Path) -> Vec<Component<'_>> {
        let mut parts: Vec<Component> = Vec::new();
        for part in path.components() {
            match part {
                Component::CurDir => {}
                Component::ParentDir if matches!(parts.last(), Some(Component::Normal(_))) => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        parts
    }
    let joined = cwd.join(path);
    let absolute = normal(&joined);
    let root = normal(repository);
    let common = absolute
        .iter()
        .zip(&root)
        .take_while(|(a, b)| a == b)
        .count();
    let mut relative = std::path::PathBuf::new();
    for _ in common..root.len() {
        relative.push("..");
    }
    for part in &absolute[common..] {
        relative.push(part);
    }
    if relative.as_os_str().is_empty() {
        ".".to_string()
    } else {
        relative.display().to_string()
    }
}

/// How each figure of each case spread over `runs` runs of one profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Noise {
    /// Always [`NOISE_SCHEMA`].
    pub schema: String,
    /// The profile the runs were of; the noise judges only runs of the same profile.
    pub profile: String,
    /// How many runs were measured.
    pub runs: usize,
    /// `run.started_at` of the first run.
    pub measured_at: String,
    /// `run.git_commit` of the first run.
    pub git_commit: Option<String>,
    pub host: Host,
    /// The command that measured it, so anyone can measure it again.
    pub command: String,
    /// Per case id, per figure name (`peak_heap_bytes`, …), the spread.
    pub cases: BTreeMap<String, BTreeMap<String, Spread>>,
    /// Earlier measurements folded in (`cargo xtask noise --fold FILE`), each as `runs` runs by `command`, measured
    /// at `measured_at`: a figure's spread is the widest any of them saw.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folded: Vec<String>,
}

/// One figure's spread over the runs that reported it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub max: f64,
    /// `max / min`; 1 when every run gave the same figure; `null` when the smallest was 0 and the largest not.
    pub ratio: Option<f64>,
    /// How many runs reported the figure.
    pub samples: usize,
}

impl Spread {
    /// The spread of `values`; `None` for no values.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let min = values.iter().copied().reduce(f64::min)?;
        let max = values.iter().copied().reduce(f64::max)?;
        let ratio = if min > 0.0 {
            Some(max / min)
        } else if max == 0.0 {
            Some(1.0)
        } else {
            None
        };
        Some(Spread {
            min,
            max,
            ratio,
            samples: values.len(),
        })
    }
}

impl Noise {
    /// The spread of every figure of every case over `runs` (all of one profile), measured by `command`.
    pub fn measure(runs: &[Results], command: &str) -> anyhow::Result<Noise> {
        let Some(first) = runs.first() else {
            bail!("no runs to measure the noise of");
        };
        if let Some(other) = runs.iter().find(|run| run.run.profile != first.run.profile) {
            bail!(
                "runs of two profiles ({} and {}): noise is measured over runs of one profile",
                first.run.profile,
                other.run.profile
            );
        }
        let mut cases: BTreeMap<String, BTreeMap<String, Spread>> = BTreeMap::new();
        for case in &first.cases {
            let mut figures = BTreeMap::new();
            for field in CaseField::ALL {
                let values: Vec<f64> = runs
                    .iter()
                    .filter_map(|run| run.cases.iter().find(|c| c.id == case.id))
                    .filter_map(|c| field.value(c))
                    .collect();
                if let Some(spread) = Spread::of(&values) {
                    figures.insert(field.name().to_string(), spread);
                }
            }
            cases.insert(case.id.clone(), figures);
        }
        Ok(Noise {
            schema: NOISE_SCHEMA.to_string(),
            profile: first.run.profile.clone(),
            runs: runs.len(),
            measured_at: first.run.started_at.clone(),
            git_commit: first.run.git_commit.clone(),
            host: first.run.host.clone(),
            command: command.to_string(),
            cases,
            folded: Vec::new(),
        })
    }

    /// Widens each figure's spread to the wider of this measurement's and `earlier`'s, keeps `earlier`'s cases
    /// that this measurement did not run, and lists `earlier` under `folded`: the header stays this measurement's.
    ///
    /// Why: a handful of runs does not see every mode of a figure whose threads race (five quiet `ci` runs can
    /// measure a case as repeating to the byte that a sixth puts 5% higher). Spreads measured earlier, on the same
    /// profile, are kept rather than forgotten.
    pub fn fold(&mut self, earlier: &Noise) -> anyhow::Result<()> {
        self.widen_with(earlier)?;
        self.folded.push(earlier.description());
        self.folded.extend(earlier.folded.iter().cloned());
        Ok(())
    }

    /// Folds a later `measurement` of some of this file's cases into it: the same spreads as [`Noise::fold`], but
    /// the header stays this file's and the measurement is listed first under `folded`, so a new scenario's entries
    /// (or one scenario measured again) change nothing else in the file.
    pub fn absorb(&mut self, measurement: &Noise) -> anyhow::Result<()> {
        self.widen_with(measurement)?;
        let mut listed = vec![measurement.description()];
        listed.extend(measurement.folded.iter().cloned());
        listed.append(&mut self.folded);
        self.folded = listed;
        Ok(())
    }

    /// `measurement` folded with each of `earlier` in turn (`cargo xtask noise --fold`, `--update`): a measurement
    /// of every case of an earlier file takes the header ([`Noise::fold`]); a measurement of only some of them
    /// (`--scenario`) leaves the earlier file's header and every entry it did not measure as they were
    /// ([`Noise::absorb`]).
    pub fn folded(measurement: Noise, earlier: Vec<Noise>) -> anyhow::Result<Noise> {
        let mut result = measurement;
        for earlier in earlier {
            if earlier.cases.keys().all(|id| result.cases.contains_key(id)) {
                result.fold(&earlier)?;
            } else {
                let mut file = earlier;
                file.absorb(&result)?;
                result = file;
            }
        }
        Ok(result)
    }

    /// One line for `folded`: how many runs, by which command, when, of which commit.
    fn description(&self) -> String {
        format!(
            "{} runs by `{}`, measured at {}{}",
            self.runs,
            self.command,
            self.measured_at,
            self.git_commit
                .as_deref()
                .map(|commit| format!(" of {commit}"))
                .unwrap_or_default()
        )
    }

    /// Each figure of both files at the wider spread (its own min and max, with the samples of both counted; a
    /// ratio of `None`, a zero beside a non-zero, is the widest of all), and every case either has.
    fn widen_with(&mut self, other: &Noise) -> anyhow::Result<()> {
        if other.profile != self.profile {
            bail!(
                "--fold: a noise file of profile {}, expected {}",
                other.profile,
                self.profile
            );
        }
        for (case_id, figures) in &mut self.cases {
            let Some(before) = other.cases.get(case_id) else {
                continue;
            };
            for (figure, spread) in figures.iter_mut() {
                let Some(old) = before.get(figure) else {
                    continue;
                };
                let wider = match (old.ratio, spread.ratio) {
                    (None, Some(_)) => true,
                    (Some(old), Some(new)) => old > new,
                    _ => false,
                };
                let samples = spread.samples + old.samples;
                if wider {
                    *spread = *old;
                }
                spread.samples = samples;
            }
            for (figure, spread) in before {
                figures.entry(figure.clone()).or_insert(*spread);
            }
        }
        for (case_id, figures) in &other.cases {
            self.cases
                .entry(case_id.clone())
                .or_insert_with(|| figures.clone());
        }
        Ok(())
    }

    /// Drops the cases whose id is one of `cases` or starts with one followed by `/` (`large-session/best` drops
    /// that role at every size), and says so in the file's command; returns how many were dropped.
    ///
    /// Why: folding keeps the wider spread, so an earlier file would keep a spread that a change to a case's code has
    /// removed (a race fixed in the case's code). Those cases are measured again and the earlier file's figures of
    /// them forgotten; the rest still fold.
    pub fn forget(&mut self, cases: &[String]) -> usize {
        let before = self.cases.len();
        self.cases.retain(|id, _| {
            !cases.iter().any(|prefix| {
                id == prefix
                    || id
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            })
        });
        let dropped = before - self.cases.len();
        self.say_forgotten(cases);
        dropped
    }

    /// Drops the figures named `figures` (`peak_rss_bytes`, …) from every case, and says so in the file's command;
    /// returns how many cases had one. An error names a figure no case has, so a misspelt name cannot keep the old
    /// spreads unnoticed.
    ///
    /// Why: a change to what every case process runs under can move one figure only. Pinning glibc's mmap threshold
    /// changed every case's resident set (large-session's best spread 1.155x before, 1.057x after) and no heap or
    /// allocation figure (the counting allocator counts what the program asks for): the earlier files' heap spreads,
    /// over more runs than a new measurement has, still hold and keep folding, their RSS spreads must not.
    pub fn forget_figures(&mut self, figures: &[String]) -> anyhow::Result<usize> {
        for figure in figures {
            if !self.cases.values().any(|f| f.contains_key(figure)) {
                let mut known: Vec<&str> = self
                    .cases
                    .values()
                    .flat_map(|f| f.keys().map(String::as_str))
                    .collect();
                known.sort_unstable();
                known.dedup();
                bail!(
                    "--refresh-figure {figure}: no case has it (expected one of {})",
                    known.join(", ")
                );
            }
        }
        let mut touched = 0;
        for spreads in self.cases.values_mut() {
            let before = spreads.len();
            spreads.retain(|figure, _| !figures.contains(figure));
            touched += usize::from(spreads.len() < before);
        }
        self.say_forgotten(figures);
        Ok(touched)
    }

    /// Appends what was forgotten (cases or figures) to the file's command, so the file says it was measured again.
    fn say_forgotten(&mut self, forgotten: &[String]) {
        if !forgotten.is_empty() {
            self.command = format!(
                "{}, without {} (measured again)",
                self.command,
                forgotten.join(", ")
            );
        }
    }

    /// The spread of one figure of one case; `None` when the noise file has no entry for it.
    pub fn spread(&self, case_id: &str, field: CaseField) -> Option<&Spread> {
        self.cases.get(case_id)?.get(field.name())
    }

    /// Reads a noise file: `None` when there is none; an error naming the file when it cannot be read.
    pub fn read(path: &Path) -> anyhow::Result<Option<Noise>> {
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let noise: Noise = serde_json::from_str(&text).map_err(|error| {
            anyhow::anyhow!(
                "{}:{}:{}: not a memproof noise file: {error}",
                path.display(),
                error.line(),
                error.column()
            )
        })?;
        if noise.schema != NOISE_SCHEMA {
            bail!(
                "{}: schema {:?}: expected {NOISE_SCHEMA:?}",
                path.display(),
                noise.schema
            );
        }
        Ok(Some(noise))
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.to_text()?)
            .with_context(|| format!("{}: cannot write", path.display()))
    }

    /// The file's text, as [`Noise::write`] writes it.
    pub fn to_text(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(self)? + "\n")
    }

    /// A note for the person writing a noise file from runs of a tree with uncommitted changes (`-dirty`): the file
    /// would name a commit that is not the code it measured. `None` when every run is of a clean commit.
    pub fn dirty_note(&self) -> Option<String> {
        let commit = self.git_commit.as_deref()?.strip_suffix("-dirty")?;
        Some(format!(
            "memproof: note: the runs measured {commit} with uncommitted changes (-dirty)\n\nCommit first and measure \
             again, so that the committed file names the code it measured."
        ))
    }

    /// Per scenario and role, the largest max/min of peak heap and of peak RSS over its sizes, as a Markdown table:
    /// one of the two tables `cargo xtask noise` prints.
    pub fn spread_table(&self) -> String {
        let mut rows: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
        for (id, figures) in &self.cases {
            let mut parts = id.splitn(3, '/');
            let (Some(scenario), Some(role)) = (parts.next(), parts.next()) else {
                continue;
            };
            let ratio = |field: CaseField| {
                figures
                    .get(field.name())
                    .map_or(1.0, |spread| spread.ratio.unwrap_or(f64::INFINITY))
            };
            let row = rows
                .entry((scenario.to_string(), role.to_string()))
                .or_insert((1.0, 1.0));
            row.0 = row.0.max(ratio(CaseField::PeakHeapBytes));
            row.1 = row.1.max(ratio(CaseField::PeakRssBytes));
        }
        let mut table =
            "| scenario | role | peak heap max/min | peak RSS max/min |\n|---|---|---:|---:|\n"
                .to_string();
        for ((scenario, role), (heap, rss)) in rows {
            table.push_str(&format!(
                "| {scenario} | {role} | {heap:.3}x | {rss:.3}x |\n"
            ));
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture_run::results as fixture;

    #[test]
    fn folding_keeps_the_wider_spread_of_each_figure_and_counts_every_sample() {
        let first = fixture();
        let mut second = fixture();
        second.cases[2].peak_heap_bytes = first.cases[2].peak_heap_bytes.map(|b| b * 3 / 2);
        let mut earlier = Noise::measure(&[first.clone(), second], "earlier").unwrap();
        earlier.cases.remove(&first.cases[1].id);
        let mut third = fixture();
        third.cases[0].peak_heap_bytes = first.cases[0].peak_heap_bytes.map(|b| b * 2);
        let mut now = Noise::measure(&[first.clone(), third], "now").unwrap();
        now.fold(&earlier).unwrap();
        let wider_earlier = now
            .spread(&first.cases[2].id, CaseField::PeakHeapBytes)
            .unwrap();
        assert_eq!((wider_earlier.ratio, wider_earlier.samples), (Some(1.5), 4));
        let wider_now = now
            .spread(&first.cases[0].id, CaseField::PeakHeapBytes)
            .unwrap();
        assert_eq!((wider_now.ratio, wider_now.samples), (Some(2.0), 4));
        let only_now = now
            .spread(&first.cases[1].id, CaseField::PeakHeapBytes)
            .unwrap();
        assert_eq!(
            only_now.samples, 2,
            "a case the earlier file lacks keeps its own spread"
        );
        assert_eq!(now.folded.len(), 1);
        assert!(now.folded[0].starts_with("2 runs by `earlier`"));
        // A case only the earlier file has (another scenario's, when one scenario was measured again) is kept
        // as it was.
        let mut one_scenario = Noise::measure(&[fixture(), fixture()], "one scenario").unwrap();
        let kept_id = first.cases[2].id.clone();
        one_scenario.cases.remove(&kept_id);
        one_scenario.fold(&earlier).unwrap();
        assert_eq!(
            one_scenario.cases.get(&kept_id),
            earlier.cases.get(&kept_id)
        );
        assert_eq!(one_scenario.cases.len(), now.cases.len());
        let mut smoke = earlier.clone();
        smoke.profile = "smoke".into();
        let error = now.fold(&smoke).unwrap_err().to_string();
        assert_eq!(error, "--fold: a noise file of profile smoke, expected ci");
    }

    #[test]
    fn forgetting_drops_the_cases_named_or_under_a_prefix_and_says_so() {
        let first = fixture();
        let mut noise = Noise::measure(&[first.clone(), fixture()], "earlier").unwrap();
        let ids: Vec<String> = noise.cases.keys().cloned().collect();
        let (scenario, role) = {
            let mut parts = ids[0].split('/');
            (
                parts.next().unwrap().to_string(),
                parts.next().unwrap().to_string(),
            )
        };
        let prefix = format!("{scenario}/{role}");
        let expected = ids
            .iter()
            .filter(|id| id.starts_with(&format!("{prefix}/")))
            .count();
        assert!(expected > 0);
        // A prefix must end at a `/`: the role's name cut short matches nothing.
        assert_eq!(noise.forget(&[prefix[..prefix.len() - 1].to_string()]), 0);
        assert_eq!(noise.forget(std::slice::from_ref(&prefix)), expected);
        assert!(
            noise
                .cases
                .keys()
                .all(|id| !id.starts_with(&format!("{prefix}/")))
        );
        assert_eq!(noise.forget(&[ids.last().unwrap().clone()]), 1);
        assert!(
            noise
                .command
                .ends_with(&format!("without {} (measured again)", ids.last().unwrap()))
        );
    }

    #[test]
    fn forgetting_a_figure_drops_it_from_every_case_and_keeps_the_rest() {
        let mut earlier = Noise::measure(&[fixture(), fixture()], "earlier").unwrap();
        let rss = "peak_rss_bytes".to_string();
        // The earlier runs saw a wide spread of every figure.
        for spreads in earlier.cases.values_mut() {
            for spread in spreads.values_mut() {
                spread.ratio = Some(2.0);
            }
        }
        let mut noise = earlier.clone();
        let had_rss = noise
            .cases
            .values()
            .filter(|f| f.contains_key(&rss))
            .count();
        assert!(had_rss > 0);
        assert_eq!(
            noise.forget_figures(std::slice::from_ref(&rss)).unwrap(),
            had_rss
        );
        for (id, spreads) in &noise.cases {
            let mut expected = earlier.cases[id].clone();
            expected.remove(&rss);
            assert_eq!(spreads, &expected, "{id}");
        }
        assert!(
            noise
                .command
                .ends_with("without peak_rss_bytes (measured again)")
        );
        let error = noise
            .forget_figures(&["peak_rss".to_string()])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("--refresh-figure peak_rss: no case has it (expected one of "),
            "{error}"
        );
        // Folded into a measurement that saw none, the forgotten figure is that measurement's alone, and the others
        // keep the earlier, wider spread.
        let mut now = Noise::measure(&[fixture(), fixture()], "now").unwrap();
        let (id, spreads) = now
            .cases
            .iter()
            .find(|(_, f)| f.contains_key(&rss))
            .unwrap();
        let (id, heap) = (
            id.clone(),
            spreads.keys().find(|f| **f != rss).unwrap().clone(),
        );
        assert_eq!(now.cases[&id][&rss].ratio, Some(1.0));
        now.fold(&noise).unwrap();
        assert_eq!(now.cases[&id][&rss].ratio, Some(1.0));
        assert_eq!(now.cases[&id][&heap].ratio, Some(2.0));
    }

    /// The committed noise file, as read and as written.
    fn committed() -> (Noise, String) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("noise.json");
        let text = std::fs::read_to_string(&path).unwrap();
        (Noise::read(&path).unwrap().unwrap(), text)
    }

    #[test]
    fn the_committed_file_is_written_back_byte_for_byte() {
        let (noise, text) = committed();
        assert_eq!(noise.to_text().unwrap(), text);
    }

    #[test]
    fn folding_one_scenario_into_the_file_leaves_its_header_and_every_other_entry_as_it_was() {
        let (file, text) = committed();
        let first = fixture();
        let mut second = fixture();
        second.cases[4].peak_heap_bytes = first.cases[4].peak_heap_bytes.map(|b| b + 1);
        let measurement = Noise::measure(
            &[first.clone(), second],
            "cargo xtask noise --runs 2 --profile ci --scenario large-session --update",
        )
        .unwrap();
        let folded = Noise::folded(measurement.clone(), vec![file.clone()]).unwrap();
        let written = folded.to_text().unwrap();
        let header = |text: &str| text[..text.find("\"cases\"").unwrap()].to_string();
        assert_eq!(header(&written), header(&text));
        // Every entry the measurement did not touch is the file's, so it is written as the file wrote it (the
        // committed file is written back byte for byte: the test above; `xtask`'s noise_update test compares the
        // entries' text).
        let mut untouched = 0;
        for id in file.cases.keys() {
            if !measurement.cases.contains_key(id) {
                assert_eq!(folded.cases.get(id), file.cases.get(id), "{id}");
                untouched += 1;
            }
        }
        assert!(untouched > 10, "{untouched}");
        // The measured cases are folded: their samples add up, and a case the file lacked is added.
        for id in measurement.cases.keys() {
            assert!(folded.cases.contains_key(id), "{id}");
        }
        let both = first.cases.iter().find(|c| file.cases.contains_key(&c.id));
        if let Some(case) = both {
            let samples = |noise: &Noise| {
                noise
                    .spread(&case.id, CaseField::PeakHeapBytes)
                    .unwrap()
                    .samples
            };
            assert_eq!(samples(&folded), samples(&file) + 2, "{}", case.id);
        }
        assert_eq!(
            folded.folded[0],
            format!(
                "2 runs by `{}`, measured at {}{}",
                measurement.command,
                measurement.measured_at,
                measurement
                    .git_commit
                    .as_deref()
                    .map(|c| format!(" of {c}"))
                    .unwrap_or_default()
            )
        );
        assert_eq!(folded.folded[1..], file.folded[..]);
        // Folded again with the same measurement, the file changes only where the samples add up again.
        let twice = Noise::folded(measurement, vec![folded.clone()]).unwrap();
        assert_eq!(header(&twice.to_text().unwrap()), header(&text));
    }

    #[test]
    fn a_measurement_of_every_case_takes_the_header() {
        let earlier = Noise::measure(&[fixture(), fixture()], "earlier").unwrap();
        let now = Noise::measure(&[fixture(), fixture(), fixture()], "now").unwrap();
        let folded = Noise::folded(now, vec![earlier]).unwrap();
        assert_eq!((folded.command.as_str(), folded.runs), ("now", 3));
        assert!(folded.folded[0].starts_with("2 runs by `earlier`"));
    }

    #[test]
    fn a_recorded_path_is_relative_to_the_repository_never_absolute() {
        let repository = Path::new("/home/someone/memproof");
        let check = |path: &str, cwd: &str, expected: &str| {
            assert_eq!(
                repository_relative(Path::new(path), repository, Path::new(cwd)),
                expected,
                "{path} from {cwd}"
            );
        };
        check(
            "/home/someone/memproof/reports/noise.json",
            "/",
            "reports/noise.json",
        );
        check(
            "noise.json",
            "/home/someone/memproof/reports",
            "reports/noise.json",
        );
        check(
            "./target/../reports/noise.json",
            "/home/someone/memproof",
            "reports/noise.json",
        );
        check(
            "/tmp/runs/quiet-1",
            "/home/someone/memproof",
            "../../../tmp/runs/quiet-1",
        );
        check("../runs/hog-1", "/home/someone/memproof", "../runs/hog-1");
        check(".", "/home/someone/memproof", ".");
    }

    #[test]
    fn runs_of_a_tree_with_uncommitted_changes_get_a_note() {
        let mut noise = Noise::measure(&[fixture(), fixture()], "x").unwrap();
        noise.git_commit = Some("0123abc".into());
        assert_eq!(noise.dirty_note(), None);
        noise.git_commit = Some("0123abc-dirty".into());
        assert_eq!(
            noise.dirty_note().unwrap(),
            "memproof: note: the runs measured 0123abc with uncommitted changes (-dirty)\n\nCommit first and \
             measure again, so that the committed file names the code it measured."
        );
    }

    #[test]
    fn the_spread_is_max_over_min_of_every_run() {
        let first = fixture();
        let mut second = fixture();
        second.cases[2].peak_heap_bytes = first.cases[2].peak_heap_bytes.map(|b| b * 3 / 2);
        second.cases[2].peak_rss_bytes = Some(0);
        let noise = Noise::measure(&[first.clone(), second], "cargo xtask noise").unwrap();
        let id = &first.cases[2].id;
        let heap = noise.spread(id, CaseField::PeakHeapBytes).unwrap();
        assert_eq!(heap.ratio, Some(1.5));
        assert_eq!(heap.samples, 2);
        let rss = noise.spread(id, CaseField::PeakRssBytes).unwrap();
        assert_eq!(rss.ratio, None, "a zero beside a non-zero has no ratio");
        let untouched = noise.spread(&first.cases[0].id, CaseField::PeakHeapBytes);
        assert_eq!(untouched.unwrap().ratio, Some(1.0));
        assert!(
            noise
                .spread("no/such/case", CaseField::PeakHeapBytes)
                .is_none()
        );
        assert!(
            noise
                .spread_table()
                .contains("| large-session | before | 1.500x |"),
            "{}",
            noise.spread_table()
        );
        // 100 MiB at a 1.5x spread: 2 x 50% and 16 KiB; the 64 MiB calibration case repeats: the 1% floor.
        let detection = crate::judge::tolerance::detection_table(&noise, &[]);
        assert!(
            detection.contains("| large-session | 1.0% to 100.0% |"),
            "{detection}"
        );
    }

    #[test]
    fn runs_of_two_profiles_are_refused_and_a_file_round_trips() {
        let first = fixture();
        let mut second = fixture();
        second.run.profile = "smoke".into();
        let error = Noise::measure(&[first.clone(), second], "x").unwrap_err();
        assert_eq!(
            error.to_string(),
            "runs of two profiles (ci and smoke): noise is measured over runs of one profile"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("noise.json");
        assert!(Noise::read(&path).unwrap().is_none());
        let noise = Noise::measure(&[first], "x").unwrap();
        noise.write(&path).unwrap();
        assert_eq!(Noise::read(&path).unwrap(), Some(noise));
        std::fs::write(&path, "{\"schema\": 3}").unwrap();
        let error = Noise::read(&path).unwrap_err().to_string();
        assert!(
            error.starts_with(&format!("{}:1:", path.display())),
            "{error}"
        );
    }
}
