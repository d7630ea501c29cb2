//! Linear regression and standardisation, as scikit-learn 1.9 does them:
//!
//! - [`Scaler`] is `StandardScaler`: per-column mean and population standard deviation; a
//!   column that is constant (by sklearn's own test on the computed variance) gets scale 1.0.
//! - [`ols`] is `LinearRegression` and [`ridge`] is `Ridge` (objective
//!   `‖y − Xw‖² + α‖w‖²`, intercept not penalised): both centre `X` and `y` when an intercept
//!   is fitted, then solve the normal equations `(XᵀX + αI) w = Xᵀy` by Cholesky, after
//!   scaling them to a unit diagonal (Jacobi equilibration). Deliberate difference: sklearn's
//!   `LinearRegression` returns a minimum-norm solution (`lstsq`) for a rank-deficient design;
//!   [`ols`] (and [`ridge`] with `alpha = 0`) instead returns [`LinearError::Singular`], naming
//!   the first column that is (to a relative pivot of 1e-10, i.e. an R² above 1 − 1e-10
//!   against the columns before it) constant or a combination of earlier columns, because a
//!   non-unique fit is almost always a modelling mistake the user should see.
//! - [`lasso`] and [`elastic_net`] are `Lasso` and `ElasticNet` (objective
//!   `(1/(2n))‖y − Xw‖² + α·l1_ratio·‖w‖₁ + ½·α·(1 − l1_ratio)·‖w‖²`), solved by sklearn's
//!   cyclic `enet_coordinate_descent` (`_cd_fast.pyx`, 1.9): the same penalties scaled by
//!   `n`, the same gap-safe screening, the same stopping rule (the largest coordinate update
//!   relative to the largest |w| at most `tol`, then the duality gap at most
//!   `tol · ‖y_c‖²`), the same iteration count. The only difference is the order of
//!   floating-point sums (no BLAS), so coefficients agree to rounding.
//! - [`LinearModel`] is the fitted model (intercept and coefficients), stored as JSON
//!   `{"intercept": f64, "coef": [f64, ...]}`.
//!
//! Logistic regression lives in `logistic.rs` and shares [`LinearError`].

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Matrix, dot};

/// What is wrong with a linear-model request, in the user's terms.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LinearError {
    #[error("there are no rows to train on")]
    NoRows,
    #[error("the features have {rows} rows but there are {targets} target values")]
    LengthMismatch { rows: usize, targets: usize },
    #[error("column {column} holds a non-finite value ({value}) at row {row}")]
    NonFiniteFeature {
        row: usize,
        column: usize,
        value: f64,
    },
    #[error("the target holds a non-finite value ({value}) at row {row}")]
    NonFiniteTarget { row: usize, value: f64 },
    #[error("alpha must be a finite number ≥ 0, got {0}")]
    BadAlpha(f64),
    #[error("l1_ratio must be between 0 and 1, got {0}")]
    BadL1Ratio(f64),
    #[error("tol must be a finite number ≥ 0, got {0}")]
    BadTol(f64),
    #[error("max_iter must be at least 1")]
    ZeroMaxIter,
    #[error(
        "column {column} is constant, all zero or (nearly) a linear combination of the columns \
         before it (and of the intercept, when one is fitted), so the least-squares fit is not \
         unique: drop that column, or use ridge with alpha > 0"
    )]
    Singular { column: usize },
    #[error("C must be a number > 0, got {0}")]
    BadC(f64),
    #[error("every label is class {class}: logistic regression needs at least two classes")]
    SingleClass { class: u32 },
    #[error(
        "class {class} has no rows although the labels go up to {max}: number the classes \
         0..k without gaps"
    )]
    EmptyClass { class: u32, max: u32 },
}

/// The rows of `x` as slices (also when it has no columns).
pub(crate) fn rows(x: &Matrix) -> impl Iterator<Item = &[f64]> {
    (0..x.rows).map(move |i| x.row(i))
}

/// At least one row, every value finite.
pub(crate) fn check_features(x: &Matrix) -> Result<(), LinearError> {
    if x.rows == 0 {
        return Err(LinearError::NoRows);
    }
    match x.data.iter().position(|v| !v.is_finite()) {
        Some(pos) => Err(LinearError::NonFiniteFeature {
            row: pos / x.cols,
            column: pos % x.cols,
            value: x.data[pos],
        }),
        None => Ok(()),
    }
}

/// One finite target per row.
fn check_target(x: &Matrix, y: &[f64]) -> Result<(), LinearError> {
    if y.len() != x.rows {
        return Err(LinearError::LengthMismatch {
            rows: x.rows,
            targets: y.len(),
        });
    }
    match y.iter().position(|v| !v.is_finite()) {
        Some(row) => Err(LinearError::NonFiniteTarget { row, value: y[row] }),
        None => Ok(()),
    }
}

fn check_alpha(alpha: f64) -> Result<(), LinearError> {
    if alpha.is_finite() && alpha >= 0.0 {
        Ok(())
    } else {
        Err(LinearError::BadAlpha(alpha))
    }
}

/// Standardisation as scikit-learn's `StandardScaler`: `(x − mean) / scale`, with `scale` the
/// population standard deviation, or 1.0 for a constant column. Stored as JSON
/// `{"mean": [...], "scale": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

impl Scaler {
    /// Learns each column's mean and scale (sklearn's two-pass variance with its correction
    /// term, and its constant-column test `var ≤ n·ε·var + (n·mean·ε)²`).
    pub fn fit(x: &Matrix) -> Result<Self, LinearError> {
        check_features(x)?;
        let n = x.rows as f64;
        let mut mean = vec![0.0; x.cols];
        for row in rows(x) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        for m in &mut mean {
            *m /= n;
        }
        let mut squares = vec![0.0; x.cols];
        let mut correction = vec![0.0; x.cols];
        for row in rows(x) {
            for ((s, c), (v, m)) in squares
                .iter_mut()
                .zip(&mut correction)
                .zip(row.iter().zip(&mean))
            {
                let t = v - m;
                *s += t * t;
                *c += t;
            }
        }
        let eps = f64::EPSILON;
        let scale = squares
            .iter()
            .zip(&correction)
            .zip(&mean)
            .map(|((s, c), m)| {
                let var = (s - c * c / n) / n;
                let bound = n * eps * var + (n * m * eps).powi(2);
                if var <= bound { 1.0 } else { var.sqrt() }
            })
            .collect();
        Ok(Self { mean, scale })
    }

    /// `(x − mean) / scale`. Panics when `x` has another number of columns (a programming
    /// error: the caller builds `x` from the columns the scaler was fitted on).
    pub fn transform(&self, x: &Matrix) -> Matrix {
        assert_eq!(x.cols, self.mean.len(), "scaler column count");
        let mut out = x.clone();
        for i in 0..out.rows {
            for ((v, m), s) in out.row_mut(i).iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = (*v - m) / s;
            }
        }
        out
    }

    /// `x · scale + mean`, the inverse of [`Scaler::transform`].
    pub fn inverse_transform(&self, x: &Matrix) -> Matrix {
        assert_eq!(x.cols, self.mean.len(), "scaler column count");
        let mut out = x.clone();
        for i in 0..out.rows {
            for ((v, m), s) in out.row_mut(i).iter_mut().zip(&self.mean).zip(&self.scale) {
                *v = *v * s + m;
            }
        }
        out
    }

    /// The model fitted on standardised features, rewritten for the raw features: the same
    /// predictions without the scaler (`coef / scale`, intercept minus their effect at the
    /// mean).
    pub fn unscale(&self, model: &LinearModel) -> LinearModel {
        assert_eq!(model.coef.len(), self.mean.len(), "scaler column count");
        let coef: Vec<f64> = model
            .coef
            .iter()
            .zip(&self.scale)
            .map(|(c, s)| c / s)
            .collect();
        LinearModel {
            intercept: model.intercept - dot(&coef, &self.mean),
            coef,
        }
    }
}

/// A fitted linear model: `prediction = intercept + x · coef`. Stored as JSON
/// `{"intercept": f64, "coef": [f64, ...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub intercept: f64,
    pub coef: Vec<f64>,
}

impl LinearModel {
    /// One prediction per row. Panics when `x` does not have one column per coefficient (a
    /// programming error); a non-finite feature gives a non-finite prediction.
    pub fn predict(&self, x: &Matrix) -> Vec<f64> {
        let mut out = x.mul_vec(&self.coef);
        for v in &mut out {
            *v += self.intercept;
        }
        out
    }
}

/// Column means of `x` and the mean of `y` when an intercept is fitted, zeros otherwise.
fn offsets(x: &Matrix, y: &[f64], fit_intercept: bool) -> (Vec<f64>, f64) {
    if !fit_intercept {
        return (vec![0.0; x.cols], 0.0);
    }
    let n = x.rows as f64;
    let mut mean = vec![0.0; x.cols];
    for row in rows(x) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    for m in &mut mean {
        *m /= n;
    }
    (mean, y.iter().sum::<f64>() / n)
}

/// Ordinary least squares, as scikit-learn's `LinearRegression`, except that a
/// rank-deficient design is an error ([`LinearError::Singular`]) rather than a minimum-norm
/// solution.
pub fn ols(x: &Matrix, y: &[f64], fit_intercept: bool) -> Result<LinearModel, LinearError> {
    ridge(x, y, 0.0, fit_intercept)
}

/// Ridge regression as scikit-learn's `Ridge(alpha, solver="cholesky")`: minimises
/// `‖y − Xw − b‖² + alpha·‖w‖²`, the intercept `b` not penalised. `alpha = 0` is [`ols`].
pub fn ridge(
    x: &Matrix,
    y: &[f64],
    alpha: f64,
    fit_intercept: bool,
) -> Result<LinearModel, LinearError> {
    check_features(x)?;
    check_target(x, y)?;
    check_alpha(alpha)?;
    let p = x.cols;
    let (x_mean, y_mean) = offsets(x, y, fit_intercept);
    let mut gram = vec![0.0; p * p];
    let mut xty = vec![0.0; p];
    let mut centred = vec![0.0; p];
    for (row, yi) in rows(x).zip(y) {
        for ((c, v), m) in centred.iter_mut().zip(row).zip(&x_mean) {
            *c = v - m;
        }
        let yc = yi - y_mean;
        for (j, &cj) in centred.iter().enumerate() {
            xty[j] += cj * yc;
            for (g, ck) in gram[j * p + j..(j + 1) * p].iter_mut().zip(&centred[j..]) {
                *g += cj * ck;
            }
        }
    }
    for j in 0..p {
        gram[j * p + j] += alpha;
        for k in 0..j {
            gram[j * p + k] = gram[k * p + j];
        }
    }
    let min_pivot = if alpha == 0.0 { 1e-10 } else { 0.0 };
    let coef =
        solve_spd(gram, xty, p, min_pivot).map_err(|column| LinearError::Singular { column })?;
    let intercept = if fit_intercept {
        y_mean - dot(&x_mean, &coef)
    } else {
        0.0
    };
    Ok(LinearModel { intercept, coef })
}

/// Solves `a · w = b` for a symmetric `p × p` matrix `a` (row-major, both triangles filled):
/// scales it to a unit diagonal, then Cholesky `LLᵀ` row by row. A pivot at most `min_pivot`
/// (relative, thanks to the scaling) means column `Err(j)` depends on the columns before it.
fn solve_spd(
    mut a: Vec<f64>,
    mut b: Vec<f64>,
    p: usize,
    min_pivot: f64,
) -> Result<Vec<f64>, usize> {
    if p == 0 {
        return Ok(Vec::new());
    }
    let mut d = Vec::with_capacity(p);
    for j in 0..p {
        let ajj = a[j * p + j];
        if ajj <= 0.0 || !ajj.is_finite() {
            return Err(j);
        }
        d.push(1.0 / ajj.sqrt());
    }
    for (row, di) in a.chunks_exact_mut(p).zip(&d) {
        for (v, dj) in row.iter_mut().zip(&d) {
            *v *= di * dj;
        }
    }
    for (bi, di) in b.iter_mut().zip(&d) {
        *bi *= di;
    }
    // Cholesky–Banachiewicz: row i of L from the rows before it.
    for i in 0..p {
        let (done, rest) = a.split_at_mut(i * p);
        let row_i = &mut rest[..p];
        for j in 0..i {
            let row_j = &done[j * p..j * p + p];
            let s = row_i[j] - dot(&row_i[..j], &row_j[..j]);
            row_i[j] = s / row_j[j];
        }
        let s = row_i[i] - dot(&row_i[..i], &row_i[..i]);
        if s <= min_pivot || !s.is_finite() {
            return Err(i);
        }
        row_i[i] = s.sqrt();
    }
    // L z = b, then Lᵀ w = z, in place in b.
    for i in 0..p {
        let s = b[i] - dot(&a[i * p..i * p + i], &b[..i]);
        b[i] = s / a[i * p + i];
    }
    for i in (0..p).rev() {
        let s: f64 = (i + 1..p).map(|k| a[k * p + i] * b[k]).sum();
        b[i] = (b[i] - s) / a[i * p + i];
    }
    for (bi, di) in b.iter_mut().zip(&d) {
        *bi *= di;
    }
    Ok(b)
}

/// What coordinate descent reached.
#[derive(Debug, Clone, PartialEq)]
pub struct CdFit {
    pub model: LinearModel,
    /// Passes over the coordinates (sklearn's `n_iter_`; 0 when the start was optimal).
    pub iterations: usize,
    /// The last duality gap computed, divided by `n` (sklearn's `dual_gap_`).
    pub dual_gap: f64,
    /// Whether the gap reached the tolerance before `max_iter` (sklearn warns otherwise).
    pub converged: bool,
}

/// Lasso as scikit-learn's `Lasso(alpha, fit_intercept, tol, max_iter)`: elastic net with
/// `l1_ratio = 1`. sklearn's defaults are `tol = 1e-4`, `max_iter = 1000`.
pub fn lasso(
    x: &Matrix,
    y: &[f64],
    alpha: f64,
    fit_intercept: bool,
    tol: f64,
    max_iter: usize,
) -> Result<CdFit, LinearError> {
    elastic_net(x, y, alpha, 1.0, fit_intercept, tol, max_iter)
}

/// Elastic net as scikit-learn's `ElasticNet(alpha, l1_ratio, fit_intercept, tol, max_iter)`
/// with cyclic selection: minimises `(1/(2n))‖y − Xw − b‖² + alpha·l1_ratio·‖w‖₁ +
/// ½·alpha·(1 − l1_ratio)·‖w‖²`. sklearn's defaults are `l1_ratio = 0.5`, `tol = 1e-4`,
/// `max_iter = 1000`. Not converging within `max_iter` is not an error: see
/// [`CdFit::converged`].
pub fn elastic_net(
    x: &Matrix,
    y: &[f64],
    alpha: f64,
    l1_ratio: f64,
    fit_intercept: bool,
    tol: f64,
    max_iter: usize,
) -> Result<CdFit, LinearError> {
    check_features(x)?;
    check_target(x, y)?;
    check_alpha(alpha)?;
    if !(0.0..=1.0).contains(&l1_ratio) {
        return Err(LinearError::BadL1Ratio(l1_ratio));
    }
    if !tol.is_finite() || tol < 0.0 {
        return Err(LinearError::BadTol(tol));
    }
    if max_iter == 0 {
        return Err(LinearError::ZeroMaxIter);
    }
    let (n, p) = (x.rows, x.cols);
    let (x_mean, y_mean) = offsets(x, y, fit_intercept);
    // Column-major, centred: coordinate descent walks columns.
    let mut xc = vec![0.0; n * p];
    for (i, row) in rows(x).enumerate() {
        for (j, (v, m)) in row.iter().zip(&x_mean).enumerate() {
            xc[j * n + i] = v - m;
        }
    }
    let yc: Vec<f64> = y.iter().map(|v| v - y_mean).collect();
    let nf = n as f64;
    let cd = Cd {
        x: &xc,
        n,
        y: &yc,
        alpha: alpha * l1_ratio * nf,
        beta: alpha * (1.0 - l1_ratio) * nf,
    }
    .run(p, max_iter, tol);
    let intercept = if fit_intercept {
        y_mean - dot(&x_mean, &cd.w)
    } else {
        0.0
    };
    Ok(CdFit {
        model: LinearModel {
            intercept,
            coef: cd.w,
        },
        iterations: cd.iterations,
        dual_gap: cd.gap / nf,
        converged: cd.converged,
    })
}

/// sklearn's `enet_coordinate_descent` problem: minimise
/// `½‖y − Xw‖² + alpha‖w‖₁ + ½·beta‖w‖²` over a column-major `x` with `n` rows.
struct Cd<'a> {
    x: &'a [f64],
    n: usize,
    y: &'a [f64],
    alpha: f64,
    beta: f64,
}

struct CdOutcome {
    w: Vec<f64>,
    gap: f64,
    iterations: usize,
    converged: bool,
}

fn axpy(r: &mut [f64], a: f64, x: &[f64]) {
    for (ri, xi) in r.iter_mut().zip(x) {
        *ri += a * xi;
    }
}

impl Cd<'_> {
    fn col(&self, j: usize) -> &[f64] {
        &self.x[j * self.n..(j + 1) * self.n]
    }

    /// sklearn's `gap_enet`: the duality gap at `w` with residuals `r`, writing
    /// `Xᵀr − beta·w` into `xta`; returns the gap and the dual norm of `xta`.
    fn gap(&self, w: &[f64], r: &[f64], xta: &mut [f64]) -> (f64, f64) {
        let (alpha, beta) = (self.alpha, self.beta);
        let w_l2 = if beta > 0.0 { dot(w, w) } else { 0.0 };
        let r_norm2 = dot(r, r);
        let ry = if alpha == 0.0 && beta == 0.0 {
            0.0
        } else {
            dot(r, self.y)
        };
        for (j, v) in xta.iter_mut().enumerate() {
            *v = dot(self.col(j), r);
        }
        if alpha == 0.0 {
            let dual_norm = dot(xta, xta);
            if beta == 0.0 {
                // Least squares: no dual gap; the first-order condition ‖Xᵀr‖² instead.
                return (dual_norm, dual_norm);
            }
            // Ridge: formulation B.
            let gap = r_norm2 + 0.5 * beta * w_l2 - ry + dual_norm / (2.0 * beta);
            return (gap, dual_norm);
        }
        for (v, wj) in xta.iter_mut().zip(w) {
            *v -= beta * wj;
        }
        let dual_norm = xta.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let l1: f64 = w.iter().map(|v| v.abs()).sum();
        // Formulation A.
        let primal = 0.5 * (r_norm2 + beta * w_l2) + alpha * l1;
        let scale = if dual_norm > alpha {
            alpha / dual_norm
        } else {
            1.0
        };
        let dual = -0.5 * scale * scale * (r_norm2 + beta * w_l2) + scale * ry;
        (primal - dual, dual_norm)
    }

    /// Gap-safe screening (sklearn's Eq. 11 of arXiv:1802.07481): whether feature `j` may
    /// still be non-zero at the optimum.
    fn keeps(&self, xta_j: f64, norm2_j: f64, dual_norm: f64, gap: f64) -> bool {
        let xj_theta = xta_j / self.alpha.max(dual_norm);
        let d_j = (1.0 - xj_theta.abs()) / (norm2_j + self.beta).sqrt();
        d_j <= (2.0 * gap).sqrt() / self.alpha
    }

    /// Rebuilds the active set from the features not yet excluded, zeroing (and removing
    /// from the residuals) those screened out.
    fn screen(&self, s: &mut CdState, norm2: &[f64], dual_norm: f64, gap: f64) {
        let CdState {
            w,
            r,
            xta,
            active,
            excluded,
        } = s;
        active.clear();
        for j in 0..w.len() {
            if excluded[j] {
                continue;
            }
            if self.keeps(xta[j], norm2[j], dual_norm, gap) {
                active.push(j);
            } else {
                if w[j] != 0.0 {
                    axpy(r, w[j], self.col(j));
                    w[j] = 0.0;
                }
                excluded[j] = true;
            }
        }
    }

    fn run(&self, p: usize, max_iter: usize, tol: f64) -> CdOutcome {
        let norm2: Vec<f64> = (0..p).map(|j| dot(self.col(j), self.col(j))).collect();
        let screening = self.alpha != 0.0;
        let mut s = CdState {
            w: vec![0.0; p],
            r: self.y.to_vec(),
            xta: vec![0.0; p],
            active: (0..p).collect(),
            // A zero column is excluded once and for all (its coefficient stays 0).
            excluded: norm2.iter().map(|&v| screening && v == 0.0).collect(),
        };
        let d_w_tol = tol;
        let tol = tol * dot(self.y, self.y);

        let (mut gap, mut dual_norm) = self.gap(&s.w, &s.r, &mut s.xta);
        if gap <= tol {
            return CdOutcome {
                w: s.w,
                gap,
                iterations: 0,
                converged: true,
            };
        }
        if screening {
            self.screen(&mut s, &norm2, dual_norm, gap);
        }

        let mut last = 0;
        let mut converged = false;
        for n_iter in 0..max_iter {
            last = n_iter;
            let mut w_max = 0.0_f64;
            let mut d_w_max = 0.0_f64;
            for &j in &s.active {
                if norm2[j] == 0.0 {
                    continue;
                }
                let xj = self.col(j);
                let w_j = s.w[j];
                let tmp = dot(xj, &s.r) + w_j * norm2[j];
                let shrunk = tmp.abs() - self.alpha;
                let new = if shrunk > 0.0 {
                    shrunk.copysign(tmp) / (norm2[j] + self.beta)
                } else {
                    0.0
                };
                s.w[j] = new;
                if new != w_j {
                    axpy(&mut s.r, w_j - new, xj);
                }
                d_w_max = d_w_max.max((new - w_j).abs());
                w_max = w_max.max(new.abs());
            }
            if w_max == 0.0 || d_w_max / w_max <= d_w_tol || n_iter == max_iter - 1 {
                (gap, dual_norm) = self.gap(&s.w, &s.r, &mut s.xta);
                if gap <= tol {
                    converged = true;
                    break;
                }
                if screening {
                    self.screen(&mut s, &norm2, dual_norm, gap);
                }
            }
        }
        CdOutcome {
            w: s.w,
            gap,
            iterations: last + 1,
            converged,
        }
    }
}

/// Coordinate descent's working state: coefficients, residuals `y − Xw`, `Xᵀr − beta·w`
/// from the last gap check, the features still iterated over, and those screened out.
struct CdState {
    w: Vec<f64>,
    r: Vec<f64>,
    xta: Vec<f64>,
    active: Vec<usize>,
    excluded: Vec<bool>,
}

#[cfg(test)]
#[path = "linear_tests.rs"]
mod tests;
