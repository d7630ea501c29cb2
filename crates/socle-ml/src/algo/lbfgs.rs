//! Limited-memory BFGS (L-BFGS): unconstrained minimisation of a function of many variables
//! from its value and gradient, as Nocedal & Wright, *Numerical Optimization* (2nd ed., 2006):
//! the two-loop recursion of Algorithm 7.4 with the initial scaling γ = sᵀy / yᵀy (eq. 7.20),
//! and a line search that satisfies the strong Wolfe conditions (c₁ = 10⁻⁴, c₂ = 0.9) by
//! bracketing and zooming, Algorithms 3.5 and 3.6, with safeguarded cubic interpolation
//! (eq. 3.59). It is the optimizer behind the forecasting model's MAP fit (as Prophet's default,
//! Stan's L-BFGS) and the linear models.
//!
//! Deliberate choices, where the book leaves room:
//! - A pair (s, y) is kept only when sᵀy > ε·yᵀy (ε the machine epsilon): a step whose
//!   curvature is not positive would make the inverse-Hessian approximation indefinite.
//! - A trial point whose value or gradient is not finite (NaN, ±∞) counts as a failed
//!   sufficient-decrease test: the search backtracks (bisects) towards the last good point.
//! - When the zoom runs out of evaluations without meeting the curvature condition, the lowest
//!   point that met the sufficient-decrease condition is taken (useful on functions with kinks,
//!   such as a Laplace prior's |δ|). When no such point exists the memory is dropped and a
//!   steepest-descent step is tried; when that fails too, the search stops (`converged` false).
//! - Converged: ‖g‖∞ ≤ `tol_grad`·max(1, ‖x‖∞), or a relative decrease
//!   |f₋₁ − f| / max(|f₋₁|, |f|) below `tol_rel_f` (Stan's `tol_rel_obj` criterion).

use super::dot;

/// When to stop, and how many curvature pairs to remember.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// The most iterations (accepted steps).
    pub max_iter: usize,
    /// How many (s, y) pairs approximate the inverse Hessian (at least 1 is used).
    pub memory: usize,
    /// Converged when ‖g‖∞ ≤ `tol_grad`·max(1, ‖x‖∞).
    pub tol_grad: f64,
    /// Converged when an accepted step decreases f by less than this, relative to |f|.
    pub tol_rel_f: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_iter: 1000,
            memory: 10,
            tol_grad: 1e-8,
            tol_rel_f: 1e-12,
        }
    }
}

/// Where the minimisation stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The last accepted point (the lowest value seen at an accepted step).
    pub x: Vec<f64>,
    /// f at `x`.
    pub value: f64,
    /// Accepted steps taken.
    pub iterations: usize,
    /// Whether a convergence criterion was met (false: iteration limit reached, the line
    /// search could make no more progress, or f was not finite at the start).
    pub converged: bool,
}

/// Sufficient-decrease constant of the Wolfe conditions.
const C1: f64 = 1e-4;
/// Curvature constant of the strong Wolfe conditions (the usual value for quasi-Newton).
const C2: f64 = 0.9;
/// Most evaluations of the bracketing phase of one line search.
const MAX_BRACKET: usize = 20;
/// Most evaluations of the zoom phase of one line search.
const MAX_ZOOM: usize = 30;

/// Minimises `f` from `x0`. `f(x, g)` returns f(x) and writes ∇f(x) into `g` (as long as `x`).
///
/// ```ignore
/// let out = minimize(|x, g| { g[0] = 2.0 * (x[0] - 3.0); (x[0] - 3.0).powi(2) },
///                    vec![0.0], &Options::default());
/// assert!((out.x[0] - 3.0).abs() < 1e-8);
/// ```
pub fn minimize(
    mut f: impl FnMut(&[f64], &mut [f64]) -> f64,
    x0: Vec<f64>,
    opts: &Options,
) -> Outcome {
    let n = x0.len();
    let mut x = x0;
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    if !fx.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return Outcome {
            x,
            value: fx,
            iterations: 0,
            converged: false,
        };
    }
    let mut history = History::new(n, opts.memory.max(1));
    let mut search = LineSearch::new(n);
    let mut d = vec![0.0; n];
    let mut iterations = 0;
    let mut converged = gradient_small(&g, &x, opts.tol_grad);
    while !converged && iterations < opts.max_iter {
        history.direction(&g, &mut d);
        let mut slope = dot(&g, &d);
        if slope.is_nan() || slope >= 0.0 {
            // Not a descent direction (round-off in a poor approximation): start afresh.
            history.clear();
            history.direction(&g, &mut d);
            slope = dot(&g, &d);
        }
        let alpha0 = if history.is_empty() {
            (1.0 / norm2(&g)).min(1.0)
        } else {
            1.0
        };
        let Some(f_new) = search.run(&mut f, &x, fx, slope, &d, alpha0) else {
            if history.is_empty() {
                break; // even steepest descent found no lower point
            }
            history.clear();
            continue;
        };
        iterations += 1;
        history.push(&search.x, &x, &search.g, &g);
        std::mem::swap(&mut x, &mut search.x);
        std::mem::swap(&mut g, &mut search.g);
        let f_old = fx;
        fx = f_new;
        let scale = f_old.abs().max(fx.abs()).max(f64::MIN_POSITIVE);
        let relative_decrease = (f_old - fx).abs() / scale;
        converged = gradient_small(&g, &x, opts.tol_grad) || relative_decrease < opts.tol_rel_f;
    }
    Outcome {
        x,
        value: fx,
        iterations,
        converged,
    }
}

/// ‖g‖∞ ≤ tol·max(1, ‖x‖∞).
fn gradient_small(g: &[f64], x: &[f64], tol: f64) -> bool {
    let g_max = g.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let x_max = x.iter().fold(1.0f64, |a, v| a.max(v.abs()));
    g_max <= tol * x_max
}

/// ‖v‖₂, scaled so that large finite entries do not overflow.
fn norm2(v: &[f64]) -> f64 {
    let scale = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
    if scale == 0.0 || !scale.is_finite() {
        return scale;
    }
    let sum: f64 = v.iter().map(|x| (x / scale) * (x / scale)).sum();
    scale * sum.sqrt()
}

/// The last `memory` curvature pairs, in a ring.
struct History {
    s: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    rho: Vec<f64>,
    alpha: Vec<f64>,
    /// Pairs held (≤ capacity).
    len: usize,
    /// Slot the next pair goes to.
    head: usize,
    /// γ = sᵀy / yᵀy of the newest pair.
    gamma: f64,
}

impl History {
    fn new(n: usize, memory: usize) -> Self {
        Self {
            s: vec![vec![0.0; n]; memory],
            y: vec![vec![0.0; n]; memory],
            rho: vec![0.0; memory],
            alpha: vec![0.0; memory],
            len: 0,
            head: 0,
            gamma: 1.0,
        }
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn clear(&mut self) {
        self.len = 0;
        self.head = 0;
        self.gamma = 1.0;
    }

    /// Records s = x_new − x, y = g_new − g, unless its curvature sᵀy is not safely positive
    /// (then the memory is left as it was: with a full ring, the slot at `head` still holds the
    /// oldest pair).
    fn push(&mut self, x_new: &[f64], x: &[f64], g_new: &[f64], g: &[f64]) {
        let (mut sy, mut yy) = (0.0, 0.0);
        for (((xn, xo), gn), go) in x_new.iter().zip(x).zip(g_new).zip(g) {
            let (s, y) = (xn - xo, gn - go);
            sy += s * y;
            yy += y * y;
        }
        if !sy.is_finite() || !yy.is_finite() || sy <= f64::EPSILON * yy || yy <= 0.0 {
            return;
        }
        let slot = self.head;
        for ((s, a), b) in self.s[slot].iter_mut().zip(x_new).zip(x) {
            *s = a - b;
        }
        for ((y, a), b) in self.y[slot].iter_mut().zip(g_new).zip(g) {
            *y = a - b;
        }
        self.rho[slot] = 1.0 / sy;
        self.gamma = sy / yy;
        let capacity = self.rho.len();
        self.head = (slot + 1) % capacity;
        self.len = (self.len + 1).min(capacity);
    }

    /// d = −H·g by the two-loop recursion (d = −g when no pair is held).
    fn direction(&mut self, g: &[f64], d: &mut [f64]) {
        let capacity = self.rho.len();
        d.copy_from_slice(g);
        // Newest to oldest.
        for back in 0..self.len {
            let i = (self.head + capacity - 1 - back) % capacity;
            let a = self.rho[i] * dot(&self.s[i], d);
            self.alpha[i] = a;
            for (di, yi) in d.iter_mut().zip(&self.y[i]) {
                *di -= a * yi;
            }
        }
        let gamma = if self.len == 0 { 1.0 } else { self.gamma };
        for di in d.iter_mut() {
            *di *= gamma;
        }
        // Oldest to newest.
        for forward in 0..self.len {
            let i = (self.head + capacity - self.len + forward) % capacity;
            let b = self.rho[i] * dot(&self.y[i], d);
            let coef = self.alpha[i] - b;
            for (di, si) in d.iter_mut().zip(&self.s[i]) {
                *di += coef * si;
            }
        }
        for di in d.iter_mut() {
            *di = -*di;
        }
    }
}

/// φ(α) = f(x + α·d) and φ'(α) at one trial step. A non-finite value or slope is stored as
/// value +∞ (it fails every test and is bisected away from).
#[derive(Debug, Clone, Copy)]
struct Trial {
    alpha: f64,
    value: f64,
    slope: f64,
}

impl Trial {
    fn finite(&self) -> bool {
        self.value.is_finite() && self.slope.is_finite()
    }
}

/// Work buffers of the line search: the current trial (`x`, `g`) and the best point that met
/// the sufficient-decrease condition (`best_x`, `best_g`).
struct LineSearch {
    x: Vec<f64>,
    g: Vec<f64>,
    best_x: Vec<f64>,
    best_g: Vec<f64>,
}

impl LineSearch {
    fn new(n: usize) -> Self {
        Self {
            x: vec![0.0; n],
            g: vec![0.0; n],
            best_x: vec![0.0; n],
            best_g: vec![0.0; n],
        }
    }

    fn probe<F>(&mut self, f: &mut F, x0: &[f64], d: &[f64], alpha: f64) -> Trial
    where
        F: FnMut(&[f64], &mut [f64]) -> f64,
    {
        for ((xi, a), di) in self.x.iter_mut().zip(x0).zip(d) {
            *xi = a + alpha * di;
        }
        let value = f(&self.x, &mut self.g);
        let slope = if value.is_finite() {
            dot(&self.g, d)
        } else {
            f64::NAN
        };
        let mut trial = Trial {
            alpha,
            value,
            slope,
        };
        if !trial.finite() {
            trial.value = f64::INFINITY;
        }
        trial
    }

    /// Keeps the current trial as the best sufficient-decrease point.
    fn save(&mut self) {
        self.best_x.copy_from_slice(&self.x);
        self.best_g.copy_from_slice(&self.g);
    }

    /// Makes the saved best point the current one.
    fn restore(&mut self) {
        std::mem::swap(&mut self.x, &mut self.best_x);
        std::mem::swap(&mut self.g, &mut self.best_g);
    }

    /// Algorithm 3.5: a step along `d` (a descent direction, `slope0` = gᵀd < 0) meeting the
    /// strong Wolfe conditions. On success returns f there, the point and its gradient being
    /// in `self.x`, `self.g`.
    fn run<F>(
        &mut self,
        f: &mut F,
        x0: &[f64],
        f0: f64,
        slope0: f64,
        d: &[f64],
        alpha0: f64,
    ) -> Option<f64>
    where
        F: FnMut(&[f64], &mut [f64]) -> f64,
    {
        let start = Trial {
            alpha: 0.0,
            value: f0,
            slope: slope0,
        };
        let mut prev = start;
        let mut alpha = alpha0;
        for i in 0..MAX_BRACKET {
            let t = self.probe(f, x0, d, alpha);
            if t.value > f0 + C1 * t.alpha * slope0 || (i > 0 && t.value >= prev.value) {
                return self.zoom(f, x0, f0, slope0, d, prev, t);
            }
            if t.slope.abs() <= -C2 * slope0 {
                return Some(t.value);
            }
            self.save();
            if t.slope >= 0.0 {
                return self.zoom(f, x0, f0, slope0, d, t, prev);
            }
            prev = t;
            alpha *= 2.0;
        }
        // Still descending after many doublings: take the last (lowest) point.
        self.restore();
        Some(prev.value)
    }

    /// Algorithm 3.6: `lo` is the lowest sufficient-decrease point so far (saved when its
    /// step is positive), the minimiser lies between `lo` and `hi`.
    #[allow(clippy::too_many_arguments)]
    fn zoom<F>(
        &mut self,
        f: &mut F,
        x0: &[f64],
        f0: f64,
        slope0: f64,
        d: &[f64],
        mut lo: Trial,
        mut hi: Trial,
    ) -> Option<f64>
    where
        F: FnMut(&[f64], &mut [f64]) -> f64,
    {
        for _ in 0..MAX_ZOOM {
            let width = (hi.alpha - lo.alpha).abs();
            if width <= f64::EPSILON * lo.alpha.abs().max(hi.alpha.abs()) {
                break;
            }
            let alpha = interpolate(&lo, &hi);
            let t = self.probe(f, x0, d, alpha);
            if t.value > f0 + C1 * t.alpha * slope0 || t.value >= lo.value {
                hi = t;
            } else {
                if t.slope.abs() <= -C2 * slope0 {
                    return Some(t.value);
                }
                if t.slope * (hi.alpha - lo.alpha) >= 0.0 {
                    hi = lo;
                }
                lo = t;
                self.save();
            }
        }
        if lo.alpha > 0.0 {
            self.restore();
            Some(lo.value)
        } else {
            None
        }
    }
}

/// The minimiser of the cubic through `lo` and `hi` (values and slopes), kept inside the
/// middle 80% of the interval; the midpoint when the cubic is unusable or `hi` not finite.
fn interpolate(lo: &Trial, hi: &Trial) -> f64 {
    let mid = 0.5 * (lo.alpha + hi.alpha);
    if !lo.finite() || !hi.finite() {
        return mid;
    }
    let d1 = lo.slope + hi.slope - 3.0 * (lo.value - hi.value) / (lo.alpha - hi.alpha);
    let disc = d1 * d1 - lo.slope * hi.slope;
    if disc.is_nan() || disc < 0.0 {
        return mid;
    }
    let d2 = (hi.alpha - lo.alpha).signum() * disc.sqrt();
    let alpha =
        hi.alpha - (hi.alpha - lo.alpha) * (hi.slope + d2 - d1) / (hi.slope - lo.slope + 2.0 * d2);
    let (a, b) = if lo.alpha < hi.alpha {
        (lo.alpha, hi.alpha)
    } else {
        (hi.alpha, lo.alpha)
    };
    let margin = 0.1 * (b - a);
    if alpha.is_finite() && (a + margin..=b - margin).contains(&alpha) {
        alpha
    } else {
        mid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Extended Rosenbrock (Moré, Garbow & Hillstrom 1981, problem 21): independent pairs,
    /// minimum 0 at (1, …, 1).
    fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
        let mut f = 0.0;
        for (xp, gp) in x.chunks_exact(2).zip(g.chunks_exact_mut(2)) {
            let (a, b) = (xp[0], xp[1]);
            let r = b - a * a;
            f += 100.0 * r * r + (1.0 - a) * (1.0 - a);
            gp[0] = -400.0 * a * r - 2.0 * (1.0 - a);
            gp[1] = 200.0 * r;
        }
        f
    }

    fn standard_start(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| if i % 2 == 0 { -1.2 } else { 1.0 })
            .collect()
    }

    #[test]
    fn rosenbrock_2d_from_the_standard_start() {
        let out = minimize(rosenbrock, standard_start(2), &Options::default());
        assert!(out.converged, "{out:?}");
        for v in &out.x {
            assert!((v - 1.0).abs() < 1e-6, "{out:?}");
        }
        assert!(out.value < 1e-12, "{out:?}");
        assert!(out.iterations < 100, "{out:?}");
    }

    #[test]
    fn rosenbrock_10d_from_the_standard_start() {
        let out = minimize(rosenbrock, standard_start(10), &Options::default());
        assert!(out.converged, "{out:?}");
        for v in &out.x {
            assert!((v - 1.0).abs() < 1e-6, "{out:?}");
        }
    }

    /// ½ xᵀ A x − bᵀx with A = diag(1..=n): minimum at x_i = b_i / i.
    fn quadratic(x: &[f64], g: &mut [f64]) -> f64 {
        let mut f = 0.0;
        for (i, (xi, gi)) in x.iter().zip(g.iter_mut()).enumerate() {
            let a = (i + 1) as f64;
            let b = 1.0 + i as f64 * 0.5;
            f += 0.5 * a * xi * xi - b * xi;
            *gi = a * xi - b;
        }
        f
    }

    #[test]
    fn a_quadratic_converges_in_about_n_iterations() {
        // With unit steps accepted by the Wolfe test (no exact line search) L-BFGS does not
        // stop after exactly n steps as conjugate gradients would: this one takes n + 6 = 14
        // (scipy 1.17's L-BFGS-B takes 16 on the same problem).
        let n = 8;
        let out = minimize(quadratic, vec![0.0; n], &Options::default());
        assert!(out.converged, "{out:?}");
        assert!(out.iterations <= n + 6, "{} iterations", out.iterations);
        for (i, v) in out.x.iter().enumerate() {
            let expected = (1.0 + i as f64 * 0.5) / (i + 1) as f64;
            assert!((v - expected).abs() < 1e-6, "x[{i}] = {v}");
        }
    }

    #[test]
    fn a_non_finite_value_at_a_trial_point_makes_the_search_backtrack() {
        // f = (x − 2)² on x < 2.5, NaN beyond: the first steps overshoot into the NaN region.
        let f = |x: &[f64], g: &mut [f64]| {
            if x[0] >= 2.5 {
                g[0] = f64::NAN;
                return f64::NAN;
            }
            g[0] = 2.0 * (x[0] - 2.0);
            (x[0] - 2.0).powi(2)
        };
        let out = minimize(f, vec![-10.0], &Options::default());
        assert!(out.converged, "{out:?}");
        assert!((out.x[0] - 2.0).abs() < 1e-7, "{out:?}");
        // +∞ too (a log of zero, an overflow).
        let h = |x: &[f64], g: &mut [f64]| {
            g[0] = -1.0 / x[0] + 1.0;
            if x[0] <= 0.0 {
                return f64::INFINITY;
            }
            x[0] - x[0].ln()
        };
        let out = minimize(h, vec![30.0], &Options::default());
        assert!(out.converged, "{out:?}");
        assert!((out.x[0] - 1.0).abs() < 1e-6, "{out:?}");
    }

    #[test]
    fn a_non_finite_start_is_reported_not_converged() {
        let out = minimize(
            |_, g| {
                g[0] = 0.0;
                f64::NAN
            },
            vec![1.0],
            &Options::default(),
        );
        assert!(!out.converged);
        assert_eq!(out.iterations, 0);
    }

    #[test]
    fn the_iteration_limit_is_respected() {
        let opts = Options {
            max_iter: 3,
            ..Options::default()
        };
        let out = minimize(rosenbrock, standard_start(2), &opts);
        assert_eq!(out.iterations, 3);
        assert!(!out.converged);
    }

    #[test]
    fn a_start_at_the_minimum_takes_no_step() {
        let out = minimize(rosenbrock, vec![1.0, 1.0], &Options::default());
        assert!(out.converged);
        assert_eq!(out.iterations, 0);
        assert_eq!(out.x, vec![1.0, 1.0]);
    }

    #[test]
    fn a_kink_does_not_stop_progress() {
        // |x − 1| + 0.1·x²: non-smooth at its minimum x = 1 (slopes −1.2 and +0.8 either side).
        let f = |x: &[f64], g: &mut [f64]| {
            let r = x[0] - 1.0;
            let sign = if r > 0.0 {
                1.0
            } else if r < 0.0 {
                -1.0
            } else {
                0.0
            };
            g[0] = sign + 0.2 * x[0];
            r.abs() + 0.1 * x[0] * x[0]
        };
        let out = minimize(f, vec![5.0], &Options::default());
        assert!((out.x[0] - 1.0).abs() < 1e-6, "{out:?}");
    }

    #[test]
    fn the_same_start_gives_the_same_steps() {
        let a = minimize(rosenbrock, standard_start(6), &Options::default());
        let b = minimize(rosenbrock, standard_start(6), &Options::default());
        assert_eq!(a, b);
    }
}
