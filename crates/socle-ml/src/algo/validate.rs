//! Validation splits and grid search, as scikit-learn 1.9 builds them: [`holdout`] as
//! `train_test_split` (`ceil(fraction · n)` test rows; without shuffling the last rows, so that
//! time order is kept), [`kfold`] as `KFold` (the first `n % k` folds one row larger),
//! [`time_series_splits`] as `TimeSeriesSplit` (expanding window, `test_size` and `gap`, same
//! errors), [`grid`] as `ParameterGrid` (keys sorted, the last key varying fastest), and
//! [`Score`] as a `cv_results_` row (mean and population standard deviation of the folds).
//!
//! Deliberate differences: shuffling draws from socle's seeded [`Rng`], not numpy's, so a seed
//! selects other rows than scikit-learn's `random_state` would; the train and test indices of
//! every split are sorted ascending (as `KFold` returns them; `train_test_split` returns the
//! shuffled order); a grid has at most [`MAX_GRID`] combinations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Rng;
use super::metrics::Metric;

/// The most combinations [`grid`] expands.
pub const MAX_GRID: usize = 10_000;

/// Why a split, a grid or a choice cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValidateError {
    #[error("no rows to split")]
    NoRows,
    #[error("test_fraction = {fraction} must be between 0 and 1, both excluded")]
    Fraction { fraction: f64 },
    #[error("a test fraction of {fraction} of {rows} row(s) leaves no training row")]
    NoHoldoutTraining { fraction: f64, rows: usize },
    #[error("{k} fold(s) or split(s): validation needs at least 2")]
    TooFewFolds { k: usize },
    #[error("k = {k} is more than the {rows} rows")]
    MoreFoldsThanRows { k: usize, rows: usize },
    #[error("n_splits = {n_splits} needs at least {needed} rows (n_splits + 1), there are {rows}")]
    TooManySplits {
        n_splits: usize,
        needed: usize,
        rows: usize,
    },
    #[error("test_size = 0: every split needs at least one test row")]
    ZeroTestSize,
    #[error(
        "{n_splits} splits of {test_size} test row(s) after a gap of {gap} leave no training row \
         in {rows} rows"
    )]
    NoTrainingRows {
        n_splits: usize,
        test_size: usize,
        gap: usize,
        rows: usize,
    },
    #[error("parameter '{name}' has no values to try")]
    EmptyGridValues { name: String },
    #[error("the grid has {count} combinations, more than the {limit} allowed: try fewer values")]
    GridTooLarge { count: u128, limit: usize },
    #[error("no fold scores")]
    NoFolds,
    #[error("fold {fold} scored {value}: fold scores must be finite")]
    NonFiniteScore { fold: usize, value: f64 },
    #[error("no candidates to choose from")]
    NoCandidates,
}

/// Row indices (ascending) to train on and to test on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

impl Split {
    /// Rows marked `true` go to the test set, in index order.
    fn from_mask(in_test: impl Iterator<Item = bool>, n: usize) -> Self {
        let mut split = Split {
            train: Vec::with_capacity(n),
            test: Vec::new(),
        };
        for (i, t) in in_test.enumerate() {
            if t {
                split.test.push(i);
            } else {
                split.train.push(i);
            }
        }
        split
    }
}

/// One train/test split of `n` rows with `ceil(test_fraction · n)` test rows: the last rows
/// without `shuffle` (time order), rows drawn with the seeded generator with `Some(seed)`.
pub fn holdout(n: usize, test_fraction: f64, shuffle: Option<u64>) -> Result<Split, ValidateError> {
    if !test_fraction.is_finite() || test_fraction <= 0.0 || test_fraction >= 1.0 {
        return Err(ValidateError::Fraction {
            fraction: test_fraction,
        });
    }
    if n == 0 {
        return Err(ValidateError::NoRows);
    }
    let test = ((test_fraction * n as f64).ceil() as usize).min(n);
    let train = n - test;
    if train == 0 {
        return Err(ValidateError::NoHoldoutTraining {
            fraction: test_fraction,
            rows: n,
        });
    }
    Ok(match shuffle {
        None => Split {
            train: (0..train).collect(),
            test: (train..n).collect(),
        },
        Some(seed) => {
            let mut order: Vec<usize> = (0..n).collect();
            Rng::new(seed).shuffle(&mut order);
            let mut in_test = vec![false; n];
            for &i in &order[..test] {
                in_test[i] = true;
            }
            Split::from_mask(in_test.into_iter(), n)
        }
    })
}

/// `k` folds of `n` rows: each row is in exactly one test set; fold sizes `n / k`, the first
/// `n % k` one larger. Contiguous folds in row order without `shuffle`.
pub fn kfold(n: usize, k: usize, shuffle: Option<u64>) -> Result<Vec<Split>, ValidateError> {
    if k < 2 {
        return Err(ValidateError::TooFewFolds { k });
    }
    if k > n {
        return Err(ValidateError::MoreFoldsThanRows { k, rows: n });
    }
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(seed) = shuffle {
        Rng::new(seed).shuffle(&mut order);
    }
    let (base, extra) = (n / k, n % k);
    let mut fold_of = vec![0usize; n];
    let mut start = 0;
    for fold in 0..k {
        let size = base + usize::from(fold < extra);
        for &i in &order[start..start + size] {
            fold_of[i] = fold;
        }
        start += size;
    }
    Ok((0..k)
        .map(|fold| Split::from_mask(fold_of.iter().map(|&f| f == fold), n))
        .collect())
}

/// Expanding-window splits for time-ordered rows, as scikit-learn's `TimeSeriesSplit`:
/// `n_splits` consecutive test blocks of `test_size` rows (default `n / (n_splits + 1)`)
/// ending at the last row; each trains on every row before its block less `gap` rows.
pub fn time_series_splits(
    n: usize,
    n_splits: usize,
    test_size: Option<usize>,
    gap: usize,
) -> Result<Vec<Split>, ValidateError> {
    if n_splits < 2 {
        return Err(ValidateError::TooFewFolds { k: n_splits });
    }
    let needed = n_splits.saturating_add(1);
    if needed > n {
        return Err(ValidateError::TooManySplits {
            n_splits,
            needed,
            rows: n,
        });
    }
    let test_size = test_size.unwrap_or(n / needed);
    if test_size == 0 {
        return Err(ValidateError::ZeroTestSize);
    }
    let first = match test_size.checked_mul(n_splits) {
        Some(tested) if tested.checked_add(gap).is_some_and(|used| used < n) => n - tested,
        _ => {
            return Err(ValidateError::NoTrainingRows {
                n_splits,
                test_size,
                gap,
                rows: n,
            });
        }
    };
    Ok((0..n_splits)
        .map(|s| {
            let start = first + s * test_size;
            Split {
                train: (0..start - gap).collect(),
                test: (start..start + test_size).collect(),
            }
        })
        .collect())
}

/// Every combination of the parameters' values: keys in sorted order, values in the given
/// order, the last key varying fastest (scikit-learn's `ParameterGrid`). No parameters give
/// one empty combination. Errors for an empty value list and past [`MAX_GRID`] combinations.
pub fn grid(
    params: &BTreeMap<String, Vec<Value>>,
) -> Result<Vec<BTreeMap<String, Value>>, ValidateError> {
    let mut count: u128 = 1;
    for (name, values) in params {
        if values.is_empty() {
            return Err(ValidateError::EmptyGridValues { name: name.clone() });
        }
        count = count.saturating_mul(values.len() as u128);
    }
    if count > MAX_GRID as u128 {
        return Err(ValidateError::GridTooLarge {
            count,
            limit: MAX_GRID,
        });
    }
    let lists: Vec<(&String, &Vec<Value>)> = params.iter().collect();
    let mut at = vec![0usize; lists.len()];
    let mut out = Vec::with_capacity(count as usize);
    loop {
        out.push(
            lists
                .iter()
                .zip(&at)
                .map(|((name, values), &i)| ((*name).clone(), values[i].clone()))
                .collect(),
        );
        // Odometer: advance the last key, carry to the left.
        let mut pos = lists.len();
        loop {
            if pos == 0 {
                return Ok(out);
            }
            pos -= 1;
            at[pos] += 1;
            if at[pos] < lists[pos].1.len() {
                break;
            }
            at[pos] = 0;
        }
    }
}

/// A candidate's cross-validated score: the folds' scores, their mean and population
/// standard deviation (numpy's default, as in scikit-learn's `std_test_score`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub mean: f64,
    pub std: f64,
    pub per_fold: Vec<f64>,
}

impl Score {
    /// From one finite score per fold (at least one).
    pub fn from_folds(per_fold: Vec<f64>) -> Result<Self, ValidateError> {
        if per_fold.is_empty() {
            return Err(ValidateError::NoFolds);
        }
        if let Some(fold) = per_fold.iter().position(|v| !v.is_finite()) {
            return Err(ValidateError::NonFiniteScore {
                fold,
                value: per_fold[fold],
            });
        }
        let n = per_fold.len() as f64;
        let mean = per_fold.iter().sum::<f64>() / n;
        let var = per_fold
            .iter()
            .map(|v| (v - mean) * (v - mean))
            .sum::<f64>()
            / n;
        Ok(Self {
            mean,
            std: var.sqrt(),
            per_fold,
        })
    }
}

/// The index of the candidate with the best mean for `metric` (highest or lowest as the
/// metric prefers); the first one on a tie. A NaN mean never wins over a number.
pub fn best(candidates: &[Score], metric: Metric) -> Result<usize, ValidateError> {
    let mut best: Option<usize> = None;
    for (i, c) in candidates.iter().enumerate() {
        let better = match best {
            None => true,
            Some(b) => {
                let m = candidates[b].mean;
                let beats = if metric.higher_is_better() {
                    c.mean > m
                } else {
                    c.mean < m
                };
                !c.mean.is_nan() && (m.is_nan() || beats)
            }
        };
        if better {
            best = Some(i);
        }
    }
    best.ok_or(ValidateError::NoCandidates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(splits: &[Split]) -> Vec<(Vec<usize>, Vec<usize>)> {
        splits
            .iter()
            .map(|s| (s.train.clone(), s.test.clone()))
            .collect()
    }

    // Expected index sets: scikit-learn 1.9.1 `KFold(3)`, `TimeSeriesSplit(...)` and
    // `train_test_split(shuffle=False)` on 10 rows.

    #[test]
    fn kfold_matches_sklearn() {
        let splits = kfold(10, 3, None).unwrap();
        assert_eq!(
            pairs(&splits),
            vec![
                (vec![4, 5, 6, 7, 8, 9], vec![0, 1, 2, 3]),
                (vec![0, 1, 2, 3, 7, 8, 9], vec![4, 5, 6]),
                (vec![0, 1, 2, 3, 4, 5, 6], vec![7, 8, 9]),
            ]
        );
    }

    #[test]
    fn shuffled_kfold_covers_every_row_once_and_is_deterministic() {
        let a = kfold(10, 3, Some(42)).unwrap();
        assert_eq!(a, kfold(10, 3, Some(42)).unwrap());
        assert_ne!(a, kfold(10, 3, None).unwrap());
        let sizes: Vec<usize> = a.iter().map(|s| s.test.len()).collect();
        assert_eq!(sizes, vec![4, 3, 3]);
        let mut seen = [0; 10];
        for s in &a {
            assert_eq!(s.train.len() + s.test.len(), 10);
            assert!(s.test.windows(2).all(|w| w[0] < w[1]));
            assert!(s.train.iter().all(|i| !s.test.contains(i)));
            for &i in &s.test {
                seen[i] += 1;
            }
        }
        assert_eq!(seen, [1; 10]);
    }

    #[test]
    fn kfold_errors() {
        assert_eq!(kfold(10, 1, None), Err(ValidateError::TooFewFolds { k: 1 }));
        let err = kfold(7, 10, None).unwrap_err();
        assert_eq!(err, ValidateError::MoreFoldsThanRows { k: 10, rows: 7 });
        assert_eq!(err.to_string(), "k = 10 is more than the 7 rows");
        assert_eq!(kfold(2, 2, None).unwrap().len(), 2);
    }

    #[test]
    fn time_series_splits_match_sklearn() {
        let expanding = vec![
            (vec![0, 1, 2, 3], vec![4, 5]),
            (vec![0, 1, 2, 3, 4, 5], vec![6, 7]),
            (vec![0, 1, 2, 3, 4, 5, 6, 7], vec![8, 9]),
        ];
        assert_eq!(
            pairs(&time_series_splits(10, 3, None, 0).unwrap()),
            expanding
        );
        assert_eq!(
            pairs(&time_series_splits(10, 3, Some(2), 0).unwrap()),
            expanding
        );
        assert_eq!(
            pairs(&time_series_splits(10, 3, None, 2).unwrap()),
            vec![
                (vec![0, 1], vec![4, 5]),
                (vec![0, 1, 2, 3], vec![6, 7]),
                (vec![0, 1, 2, 3, 4, 5], vec![8, 9]),
            ]
        );
        assert_eq!(
            pairs(&time_series_splits(10, 3, Some(2), 1).unwrap()),
            vec![
                (vec![0, 1, 2], vec![4, 5]),
                (vec![0, 1, 2, 3, 4], vec![6, 7]),
                (vec![0, 1, 2, 3, 4, 5, 6], vec![8, 9]),
            ]
        );
        assert_eq!(
            pairs(&time_series_splits(10, 3, Some(3), 0).unwrap()),
            vec![
                (vec![0], vec![1, 2, 3]),
                (vec![0, 1, 2, 3], vec![4, 5, 6]),
                (vec![0, 1, 2, 3, 4, 5, 6], vec![7, 8, 9]),
            ]
        );
        assert_eq!(time_series_splits(10, 9, None, 0).unwrap().len(), 9);
    }

    #[test]
    fn time_series_split_errors_as_sklearn() {
        assert_eq!(
            time_series_splits(10, 3, Some(3), 1),
            Err(ValidateError::NoTrainingRows {
                n_splits: 3,
                test_size: 3,
                gap: 1,
                rows: 10
            })
        );
        assert_eq!(
            time_series_splits(10, 10, None, 0),
            Err(ValidateError::TooManySplits {
                n_splits: 10,
                needed: 11,
                rows: 10
            })
        );
        assert_eq!(
            time_series_splits(10, 1, None, 0),
            Err(ValidateError::TooFewFolds { k: 1 })
        );
        assert_eq!(
            time_series_splits(10, 3, Some(0), 0),
            Err(ValidateError::ZeroTestSize)
        );
        assert!(matches!(
            time_series_splits(10, 3, Some(usize::MAX), 0),
            Err(ValidateError::NoTrainingRows { .. })
        ));
    }

    #[test]
    fn holdout_keeps_time_order_or_shuffles() {
        // sklearn: ceil(0.25 · 10) = 3 and ceil(0.3 · 7) = 3 test rows.
        let s = holdout(10, 0.25, None).unwrap();
        assert_eq!(s.train, (0..7).collect::<Vec<_>>());
        assert_eq!(s.test, vec![7, 8, 9]);
        assert_eq!(holdout(7, 0.3, None).unwrap().test, vec![4, 5, 6]);
        let a = holdout(100, 0.2, Some(7)).unwrap();
        assert_eq!(a, holdout(100, 0.2, Some(7)).unwrap());
        assert_eq!((a.train.len(), a.test.len()), (80, 20));
        assert_ne!(a.test, (80..100).collect::<Vec<_>>());
        assert!(a.test.windows(2).all(|w| w[0] < w[1]));
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(matches!(
                holdout(10, bad, None),
                Err(ValidateError::Fraction { .. })
            ));
        }
        assert_eq!(holdout(0, 0.5, None), Err(ValidateError::NoRows));
        assert!(matches!(
            holdout(1, 0.5, Some(1)),
            Err(ValidateError::NoHoldoutTraining { rows: 1, .. })
        ));
    }

    #[test]
    fn grid_is_sklearn_parameter_grid_order() {
        let mut params = BTreeMap::new();
        params.insert("b".to_string(), vec![json!(1), json!(2)]);
        params.insert("a".to_string(), vec![json!("x"), json!("y")]);
        params.insert("c".to_string(), vec![json!(true)]);
        let combos = grid(&params).unwrap();
        // sklearn: [{'a': 'x', 'b': 1, 'c': True}, {'a': 'x', 'b': 2, ...}, {'a': 'y', 'b': 1},
        // {'a': 'y', 'b': 2}].
        let got: Vec<(Value, Value, Value)> = combos
            .iter()
            .map(|c| (c["a"].clone(), c["b"].clone(), c["c"].clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (json!("x"), json!(1), json!(true)),
                (json!("x"), json!(2), json!(true)),
                (json!("y"), json!(1), json!(true)),
                (json!("y"), json!(2), json!(true)),
            ]
        );
        assert_eq!(grid(&BTreeMap::new()).unwrap(), vec![BTreeMap::new()]);

        params.insert("d".to_string(), vec![]);
        assert_eq!(
            grid(&params),
            Err(ValidateError::EmptyGridValues {
                name: "d".to_string()
            })
        );
        let mut big: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for name in ["p", "q", "r", "s", "t"] {
            big.insert(name.to_string(), (0..7).map(|i| json!(i)).collect());
        }
        let err = grid(&big).unwrap_err();
        assert_eq!(
            err,
            ValidateError::GridTooLarge {
                count: 16_807,
                limit: MAX_GRID
            }
        );
        assert!(err.to_string().contains("16807 combinations"));
        big.remove("t");
        assert_eq!(grid(&big).unwrap().len(), 2_401);
    }

    #[test]
    fn scores_and_best_candidate() {
        let s = Score::from_folds(vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(s.mean, 2.5);
        assert_eq!(s.std, 1.25f64.sqrt());
        assert_eq!(Score::from_folds(vec![]), Err(ValidateError::NoFolds));
        assert!(matches!(
            Score::from_folds(vec![1.0, f64::NAN]),
            Err(ValidateError::NonFiniteScore { fold: 1, .. })
        ));
        let c: Vec<Score> = [0.5, 0.2, 0.5, 0.9, 0.2]
            .iter()
            .map(|&m| Score::from_folds(vec![m]).unwrap())
            .collect();
        assert_eq!(best(&c, Metric::Auc), Ok(3));
        assert_eq!(best(&c, Metric::Rmse), Ok(1));
        assert_eq!(best(&c[..3], Metric::R2), Ok(0));
        let mut with_nan = c.clone();
        with_nan[0].mean = f64::NAN;
        assert_eq!(best(&with_nan[..3], Metric::Mae), Ok(1));
        assert_eq!(best(&[], Metric::Rmse), Err(ValidateError::NoCandidates));
    }
}
