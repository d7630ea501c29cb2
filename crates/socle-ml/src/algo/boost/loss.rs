//! The losses of histogram gradient boosting, as scikit-learn 1.9's `_loss` module
//! (`loss.py`, `_loss.pyx.tp`, `link.py`), with the same formulas step by step:
//!
//! - squared error (`HalfSquaredError`): loss `½(y − raw)²`, gradient `raw − y`, constant
//!   hessian 1; baseline the mean of `y`;
//! - binary log loss (`HalfBinomialLoss`): loss `log(1 + e^raw) − y·raw`, gradient
//!   `expit(raw) − y`, hessian `p(1 − p)`; baseline the log-odds of the mean of `y`, clipped
//!   to `[10ε, 1 − 10ε]`;
//! - multinomial log loss (`HalfMultinomialLoss`): one raw score per class, softmax;
//!   gradient `p_k − [y = k]`, hessian `p_k(1 − p_k)`; baseline the symmetric multinomial
//!   logit of the class frequencies (clipped to `[ε, 1 − ε]`).
//!
//! Gradients and hessians are stored as `f32`, as sklearn. Means use NumPy's pairwise
//! summation ([`numpy_sum`]) so that the baselines are sklearn's to the bit.

use serde::{Deserialize, Serialize};

/// What a booster predicts, and so which loss it minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Objective {
    /// Regression with the squared error.
    SquaredError,
    /// Two classes, 0 and 1, with the log loss: one tree per iteration.
    BinaryLogLoss,
    /// `n_classes ≥ 3` classes with the multinomial log loss: one tree per class per iteration.
    MultinomialLogLoss { n_classes: usize },
}

impl Objective {
    /// Trees grown per iteration (raw scores per sample).
    pub fn n_trees_per_iteration(self) -> usize {
        match self {
            Self::SquaredError | Self::BinaryLogLoss => 1,
            Self::MultinomialLogLoss { n_classes } => n_classes,
        }
    }

    /// Classes predicted (0 for a regression).
    pub fn n_classes(self) -> usize {
        match self {
            Self::SquaredError => 0,
            Self::BinaryLogLoss => 2,
            Self::MultinomialLogLoss { n_classes } => n_classes,
        }
    }

    /// Whether the hessian is the same for every sample (then histograms skip it).
    pub(crate) fn constant_hessian(self) -> bool {
        matches!(self, Self::SquaredError)
    }

    /// The raw scores of the best constant model (sklearn's `fit_intercept_only`); `y` holds
    /// targets or class indices as `f64`.
    pub(crate) fn baseline(self, y: &[f64]) -> Vec<f64> {
        let n = y.len() as f64;
        match self {
            Self::SquaredError => vec![numpy_sum(y) / n],
            Self::BinaryLogLoss => {
                let eps = 10.0 * f64::EPSILON;
                let p = (numpy_sum(y) / n).clamp(eps, 1.0 - eps);
                vec![logit(p)]
            }
            Self::MultinomialLogLoss { n_classes } => {
                let mut counts = vec![0usize; n_classes];
                for &c in y {
                    counts[c as usize] += 1;
                }
                let eps = f64::EPSILON;
                let p: Vec<f64> = counts
                    .iter()
                    .map(|&c| (c as f64 / n).clamp(eps, 1.0 - eps))
                    .collect();
                // log(p / gmean(p)), gmean = exp(mean(log p)).
                let logs: Vec<f64> = p.iter().map(|v| v.ln()).collect();
                let gmean = (numpy_sum(&logs) / n_classes as f64).exp();
                p.iter().map(|v| (v / gmean).ln()).collect()
            }
        }
    }

    /// Gradients (and hessians unless constant) of every sample for every tree of an
    /// iteration. `raw`, `g` and `h` hold one column of `y.len()` values per tree; `h` is
    /// empty when the hessian is constant.
    pub(crate) fn gradients(self, y: &[f64], raw: &[f64], g: &mut [f32], h: &mut [f32]) {
        match self {
            Self::SquaredError => {
                for ((g, &r), &y) in g.iter_mut().zip(raw).zip(y) {
                    *g = (r - y) as f32;
                }
            }
            Self::BinaryLogLoss => {
                for (((g, h), &r), &y) in g.iter_mut().zip(h.iter_mut()).zip(raw).zip(y) {
                    let (gi, hi) = binomial_grad_hess(y, r);
                    *g = gi as f32;
                    *h = hi as f32;
                }
            }
            Self::MultinomialLogLoss { n_classes } => {
                let n = y.len();
                let mut p = vec![0.0; n_classes];
                for (i, &yi) in y.iter().enumerate() {
                    softmax_into((0..n_classes).map(|k| raw[k * n + i]), &mut p);
                    for (k, &pk) in p.iter().enumerate() {
                        let indicator = if yi == k as f64 { 1.0 } else { 0.0 };
                        g[k * n + i] = (pk - indicator) as f32;
                        h[k * n + i] = (pk * (1.0 - pk)) as f32;
                    }
                }
            }
        }
    }

    /// The mean loss of raw scores `raw` (one column per tree) against `y`.
    pub(crate) fn mean_loss(self, y: &[f64], raw: &[f64]) -> f64 {
        let n = y.len();
        let losses: Vec<f64> = match self {
            Self::SquaredError => y
                .iter()
                .zip(raw)
                .map(|(&y, &r)| 0.5 * (r - y) * (r - y))
                .collect(),
            Self::BinaryLogLoss => y
                .iter()
                .zip(raw)
                .map(|(&y, &r)| log1pexp(r) - y * r)
                .collect(),
            Self::MultinomialLogLoss { n_classes } => (0..n)
                .map(|i| {
                    let max = (0..n_classes)
                        .map(|k| raw[k * n + i])
                        .fold(f64::NEG_INFINITY, f64::max);
                    let sum: f64 = (0..n_classes).map(|k| (raw[k * n + i] - max).exp()).sum();
                    sum.ln() + max - raw[(y[i] as usize) * n + i]
                })
                .collect(),
        };
        numpy_sum(&losses) / n as f64
    }
}

/// NumPy's pairwise summation (`np.sum` of a float64 array), so that means match NumPy's.
pub(crate) fn numpy_sum(a: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, &v| s + v)
    } else if n <= BLOCK {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let whole = n - n % 8;
        for chunk in a[8..whole].chunks_exact(8) {
            for (acc, &v) in r.iter_mut().zip(chunk) {
                *acc += v;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[whole..] {
            res += v;
        }
        res
    } else {
        let mut half = n / 2;
        half -= half % 8;
        numpy_sum(&a[..half]) + numpy_sum(&a[half..])
    }
}

/// `log(1 + e^x)` as sklearn's `log1pexp`.
fn log1pexp(x: f64) -> f64 {
    if x <= -37.0 {
        x.exp()
    } else if x <= -2.0 {
        x.exp().ln_1p()
    } else if x <= 18.0 {
        (1.0 + x.exp()).ln()
    } else if x <= 33.3 {
        x + (-x).exp()
    } else {
        x
    }
}

/// Gradient and hessian of the binomial loss (sklearn's `cgrad_hess_half_binomial`).
fn binomial_grad_hess(y: f64, raw: f64) -> (f64, f64) {
    if raw > -37.0 {
        let e = (-raw).exp();
        (((1.0 - y) - y * e) / (1.0 + e), e / ((1.0 + e) * (1.0 + e)))
    } else {
        let e = raw.exp();
        (e - y, e)
    }
}

/// `log(p / (1 − p))` as SciPy's `logit` (which switches formula near ½ for precision).
fn logit(p: f64) -> f64 {
    if !(0.3..=0.65).contains(&p) {
        (p / (1.0 - p)).ln()
    } else {
        let s = 2.0 * (p - 0.5);
        s.ln_1p() - (-s).ln_1p()
    }
}

/// `1 / (1 + e^−x)` (SciPy's `expit`).
pub(crate) fn expit(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The softmax of `raw` into `out` (sklearn's `sum_exp_minus_max`, then division).
pub(crate) fn softmax_into(raw: impl Iterator<Item = f64> + Clone, out: &mut [f64]) {
    let max = raw.clone().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for (o, r) in out.iter_mut().zip(raw) {
        *o = (r - max).exp();
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_matches_numpy() {
        // np.sum(np.arange(200) * 0.7) == 13930.0 with NumPy's pairwise summation, where a
        // left-to-right sum gives 13929.999999999998; likewise 21890.0 for 1.1.
        let a: Vec<f64> = (0..200).map(|i| f64::from(i) * 0.7).collect();
        assert_eq!(a.iter().sum::<f64>(), 13929.999999999998);
        assert_eq!(numpy_sum(&a), 13930.0);
        let b: Vec<f64> = (0..200).map(|i| f64::from(i) * 1.1).collect();
        assert_eq!(numpy_sum(&b), 21890.0);
        assert_eq!(numpy_sum(&[]), 0.0);
        assert_eq!(numpy_sum(&[1.0, 2.0, 3.0]), 6.0);
    }

    #[test]
    fn baselines_as_sklearn() {
        // HalfSquaredError().fit_intercept_only([1, 2, 4]) = 7/3.
        assert_eq!(
            Objective::SquaredError.baseline(&[1.0, 2.0, 4.0]),
            vec![7.0 / 3.0]
        );
        // HalfBinomialLoss: logit(0.25) = −1.0986122886681098; logit(0.5) = 0.
        let b = Objective::BinaryLogLoss.baseline(&[0.0, 1.0, 0.0, 0.0]);
        assert!((b[0] + 1.098_612_288_668_109_8).abs() < 1e-15, "{b:?}");
        assert_eq!(Objective::BinaryLogLoss.baseline(&[0.0, 1.0]), vec![0.0]);
        // HalfMultinomialLoss(n_classes=3).fit_intercept_only([0, 0, 1, 2, 2, 2]):
        // [0.09589402415059346, -0.5972531564093518, 0.501359132258758].
        let m = Objective::MultinomialLogLoss { n_classes: 3 }
            .baseline(&[0.0, 0.0, 1.0, 2.0, 2.0, 2.0]);
        let want = [
            0.095_894_024_150_593_46,
            -0.597_253_156_409_351_8,
            0.501_359_132_258_758,
        ];
        for (a, b) in m.iter().zip(want) {
            assert!((a - b).abs() < 1e-14, "{m:?}");
        }
    }

    #[test]
    fn gradients_and_losses() {
        let y = [0.0, 1.0];
        let raw = [0.5, -0.5];
        let (mut g, mut h) = (vec![0f32; 2], vec![0f32; 2]);
        Objective::SquaredError.gradients(&y, &raw, &mut g, &mut []);
        assert_eq!(g, vec![0.5, -1.5]);
        assert_eq!(
            Objective::SquaredError.mean_loss(&y, &raw),
            (0.125 + 1.125) / 2.0
        );
        Objective::BinaryLogLoss.gradients(&y, &raw, &mut g, &mut h);
        let p = expit(0.5);
        assert!(
            (f64::from(g[0]) - p).abs() < 1e-7
                && (f64::from(g[1]) - (expit(-0.5) - 1.0)).abs() < 1e-7
        );
        assert!((f64::from(h[0]) - p * (1.0 - p)).abs() < 1e-7);
        let want = ((1.0 + 0.5f64.exp()).ln() + (1.0 + (-0.5f64).exp()).ln() + 0.5) / 2.0;
        assert!((Objective::BinaryLogLoss.mean_loss(&y, &raw) - want).abs() < 1e-15);
        // Multinomial, 2 samples × 3 classes, one column per class: sample 0 has raw
        // scores [0, 0, 0] and class 2, sample 1 has [1, 0, 1] and class 0.
        let obj = Objective::MultinomialLogLoss { n_classes: 3 };
        let y = [2.0, 0.0];
        let raw = [0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let (mut g, mut h) = (vec![0f32; 6], vec![0f32; 6]);
        obj.gradients(&y, &raw, &mut g, &mut h);
        let e = std::f64::consts::E;
        let (lo, hi) = (1.0 / (2.0 * e + 1.0), e / (2.0 * e + 1.0));
        let third = 1.0 / 3.0;
        let sample0 = [third, third, third - 1.0];
        let sample1 = [hi - 1.0, lo, hi];
        for k in 0..3 {
            assert!((f64::from(g[k * 2]) - sample0[k]).abs() < 1e-7, "{g:?}");
            assert!((f64::from(g[k * 2 + 1]) - sample1[k]).abs() < 1e-7, "{g:?}");
        }
        assert!((f64::from(h[1]) - hi * (1.0 - hi)).abs() < 1e-7, "{h:?}");
        let loss = obj.mean_loss(&y, &raw);
        let want = ((3.0f64).ln() + ((2.0 * e + 1.0).ln() - 1.0)) / 2.0;
        assert!((loss - want).abs() < 1e-14, "{loss} {want}");
    }

    #[test]
    fn link_helpers() {
        assert_eq!(log1pexp(-40.0), (-40.0f64).exp());
        assert_eq!(log1pexp(40.0), 40.0);
        assert!((log1pexp(0.0) - 2f64.ln()).abs() < 1e-16);
        assert!((logit(0.4) - (0.4f64 / 0.6).ln()).abs() < 1e-15);
        assert!((logit(0.9) - 9f64.ln()).abs() < 1e-15);
        let mut p = [0.0; 3];
        softmax_into([1000.0, 1000.0, 0.0].into_iter(), &mut p);
        assert_eq!(p, [0.5, 0.5, 0.0]);
    }
}
