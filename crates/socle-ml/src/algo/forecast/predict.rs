//! Prediction from a fitted forecast, as Prophet's `predict`: the trend (`predict_trend`), each
//! component (`predict_seasonal_components`), yhat = trend·(1 + multiplicative terms) +
//! additive terms, and uncertainty intervals as the vectorised `predict_uncertainty` with a MAP
//! fit (`_sample_uncertainty`, `_make_trend_shift_matrix`): for each of `uncertainty_samples`
//! paths, rows past the history (t > 1) get trend-rate changes drawn at the historical
//! changepoint rate (S · mean step) with Laplace(0, mean |δ| + 1e-8) sizes, averaged over
//! neighbouring steps and integrated twice; every row gets N(0, σ) noise; the interval bounds
//! are the (1 ± interval_width)/2 quantiles of the paths (numpy's linear interpolation).
//!
//! Differences: rows come back sorted by timestamp (as Prophet sorts its frame); in the
//! history (and with a flat trend), where no path's trend moves, the bounds are the exact
//! normal quantiles yhat ± z·σ that the simulation estimates, computed rather than drawn;
//! the draws come from [`crate::algo::Rng`] seeded by the model's seed (same model and rows →
//! identical intervals); and a bound on the wrong side of yhat (or of the trend) is clamped
//! to it, so lower ≤ value ≤ upper on every row. With `uncertainty_samples` 0 the bounds equal the values
//! (Prophet leaves them out).

use serde::{Deserialize, Serialize};

use super::fit::{FORMAT_VERSION, Model};
use super::spec::{Growth, Mode};
use super::{Column, ForecastError, resolve_columns};
use crate::algo::{Rng, dot};

/// A named part of the forecast, one value per row: in y's units when additive, a proportion
/// of the trend when multiplicative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    pub mode: Mode,
    pub values: Vec<f64>,
}

/// Predictions, one per row, sorted by timestamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    pub timestamps: Vec<i64>,
    pub yhat: Vec<f64>,
    pub yhat_lower: Vec<f64>,
    pub yhat_upper: Vec<f64>,
    pub trend: Vec<f64>,
    pub trend_lower: Vec<f64>,
    pub trend_upper: Vec<f64>,
    /// Sum of the additive components, in y's units.
    pub additive_terms: Vec<f64>,
    /// Sum of the multiplicative components, as a proportion of the trend.
    pub multiplicative_terms: Vec<f64>,
    /// Each seasonality, each holiday, `holidays` (all of them), each regressor, and
    /// `extra_regressors_additive` / `extra_regressors_multiplicative` when there are any.
    pub components: Vec<Component>,
}

impl Forecast {
    /// The values of the component `name`, if the model has it.
    pub fn component(&self, name: &str) -> Option<&[f64]> {
        self.components
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.values.as_slice())
    }
}

impl Model {
    /// Predicts at `timestamps` (seconds since the Unix epoch; history or future, any order),
    /// with each extra regressor's values at those rows. Rows come back sorted by timestamp.
    pub fn predict(
        &self,
        timestamps: &[i64],
        regressors: &[Column<'_>],
    ) -> Result<Forecast, ForecastError> {
        self.check()?;
        if timestamps.is_empty() {
            return Err(ForecastError::NothingToPredict);
        }
        let names = self.layout.regressor_names();
        let columns = resolve_columns(&names, regressors, timestamps.len(), None)?;
        let mut order: Vec<usize> = (0..timestamps.len()).collect();
        order.sort_by_key(|&i| timestamps[i]);
        let ts: Vec<i64> = order.iter().map(|&i| timestamps[i]).collect();
        let values: Vec<Vec<f64>> = columns
            .iter()
            .map(|c| order.iter().map(|&i| c[i]).collect())
            .collect();
        let slices: Vec<&[f64]> = values.iter().map(Vec::as_slice).collect();
        let n = ts.len();

        let t: Vec<f64> = ts
            .iter()
            .map(|&s| (i128::from(s) - i128::from(self.start)) as f64 / self.t_scale)
            .collect();
        let trend_scaled = self.scaled_trend(&t);
        let trend: Vec<f64> = trend_scaled
            .iter()
            .map(|v| v * self.y_scale + self.floor)
            .collect();
        let x = self.layout.matrix(&ts, &slices);
        let beta = &self.params.beta;
        let (_, modes) = self.layout.column_priors_and_modes();
        let masked = |keep: Mode| -> Vec<f64> {
            beta.iter()
                .zip(&modes)
                .map(|(&b, &m)| if m == keep { b } else { 0.0 })
                .collect()
        };
        let (beta_additive, beta_multiplicative) =
            (masked(Mode::Additive), masked(Mode::Multiplicative));
        let mut additive_terms = vec![0.0; n];
        let mut multiplicative_terms = vec![0.0; n];
        for (i, (a, m)) in additive_terms
            .iter_mut()
            .zip(multiplicative_terms.iter_mut())
            .enumerate()
        {
            let row = x.row(i);
            *a = dot(row, &beta_additive) * self.y_scale;
            *m = dot(row, &beta_multiplicative);
        }
        let yhat: Vec<f64> = trend
            .iter()
            .zip(&additive_terms)
            .zip(&multiplicative_terms)
            .map(|((tr, a), m)| tr * (1.0 + m) + a)
            .collect();
        let components = self
            .layout
            .components()
            .into_iter()
            .map(|c| {
                let scale = match c.mode {
                    Mode::Additive => self.y_scale,
                    Mode::Multiplicative => 1.0,
                };
                let values = (0..n)
                    .map(|i| {
                        let row = x.row(i);
                        c.columns.iter().map(|&j| row[j] * beta[j]).sum::<f64>() * scale
                    })
                    .collect();
                Component {
                    name: c.name,
                    mode: c.mode,
                    values,
                }
            })
            .collect();
        let bounds = if self.uncertainty_samples == 0 {
            Bounds {
                yhat_lower: yhat.clone(),
                yhat_upper: yhat.clone(),
                trend_lower: trend.clone(),
                trend_upper: trend.clone(),
            }
        } else {
            self.intervals(
                &t,
                &trend_scaled,
                &additive_terms,
                &multiplicative_terms,
                &yhat,
                &trend,
            )
        };
        Ok(Forecast {
            timestamps: ts,
            yhat,
            yhat_lower: bounds.yhat_lower,
            yhat_upper: bounds.yhat_upper,
            trend,
            trend_lower: bounds.trend_lower,
            trend_upper: bounds.trend_upper,
            additive_terms,
            multiplicative_terms,
            components,
        })
    }

    /// Checks that a (possibly hand-edited) stored model is usable.
    fn check(&self) -> Result<(), ForecastError> {
        let bad = |message: String| Err(ForecastError::BadModel(message));
        if self.format_version != FORMAT_VERSION {
            return bad(format!(
                "its format version is {}, this version of socle reads {FORMAT_VERSION}",
                self.format_version
            ));
        }
        if self.params.delta.len() != self.changepoints_t.len() {
            return bad(format!(
                "it has {} trend changes for {} changepoints",
                self.params.delta.len(),
                self.changepoints_t.len()
            ));
        }
        if self.params.beta.len() != self.layout.n_columns() {
            return bad(format!(
                "it has {} coefficients for {} feature columns",
                self.params.beta.len(),
                self.layout.n_columns()
            ));
        }
        if !(self.t_scale.is_finite()
            && self.t_scale > 0.0
            && self.y_scale.is_finite()
            && self.y_scale > 0.0)
        {
            return bad(format!(
                "its scales (time {}, y {}) must be numbers above 0",
                self.t_scale, self.y_scale
            ));
        }
        if !(0.0..=1.0).contains(&self.interval_width) {
            return bad(format!(
                "its interval_width {} is not between 0 and 1",
                self.interval_width
            ));
        }
        Ok(())
    }

    /// The trend in scaled units at the sorted scaled times `t` (Prophet's `piecewise_linear`:
    /// the changes of the changepoints cⱼ ≤ t apply).
    fn scaled_trend(&self, t: &[f64]) -> Vec<f64> {
        let p = &self.params;
        match self.growth {
            Growth::Flat => vec![p.m; t.len()],
            Growth::Linear => {
                let cps = &self.changepoints_t;
                let (mut rate, mut offset, mut j) = (p.k, p.m, 0);
                t.iter()
                    .map(|&ti| {
                        while j < cps.len() && cps[j] <= ti {
                            rate += p.delta[j];
                            offset -= cps[j] * p.delta[j];
                            j += 1;
                        }
                        rate * ti + offset
                    })
                    .collect()
            }
        }
    }

    /// The interval bounds from `uncertainty_samples` simulated paths, clamped around `yhat`
    /// and `trend`. Rows are walked in time order with each path's trend-change state kept
    /// (rate and level of its changes), so memory is O(samples), not O(rows × samples).
    ///
    /// Rows of the history need no simulation: there the trend does not move (as in
    /// Prophet), so every path is yhat plus normal noise, and the bounds are the exact normal
    /// quantiles, yhat ± z·σ, that Prophet's simulation estimates. With `samples` paths the
    /// quantile asked is kept within [½/samples, 1 − ½/samples], as the extreme paths are.
    fn intervals(
        &self,
        t: &[f64],
        trend_scaled: &[f64],
        additive: &[f64],
        multiplicative: &[f64],
        yhat: &[f64],
        trend: &[f64],
    ) -> Bounds {
        let n = t.len();
        let samples = self.uncertainty_samples;
        // Rows past the history (t > 1) come last, t being sorted.
        let future_start = t.partition_point(|&v| v <= 1.0);
        let future = &t[future_start..];
        let step = if future.len() > 1 {
            future.windows(2).map(|w| w[1] - w[0]).sum::<f64>() / (future.len() - 1) as f64
        } else {
            self.history_t_step
        };
        let change_probability = self.changepoints_t.len() as f64 * step;
        let delta = &self.params.delta;
        let mean_delta =
            delta.iter().map(|d| d.abs()).sum::<f64>() / delta.len().max(1) as f64 + 1e-8;
        let simulate_trend = self.growth == Growth::Linear;
        let noise = self.params.sigma_obs * self.y_scale;
        let lower_q = (1.0 - self.interval_width) / 2.0;
        let upper_q = (1.0 + self.interval_width) / 2.0;
        let mut bounds = Bounds {
            yhat_lower: Vec::with_capacity(n),
            yhat_upper: Vec::with_capacity(n),
            trend_lower: Vec::with_capacity(n),
            trend_upper: Vec::with_capacity(n),
        };
        // The history (and every row when the trend is flat): exact.
        let exact_rows = if simulate_trend { future_start } else { n };
        let edge = 0.5 / samples as f64;
        let z = |q: f64| normal_quantile(q.clamp(edge, 1.0 - edge));
        let (z_lower, z_upper) = (z(lower_q), z(upper_q));
        for i in 0..exact_rows {
            let tr = trend_scaled[i] * self.y_scale + self.floor;
            let centre = tr * (1.0 + multiplicative[i]) + additive[i];
            bounds
                .yhat_lower
                .push((centre + z_lower * noise).min(yhat[i]));
            bounds
                .yhat_upper
                .push((centre + z_upper * noise).max(yhat[i]));
            bounds.trend_lower.push(tr.min(trend[i]));
            bounds.trend_upper.push(tr.max(trend[i]));
        }
        if exact_rows == n {
            return bounds;
        }

        let mut rng = Rng::new(self.seed);
        // Per path: the last change, the accumulated rate change, the accumulated level.
        let mut previous = vec![0.0; samples];
        let mut rate = vec![0.0; samples];
        let mut level = vec![0.0; samples];
        let mut yhat_paths = vec![0.0; samples];
        let mut trend_paths = vec![0.0; samples];
        for i in exact_rows..n {
            // Prophet's trend shift matrix: a change with probability S·step, of a Laplace
            // size, averaged with the previous step's, integrated twice.
            for ((p, r), l) in previous.iter_mut().zip(&mut rate).zip(&mut level) {
                let changes = rng.uniform() < change_probability;
                let size = rng.laplace(mean_delta);
                let change = if changes { size } else { 0.0 };
                *r += (change + *p) / 2.0;
                *p = change;
                *l += *r;
            }
            for ((y_path, t_path), l) in yhat_paths.iter_mut().zip(&mut trend_paths).zip(&level) {
                let tr = (trend_scaled[i] + l * step) * self.y_scale + self.floor;
                *t_path = tr;
                *y_path = tr * (1.0 + multiplicative[i]) + additive[i] + rng.normal() * noise;
            }
            bounds
                .yhat_lower
                .push(quantile(&mut yhat_paths, lower_q).min(yhat[i]));
            bounds
                .yhat_upper
                .push(quantile(&mut yhat_paths, upper_q).max(yhat[i]));
            bounds
                .trend_lower
                .push(quantile(&mut trend_paths, lower_q).min(trend[i]));
            bounds
                .trend_upper
                .push(quantile(&mut trend_paths, upper_q).max(trend[i]));
        }
        bounds
    }
}

/// The lower and upper bounds of yhat and of the trend, one per row.
struct Bounds {
    yhat_lower: Vec<f64>,
    yhat_upper: Vec<f64>,
    trend_lower: Vec<f64>,
    trend_upper: Vec<f64>,
}

/// The standard normal's quantile at `p` in (0, 1): Acklam's rational approximation
/// (relative error below 1.2e-9, far below the bounds' own precision).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    let tail = |q: f64| {
        let q = (-2.0 * q.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail(p)
    } else if p > 1.0 - LOW {
        -tail(1.0 - p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The `q` quantile of `values` (not empty) with linear interpolation between order statistics
/// (numpy's default); reorders `values`.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    let last = values.len() - 1;
    let position = q.clamp(0.0, 1.0) * last as f64;
    let below = (position.floor() as usize).min(last);
    let fraction = position - below as f64;
    let (_, &mut a, rest) = values.select_nth_unstable_by(below, f64::total_cmp);
    if fraction <= 0.0 || rest.is_empty() {
        return a;
    }
    let b = rest.iter().copied().fold(f64::INFINITY, f64::min);
    a + (b - a) * fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles_match_scipy() {
        // scipy.stats.norm.ppf
        for (p, z) in [
            (0.5, 0.0),
            (0.9, 1.281_551_565_544_600_5),
            (0.1, -1.281_551_565_544_600_5),
            (0.975, 1.959_963_984_540_054),
            (0.0005, -3.290_526_731_491_926),
            (0.999_5, 3.290_526_731_491_926),
            (0.01, -2.326_347_874_040_841),
        ] {
            let got = normal_quantile(p);
            assert!(
                (got - z).abs() < 1e-8 * z.abs().max(1.0),
                "{p}: {got} vs {z}"
            );
        }
    }

    #[test]
    fn quantiles_interpolate_as_numpy() {
        // numpy.percentile([3, 1, 4, 1, 5, 9, 2, 6], [10, 50, 90]) = 1.0, 3.5, 6.9
        let data = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let q = |p: f64| quantile(&mut data.clone(), p);
        assert!((q(0.1) - 1.0).abs() < 1e-12);
        assert!((q(0.5) - 3.5).abs() < 1e-12);
        assert!((q(0.9) - 6.9).abs() < 1e-12, "{}", q(0.9));
        assert_eq!(q(0.0), 1.0);
        assert_eq!(q(1.0), 9.0);
        assert_eq!(quantile(&mut [7.0], 0.3), 7.0);
    }
}
