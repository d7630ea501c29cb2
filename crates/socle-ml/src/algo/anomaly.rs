//! Anomaly rules: each flags every row with a score and the rule that fired, so a model can be
//! trained on the rows that were not flagged.
//!
//! - **Rolling z-score** ([`rolling_zscore`]): the row against the mean and the sample standard
//!   deviation (ddof = 1) of the previous `window` rows of its group, as pandas computes
//!   `x.shift(1).rolling(window, min_periods).mean()` / `.std()`. The window counts rows; missing
//!   values (NaN) inside it are skipped, and `min_periods` counts the non-missing ones. With
//!   `center`, the window is the `window` rows around the row (⌈window/2⌉ before, ⌊window/2⌋ after),
//!   the row itself still excluded. Running Welford sums make it O(n) per group (see
//!   `anomaly/rolling.rs`).
//! - **IQR** ([`iqr`]): Q1 and Q3 per group with numpy's default (linear) percentile, flagged
//!   outside `[Q1 − k·IQR, Q3 + k·IQR]`.
//! - **Seasonal residual** ([`seasonal_residual`]): classical additive decomposition per group as
//!   statsmodels 0.15's `seasonal_decompose(model="additive", two_sided=True)` computes it, the
//!   residual scored against 1.4826·MAD of the group's residuals.
//!
//! Rows of a group are taken in the order they are given: pass them in time order within each
//! group (the groups need not be contiguous). A group is any `u32` key.
//!
//! Missing values (NaN) are never scored nor flagged (their [`Flag::score`] is NaN); infinite
//! values are an error. Deliberate differences from the references:
//! - the seasonal rule extends the trend to the ends of the series with the nearest defined trend
//!   value, so every row gets a score (statsmodels leaves them NaN); it fills missing values by
//!   linear interpolation for the decomposition (statsmodels refuses them); and it raises a
//!   residual scale below `1e-10·max|x|` to that floor, so that the rounding noise of an exactly
//!   periodic series is not flagged;
//! - a zero standard deviation (a constant window) gives a z-score of 0 when the row equals the
//!   window's value, else ±∞ (flagged), where pandas gives NaN or ±∞.

mod rolling;
mod seasonal;

use serde::{Deserialize, Serialize};

pub use seasonal::{Seasonal, seasonal_residual};

use rolling::{Moments, Window, rolling_moments};

/// Why a rule cannot run on the given input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnomalyError {
    #[error("{values} values but {groups} group keys: give one group key per row")]
    LengthMismatch { values: usize, groups: usize },
    #[error("row {row} is {value}; only finite values, or NaN for a missing value, can be scored")]
    Infinite { row: usize, value: f64 },
    #[error("window = {window} is too small: a standard deviation needs at least 2 values")]
    Window { window: usize },
    #[error("min_periods = {min_periods} must be between 1 and the window ({window})")]
    MinPeriods { min_periods: usize, window: usize },
    #[error("threshold = {threshold} must be a finite number above 0")]
    Threshold { threshold: f64 },
    #[error("k = {k} must be a finite number, 0 or more")]
    Multiplier { k: f64 },
    #[error("period = {period} is too short: a season needs at least 2 rows")]
    Period { period: usize },
}

/// The rule that scored a row. [`Rule::as_str`] is stable: it is stored with the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    ZScore,
    Iqr,
    Seasonal,
}

impl Rule {
    /// `"zscore"`, `"iqr"` or `"seasonal"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ZScore => "zscore",
            Rule::Iqr => "iqr",
            Rule::Seasonal => "seasonal",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row's verdict. `score` is signed (negative below the expected value) and NaN when the
/// row was not scored (a missing value, or too little data in its group or window).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub score: f64,
    pub flagged: bool,
    pub rule: Rule,
}

impl Flag {
    /// A row the rule could not score: NaN score, not flagged.
    pub fn unscored(rule: Rule) -> Self {
        Self {
            score: f64::NAN,
            flagged: false,
            rule,
        }
    }

    /// Whether the rule scored this row.
    pub fn is_scored(&self) -> bool {
        !self.score.is_nan()
    }
}

fn default_threshold() -> f64 {
    3.0
}

fn default_k() -> f64 {
    1.5
}

/// The rolling z-score rule's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZScore {
    /// Rows in the window (at least 2).
    pub window: usize,
    /// Non-missing values the window needs for the row to be scored; `None` = `window`.
    /// At least 2 are always needed (a standard deviation needs two values).
    #[serde(default)]
    pub min_periods: Option<usize>,
    /// Flagged when `|score| > threshold`.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// A window centred on the row instead of trailing it.
    #[serde(default)]
    pub center: bool,
}

impl ZScore {
    /// A trailing window of `window` rows, `min_periods = window`, threshold 3.
    pub fn new(window: usize) -> Self {
        Self {
            window,
            min_periods: None,
            threshold: default_threshold(),
            center: false,
        }
    }

    fn validate(&self) -> Result<(), AnomalyError> {
        if self.window < 2 {
            return Err(AnomalyError::Window {
                window: self.window,
            });
        }
        if let Some(min_periods) = self.min_periods
            && (min_periods == 0 || min_periods > self.window)
        {
            return Err(AnomalyError::MinPeriods {
                min_periods,
                window: self.window,
            });
        }
        check_threshold(self.threshold)
    }
}

/// The IQR rule's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Iqr {
    /// The fences are `k` interquartile ranges beyond the quartiles (default 1.5).
    #[serde(default = "default_k")]
    pub k: f64,
}

impl Default for Iqr {
    fn default() -> Self {
        Self { k: default_k() }
    }
}

/// One of the rules with its settings, as stored in a spec (`{"rule": "zscore", "window": 7}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "lowercase")]
pub enum Detector {
    ZScore(ZScore),
    Iqr(Iqr),
    Seasonal(Seasonal),
}

impl Detector {
    /// The rule this detector applies.
    pub fn rule(&self) -> Rule {
        match self {
            Detector::ZScore(_) => Rule::ZScore,
            Detector::Iqr(_) => Rule::Iqr,
            Detector::Seasonal(_) => Rule::Seasonal,
        }
    }

    /// Flags every row (see the rule's function).
    pub fn apply(&self, values: &[f64], groups: &[u32]) -> Result<Vec<Flag>, AnomalyError> {
        match self {
            Detector::ZScore(spec) => rolling_zscore(values, groups, spec),
            Detector::Iqr(spec) => iqr(values, groups, spec),
            Detector::Seasonal(spec) => seasonal_residual(values, groups, spec),
        }
    }
}

fn check_threshold(threshold: f64) -> Result<(), AnomalyError> {
    if threshold.is_finite() && threshold > 0.0 {
        Ok(())
    } else {
        Err(AnomalyError::Threshold { threshold })
    }
}

fn check_input(values: &[f64], groups: &[u32]) -> Result<(), AnomalyError> {
    if values.len() != groups.len() {
        return Err(AnomalyError::LengthMismatch {
            values: values.len(),
            groups: groups.len(),
        });
    }
    match values.iter().position(|v| v.is_infinite()) {
        Some(row) => Err(AnomalyError::Infinite {
            row,
            value: values[row],
        }),
        None => Ok(()),
    }
}

/// Runs `score` on each group's values (in the given row order) and puts the flags it wrote
/// back in row order. Rows the closure leaves alone stay unscored.
fn by_group(
    values: &[f64],
    groups: &[u32],
    rule: Rule,
    mut score: impl FnMut(&[f64], &mut [Flag]),
) -> Vec<Flag> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    // Stable: the rows of a group keep their given order. Linear when already grouped.
    order.sort_by_key(|&i| groups[i]);
    let mut result = vec![Flag::unscored(rule); values.len()];
    let mut xs = Vec::new();
    let mut flags = Vec::new();
    for rows in order.chunk_by(|&a, &b| groups[a] == groups[b]) {
        xs.clear();
        xs.extend(rows.iter().map(|&i| values[i]));
        flags.clear();
        flags.resize(rows.len(), Flag::unscored(rule));
        score(&xs, &mut flags);
        for (&i, flag) in rows.iter().zip(&flags) {
            result[i] = *flag;
        }
    }
    result
}

/// Rolling z-score per group: `score = (x − mean) / std` over the window (see the module doc),
/// flagged when `|score| > threshold`. A row is not scored when its value is missing or its
/// window holds fewer than `max(min_periods, 2)` non-missing values. A constant window (std 0)
/// scores 0 when the row equals it, else ±∞ (flagged). Empty input gives no flags.
pub fn rolling_zscore(
    values: &[f64],
    groups: &[u32],
    spec: &ZScore,
) -> Result<Vec<Flag>, AnomalyError> {
    spec.validate()?;
    check_input(values, groups)?;
    let need = spec.min_periods.unwrap_or(spec.window).max(2);
    let mut windows = (Window::new(), Window::new());
    let mut moments: Vec<Moments> = Vec::new();
    Ok(by_group(values, groups, Rule::ZScore, |xs, flags| {
        rolling_moments(xs, spec.window, spec.center, &mut windows, &mut moments);
        for ((flag, &x), m) in flags.iter_mut().zip(xs).zip(&moments) {
            if x.is_nan() || m.count < need {
                continue;
            }
            let score = if m.std > 0.0 {
                (x - m.mean) / m.std
            } else if x == m.mean {
                0.0
            } else {
                f64::INFINITY.copysign(x - m.mean)
            };
            *flag = Flag {
                score,
                flagged: score.abs() > spec.threshold,
                rule: Rule::ZScore,
            };
        }
    }))
}

/// IQR rule per group: Q1 and Q3 of the group's non-missing values (numpy's linear percentile),
/// flagged outside `[Q1 − k·IQR, Q3 + k·IQR]`; the score is the signed distance beyond the
/// nearer fence in IQR units (negative below, 0 inside). When the IQR is 0, a value outside the
/// fences scores ±∞. Empty input gives no flags.
pub fn iqr(values: &[f64], groups: &[u32], spec: &Iqr) -> Result<Vec<Flag>, AnomalyError> {
    if !spec.k.is_finite() || spec.k < 0.0 {
        return Err(AnomalyError::Multiplier { k: spec.k });
    }
    check_input(values, groups)?;
    let k = spec.k;
    let mut buf = Vec::new();
    Ok(by_group(values, groups, Rule::Iqr, |xs, flags| {
        buf.clear();
        buf.extend(xs.iter().copied().filter(|x| !x.is_nan()));
        if buf.is_empty() {
            return;
        }
        let q1 = quantile_linear(&mut buf, 0.25);
        let q3 = quantile_linear(&mut buf, 0.75);
        let range = q3 - q1;
        let (low, high) = (q1 - k * range, q3 + k * range);
        for (flag, &x) in flags.iter_mut().zip(xs) {
            if x.is_nan() {
                continue;
            }
            let beyond = if x < low {
                x - low
            } else if x > high {
                x - high
            } else {
                0.0
            };
            let score = if beyond == 0.0 {
                0.0
            } else if range > 0.0 {
                beyond / range
            } else {
                f64::INFINITY.copysign(beyond)
            };
            *flag = Flag {
                score,
                flagged: x < low || x > high,
                rule: Rule::Iqr,
            };
        }
    }))
}

/// The `q`-quantile of `buf` (no NaN, not empty) as numpy's `percentile(method="linear")`,
/// including its interpolation formula. Reorders `buf`; O(n).
fn quantile_linear(buf: &mut [f64], q: f64) -> f64 {
    let h = (buf.len() - 1) as f64 * q;
    let lo = (h.floor() as usize).min(buf.len() - 1);
    let t = h - lo as f64;
    let (_, &mut a, above) = buf.select_nth_unstable_by(lo, f64::total_cmp);
    if above.is_empty() {
        return a;
    }
    let b = above.iter().copied().fold(f64::INFINITY, f64::min);
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

/// The median of `buf` (no NaN, not empty) as numpy computes it. Reorders `buf`; O(n).
fn median(buf: &mut [f64]) -> f64 {
    let n = buf.len();
    let (below, &mut hi, _) = buf.select_nth_unstable_by(n / 2, f64::total_cmp);
    if !n.is_multiple_of(2) {
        return hi;
    }
    let lo = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    lo.midpoint(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn zscore_flags_only_the_spike_and_matches_pandas() {
        // pandas 3.1.1: z = (s - s.shift(1).rolling(5).mean()) / s.shift(1).rolling(5).std()
        let x = [
            10.0, 10.5, 9.8, 10.2, 10.1, 9.9, 10.3, 25.0, 10.0, 10.4, 9.7, 10.1,
        ];
        let expected = [
            f64::NAN,
            f64::NAN,
            f64::NAN,
            f64::NAN,
            f64::NAN,
            -0.849934150214885,
            0.7302967433402267,
            72.04707763225977,
            -0.4658889488973596,
            -0.3984241950861254,
            -0.5147252909783221,
            -0.4468363761353759,
        ];
        let flags = rolling_zscore(&x, &[0; 12], &ZScore::new(5)).unwrap();
        for (f, e) in flags.iter().zip(expected) {
            assert_eq!(f.rule, Rule::ZScore);
            if e.is_nan() {
                assert!(!f.is_scored() && !f.flagged, "{f:?}");
            } else {
                assert!(close(f.score, e, 1e-12), "{} vs {e}", f.score);
            }
        }
        let flagged: Vec<usize> = (0..12).filter(|&i| flags[i].flagged).collect();
        assert_eq!(flagged, vec![7]);

        // min_periods = 3 scores rows 3 and 4 too.
        let spec = ZScore {
            min_periods: Some(3),
            ..ZScore::new(5)
        };
        let flags = rolling_zscore(&x, &[0; 12], &spec).unwrap();
        assert!(!flags[2].is_scored());
        assert!(close(flags[3].score, 0.27735009811261396, 1e-12));
        assert!(close(flags[4].score, -0.08372183582789346, 1e-12));
    }

    #[test]
    fn zscore_skips_missing_values_as_pandas_does() {
        // pandas: window of 4 rows, min_periods = 2, NaN skipped inside the window.
        let n = f64::NAN;
        let x = [1.0, 2.0, n, 4.0, 3.0, 2.5, n, 3.5, 10.0];
        let expected = [
            n,
            n,
            n,
            3.5355339059327373,
            0.4364357804719847,
            -0.5000000000000001,
            n,
            0.4364357804719851,
            14.00000000000002,
        ];
        let spec = ZScore {
            min_periods: Some(2),
            ..ZScore::new(4)
        };
        let flags = rolling_zscore(&x, &[3; 9], &spec).unwrap();
        for (f, e) in flags.iter().zip(expected) {
            if e.is_nan() {
                assert!(!f.is_scored() && !f.flagged);
            } else {
                assert!(close(f.score, e, 1e-12), "{} vs {e}", f.score);
            }
        }
        assert!(flags[3].flagged && flags[8].flagged && !flags[4].flagged);
    }

    #[test]
    fn zscore_groups_are_independent_and_keep_row_order() {
        let a = [1.0, 2.0, 1.5, 1.8, 9.0];
        let b = [100.0, 101.0, 99.0, 100.5, 100.0];
        // Interleave the two groups.
        let mut values = Vec::new();
        let mut groups = Vec::new();
        for (x, y) in a.iter().zip(&b) {
            values.extend([*y, *x]);
            groups.extend([7u32, 2]);
        }
        let spec = ZScore::new(3);
        let both = rolling_zscore(&values, &groups, &spec).unwrap();
        let only_a = rolling_zscore(&a, &[0; 5], &spec).unwrap();
        let only_b = rolling_zscore(&b, &[0; 5], &spec).unwrap();
        for (pair, (fa, fb)) in both.chunks(2).zip(only_a.iter().zip(&only_b)) {
            assert_eq!(pair[1].score.to_bits(), fa.score.to_bits());
            assert_eq!(pair[0].score.to_bits(), fb.score.to_bits());
        }
        assert!(both[9].flagged && !both[8].flagged);
    }

    #[test]
    fn zscore_constant_window_and_centred_window() {
        let x = [5.0, 5.0, 5.0, 5.0, 5.0, 7.0, 5.0];
        let flags = rolling_zscore(&x, &[0; 7], &ZScore::new(3)).unwrap();
        assert_eq!(flags[3].score, 0.0);
        assert!(!flags[3].flagged);
        assert_eq!(flags[5].score, f64::INFINITY);
        assert!(flags[5].flagged);
        // The window [5, 5, 7] is no longer constant: mean 17/3, std 2/√3.
        let expected = (5.0 - 17.0 / 3.0) / (4.0f64 / 3.0).sqrt();
        assert!(close(flags[6].score, expected, 1e-12));

        // Centred window of 4: two rows before and two after, the row excluded.
        let x = [1.0, 2.0, 3.0, 50.0, 4.0, 5.0, 6.0];
        let spec = ZScore {
            center: true,
            ..ZScore::new(4)
        };
        let flags = rolling_zscore(&x, &[0; 7], &spec).unwrap();
        assert!(!flags[1].is_scored() && !flags[5].is_scored());
        let neighbours = [2.0, 3.0, 4.0, 5.0];
        let mean = 3.5;
        let sd = (neighbours
            .iter()
            .map(|v: &f64| (v - mean).powi(2))
            .sum::<f64>()
            / 3.0)
            .sqrt();
        assert!(close(flags[3].score, (50.0 - mean) / sd, 1e-12));
        assert!(flags[3].flagged);
        // Row 2 sees 1, 2, 50, 4: not an outlier.
        assert!(flags[2].is_scored() && !flags[2].flagged);
    }

    #[test]
    fn zscore_rejects_bad_settings_and_input() {
        let x = [1.0, 2.0];
        assert_eq!(
            rolling_zscore(&x, &[0, 0], &ZScore::new(1)),
            Err(AnomalyError::Window { window: 1 })
        );
        let spec = ZScore {
            min_periods: Some(4),
            ..ZScore::new(3)
        };
        assert!(matches!(
            rolling_zscore(&x, &[0, 0], &spec),
            Err(AnomalyError::MinPeriods { .. })
        ));
        let spec = ZScore {
            threshold: f64::NAN,
            ..ZScore::new(3)
        };
        assert!(matches!(
            rolling_zscore(&x, &[0, 0], &spec),
            Err(AnomalyError::Threshold { .. })
        ));
        assert!(matches!(
            rolling_zscore(&x, &[0], &ZScore::new(2)),
            Err(AnomalyError::LengthMismatch { .. })
        ));
        let err = rolling_zscore(&[1.0, f64::INFINITY], &[0, 0], &ZScore::new(2)).unwrap_err();
        assert_eq!(
            err,
            AnomalyError::Infinite {
                row: 1,
                value: f64::INFINITY
            }
        );
        assert!(err.to_string().contains("row 1"));
        assert_eq!(rolling_zscore(&[], &[], &ZScore::new(2)), Ok(vec![]));
    }

    #[test]
    fn iqr_matches_numpy_percentiles() {
        // numpy 2.4.6: percentile([...], [25, 75]) = 2.25, 4.25; fences -0.75 and 7.25.
        let v = [1.0, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 30.0, -12.0, 3.2];
        let flags = iqr(&v, &[1; 11], &Iqr::default()).unwrap();
        let scores: Vec<f64> = flags.iter().map(|f| f.score).collect();
        let mut expected = [0.0; 11];
        expected[8] = 11.375;
        expected[9] = -5.625;
        assert_eq!(scores, expected);
        let flagged: Vec<usize> = (0..11).filter(|&i| flags[i].flagged).collect();
        assert_eq!(flagged, vec![8, 9]);

        let mut buf = [7.0, 1.5, 2.25, 9.0];
        assert_eq!(quantile_linear(&mut buf, 0.25), 2.0625);
        assert_eq!(quantile_linear(&mut buf, 0.75), 7.5);
        let mut one = [4.0];
        assert_eq!(quantile_linear(&mut one, 0.75), 4.0);
        let mut even = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(median(&mut even), 2.5);
    }

    #[test]
    fn iqr_per_group_with_missing_values_and_zero_range() {
        let n = f64::NAN;
        let values = [1.0, 100.0, n, 1.0, 1.0, 5.0, 100.0, 1.0];
        let groups = [0, 1, 0, 0, 0, 0, 1, 0];
        let flags = iqr(&values, &groups, &Iqr::default()).unwrap();
        // Group 0 is 1, 1, 1, 5, 1: Q1 = Q3 = 1, so 5 is infinitely far.
        assert_eq!(flags[5].score, f64::INFINITY);
        assert!(flags[5].flagged);
        assert!(!flags[2].is_scored() && !flags[2].flagged);
        assert_eq!(flags[0].score, 0.0);
        assert!(!flags[1].flagged && !flags[6].flagged);
        assert!(matches!(
            iqr(&values, &groups, &Iqr { k: -1.0 }),
            Err(AnomalyError::Multiplier { .. })
        ));
    }

    #[test]
    fn detector_specs_parse_and_apply() {
        let d: Detector = serde_json::from_str(r#"{"rule": "zscore", "window": 5}"#).unwrap();
        assert_eq!(d, Detector::ZScore(ZScore::new(5)));
        assert_eq!(d.rule().as_str(), "zscore");
        let d: Detector = serde_json::from_str(r#"{"rule": "iqr"}"#).unwrap();
        assert_eq!(d.rule(), Rule::Iqr);
        assert_eq!(d.apply(&[1.0, 2.0], &[0, 0]).unwrap().len(), 2);
        assert!(serde_json::from_str::<Detector>(r#"{"rule": "iqr", "kk": 2}"#).is_err());
        assert_eq!(Rule::Seasonal.to_string(), "seasonal");
        assert_eq!(serde_json::to_string(&Rule::ZScore).unwrap(), r#""zscore""#);
    }
}
