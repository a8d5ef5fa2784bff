//! Growth of a metric with the input size: a least-squares line through (log size, log metric).
//!
//! The seeds are growth bugs: seed C read a whole JSONL log (hundreds of MB) to answer one request, so its peak
//! grew with the log; seed D re-serialised a 22 MB state on every event. A single size cannot tell "big" from
//! "grows"; the slope of peak against size on log-log axes can: about 0 when the peak does not depend on the size,
//! about 1 when it grows in proportion. R² says how well a power law describes the points at all.
//!
//! The default thresholds live here, in [`FLAT_MAX_EXPONENT`] and [`LINEAR_EXPONENT_RANGE`]; a spec may set its own
//! per verdict (`is flat <= 0.1`, `is linear 0.9..1.1`).

/// A metric is `flat` when its fitted exponent is at most this. A fixed cost plus a small per-item term still
/// reads as flat over a modest sweep; an O(n) term does not (its exponent approaches 1).
pub const FLAT_MAX_EXPONENT: f64 = 0.25;

/// A metric is `linear` when its fitted exponent lies in this range (inclusive).
pub const LINEAR_EXPONENT_RANGE: (f64, f64) = (0.75, 1.25);

/// Fewest distinct sizes a growth verdict fits over.
pub const MIN_SIZES: usize = 3;

/// `metric ≈ c · size^exponent`, fitted on log-log axes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerLawFit {
    pub exponent: f64,
    /// Coefficient of determination of the log-log line: 1 is a perfect power law.
    pub r_squared: f64,
    /// `c`, so the chart can draw the fitted line.
    pub coefficient: f64,
}

impl PowerLawFit {
    /// The fitted metric at `size`.
    pub fn predict(&self, size: f64) -> f64 {
        self.coefficient * size.powf(self.exponent)
    }
}

/// Fits `metric = c · size^exponent` by least squares on (ln size, ln metric). Points with a size or metric that is
/// not positive have no logarithm and are left out; a metric that is the same at every size (zero included) is
/// flat by definition (exponent 0, R² 1). `None` when fewer than [`MIN_SIZES`] distinct sizes remain.
pub fn fit_power_law(points: &[(f64, f64)]) -> Option<PowerLawFit> {
    let mut sizes: Vec<f64> = points.iter().map(|(size, _)| *size).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    if sizes.len() < MIN_SIZES {
        return None;
    }
    if let Some((_, first)) = points.first()
        && points.iter().all(|(_, value)| value == first)
    {
        return Some(PowerLawFit {
            exponent: 0.0,
            r_squared: 1.0,
            coefficient: *first,
        });
    }
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(size, value)| *size > 0.0 && *value > 0.0)
        .map(|(size, value)| (size.ln(), value.ln()))
        .collect();
    let mut log_sizes: Vec<f64> = logs.iter().map(|(x, _)| *x).collect();
    log_sizes.sort_by(f64::total_cmp);
    log_sizes.dedup();
    if log_sizes.len() < MIN_SIZES {
        return None;
    }
    let n = logs.len() as f64;
    let mean_x = logs.iter().map(|(x, _)| x).sum::<f64>() / n;
    let mean_y = logs.iter().map(|(_, y)| y).sum::<f64>() / n;
    let sxx: f64 = logs.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    let sxy: f64 = logs.iter().map(|(x, y)| (x - mean_x) * (y - mean_y)).sum();
    let syy: f64 = logs.iter().map(|(_, y)| (y - mean_y).powi(2)).sum();
    let exponent = sxy / sxx;
    let intercept = mean_y - exponent * mean_x;
    let residual: f64 = logs
        .iter()
        .map(|(x, y)| (y - (intercept + exponent * x)).powi(2))
        .sum();
    let r_squared = if syy == 0.0 {
        1.0
    } else {
        1.0 - residual / syy
    };
    Some(PowerLawFit {
        exponent,
        r_squared,
        coefficient: intercept.exp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(exponent: f64, coefficient: f64) -> Vec<(f64, f64)> {
        [100.0, 200.0, 400.0, 800.0, 1600.0]
            .into_iter()
            .map(|size: f64| (size, coefficient * size.powf(exponent)))
            .collect()
    }

    #[test]
    fn known_exponents_are_recovered_with_a_perfect_fit() {
        for exponent in [0.0, 0.5, 1.0, 2.0] {
            let fit = fit_power_law(&points(exponent, 3000.0)).unwrap();
            assert!(
                (fit.exponent - exponent).abs() < 1e-9,
                "{exponent}: {fit:?}"
            );
            assert!((fit.r_squared - 1.0).abs() < 1e-9, "{exponent}: {fit:?}");
            assert!((fit.predict(800.0) - 3000.0 * 800f64.powf(exponent)).abs() < 1e-3);
        }
    }

    #[test]
    fn a_fixed_cost_plus_a_small_linear_term_reads_flat_and_a_pure_linear_term_linear() {
        let fixed_plus_small: Vec<(f64, f64)> = [200.0, 400.0, 800.0]
            .into_iter()
            .map(|size: f64| (size, 8e6 + 1000.0 * size))
            .collect();
        let fit = fit_power_law(&fixed_plus_small).unwrap();
        assert!(fit.exponent <= FLAT_MAX_EXPONENT, "{fit:?}");
        let linear: Vec<(f64, f64)> = [200.0, 400.0, 800.0]
            .into_iter()
            .map(|size: f64| (size, 1e5 + 300_000.0 * size))
            .collect();
        let fit = fit_power_law(&linear).unwrap();
        assert!(
            (LINEAR_EXPONENT_RANGE.0..=LINEAR_EXPONENT_RANGE.1).contains(&fit.exponent),
            "{fit:?}"
        );
    }

    #[test]
    fn noisy_points_lower_r_squared() {
        let noisy = [(100.0, 10.0), (200.0, 40.0), (400.0, 15.0), (800.0, 80.0)];
        let fit = fit_power_law(&noisy).unwrap();
        assert!(fit.r_squared < 0.8, "{fit:?}");
    }

    #[test]
    fn too_few_sizes_or_a_constant_metric() {
        assert_eq!(fit_power_law(&[(1.0, 2.0), (2.0, 4.0), (2.0, 5.0)]), None);
        assert_eq!(
            fit_power_law(&[(1.0, 0.0), (2.0, 0.0), (4.0, 0.0)]),
            Some(PowerLawFit {
                exponent: 0.0,
                r_squared: 1.0,
                coefficient: 0.0
            })
        );
        assert_eq!(fit_power_law(&[(1.0, 0.0), (2.0, 3.0), (4.0, 6.0)]), None);
    }
}
