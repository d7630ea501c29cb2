//! Rolling count, mean and sample standard deviation (ddof = 1) of the non-missing values in
//! each row's window, the row itself excluded, in O(n) per group:
//!
//! - Welford's running mean and sum of squared deviations, updated when a value enters
//!   (`push`) or leaves (`pop`) the window;
//! - monotone deques of the window's minimum and maximum, so that a constant window is seen
//!   exactly (std 0, mean its value) instead of through rounding noise;
//! - an exact two-pass recomputation of the window after every `window` removals (amortised
//!   O(1) per row), and at once when a removal cancels more than four digits of the sum of
//!   squares (a spike leaving the window), so errors never accumulate.
//!
//! A centred window is two windows (before and after the row) combined with Chan's formula.

use std::collections::VecDeque;

/// A removal whose term is more than this times the remaining sum of squares lost precision.
const LOST_DIGITS: f64 = 1e4;

/// The non-missing values of one row's window: how many, their mean and sample standard
/// deviation (NaN for fewer than two values; exactly 0 when they are all equal).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Moments {
    pub(super) count: usize,
    pub(super) mean: f64,
    pub(super) std: f64,
}

const EMPTY: Moments = Moments {
    count: 0,
    mean: f64::NAN,
    std: f64::NAN,
};

/// Running moments of the non-missing values among positions `start..end` of a group.
#[derive(Debug)]
pub(super) struct Window {
    start: usize,
    end: usize,
    n: usize,
    mean: f64,
    m2: f64,
    /// Positions whose values increase from front to back; the front is the minimum.
    mins: VecDeque<usize>,
    /// Positions whose values decrease from front to back; the front is the maximum.
    maxs: VecDeque<usize>,
    removed: usize,
    limit: usize,
}

impl Window {
    pub(super) fn new() -> Self {
        Self {
            start: 0,
            end: 0,
            n: 0,
            mean: 0.0,
            m2: 0.0,
            mins: VecDeque::new(),
            maxs: VecDeque::new(),
            removed: 0,
            limit: 1,
        }
    }

    /// Empties the window and places it at position `at`; `limit` removals between exact
    /// recomputations.
    fn reset(&mut self, at: usize, limit: usize) {
        self.start = at;
        self.end = at;
        self.clear_stats();
        self.mins.clear();
        self.maxs.clear();
        self.limit = limit.max(1);
    }

    fn clear_stats(&mut self) {
        self.n = 0;
        self.mean = 0.0;
        self.m2 = 0.0;
        self.removed = 0;
    }

    /// Moves the window to `lo..hi` (`lo <= hi`, both at or after the current bounds).
    fn slide(&mut self, xs: &[f64], lo: usize, hi: usize) {
        while self.end < hi {
            self.push(xs);
        }
        while self.start < lo {
            self.pop(xs);
        }
    }

    /// Adds position `end`.
    fn push(&mut self, xs: &[f64]) {
        let pos = self.end;
        self.end += 1;
        let x = xs[pos];
        if x.is_nan() {
            return;
        }
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
        while self.mins.back().is_some_and(|&j| xs[j] >= x) {
            self.mins.pop_back();
        }
        self.mins.push_back(pos);
        while self.maxs.back().is_some_and(|&j| xs[j] <= x) {
            self.maxs.pop_back();
        }
        self.maxs.push_back(pos);
    }

    /// Removes position `start`.
    fn pop(&mut self, xs: &[f64]) {
        let pos = self.start;
        self.start += 1;
        let x = xs[pos];
        if x.is_nan() {
            return;
        }
        if self.mins.front() == Some(&pos) {
            self.mins.pop_front();
        }
        if self.maxs.front() == Some(&pos) {
            self.maxs.pop_front();
        }
        if self.n == 1 {
            self.clear_stats();
            return;
        }
        let old = self.mean;
        self.n -= 1;
        self.mean = old - (x - old) / self.n as f64;
        let term = (x - old) * (x - self.mean);
        self.m2 -= term;
        self.removed += 1;
        if self.removed >= self.limit || term > LOST_DIGITS * self.m2 {
            self.recompute(xs);
        }
    }

    /// Two-pass mean and sum of squares of the window's values.
    fn recompute(&mut self, xs: &[f64]) {
        let values = &xs[self.start..self.end];
        let (n, sum) = values
            .iter()
            .filter(|x| !x.is_nan())
            .fold((0usize, 0.0), |(n, s), &x| (n + 1, s + x));
        self.clear_stats();
        if n == 0 {
            return;
        }
        let mean = sum / n as f64;
        self.n = n;
        self.mean = mean;
        self.m2 = values
            .iter()
            .filter(|x| !x.is_nan())
            .map(|&x| (x - mean) * (x - mean))
            .sum();
    }

    /// The smallest and largest value, when the window holds any.
    fn extremes(&self, xs: &[f64]) -> Option<(f64, f64)> {
        match (self.mins.front(), self.maxs.front()) {
            (Some(&lo), Some(&hi)) if self.n > 0 => Some((xs[lo], xs[hi])),
            _ => None,
        }
    }

    fn moments(&self, xs: &[f64]) -> Moments {
        match self.extremes(xs) {
            Some((lo, hi)) => finish(self.n, self.mean, self.m2, lo, hi),
            None => EMPTY,
        }
    }
}

fn finish(n: usize, mean: f64, m2: f64, min: f64, max: f64) -> Moments {
    if min == max {
        return Moments {
            count: n,
            mean: min,
            std: if n >= 2 { 0.0 } else { f64::NAN },
        };
    }
    // Values differ, so n >= 2.
    Moments {
        count: n,
        mean,
        std: (m2.max(0.0) / (n - 1) as f64).sqrt(),
    }
}

/// The moments of two disjoint windows together (Chan et al.'s pairwise update).
fn combine(a: &Window, b: &Window, xs: &[f64]) -> Moments {
    match (a.extremes(xs), b.extremes(xs)) {
        (None, None) => EMPTY,
        (Some(_), None) => a.moments(xs),
        (None, Some(_)) => b.moments(xs),
        (Some((alo, ahi)), Some((blo, bhi))) => {
            let n = a.n + b.n;
            let (na, nb, nn) = (a.n as f64, b.n as f64, n as f64);
            let delta = b.mean - a.mean;
            let mean = a.mean + delta * nb / nn;
            let m2 = a.m2 + b.m2 + delta * delta * na * nb / nn;
            finish(n, mean, m2, alo.min(blo), ahi.max(bhi))
        }
    }
}

/// Fills `out` with the moments of each position's window in `xs` (one group, in order):
/// the `window` positions before it, or with `center` ⌈window/2⌉ before and ⌊window/2⌋ after.
/// `windows` is scratch space reused across groups.
pub(super) fn rolling_moments(
    xs: &[f64],
    window: usize,
    center: bool,
    windows: &mut (Window, Window),
    out: &mut Vec<Moments>,
) {
    let (before, after) = if center {
        (window - window / 2, window / 2)
    } else {
        (window, 0)
    };
    let (left, right) = windows;
    left.reset(0, before);
    right.reset(1, after);
    out.clear();
    for i in 0..xs.len() {
        left.slide(xs, i.saturating_sub(before), i);
        if after == 0 {
            out.push(left.moments(xs));
        } else {
            right.slide(xs, i + 1, (i + 1 + after).min(xs.len()));
            out.push(combine(left, right, xs));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algo::Rng;
    use proptest::prelude::*;

    /// The O(n·window) definition, with the window's largest absolute value (the scale of
    /// its rounding errors).
    fn naive(xs: &[f64], window: usize, center: bool) -> Vec<(Moments, f64)> {
        let (before, after) = if center {
            (window - window / 2, window / 2)
        } else {
            (window, 0)
        };
        (0..xs.len())
            .map(|i| {
                let lo = i.saturating_sub(before);
                let hi = (i + 1 + after).min(xs.len());
                let w: Vec<f64> = (lo..hi)
                    .filter(|&j| j != i)
                    .map(|j| xs[j])
                    .filter(|x| !x.is_nan())
                    .collect();
                let count = w.len();
                let scale = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                if count == 0 {
                    return (EMPTY, scale);
                }
                if w.iter().all(|&v| v == w[0]) {
                    let std = if count >= 2 { 0.0 } else { f64::NAN };
                    let m = Moments {
                        count,
                        mean: w[0],
                        std,
                    };
                    return (m, scale);
                }
                let mean = w.iter().sum::<f64>() / count as f64;
                let m2: f64 = w.iter().map(|v| (v - mean).powi(2)).sum();
                let m = Moments {
                    count,
                    mean,
                    std: (m2 / (count - 1) as f64).sqrt(),
                };
                (m, scale)
            })
            .collect()
    }

    fn compare(
        xs: &[f64],
        window: usize,
        center: bool,
        windows: &mut (Window, Window),
    ) -> Result<(), TestCaseError> {
        let mut got = Vec::new();
        rolling_moments(xs, window, center, windows, &mut got);
        let want = naive(xs, window, center);
        prop_assert_eq!(got.len(), want.len());
        // Within 1e-9 relative to the window's magnitude (1 for values up to 1).
        for (i, (g, (w, scale))) in got.iter().zip(&want).enumerate() {
            let tol = 1e-9 * (1.0 + scale);
            prop_assert_eq!(g.count, w.count, "row {}", i);
            if w.count == 0 {
                continue;
            }
            let mean_ok = (g.mean - w.mean).abs() <= tol;
            prop_assert!(mean_ok, "row {}: mean {} vs {}", i, g.mean, w.mean);
            if w.count < 2 {
                prop_assert!(g.std.is_nan());
            } else if w.std == 0.0 {
                prop_assert_eq!(g.std, 0.0, "row {}", i);
                prop_assert_eq!(g.mean, w.mean, "row {}", i);
            } else {
                let std_ok = (g.std - w.std).abs() <= tol;
                prop_assert!(std_ok, "row {}: std {} vs {}", i, g.std, w.std);
            }
        }
        Ok(())
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => -1e3..1e3f64,
            2 => (0u8..3).prop_map(f64::from),
            1 => Just(f64::NAN),
            1 => prop_oneof![Just(1e6), Just(-5e5)],
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn rolling_moments_equal_the_naive_recomputation(
            xs in prop::collection::vec(value(), 0..120),
            window in 2usize..12,
            center in any::<bool>(),
            split in 0usize..120,
        ) {
            // The same scratch windows serve two groups in a row, as in `by_group`.
            let split = split.min(xs.len());
            let mut windows = (Window::new(), Window::new());
            compare(&xs[..split], window, center, &mut windows)?;
            compare(&xs[split..], window, center, &mut windows)?;
        }
    }

    #[test]
    fn long_series_with_spikes_and_flat_stretches_stay_exact() {
        let mut rng = Rng::new(11);
        let mut xs: Vec<f64> = Vec::with_capacity(20_000);
        for i in 0..20_000usize {
            let v = if i.is_multiple_of(997) {
                1e9
            } else if (5_000..5_300).contains(&i) {
                42.0
            } else {
                100.0 + rng.normal()
            };
            xs.push(v);
        }
        let mut windows = (Window::new(), Window::new());
        for (window, center) in [(50, false), (7, true), (300, false)] {
            compare(&xs, window, center, &mut windows).unwrap();
        }
    }
}
