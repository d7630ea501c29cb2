//! The seasonal residual rule: classical additive decomposition of each group's series, as
//! statsmodels 0.15's `seasonal_decompose(x, model="additive", period=p)` computes it, then
//! a robust z-score of the residual.
//!
//! 1. Trend: centred moving average of length `p` (odd `p`), or `2×p` (even `p`: weights
//!    ½, 1, …, 1, ½ over `p + 1` rows), by a running sum re-added exactly every `p` rows.
//! 2. Seasonal: the mean detrended value of each phase (`position % p`, counted from the
//!    group's first row) over the rows that have a trend, minus the mean of the `p` means.
//! 3. Residual: `x − trend − seasonal`. The first and last `⌊p/2⌋` rows have no centred
//!    window: they use the nearest defined trend value (statsmodels leaves them NaN).
//! 4. Score: `residual / (1.4826 · MAD)`, MAD the median absolute deviation of the group's
//!    residuals (all scored rows), flagged when `|score| > threshold`. A scale below
//!    `1e-10 · max|x|` is raised to it, so that an exactly periodic series (residuals of
//!    rounding size) flags nothing.
//!
//! Missing values are filled by linear interpolation (nearest value at the ends) for the
//! decomposition and are not scored. A group with fewer than `2·p` non-missing values (two
//! full seasons, statsmodels' minimum) is not scored.

use serde::{Deserialize, Serialize};

use super::{
    AnomalyError, Flag, Rule, by_group, check_input, check_threshold, default_threshold, median,
};

/// The MAD of normal data times this is its standard deviation.
const MAD_TO_SIGMA: f64 = 1.4826;
/// The smallest residual scale, relative to the group's largest absolute value.
const SCALE_FLOOR: f64 = 1e-10;

/// The seasonal residual rule's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seasonal {
    /// Rows in one season (7 for daily rows with a weekly pattern), at least 2.
    pub period: usize,
    /// Flagged when `|score| > threshold`.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

impl Seasonal {
    /// Period `period`, threshold 3.
    pub fn new(period: usize) -> Self {
        Self {
            period,
            threshold: default_threshold(),
        }
    }
}

/// Seasonal residual rule per group (see the module doc). Rows of a group must be consecutive
/// periods in time order. Empty input gives no flags.
pub fn seasonal_residual(
    values: &[f64],
    groups: &[u32],
    spec: &Seasonal,
) -> Result<Vec<Flag>, AnomalyError> {
    if spec.period < 2 {
        return Err(AnomalyError::Period {
            period: spec.period,
        });
    }
    check_threshold(spec.threshold)?;
    check_input(values, groups)?;
    let mut scratch = Scratch::default();
    Ok(by_group(values, groups, Rule::Seasonal, |xs, flags| {
        scratch.score(xs, spec, flags)
    }))
}

/// Buffers reused across groups.
#[derive(Debug, Default)]
struct Scratch {
    filled: Vec<f64>,
    /// `trend[j]` is the trend at row `j + ⌊p/2⌋`.
    trend: Vec<f64>,
    seasonal: Vec<f64>,
    counts: Vec<usize>,
    resid: Vec<f64>,
    tmp: Vec<f64>,
}

impl Scratch {
    fn score(&mut self, xs: &[f64], spec: &Seasonal, flags: &mut [Flag]) {
        let p = spec.period;
        let valid = xs.iter().filter(|x| !x.is_nan()).count();
        if valid < p.saturating_mul(2) {
            return;
        }
        let half = p / 2;
        fill_gaps(xs, &mut self.filled);
        centred_trend(&self.filled, p, &mut self.trend);

        // len(xs) >= 2p, so the trend covers at least p consecutive rows: every phase.
        self.seasonal.clear();
        self.seasonal.resize(p, 0.0);
        self.counts.clear();
        self.counts.resize(p, 0);
        for (j, t) in self.trend.iter().enumerate() {
            let i = j + half;
            self.seasonal[i % p] += self.filled[i] - t;
            self.counts[i % p] += 1;
        }
        for (s, &c) in self.seasonal.iter_mut().zip(&self.counts) {
            *s /= c as f64;
        }
        let centre = self.seasonal.iter().sum::<f64>() / p as f64;
        for s in &mut self.seasonal {
            *s -= centre;
        }

        let last = self.trend.len() - 1;
        self.resid.clear();
        self.tmp.clear();
        let mut largest = 0.0f64;
        for (i, &x) in xs.iter().enumerate() {
            let trend = self.trend[i.saturating_sub(half).min(last)];
            let r = x - trend - self.seasonal[i % p];
            self.resid.push(r);
            if !x.is_nan() {
                self.tmp.push(r);
                largest = largest.max(x.abs());
            }
        }
        let centre = median(&mut self.tmp);
        for r in &mut self.tmp {
            *r = (*r - centre).abs();
        }
        let mad = median(&mut self.tmp);
        let scale = (MAD_TO_SIGMA * mad).max(SCALE_FLOOR * largest);
        for ((flag, &r), &x) in flags.iter_mut().zip(&self.resid).zip(xs) {
            if x.is_nan() {
                continue;
            }
            let score = if scale > 0.0 {
                r / scale
            } else if r == 0.0 {
                0.0
            } else {
                f64::INFINITY.copysign(r)
            };
            *flag = Flag {
                score,
                flagged: score.abs() > spec.threshold,
                rule: Rule::Seasonal,
            };
        }
    }
}

/// `xs` with each run of NaN replaced by the straight line between its neighbours (the
/// nearest value at either end). `xs` holds at least one number.
fn fill_gaps(xs: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.extend_from_slice(xs);
    let mut last: Option<usize> = None;
    for (i, &x) in xs.iter().enumerate() {
        if x.is_nan() {
            continue;
        }
        match last {
            None => out[..i].fill(x),
            Some(j) if i > j + 1 => {
                let (a, span) = (xs[j], (i - j) as f64);
                for (step, v) in out[j + 1..i].iter_mut().enumerate() {
                    *v = a + (x - a) * (step + 1) as f64 / span;
                }
            }
            Some(_) => {}
        }
        last = Some(i);
    }
    if let Some(j) = last {
        out[j + 1..].fill(xs[j]);
    }
}

/// The centred moving average of `xs` (no NaN, at least `p + 1` values) for period `p`: one
/// value per full window, `out[j]` centred on row `j + ⌊p/2⌋`.
fn centred_trend(xs: &[f64], p: usize, out: &mut Vec<f64>) {
    let half = p / 2;
    let span = 2 * half + 1;
    let even = p.is_multiple_of(2);
    let pf = p as f64;
    out.clear();
    let mut sum = 0.0;
    for (j, w) in xs.windows(span).enumerate() {
        if j.is_multiple_of(p) {
            sum = w.iter().sum();
        } else {
            sum += w[span - 1] - xs[j - 1];
        }
        let t = if even {
            (sum - 0.5 * (w[0] + w[span - 1])) / pf
        } else {
            sum / pf
        };
        out.push(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    /// The series of the reference script: a sine of period `p`, a small deterministic wiggle
    /// and one spike.
    fn series(n: usize, p: usize, spike_at: usize, spike: f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let f = i as f64;
                let mut x = 10.0
                    + 3.0 * (std::f64::consts::TAU * f / p as f64).sin()
                    + 0.3 * (f * 1.3).sin() * (f * 0.7).cos();
                if i == spike_at {
                    x += spike;
                }
                x
            })
            .collect()
    }

    fn flagged(flags: &[Flag]) -> Vec<usize> {
        (0..flags.len()).filter(|&i| flags[i].flagged).collect()
    }

    // Expected values: statsmodels 0.15.0 `seasonal_decompose(x, model="additive", period=p)`
    // for the seasonal component and the inner residuals; the end trend extension, the MAD and
    // the scores recomputed with numpy 2.4 from statsmodels' trend.

    #[test]
    fn odd_period_matches_statsmodels_and_flags_the_spike() {
        let x = series(70, 7, 38, 6.0);
        let mut scratch = Scratch::default();
        let mut flags = [Flag::unscored(Rule::Seasonal); 70];
        scratch.score(&x, &Seasonal::new(7), &mut flags);
        let seasonal = [
            -0.08486413830224272,
            2.2584102602037706,
            2.8326922440827524,
            1.829257964077944,
            -1.386244006962357,
            -3.0126801817182036,
            -2.4365721413816632,
        ];
        for (s, e) in scratch.seasonal.iter().zip(seasonal) {
            assert!(close(*s, e, 1e-10), "{s} vs {e}");
        }
        for (i, e) in [
            (3, -0.47972268939357154),
            (8, -0.03835680018366494),
            (20, 0.14347799820473517),
            (66, -0.4378437163034097),
        ] {
            assert!(
                close(scratch.resid[i], e, 1e-10),
                "{i}: {}",
                scratch.resid[i]
            );
        }
        for (i, e) in [
            (0, 0.16026551913875292),
            (1, 1.4123590128496246),
            (3, -2.6897804716638984),
            (20, 0.8044737641498265),
            (38, 25.94591),
            (66, -2.4549672212553078),
            (69, -0.4643670174593127),
        ] {
            assert!(close(flags[i].score, e, 1e-6), "{i}: {}", flags[i].score);
        }
        // Classical decomposition spreads a spike into the trend around it and into its
        // phase's mean: statsmodels' residuals flag those rows too, the spike scores highest.
        assert_eq!(
            flagged(&flags),
            vec![24, 31, 35, 36, 37, 38, 39, 40, 41, 52, 59]
        );
        let top = (0..70)
            .max_by(|&a, &b| flags[a].score.abs().total_cmp(&flags[b].score.abs()))
            .unwrap();
        assert_eq!(top, 38);
    }

    #[test]
    fn even_period_uses_the_two_by_p_average() {
        let x = series(22, 4, 9, -4.0);
        let mut scratch = Scratch::default();
        let mut flags = [Flag::unscored(Rule::Seasonal); 22];
        scratch.score(&x, &Seasonal::new(4), &mut flags);
        let seasonal = [
            0.29802386977708595,
            2.2774319456363648,
            0.19422176190223908,
            -2.7696775773156896,
        ];
        for (s, e) in scratch.seasonal.iter().zip(seasonal) {
            assert!(close(*s, e, 1e-10), "{s} vs {e}");
        }
        for (i, e) in [
            (2, -0.28703699844634056),
            (7, 0.4040619193863866),
            (19, -0.21449216326247855),
        ] {
            assert!(
                close(scratch.resid[i], e, 1e-10),
                "{i}: {}",
                scratch.resid[i]
            );
        }
        for (i, e) in [
            (0, -0.9983478807378453),
            (1, 1.9735015762801458),
            (2, -0.6869956425061912),
            (19, -0.5133665078392193),
            (20, -0.376886011942882),
            (21, 1.6739651283443502),
        ] {
            assert!(close(flags[i].score, e, 1e-9), "{i}: {}", flags[i].score);
        }
        assert_eq!(flagged(&flags), vec![9]);
        assert!(flags[9].score < 0.0);
    }

    #[test]
    fn groups_missing_values_and_short_series() {
        let a = series(70, 7, 38, 6.0);
        let mut with_gap = series(28, 7, 100, 0.0);
        with_gap[10] = f64::NAN;
        let short = [1.0, 2.0, 3.0, 4.0, 5.0];
        let mut values = a.clone();
        values.extend_from_slice(&with_gap);
        values.extend(short);
        let mut groups = vec![1u32; 70];
        groups.extend([0u32; 28]);
        groups.extend([5u32; 5]);
        let flags = seasonal_residual(&values, &groups, &Seasonal::new(7)).unwrap();
        assert_eq!(flags.len(), 103);
        // Group 1 is scored as on its own.
        let alone = seasonal_residual(&a, &[0; 70], &Seasonal::new(7)).unwrap();
        assert_eq!(flags[..70], alone[..]);
        // The missing value is not scored, its neighbours are.
        assert!(!flags[80].is_scored() && !flags[80].flagged);
        assert!(flags[79].is_scored() && flags[81].is_scored());
        assert!(flags[70..98].iter().all(|f| !f.flagged));
        // Fewer than two seasons: not scored.
        assert!(flags[98..].iter().all(|f| !f.is_scored()));
    }

    #[test]
    fn an_exactly_periodic_series_flags_nothing() {
        let x: Vec<f64> = (0..84)
            .map(|i| 5.0 + (std::f64::consts::TAU * i as f64 / 12.0).sin())
            .collect();
        let flags = seasonal_residual(&x, &[0; 84], &Seasonal::new(12)).unwrap();
        assert!(flags.iter().all(|f| f.is_scored() && !f.flagged));
        let constant = seasonal_residual(&[0.0; 20], &[0; 20], &Seasonal::new(3)).unwrap();
        assert!(constant.iter().all(|f| f.score == 0.0 && !f.flagged));
    }

    #[test]
    fn fills_gaps_and_rejects_bad_settings() {
        let n = f64::NAN;
        let mut out = Vec::new();
        fill_gaps(&[n, 2.0, n, n, 5.0, n], &mut out);
        assert_eq!(out, vec![2.0, 2.0, 3.0, 4.0, 5.0, 5.0]);
        let mut trend = Vec::new();
        centred_trend(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, &mut trend);
        // 2×2 average: (x[i-1]/2 + x[i] + x[i+1]/2) / 2.
        assert_eq!(trend, vec![2.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            seasonal_residual(&[1.0], &[0], &Seasonal::new(1)),
            Err(AnomalyError::Period { period: 1 })
        );
        let spec = Seasonal {
            threshold: 0.0,
            ..Seasonal::new(7)
        };
        assert!(matches!(
            seasonal_residual(&[1.0], &[0], &spec),
            Err(AnomalyError::Threshold { .. })
        ));
    }
}
