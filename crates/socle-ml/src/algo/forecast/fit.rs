//! Fitting a forecast by MAP, as Prophet's `fit` with its default optimizer: the history is
//! scaled (`setup_dataframe`, `initialize_scales`), the parameters start at Prophet's
//! `linear_growth_init` / `flat_growth_init` values, and the negative log posterior of
//! `prophet.stan` is minimised by L-BFGS ([`crate::algo::lbfgs`]) with its analytic gradient.
//!
//! The parameters are Stan's, in its order: θ = (k, m, δ₁…δ_S, log σ, β₁…β_K), σ optimised on
//! the log scale as Stan does for `real<lower=0>` (without the Jacobian, as Stan's optimizer).
//! With t, y scaled, A[i, j] = 1 when tᵢ ≥ cⱼ, trend = (k + Aδ)·t + (m − A(c∘δ)) (linear) or m
//! (flat), and X_a / X_m the additive / multiplicative columns:
//!
//! ```text
//! −log p = (k² + m²)/50 + Σ|δⱼ|/τ + 2σ² + ½ Σ βⱼ²/sⱼ² + n·log σ + Σ rᵢ² / (2σ²)
//! rᵢ = yᵢ − trendᵢ·(1 + X_m,ᵢ·β) − X_a,ᵢ·β
//! ```
//!
//! One evaluation costs O(n·K + S): the trend is swept once over the sorted rows, the gradient
//! of δ uses suffix sums of the residual weights. |δ| is used as is (Stan's L-BFGS does the
//! same), its derivative taken as sign(δ) with sign(0) = 0.

use serde::{Deserialize, Serialize};

use super::features::{self, Layout};
use super::spec::{Growth, Mode, Scaling, Spec};
use super::{Column, ForecastError, resolve_columns};
use crate::algo::lbfgs::{self, Options};
use crate::algo::{Matrix, dot};

/// Version of the stored model's JSON layout.
pub const FORMAT_VERSION: u32 = 1;

/// Prophet's (and Stan's) iteration limit for the optimizer.
const MAX_ITER: usize = 10_000;

/// The MAP parameters, in the scaled units of Prophet's Stan model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Base growth rate (per unit of scaled time: the whole history).
    pub k: f64,
    /// Offset at the start of the history.
    pub m: f64,
    /// Rate changes at the changepoints.
    pub delta: Vec<f64>,
    /// Observation noise (scaled).
    pub sigma_obs: f64,
    /// One coefficient per feature column.
    pub beta: Vec<f64>,
}

/// How the optimizer ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerReport {
    pub iterations: usize,
    pub converged: bool,
    /// The negative log posterior at the parameters (without its constants).
    pub objective: f64,
}

/// A fitted forecast: everything needed to predict, without the training data. Serialise it
/// with serde (JSON) and check `format_version` against [`FORMAT_VERSION`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub format_version: u32,
    pub growth: Growth,
    /// y is scaled as (y − floor) / y_scale.
    pub y_scale: f64,
    pub floor: f64,
    /// First timestamp of the history (t = 0).
    pub start: i64,
    /// Seconds from the first to the last timestamp of the history (t = 1).
    pub t_scale: f64,
    /// The changepoints' timestamps (empty when there are none).
    pub changepoints: Vec<i64>,
    /// The changepoints in scaled time; `[0.0]` when there are none (Prophet's placeholder,
    /// whose δ is folded into k after fitting).
    pub changepoints_t: Vec<f64>,
    pub params: Params,
    pub layout: Layout,
    /// Mean step of the history in scaled time (for simulating trend changes).
    pub history_t_step: f64,
    pub interval_width: f64,
    pub uncertainty_samples: usize,
    pub seed: u64,
    pub optimizer: OptimizerReport,
    /// Warnings about the fit (a seasonality longer than the history, fewer changepoints than
    /// asked, an optimizer that stopped early).
    pub notes: Vec<String>,
}

/// Fits a forecast on the history `timestamps` (seconds since the Unix epoch, any order) and
/// `y` (NaN = missing: such rows are left out, as Prophet does), with the spec's extra
/// regressors given as `regressors` (one value per timestamp, finite on the rows with a y).
pub fn fit(
    spec: &Spec,
    timestamps: &[i64],
    y: &[f64],
    regressors: &[Column<'_>],
) -> Result<Model, ForecastError> {
    spec.validate()?;
    if y.len() != timestamps.len() {
        return Err(ForecastError::LengthMismatch {
            what: "y".to_string(),
            len: y.len(),
            expected: timestamps.len(),
        });
    }
    let mut rows = Vec::with_capacity(y.len());
    for (i, &v) in y.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        if !v.is_finite() {
            return Err(ForecastError::NonFinite {
                column: "y".to_string(),
                row: i,
                value: v,
            });
        }
        rows.push(i);
    }
    if rows.len() < 2 {
        return Err(ForecastError::TooFewPoints { rows: rows.len() });
    }
    // Time order, stable (Prophet sorts with mergesort).
    rows.sort_by_key(|&i| timestamps[i]);
    let names: Vec<&str> = spec.regressors.iter().map(|r| r.name.as_str()).collect();
    let columns = resolve_columns(&names, regressors, timestamps.len(), Some(rows.as_slice()))?;
    let ts: Vec<i64> = rows.iter().map(|&i| timestamps[i]).collect();
    let ys: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
    let regressor_values: Vec<Vec<f64>> = columns
        .iter()
        .map(|c| rows.iter().map(|&i| c[i]).collect())
        .collect();
    let n = ts.len();
    let (first, last) = (ts[0], ts[n - 1]);
    let span = last
        .checked_sub(first)
        .ok_or(ForecastError::TimestampRange { first, last })?;
    if span == 0 {
        return Err(ForecastError::NoTimeSpan { rows: n });
    }
    let (floor, range) = match spec.scaling {
        Scaling::Absmax => (0.0, ys.iter().fold(0.0f64, |a, v| a.max(v.abs()))),
        Scaling::Minmax => {
            let lo = ys.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo, hi - lo)
        }
    };
    if !range.is_finite() {
        return Err(ForecastError::NonFinite {
            column: "the range of y (max − min)".to_string(),
            row: 0,
            value: range,
        });
    }
    let y_scale = if range == 0.0 { 1.0 } else { range };
    let t_scale = span as f64;
    let t: Vec<f64> = ts.iter().map(|&s| (s - first) as f64 / t_scale).collect();
    let y_scaled: Vec<f64> = ys.iter().map(|v| (v - floor) / y_scale).collect();

    let mut notes = Vec::new();
    let seasonalities = features::seasonality_terms(spec, &ts, &mut notes);
    let (holiday_columns, holidays) = features::holiday_layout(spec);
    let layout = Layout {
        seasonalities,
        holiday_columns,
        holidays,
        holidays_mode: spec.effective_holidays_mode(),
        regressors: features::regressor_terms(spec, &regressor_values),
    };
    let regressor_slices: Vec<&[f64]> = regressor_values.iter().map(Vec::as_slice).collect();
    let x = layout.matrix(&ts, &regressor_slices);
    let changepoints = super::changepoints::place(spec, &ts, &mut notes)?;
    let mut changepoints_t: Vec<f64> = changepoints
        .iter()
        .map(|&c| (c - first) as f64 / t_scale)
        .collect();
    if changepoints_t.is_empty() {
        changepoints_t.push(0.0);
    }

    // Prophet's initial values: the line through the first and last points, or the mean.
    let (k0, m0) = match spec.growth {
        Growth::Linear => {
            let i1 = ts.iter().position(|&s| s == last).unwrap_or(n - 1);
            let k = (y_scaled[i1] - y_scaled[0]) / (t[i1] - t[0]);
            (k, y_scaled[0] - k * t[0])
        }
        Growth::Flat => (0.0, y_scaled.iter().sum::<f64>() / n as f64),
    };
    let (mut params, optimizer) = if ys.iter().all(|&v| v == ys[0]) {
        // Prophet skips the optimizer on a constant series and keeps its initial values.
        let params = Params {
            k: k0,
            m: m0,
            delta: vec![0.0; changepoints_t.len()],
            sigma_obs: 1e-9,
            beta: vec![0.0; x.cols],
        };
        let report = OptimizerReport {
            iterations: 0,
            converged: true,
            objective: 0.0,
        };
        (params, report)
    } else {
        let (scales, modes) = layout.column_priors_and_modes();
        let problem = Problem {
            growth: spec.growth,
            t: &t,
            y: &y_scaled,
            x: &x,
            changepoints_t: &changepoints_t,
            prior_scales: &scales,
            modes: &modes,
            tau: spec.changepoint_prior_scale,
        };
        map_estimate(&problem, k0, m0)
    };
    if changepoints.is_empty() {
        // Prophet folds the placeholder changepoint's δ into the base rate.
        params.k += params.delta[0];
        params.delta[0] = 0.0;
    }
    if !optimizer.converged {
        notes.push(format!(
            "the optimizer stopped after {} iterations without meeting its tolerance: the fit \
             may be approximate",
            optimizer.iterations
        ));
    }
    let history_t_step = t.windows(2).map(|w| w[1] - w[0]).sum::<f64>() / (n - 1) as f64;
    Ok(Model {
        format_version: FORMAT_VERSION,
        growth: spec.growth,
        y_scale,
        floor,
        start: first,
        t_scale,
        changepoints,
        changepoints_t,
        params,
        layout,
        history_t_step,
        interval_width: spec.interval_width,
        uncertainty_samples: spec.uncertainty_samples,
        seed: spec.seed,
        optimizer,
        notes,
    })
}

/// The data of the MAP problem (scaled).
struct Problem<'a> {
    growth: Growth,
    /// Sorted, in [0, 1].
    t: &'a [f64],
    y: &'a [f64],
    x: &'a Matrix,
    /// Sorted.
    changepoints_t: &'a [f64],
    prior_scales: &'a [f64],
    modes: &'a [Mode],
    tau: f64,
}

/// Runs L-BFGS from Prophet's initial values (δ = 0, σ = 1, β = 0).
fn map_estimate(problem: &Problem<'_>, k0: f64, m0: f64) -> (Params, OptimizerReport) {
    let s = problem.changepoints_t.len();
    let mut theta0 = vec![0.0; 3 + s + problem.x.cols];
    theta0[0] = k0;
    theta0[1] = m0;
    let mut objective = Objective::new(problem);
    let opts = Options {
        max_iter: MAX_ITER,
        ..Options::default()
    };
    let out = lbfgs::minimize(|theta, grad| objective.eval(theta, grad), theta0, &opts);
    let theta = &out.x;
    let params = Params {
        k: theta[0],
        m: theta[1],
        delta: theta[2..2 + s].to_vec(),
        sigma_obs: theta[2 + s].exp(),
        beta: theta[3 + s..].to_vec(),
    };
    let report = OptimizerReport {
        iterations: out.iterations,
        converged: out.converged,
        objective: out.value,
    };
    (params, report)
}

/// sign(v), 0 at 0 (the derivative Stan takes of |v| there).
fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// The negative log posterior and its gradient, with its work buffers (no allocation per
/// evaluation).
///
/// The design matrix is split once: its dense columns (seasonalities, regressors) are kept
/// row-major, and its sparse ones (a holiday or shock column is 1 on the few days of its
/// window and 0 elsewhere) as lists of (row, value). An evaluation then costs
/// O(rows × dense columns + non-zeros) instead of O(rows × columns): a year of lockdown
/// days as shocks is hundreds of columns with one non-zero each.
struct Objective<'a> {
    problem: &'a Problem<'a>,
    /// First row with t ≥ cⱼ, per changepoint.
    first_row: Vec<usize>,
    inverse_variance: Vec<f64>,
    multiplicative: Vec<bool>,
    any_multiplicative: bool,
    trend: Vec<f64>,
    /// ∂(−log p)/∂trendᵢ, negated: rᵢ(1 + X_m,ᵢ·β)/σ².
    weight: Vec<f64>,
    /// rᵢ/σ² per row.
    residual_weight: Vec<f64>,
    /// The dense columns (indices into X) and their values, row-major.
    dense: Vec<usize>,
    dense_x: Vec<f64>,
    /// The sparse columns: index into X and its non-zero (row, value)s.
    sparse: Vec<(usize, Vec<(usize, f64)>)>,
    /// The sparse columns' share of X·β per row (additive, multiplicative).
    sparse_additive: Vec<f64>,
    sparse_multiplicative: Vec<f64>,
    /// β of the dense columns split by mode (0 where the column has the other mode).
    beta_additive: Vec<f64>,
    beta_multiplicative: Vec<f64>,
    /// Σᵢ wᵢ·Xᵢⱼ and Σᵢ wᵢ·trendᵢ·Xᵢⱼ over the dense columns, with wᵢ = rᵢ/σ².
    dense_sum_additive: Vec<f64>,
    dense_sum_multiplicative: Vec<f64>,
    /// The same sums for every column of X.
    sum_additive: Vec<f64>,
    sum_multiplicative: Vec<f64>,
}

/// A column with at most one non-zero in this many rows is kept sparse.
const SPARSE_ONE_IN: usize = 4;

impl<'a> Objective<'a> {
    fn new(problem: &'a Problem<'a>) -> Self {
        let n = problem.t.len();
        let x = problem.x;
        let k = x.cols;
        let multiplicative: Vec<bool> = problem
            .modes
            .iter()
            .map(|m| *m == Mode::Multiplicative)
            .collect();
        let mut non_zeros = vec![0usize; k];
        for i in 0..n {
            for (count, &v) in non_zeros.iter_mut().zip(x.row(i)) {
                *count += usize::from(v != 0.0);
            }
        }
        let (sparse_columns, dense): (Vec<usize>, Vec<usize>) =
            (0..k).partition(|&j| non_zeros[j] * SPARSE_ONE_IN <= n);
        let mut dense_x = Vec::with_capacity(n * dense.len());
        for i in 0..n {
            let row = x.row(i);
            dense_x.extend(dense.iter().map(|&j| row[j]));
        }
        let sparse = sparse_columns
            .into_iter()
            .map(|j| {
                let entries = (0..n)
                    .filter_map(|i| {
                        let v = x.row(i)[j];
                        (v != 0.0).then_some((i, v))
                    })
                    .collect();
                (j, entries)
            })
            .collect();
        let d = dense.len();
        Self {
            problem,
            first_row: problem
                .changepoints_t
                .iter()
                .map(|&c| problem.t.partition_point(|&ti| ti < c))
                .collect(),
            inverse_variance: problem.prior_scales.iter().map(|s| 1.0 / (s * s)).collect(),
            any_multiplicative: multiplicative.iter().any(|&m| m),
            multiplicative,
            trend: vec![0.0; n],
            weight: vec![0.0; n],
            residual_weight: vec![0.0; n],
            dense,
            dense_x,
            sparse,
            sparse_additive: vec![0.0; n],
            sparse_multiplicative: vec![0.0; n],
            beta_additive: vec![0.0; d],
            beta_multiplicative: vec![0.0; d],
            dense_sum_additive: vec![0.0; d],
            dense_sum_multiplicative: vec![0.0; d],
            sum_additive: vec![0.0; k],
            sum_multiplicative: vec![0.0; k],
        }
    }

    fn eval(&mut self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let p = self.problem;
        let s = p.changepoints_t.len();
        let (k, m) = (theta[0], theta[1]);
        let delta = &theta[2..2 + s];
        let log_sigma = theta[2 + s];
        let beta = &theta[3 + s..];
        let variance = (2.0 * log_sigma).exp();

        // Trend, one sweep over the sorted rows.
        match p.growth {
            Growth::Flat => self.trend.fill(m),
            Growth::Linear => {
                let (mut rate, mut offset, mut j) = (k, m, 0);
                for (trend, &ti) in self.trend.iter_mut().zip(p.t) {
                    while j < s && ti >= p.changepoints_t[j] {
                        rate += delta[j];
                        offset -= p.changepoints_t[j] * delta[j];
                        j += 1;
                    }
                    *trend = rate * ti + offset;
                }
            }
        }
        for ((a, mu), &j) in self
            .beta_additive
            .iter_mut()
            .zip(self.beta_multiplicative.iter_mut())
            .zip(&self.dense)
        {
            (*a, *mu) = if self.multiplicative[j] {
                (0.0, beta[j])
            } else {
                (beta[j], 0.0)
            };
        }
        self.sparse_additive.fill(0.0);
        self.sparse_multiplicative.fill(0.0);
        for (j, entries) in &self.sparse {
            let b = beta[*j];
            let into = if self.multiplicative[*j] {
                &mut self.sparse_multiplicative
            } else {
                &mut self.sparse_additive
            };
            for &(i, v) in entries {
                into[i] += b * v;
            }
        }
        self.dense_sum_additive.fill(0.0);
        self.dense_sum_multiplicative.fill(0.0);
        let mut rss = 0.0;
        let any_mult = self.any_multiplicative;
        let d = self.dense.len();
        for (i, ((&yi, &trend), weight)) in
            p.y.iter()
                .zip(&self.trend)
                .zip(self.weight.iter_mut())
                .enumerate()
        {
            let row = &self.dense_x[i * d..(i + 1) * d];
            let additive = dot(row, &self.beta_additive) + self.sparse_additive[i];
            let factor = if any_mult {
                1.0 + dot(row, &self.beta_multiplicative) + self.sparse_multiplicative[i]
            } else {
                1.0
            };
            let r = yi - (trend * factor + additive);
            rss += r * r;
            let w = r / variance;
            *weight = w * factor;
            self.residual_weight[i] = w;
            for (acc, xv) in self.dense_sum_additive.iter_mut().zip(row) {
                *acc += w * xv;
            }
            if any_mult {
                let wt = w * trend;
                for (acc, xv) in self.dense_sum_multiplicative.iter_mut().zip(row) {
                    *acc += wt * xv;
                }
            }
        }
        for (pos, &j) in self.dense.iter().enumerate() {
            self.sum_additive[j] = self.dense_sum_additive[pos];
            self.sum_multiplicative[j] = self.dense_sum_multiplicative[pos];
        }
        for (j, entries) in &self.sparse {
            let (mut sa, mut sm) = (0.0, 0.0);
            for &(i, v) in entries {
                let wv = self.residual_weight[i] * v;
                sa += wv;
                sm += wv * self.trend[i];
            }
            self.sum_additive[*j] = sa;
            self.sum_multiplicative[*j] = if any_mult { sm } else { 0.0 };
        }
        let n = p.y.len() as f64;
        let abs_delta: f64 = delta.iter().map(|d| d.abs()).sum();
        let beta_penalty: f64 = beta
            .iter()
            .zip(&self.inverse_variance)
            .map(|(b, iv)| b * b * iv)
            .sum();
        let value = (k * k + m * m) / 50.0
            + abs_delta / p.tau
            + 2.0 * variance
            + 0.5 * beta_penalty
            + n * log_sigma
            + rss / (2.0 * variance);

        let sum_w: f64 = self.weight.iter().sum();
        match p.growth {
            Growth::Flat => {
                grad[0] = k / 25.0;
                grad[1] = -sum_w + m / 25.0;
                for (g, &d) in grad[2..2 + s].iter_mut().zip(delta) {
                    *g = sign(d) / p.tau;
                }
            }
            Growth::Linear => {
                let sum_wt: f64 = self.weight.iter().zip(p.t).map(|(w, t)| w * t).sum();
                grad[0] = -sum_wt + k / 25.0;
                grad[1] = -sum_w + m / 25.0;
                // ∂/∂δⱼ = −Σ_{tᵢ ≥ cⱼ} wᵢ(tᵢ − cⱼ) + sign(δⱼ)/τ, by suffix sums.
                let (mut acc_w, mut acc_wt, mut row) = (0.0, 0.0, p.t.len());
                for j in (0..s).rev() {
                    while row > self.first_row[j] {
                        row -= 1;
                        acc_w += self.weight[row];
                        acc_wt += self.weight[row] * p.t[row];
                    }
                    grad[2 + j] = -(acc_wt - p.changepoints_t[j] * acc_w) + sign(delta[j]) / p.tau;
                }
            }
        }
        grad[2 + s] = 4.0 * variance + n - rss / variance;
        for ((((g, &b), &iv), &mult), (&sa, &sm)) in grad[3 + s..]
            .iter_mut()
            .zip(beta)
            .zip(&self.inverse_variance)
            .zip(&self.multiplicative)
            .zip(self.sum_additive.iter().zip(&self.sum_multiplicative))
        {
            *g = -(if mult { sm } else { sa }) + b * iv;
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::Rng;

    /// A small problem with changepoints and both kinds of columns.
    fn problem_data(seed: u64) -> (Vec<f64>, Vec<f64>, Matrix, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let n = 30;
        let t: Vec<f64> = (0..n).map(|i| i as f64 / (n - 1) as f64).collect();
        let y: Vec<f64> = t
            .iter()
            .map(|&ti| 0.3 + 0.5 * ti + 0.1 * rng.normal())
            .collect();
        let mut x = Matrix::zeros(n, 3);
        for i in 0..n {
            for j in 0..2 {
                x.set(i, j, rng.normal());
            }
        }
        // The third column as a holiday's: non-zero on a few rows only (kept sparse).
        for i in [7, 8, 20] {
            x.set(i, 2, 1.0 + rng.normal().abs());
        }
        (t, y, x, vec![0.2, 0.5, 0.7])
    }

    fn check_gradient(growth: Growth, modes: &[Mode]) {
        let (t, y, x, cps) = problem_data(3);
        let scales = [10.0, 0.5, 2.0];
        let problem = Problem {
            growth,
            t: &t,
            y: &y,
            x: &x,
            changepoints_t: &cps,
            prior_scales: &scales,
            modes,
            tau: 0.05,
        };
        let mut objective = Objective::new(&problem);
        assert_eq!((objective.dense.len(), objective.sparse.len()), (2, 1));
        // Away from δ = 0, where |δ| has its kink.
        let theta = [0.4, 0.2, 0.03, -0.02, 0.05, -0.7, 0.1, -0.2, 0.3];
        let mut grad = vec![0.0; theta.len()];
        objective.eval(&theta, &mut grad);
        let mut scratch = vec![0.0; theta.len()];
        for i in 0..theta.len() {
            let h = 1e-6;
            let mut plus = theta;
            plus[i] += h;
            let mut minus = theta;
            minus[i] -= h;
            let numeric = (objective.eval(&plus, &mut scratch)
                - objective.eval(&minus, &mut scratch))
                / (2.0 * h);
            let tol = 1e-5 * grad[i].abs().max(1.0);
            assert!(
                (numeric - grad[i]).abs() < tol,
                "{growth:?} {modes:?} θ[{i}]: analytic {} numeric {numeric}",
                grad[i]
            );
        }
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let additive = [Mode::Additive; 3];
        let mixed = [Mode::Multiplicative, Mode::Additive, Mode::Multiplicative];
        check_gradient(Growth::Linear, &additive);
        check_gradient(Growth::Linear, &mixed);
        check_gradient(Growth::Flat, &mixed);
    }

    #[test]
    fn the_objective_is_prophets_log_posterior() {
        // Two rows (the changepoint c = 0.5 acts on the second only), one additive column.
        let (t, y) = (vec![0.0, 1.0], vec![0.1, 0.9]);
        let x = Matrix::from_rows(2, 1, vec![1.0, -1.0]).unwrap();
        let cps = [0.5];
        let problem = Problem {
            growth: Growth::Linear,
            t: &t,
            y: &y,
            x: &x,
            changepoints_t: &cps,
            prior_scales: &[2.0],
            modes: &[Mode::Additive],
            tau: 0.05,
        };
        let mut objective = Objective::new(&problem);
        let (k, m, d, sigma, b) = (0.6, 0.2, 0.1, 0.5, 0.05);
        let theta = [k, m, d, f64::ln(sigma), b];
        let mut grad = [0.0; 5];
        let value = objective.eval(&theta, &mut grad);
        // trend(0) = m, trend(1) = (k + d)·1 + m − 0.5·d.
        let r0: f64 = 0.1 - (m + b);
        let r1: f64 = 0.9 - ((k + d) + m - 0.5 * d - b);
        let expected = (k * k + m * m) / 50.0
            + d / 0.05
            + 2.0 * sigma * sigma
            + 0.5 * b * b / 4.0
            + 2.0 * sigma.ln()
            + (r0 * r0 + r1 * r1) / (2.0 * sigma * sigma);
        assert!((value - expected).abs() < 1e-12, "{value} vs {expected}");
    }

    #[test]
    fn sign_is_zero_at_zero() {
        assert_eq!(sign(0.0), 0.0);
        assert_eq!(sign(-0.0), 0.0);
        assert_eq!(sign(2.0), 1.0);
        assert_eq!(sign(-1e-300), -1.0);
    }
}
