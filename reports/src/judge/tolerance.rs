//! How far each figure may rise before it is a regression, decided in one place ([`tolerance_for`]): the load
//! test's regression verdicts, `compare` and the detection table of `noise` all ask here. The spread itself is
//! measured data ([`crate::noise`]); this module turns it into a tolerance.

use super::check_expression::Metric;
use crate::noise::Noise;
use schema::results::CaseField;
use schema::spec::Spec;
use std::collections::BTreeMap;

/// How far a figure may rise before it is a regression: `relative` of the old value plus `absolute` in the
/// metric's unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub relative: f64,
    pub absolute: f64,
}

impl Tolerance {
    pub const fn new(relative: f64, absolute: f64) -> Tolerance {
        Tolerance { relative, absolute }
    }
}

/// How many times its measured spread a figure may move before it is a regression. Five runs do not show the
/// largest spread a figure can have, so the tolerance is twice the one they showed.
pub const NOISE_MARGIN: f64 = 2.0;

/// The least tolerance of a case field, whatever its measured spread: a spread of 0 over five runs does not make
/// a sixth run repeat to the byte. Heap: 1% and 16 KiB (half the smallest change the check must catch, 32 KiB).
/// RSS: 2% and 1 MiB (two readings of one resident set may differ by the kernel's per-CPU counting batch, 512 KiB
/// on 2 CPUs). Wall time: 100% and 250 ms, since a second process busy on each core doubles it.
pub fn floor(field: CaseField) -> Tolerance {
    FLOOR.of(field)
}

/// The tolerance of a case field with no measured noise: wide, because nothing says the figure repeats.
pub fn unmeasured(field: CaseField) -> Tolerance {
    UNMEASURED.of(field)
}

const FLOOR: ByKind = ByKind {
    heap_bytes: Tolerance::new(0.01, 16.0 * 1024.0),
    alloc_count: Tolerance::new(0.01, 64.0),
    rss_bytes: Tolerance::new(0.02, 1024.0 * 1024.0),
    wall_ms: Tolerance::new(1.0, 250.0),
};

const UNMEASURED: ByKind = ByKind {
    heap_bytes: Tolerance::new(0.05, 256.0 * 1024.0),
    alloc_count: Tolerance::new(0.05, 1000.0),
    rss_bytes: Tolerance::new(0.25, 8.0 * 1024.0 * 1024.0),
    wall_ms: FLOOR.wall_ms,
};

/// One tolerance for each kind of case field. The heap's three byte figures (peak, total, end) repeat alike and
/// share one, so which fields are of which kind is said once ([`ByKind::of`]), for the floor and the default alike.
struct ByKind {
    heap_bytes: Tolerance,
    alloc_count: Tolerance,
    rss_bytes: Tolerance,
    wall_ms: Tolerance,
}

impl ByKind {
    fn of(&self, field: CaseField) -> Tolerance {
        match field {
            CaseField::PeakHeapBytes | CaseField::TotalAllocBytes | CaseField::EndHeapBytes => {
                self.heap_bytes
            }
            CaseField::AllocCount => self.alloc_count,
            CaseField::PeakRssBytes => self.rss_bytes,
            CaseField::WallMs => self.wall_ms,
        }
    }
}

/// A figure's tolerance and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CaseTolerance {
    pub tolerance: Tolerance,
    /// The measured max/min over the noise file's runs; `None` when the noise file has no entry for the figure
    /// (or is of another profile), and the tolerance is [`unmeasured`].
    pub measured_ratio: Option<f64>,
    /// How many runs that spread was measured over: the figure's own samples, which a noise file folded with
    /// earlier ones (`cargo xtask noise --fold`) counts across all of them, not the last measurement's `runs`.
    pub measured_samples: Option<usize>,
}

impl CaseTolerance {
    /// The tolerance in words, for verdicts and reports: `tolerance +4.2% and 16.0 KiB (2x the spread of 1.021x
    /// measured over 5 ci runs)`.
    pub fn describe(&self, field: CaseField, noise: Option<&Noise>) -> String {
        let metric = Metric::Field(field);
        let allowed = format!(
            "tolerance +{:.1}% and {}",
            self.tolerance.relative * 100.0,
            metric.format(self.tolerance.absolute)
        );
        match (self.measured_ratio, self.measured_samples, noise) {
            (Some(ratio), Some(samples), Some(noise)) => format!(
                "{allowed}: {NOISE_MARGIN}x the spread of {ratio:.3}x measured over {samples} {} runs, or the floor",
                noise.profile
            ),
            _ => format!("{allowed}: no measured noise for this figure, the conservative default"),
        }
    }
}

/// The one place a figure's regression tolerance is decided (the load test's regression verdicts and `compare`
/// both ask here): [`NOISE_MARGIN`] times the spread `noise` measured for this case's figure, never less than the
/// field's [`floor`]; [`unmeasured`] when `noise` has no entry for it or is of another profile than `profile`.
pub fn tolerance_for(
    noise: Option<&Noise>,
    profile: &str,
    case_id: &str,
    field: CaseField,
) -> CaseTolerance {
    let spread = noise
        .filter(|noise| noise.profile == profile)
        .and_then(|noise| noise.spread(case_id, field));
    let Some((ratio, samples)) = spread.and_then(|spread| Some((spread.ratio?, spread.samples)))
    else {
        return CaseTolerance {
            tolerance: unmeasured(field),
            measured_ratio: None,
            measured_samples: None,
        };
    };
    let floor = floor(field);
    CaseTolerance {
        tolerance: Tolerance {
            relative: (NOISE_MARGIN * (ratio - 1.0)).max(floor.relative),
            absolute: floor.absolute,
        },
        measured_ratio: Some(ratio),
        measured_samples: Some(samples),
    }
}

/// Per scenario, the smallest rise of peak heap and of peak RSS the regression check catches, over its judged
/// cases (from the lowest to the highest): the tolerance [`tolerance_for`] gives each case, as a percentage of
/// the case's smallest measured figure. The other table `cargo xtask noise` prints.
pub fn detection_table(noise: &Noise, specs: &[Spec]) -> String {
    let mut rows: BTreeMap<String, [(f64, f64); 2]> = BTreeMap::new();
    for (id, figures) in &noise.cases {
        let mut parts = id.splitn(3, '/');
        let (Some(scenario), Some(role)) = (parts.next(), parts.next()) else {
            continue;
        };
        let regression = specs
            .iter()
            .find(|spec| spec.scenario == scenario)
            .map(|spec| &spec.regression);
        if regression.is_some_and(|judged| !judged.judges_role(role)) {
            continue;
        }
        let row = rows
            .entry(scenario.to_string())
            .or_insert([(f64::INFINITY, 0.0); 2]);
        for (slot, field) in [CaseField::PeakHeapBytes, CaseField::PeakRssBytes]
            .into_iter()
            .enumerate()
        {
            if regression.is_some_and(|judged| !judged.judges(role, field.name())) {
                continue;
            }
            let Some(spread) = figures.get(field.name()).filter(|s| s.min > 0.0) else {
                continue;
            };
            let tolerance = tolerance_for(Some(noise), &noise.profile, id, field).tolerance;
            let rise = tolerance.relative + tolerance.absolute / spread.min;
            row[slot].0 = row[slot].0.min(rise);
            row[slot].1 = row[slot].1.max(rise);
        }
    }
    let mut table =
        "| scenario | peak heap rise caught | peak RSS rise caught |\n|---|---:|---:|\n"
            .to_string();
    let range = |(low, high): (f64, f64)| {
        if low.is_finite() {
            format!("{:.1}% to {:.1}%", low * 100.0, high * 100.0)
        } else {
            "-".to_string()
        }
    };
    for (scenario, [heap, rss]) in rows {
        table.push_str(&format!(
            "| {scenario} | {} | {} |\n",
            range(heap),
            range(rss)
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise_with(profile: &str, ratio: f64) -> Noise {
        let spread = crate::noise::Spread {
            min: 100.0,
            max: 100.0 * ratio,
            ratio: Some(ratio),
            samples: 5,
        };
        Noise {
            schema: crate::noise::NOISE_SCHEMA.into(),
            profile: profile.into(),
            runs: 5,
            measured_at: "2026-12-01T00:00:00Z".into(),
            git_commit: None,
            host: planning::host::host(),
            command: "cargo xtask noise".into(),
            cases: [(
                "toy/after/n=1".to_string(),
                [("peak_heap_bytes".to_string(), spread)].into(),
            )]
            .into(),
            folded: Vec::new(),
        }
    }

    #[test]
    fn the_tolerance_is_twice_the_measured_spread_above_a_floor() {
        let noisy = noise_with("ci", 1.08);
        let measured = tolerance_for(
            Some(&noisy),
            "ci",
            "toy/after/n=1",
            CaseField::PeakHeapBytes,
        );
        assert!((measured.tolerance.relative - 0.16).abs() < 1e-12);
        assert_eq!(measured.tolerance.absolute, 16.0 * 1024.0);
        assert_eq!(measured.measured_ratio, Some(1.08));
        assert_eq!(
            measured.describe(CaseField::PeakHeapBytes, Some(&noisy)),
            "tolerance +16.0% and 16.0 KiB: 2x the spread of 1.080x measured over 5 ci runs, or the floor"
        );
        let exact = noise_with("ci", 1.0);
        let exact = tolerance_for(
            Some(&exact),
            "ci",
            "toy/after/n=1",
            CaseField::PeakHeapBytes,
        );
        assert_eq!(exact.tolerance, floor(CaseField::PeakHeapBytes));
        for (noise, profile, id) in [
            (Some(&noisy), "ci", "toy/before/n=1"),
            (Some(&noisy), "smoke", "toy/after/n=1"),
            (None, "ci", "toy/after/n=1"),
        ] {
            let default = tolerance_for(noise, profile, id, CaseField::PeakHeapBytes);
            assert_eq!(default.tolerance, unmeasured(CaseField::PeakHeapBytes));
            assert!(
                default
                    .describe(CaseField::PeakHeapBytes, noise)
                    .ends_with("no measured noise for this figure, the conservative default")
            );
        }
    }
}
