//! Logistic regression as scikit-learn 1.9's `LogisticRegression(C=1.0)` with its default
//! L2 penalty and `lbfgs` solver: binary (one coefficient vector, the sigmoid) for two
//! classes, multinomial (one vector per class, the softmax) for three or more. The intercept
//! is not penalised. Like sklearn, it minimises the mean log-loss plus `‖w‖² / (2·C·n)`,
//! which has the same minimiser as `C·Σ logloss + ½‖w‖²` and is better scaled for the
//! optimiser ([`super::lbfgs`], from all-zero coefficients, stopping on a relative decrease
//! of `64·ε` as sklearn's `ftol`).
//!
//! Classes are the labels `0..k` (`u32`), every one present; the caller keeps their names.
//!
//! Deliberate differences: the defaults converge further than sklearn's (`max_iter = 1000`,
//! gradient tolerance `1e-8` relative to the largest coefficient, against sklearn's `100` and
//! `1e-4`), so results equal sklearn's run to convergence; and the multinomial intercepts,
//! which the likelihood fixes only up to a common constant, are centred to sum to zero (as
//! sklearn's own starting point and updates leave them).
//!
//! The fitted [`LogisticModel`] is stored as JSON
//! `{"n_classes": k, "coef": [[f64, ...], ...], "intercept": [f64, ...]}` with one row (class
//! 1 against class 0) when `k = 2` and `k` rows otherwise, as sklearn's `coef_`.

use serde::{Deserialize, Serialize};

use super::lbfgs;
use super::linear::{LinearError, check_features, rows};
use super::{Matrix, dot};

/// How to fit.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticOptions {
    /// Inverse regularisation strength (sklearn's `C`, > 0; `f64::INFINITY` for none).
    pub c: f64,
    pub fit_intercept: bool,
    /// The most L-BFGS iterations.
    pub max_iter: usize,
    /// Gradient tolerance: stop when the largest gradient component is at most
    /// `tol · max(1, largest |coefficient|)`.
    pub tol: f64,
}

impl Default for LogisticOptions {
    fn default() -> Self {
        Self {
            c: 1.0,
            fit_intercept: true,
            max_iter: 1000,
            tol: 1e-8,
        }
    }
}

/// A fitted logistic regression (see the module doc for its JSON form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    pub n_classes: usize,
    /// One row per class (one row in all for two classes: class 1's log-odds).
    pub coef: Vec<Vec<f64>>,
    pub intercept: Vec<f64>,
}

/// The model and how the optimiser ended.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticFit {
    pub model: LogisticModel,
    pub iterations: usize,
    /// Whether L-BFGS met a convergence criterion within `max_iter`.
    pub converged: bool,
    /// The minimised objective: mean log-loss + `‖w‖² / (2·C·n)`.
    pub objective: f64,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + eᶻ)` without overflow.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// Softmax in place; returns nothing, `z` holds the probabilities afterwards.
fn softmax(z: &mut [f64]) {
    let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    for v in z.iter_mut() {
        *v /= sum;
    }
}

impl LogisticModel {
    /// Number of feature columns the model expects.
    pub fn n_features(&self) -> usize {
        self.coef.first().map_or(0, Vec::len)
    }

    /// Class probabilities, one row per row of `x` and one column per class. Panics when `x`
    /// does not have [`LogisticModel::n_features`] columns (a programming error).
    pub fn predict_proba(&self, x: &Matrix) -> Matrix {
        assert_eq!(x.cols, self.n_features(), "logistic model column count");
        let k = self.n_classes;
        let mut out = Matrix::zeros(x.rows, k);
        for i in 0..x.rows {
            let row = x.row(i);
            let o = out.row_mut(i);
            if self.coef.len() == 1 {
                let p = sigmoid(dot(row, &self.coef[0]) + self.intercept[0]);
                o[0] = 1.0 - p;
                o[1] = p;
            } else {
                for (v, (w, b)) in o.iter_mut().zip(self.coef.iter().zip(&self.intercept)) {
                    *v = dot(row, w) + b;
                }
                softmax(o);
            }
        }
        out
    }

    /// The most probable class of each row (the first on a tie, as sklearn's argmax).
    pub fn predict(&self, x: &Matrix) -> Vec<u32> {
        assert_eq!(x.cols, self.n_features(), "logistic model column count");
        rows(x)
            .map(|row| {
                if self.coef.len() == 1 {
                    u32::from(dot(row, &self.coef[0]) + self.intercept[0] > 0.0)
                } else {
                    let mut best = (0, f64::NEG_INFINITY);
                    for (c, (w, b)) in self.coef.iter().zip(&self.intercept).enumerate() {
                        let z = dot(row, w) + b;
                        if z > best.1 {
                            best = (c, z);
                        }
                    }
                    best.0 as u32
                }
            })
            .collect()
    }
}

/// The data and penalty of one fit; parameters are laid out class after class, each the
/// coefficients then (when fitted) the intercept.
struct Problem<'a> {
    x: &'a Matrix,
    y: &'a [u32],
    fit_intercept: bool,
    /// `1 / n`.
    inv_n: f64,
    /// `1 / (C·n)`, sklearn's `l2_reg_strength`.
    l2: f64,
}

impl Problem<'_> {
    fn width(&self) -> usize {
        self.x.cols + usize::from(self.fit_intercept)
    }

    /// Adds the penalty to the mean loss and the gradient (the intercepts excluded).
    fn finish(&self, w: &[f64], g: &mut [f64], loss: f64) -> f64 {
        let p = self.x.cols;
        let mut penalty = 0.0;
        for v in g.iter_mut() {
            *v *= self.inv_n;
        }
        for (wc, gc) in w
            .chunks_exact(self.width())
            .zip(g.chunks_exact_mut(self.width()))
        {
            penalty += dot(&wc[..p], &wc[..p]);
            for (gj, wj) in gc[..p].iter_mut().zip(&wc[..p]) {
                *gj += self.l2 * wj;
            }
        }
        loss * self.inv_n + 0.5 * self.l2 * penalty
    }

    /// Binary: mean of `ln(1 + eᶻ) − y·z` with `z = x·w + b`, and its gradient.
    fn binary(&self, w: &[f64], g: &mut [f64]) -> f64 {
        let p = self.x.cols;
        let (coef, rest) = w.split_at(p);
        let b = rest.first().copied().unwrap_or(0.0);
        g.fill(0.0);
        let mut loss = 0.0;
        for (row, &label) in rows(self.x).zip(self.y) {
            let z = dot(row, coef) + b;
            let t = f64::from(label);
            loss += softplus(z) - t * z;
            let d = sigmoid(z) - t;
            let (gc, gb) = g.split_at_mut(p);
            for (gj, xj) in gc.iter_mut().zip(row) {
                *gj += d * xj;
            }
            if let Some(gb) = gb.first_mut() {
                *gb += d;
            }
        }
        self.finish(w, g, loss)
    }

    /// Multinomial: mean of `logsumexp(z) − z_y`, and its gradient; `z` is scratch (k long).
    fn multinomial(&self, w: &[f64], g: &mut [f64], z: &mut [f64]) -> f64 {
        let p = self.x.cols;
        let width = self.width();
        g.fill(0.0);
        let mut loss = 0.0;
        for (row, &label) in rows(self.x).zip(self.y) {
            for (zc, wc) in z.iter_mut().zip(w.chunks_exact(width)) {
                *zc = dot(row, &wc[..p]) + wc[p..].first().copied().unwrap_or(0.0);
            }
            let label = label as usize;
            let z_y = z[label];
            let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let mut sum = 0.0;
            for v in z.iter_mut() {
                *v = (*v - m).exp();
                sum += *v;
            }
            loss += m + sum.ln() - z_y;
            for (c, (gc, e)) in g.chunks_exact_mut(width).zip(z.iter()).enumerate() {
                let d = e / sum - if c == label { 1.0 } else { 0.0 };
                let (gw, gb) = gc.split_at_mut(p);
                for (gj, xj) in gw.iter_mut().zip(row) {
                    *gj += d * xj;
                }
                if let Some(gb) = gb.first_mut() {
                    *gb += d;
                }
            }
        }
        self.finish(w, g, loss)
    }
}

/// The number of classes, when the labels are `0..k` with every class present and `k ≥ 2`.
fn classes(y: &[u32]) -> Result<usize, LinearError> {
    let mut seen = y.to_vec();
    seen.sort_unstable();
    seen.dedup();
    let max = seen.last().copied().unwrap_or(0);
    if seen.len() < 2 {
        return Err(LinearError::SingleClass { class: max });
    }
    for (i, &c) in seen.iter().enumerate() {
        if c as usize != i {
            return Err(LinearError::EmptyClass {
                class: i as u32,
                max,
            });
        }
    }
    Ok(seen.len())
}

/// Fits a logistic regression of the labels `y` (classes `0..k`, all present, `k ≥ 2`) on
/// the rows of `x`.
pub fn logistic(x: &Matrix, y: &[u32], opts: &LogisticOptions) -> Result<LogisticFit, LinearError> {
    check_features(x)?;
    if y.len() != x.rows {
        return Err(LinearError::LengthMismatch {
            rows: x.rows,
            targets: y.len(),
        });
    }
    if opts.c.is_nan() || opts.c <= 0.0 {
        return Err(LinearError::BadC(opts.c));
    }
    if !opts.tol.is_finite() || opts.tol < 0.0 {
        return Err(LinearError::BadTol(opts.tol));
    }
    if opts.max_iter == 0 {
        return Err(LinearError::ZeroMaxIter);
    }
    let k = classes(y)?;
    let n = x.rows as f64;
    let problem = Problem {
        x,
        y,
        fit_intercept: opts.fit_intercept,
        inv_n: 1.0 / n,
        l2: 1.0 / (opts.c * n),
    };
    let p = x.cols;
    let width = problem.width();
    let blocks = if k == 2 { 1 } else { k };
    if width == 0 {
        // Nothing to fit: no feature and no intercept.
        return Ok(LogisticFit {
            model: LogisticModel {
                n_classes: k,
                coef: vec![Vec::new(); blocks],
                intercept: vec![0.0; blocks],
            },
            iterations: 0,
            converged: true,
            // The mean log-loss of uniform probabilities.
            objective: (k as f64).ln(),
        });
    }
    let lopts = lbfgs::Options {
        max_iter: opts.max_iter,
        tol_grad: opts.tol,
        tol_rel_f: 64.0 * f64::EPSILON,
        ..lbfgs::Options::default()
    };
    let x0 = vec![0.0; blocks * width];
    let out = if k == 2 {
        lbfgs::minimize(|w, g| problem.binary(w, g), x0, &lopts)
    } else {
        let mut z = vec![0.0; k];
        lbfgs::minimize(|w, g| problem.multinomial(w, g, &mut z), x0, &lopts)
    };
    let coef: Vec<Vec<f64>> = out.x.chunks_exact(width).map(|c| c[..p].to_vec()).collect();
    let mut intercept: Vec<f64> = out
        .x
        .chunks_exact(width)
        .map(|c| c[p..].first().copied().unwrap_or(0.0))
        .collect();
    if blocks > 1 && opts.fit_intercept {
        let mean = intercept.iter().sum::<f64>() / blocks as f64;
        for b in &mut intercept {
            *b -= mean;
        }
    }
    Ok(LogisticFit {
        model: LogisticModel {
            n_classes: k,
            coef,
            intercept,
        },
        iterations: out.iterations,
        converged: out.converged,
        objective: out.value,
    })
}

#[cfg(test)]
#[path = "logistic_tests.rs"]
mod tests;
