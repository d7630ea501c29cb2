//! Binning: every feature value becomes a `u8` bin, as scikit-learn 1.9's `_BinMapper`
//! (`binning.py`, `_binning.pyx`):
//!
//! - A numeric feature gets at most `max_bins` bins for its non-missing values. With at most
//!   `max_bins` distinct values the thresholds are the midpoints between consecutive distinct
//!   values; otherwise they are the `max_bins − 1` inner percentiles of the values (NumPy's
//!   `averaged_inverted_cdf` method, computed the same way, duplicates dropped), all clipped
//!   at 1e300. The thresholds come from at most 200,000 rows drawn with replacement, as
//!   sklearn's `subsample`. A value `x` goes to bin `i` when `t[i − 1] < x ≤ t[i]`.
//! - A categorical feature's bin is its code (a whole number below `max_bins`): sklearn's
//!   ordinal encoding keeps the codes' order, and codes that no training row has are empty
//!   bins that the split finder skips, so the trees are the same.
//! - Missing values (NaN) go to bin `max_bins`, whatever the feature.
//!
//! Training data are stored column after column (one contiguous `u8` column per feature);
//! validation rows are stored row after row, which is faster to predict.

use serde::{Deserialize, Serialize};

use super::super::{Matrix, Rng};
use super::histogram::par_for_each;

/// The largest threshold: larger ones are clipped to it (sklearn's `ALMOST_INF`).
pub(crate) const ALMOST_INF: f64 = 1e300;

/// Rows drawn (with replacement) to find the thresholds when there are more.
pub(crate) const BINNING_SUBSAMPLE: usize = 200_000;

/// A set of bins or category codes (0–255), one bit each.
pub type Bitset = [u32; 8];

/// Whether `v` is in `set`.
pub(crate) fn in_bitset(set: &Bitset, v: u8) -> bool {
    (set[usize::from(v >> 5)] >> (v & 31)) & 1 == 1
}

/// Adds `v` to `set`.
pub(crate) fn set_bit(set: &mut Bitset, v: u8) {
    set[usize::from(v >> 5)] |= 1 << (v & 31);
}

/// Removes `v` from `set`.
pub(crate) fn clear_bit(set: &mut Bitset, v: u8) {
    set[usize::from(v >> 5)] &= !(1 << (v & 31));
}

/// How each feature's values map to bins: learned on the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinMapper {
    /// Bins for non-missing values; missing values go to bin `max_bins`.
    pub max_bins: usize,
    /// Per feature, the increasing thresholds of a numeric feature (empty for a categorical
    /// one): `x` goes to bin `i` when `thresholds[i − 1] < x ≤ thresholds[i]`.
    pub thresholds: Vec<Vec<f64>>,
    /// Per feature, the category codes seen in the data for a categorical feature, `None`
    /// for a numeric one. At prediction time another code is treated as a missing value.
    pub categories: Vec<Option<Bitset>>,
    /// Per feature, the number of bins that non-missing values can fall in.
    pub n_bins_non_missing: Vec<usize>,
}

impl BinMapper {
    /// Learns the bins from the rows `rows` of `x` (the training rows); the known categories
    /// of a categorical feature are those of every row of `x`, as sklearn (which encodes the
    /// categories before its validation split). Categorical codes must have been checked.
    pub(crate) fn fit(
        x: &Matrix,
        rows: &[usize],
        categorical: &[bool],
        max_bins: usize,
        rng: &mut Rng,
        n_threads: usize,
    ) -> Self {
        let sample: Vec<usize> = if rows.len() > BINNING_SUBSAMPLE {
            (0..BINNING_SUBSAMPLE)
                .map(|_| rows[rng.below(rows.len())])
                .collect()
        } else {
            rows.to_vec()
        };
        let mut thresholds: Vec<Vec<f64>> = vec![Vec::new(); x.cols];
        par_for_each(&mut thresholds, n_threads, |f, out| {
            if !categorical[f] {
                let mut values: Vec<f64> = sample.iter().map(|&r| x.get(r, f)).collect();
                *out = find_thresholds(&mut values, max_bins);
            }
        });
        let categories: Vec<Option<Bitset>> = (0..x.cols)
            .map(|f| categorical[f].then(|| known_categories(x, f)))
            .collect();
        let n_bins_non_missing = (0..x.cols)
            .map(|f| match &categories[f] {
                Some(set) => (0..=255u8)
                    .rev()
                    .find(|&c| in_bitset(set, c))
                    .map_or(0, |c| usize::from(c) + 1),
                None => thresholds[f].len() + 1,
            })
            .collect();
        Self {
            max_bins,
            thresholds,
            categories,
            n_bins_non_missing,
        }
    }

    /// The bin of missing values.
    pub fn missing_bin(&self) -> u8 {
        // max_bins ≤ 255 (checked with the options).
        self.max_bins as u8
    }

    /// The bin of value `v` of feature `f` (`v` a checked code for a categorical feature).
    pub(crate) fn bin(&self, f: usize, v: f64) -> u8 {
        if v.is_nan() {
            self.missing_bin()
        } else if self.categories[f].is_some() {
            v as u8
        } else {
            // At most max_bins − 1 thresholds, so the bin fits in a u8.
            self.thresholds[f].partition_point(|&t| t < v) as u8
        }
    }

    /// The rows `rows` of `x` binned, one contiguous column per feature.
    pub(crate) fn bin_columns(&self, x: &Matrix, rows: &[usize], n_threads: usize) -> Vec<u8> {
        let n = rows.len();
        let mut data = vec![0u8; n * x.cols];
        if n == 0 {
            return data;
        }
        let mut columns: Vec<&mut [u8]> = data.chunks_mut(n).collect();
        par_for_each(&mut columns, n_threads, |f, column| {
            for (out, &r) in column.iter_mut().zip(rows) {
                *out = self.bin(f, x.get(r, f));
            }
        });
        data
    }

    /// The rows `rows` of `x` binned, row after row.
    pub(crate) fn bin_rows(&self, x: &Matrix, rows: &[usize]) -> Vec<u8> {
        let mut data = Vec::with_capacity(rows.len() * x.cols);
        for &r in rows {
            data.extend(x.row(r).iter().enumerate().map(|(f, &v)| self.bin(f, v)));
        }
        data
    }
}

/// The category codes of column `f` of `x` (NaN skipped; codes checked beforehand).
fn known_categories(x: &Matrix, f: usize) -> Bitset {
    let mut set = [0u32; 8];
    for r in 0..x.rows {
        let v = x.get(r, f);
        if !v.is_nan() {
            set_bit(&mut set, v as u8);
        }
    }
    set
}

/// The thresholds of a numeric feature from its values (NaN ignored; `values` is reordered),
/// as sklearn's `_find_binning_thresholds` without sample weights.
pub(crate) fn find_thresholds(values: &mut Vec<f64>, max_bins: usize) -> Vec<f64> {
    values.retain(|v| !v.is_nan());
    values.sort_unstable_by(f64::total_cmp);
    let mut distinct = values.clone();
    distinct.dedup_by(|a, b| a == b);
    if distinct.len() <= 1 {
        return Vec::new();
    }
    let mut thresholds: Vec<f64> = if distinct.len() <= max_bins {
        distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect()
    } else {
        // np.percentile(values, np.linspace(0, 100, max_bins + 1)[1:-1],
        // method="averaged_inverted_cdf"), step by step as NumPy computes it.
        let n = values.len();
        let step = 100.0 / max_bins as f64;
        (1..max_bins)
            .map(|i| {
                let q = (i as f64 * step) / 100.0;
                averaged_inverted_cdf(values, n as f64 * q - 1.0)
            })
            .collect()
    };
    thresholds.dedup_by(|a, b| a == b);
    for t in &mut thresholds {
        if *t > ALMOST_INF {
            *t = ALMOST_INF;
        }
    }
    thresholds
}

/// NumPy's `averaged_inverted_cdf` quantile of `sorted` at virtual index `v = n·q − 1`.
fn averaged_inverted_cdf(sorted: &[f64], v: f64) -> f64 {
    let n = sorted.len();
    let last = n - 1;
    let (prev, next) = if v >= last as f64 {
        (last, last)
    } else if v < 0.0 {
        (0, 0)
    } else {
        let p = v.floor() as usize;
        (p, p + 1)
    };
    let (a, b) = (sorted[prev], sorted[next]);
    if prev == next {
        return b;
    }
    // gamma is 0.5 where the virtual index is a whole number, 1 elsewhere; NumPy's _lerp
    // for gamma ≥ 0.5 computes b − (b − a)·(1 − gamma).
    let gamma = if v - prev as f64 == 0.0 { 0.5 } else { 1.0 };
    b - (b - a) * (1.0 - gamma)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_distinct_values_give_midpoints() {
        let mut v = vec![3.0, 1.0, f64::NAN, 2.0, 1.0, 3.0];
        assert_eq!(find_thresholds(&mut v, 255), vec![1.5, 2.5]);
        let mut constant = vec![4.0, 4.0, f64::NAN];
        assert!(find_thresholds(&mut constant, 255).is_empty());
        let mut all_missing = vec![f64::NAN; 3];
        assert!(find_thresholds(&mut all_missing, 255).is_empty());
    }

    #[test]
    fn many_distinct_values_give_sklearns_percentiles() {
        // sklearn 1.9.1: _find_binning_thresholds(np.arange(10.0) ** 2, max_bins=4)
        // → [4.0, 20.5, 49.0]; with max_bins=3 → [9.0, 36.0].
        let mut v: Vec<f64> = (0..10).map(|i| f64::from(i * i)).collect();
        assert_eq!(find_thresholds(&mut v.clone(), 4), vec![4.0, 20.5, 49.0]);
        assert_eq!(find_thresholds(&mut v, 3), vec![9.0, 36.0]);
        // Heavy ties: duplicates removed. sklearn: [0.0] for [0]*8 + [1, 2, 3] and
        // max_bins=2; [0.0, 1.0, 4.0] for [0]*5 + [1, ..., 6] and max_bins=4.
        let mut t = vec![0.0; 8];
        t.extend([1.0, 2.0, 3.0]);
        assert_eq!(find_thresholds(&mut t, 2), vec![0.0]);
        let mut t2 = vec![0.0; 5];
        t2.extend([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(find_thresholds(&mut t2, 4), vec![0.0, 1.0, 4.0]);
    }

    #[test]
    fn huge_midpoints_are_clipped() {
        let mut v = vec![0.0, f64::MAX];
        assert_eq!(find_thresholds(&mut v, 255), vec![ALMOST_INF]);
    }

    #[test]
    fn values_map_to_bins_as_sklearn() {
        let x = Matrix::from_vecs(&[
            vec![1.0, 2.0],
            vec![2.0, 0.0],
            vec![3.0, f64::NAN],
            vec![f64::NAN, 2.0],
        ])
        .unwrap();
        let mut rng = Rng::new(0);
        let m = BinMapper::fit(&x, &[0, 1, 2, 3], &[false, true], 255, &mut rng, 2);
        assert_eq!(m.thresholds[0], vec![1.5, 2.5]);
        assert_eq!(m.n_bins_non_missing, vec![3, 3]);
        assert!(m.categories[1].is_some_and(|s| in_bitset(&s, 0) && !in_bitset(&s, 1)));
        let cols = m.bin_columns(&x, &[0, 1, 2, 3], 2);
        assert_eq!(cols, vec![0, 1, 2, 255, 2, 0, 255, 2]);
        assert_eq!(m.bin_rows(&x, &[2, 3]), vec![2, 255, 255, 2]);
        // A value equal to a threshold goes to the lower bin; beyond the last, the last bin.
        assert_eq!(m.bin(0, 1.5), 0);
        assert_eq!(m.bin(0, 100.0), 2);
        assert_eq!(m.bin(0, -100.0), 0);
    }

    #[test]
    fn bitsets() {
        let mut s = [0u32; 8];
        for v in [0u8, 31, 32, 200, 255] {
            set_bit(&mut s, v);
        }
        assert!([0u8, 31, 32, 200, 255].iter().all(|&v| in_bitset(&s, v)));
        assert!(!in_bitset(&s, 1) && !in_bitset(&s, 254));
        clear_bit(&mut s, 200);
        assert!(!in_bitset(&s, 200));
    }
}
