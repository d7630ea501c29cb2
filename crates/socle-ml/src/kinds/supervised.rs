//! What `regression` and `classification` share: reading features (numbers, and
//! categories coded by the model), the learners (histogram gradient boosting, linear
//! models), validation with a parameter grid, and the output tables.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::algo::Matrix;
use crate::algo::validate::{self, Score, Split};
use crate::error::MlError;
use crate::frame::Frame;
use crate::validation::{Method, Validation};

/// How each feature column is turned into model inputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Encoder {
    pub numeric: Vec<String>,
    /// Each categorical column with its categories (code = position), sorted.
    pub categorical: Vec<(String, Vec<String>)>,
    /// Expand categories into 0/1 columns (linear models; the first category is the base).
    pub one_hot: bool,
}

/// Most categories a categorical column may have (the boosted trees' bins).
pub const MAX_CATEGORIES: usize = 254;

impl Encoder {
    /// Learns the categories of `categorical` from `frame`.
    pub fn fit(
        model: &str,
        frame: &Frame,
        numeric: &[String],
        categorical: &[String],
        one_hot: bool,
    ) -> Result<Self, MlError> {
        let mut cats = Vec::new();
        for c in categorical {
            let mut values: Vec<String> = frame.strings(c)?.into_iter().flatten().collect();
            values.sort();
            values.dedup();
            if values.len() > MAX_CATEGORIES {
                return Err(MlError::data(
                    model,
                    format!(
                        "column `{c}` has {} categories, more than {MAX_CATEGORIES}: group the rare ones",
                        values.len()
                    ),
                ));
            }
            cats.push((c.clone(), values));
        }
        Ok(Self {
            numeric: numeric.to_vec(),
            categorical: cats,
            one_hot,
        })
    }

    /// The input columns' names, in model order.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = self.numeric.clone();
        for (c, values) in &self.categorical {
            if self.one_hot {
                names.extend(values.iter().skip(1).map(|v| format!("{c}={v}")));
            } else {
                names.push(c.clone());
            }
        }
        names
    }

    /// Which model inputs are categorical codes (boosted trees).
    pub fn categorical_mask(&self) -> Vec<bool> {
        let mut mask = vec![false; self.numeric.len()];
        if !self.one_hot {
            mask.extend(self.categorical.iter().map(|_| true));
        }
        mask
    }

    /// The model inputs of every row of `frame`: NaN for a missing number or category (an
    /// unseen category is missing; one-hot: all zeros).
    pub fn transform(&self, frame: &Frame) -> Result<Matrix, MlError> {
        let mut columns: Vec<Vec<f64>> = Vec::new();
        for c in &self.numeric {
            columns.push(frame.f64s(c)?);
        }
        for (c, values) in &self.categorical {
            let text = frame.strings(c)?;
            let codes: Vec<Option<usize>> = text
                .iter()
                .map(|t| t.as_ref().and_then(|t| values.binary_search(t).ok()))
                .collect();
            if self.one_hot {
                for level in 1..values.len() {
                    columns.push(
                        codes
                            .iter()
                            .map(|code| f64::from(u8::from(*code == Some(level))))
                            .collect(),
                    );
                }
            } else {
                columns.push(
                    codes
                        .iter()
                        .map(|code| code.map_or(f64::NAN, |k| k as f64))
                        .collect(),
                );
            }
        }
        if columns.is_empty() {
            return Ok(Matrix::zeros(frame.rows(), 0));
        }
        Ok(Matrix::from_columns(&columns).expect("columns of one frame"))
    }
}

/// The rows whose inputs are all present (for learners that cannot take missing values).
pub fn complete_rows(x: &Matrix) -> Vec<usize> {
    (0..x.rows)
        .filter(|&i| x.row(i).iter().all(|v| !v.is_nan()))
        .collect()
}

/// The splits a validation asks for over `n` rows (in input order; `seed` shuffles).
pub fn splits(model: &str, v: &Validation, n: usize, seed: u64) -> Result<Vec<Split>, MlError> {
    let err = |e: validate::ValidateError| MlError::data(model, format!("validation: {e}"));
    match &v.method {
        Method::Holdout {
            test_fraction,
            shuffle,
        } => Ok(vec![
            validate::holdout(n, *test_fraction, shuffle.then_some(seed)).map_err(err)?,
        ]),
        Method::Kfold { folds, shuffle } => {
            validate::kfold(n, *folds, shuffle.then_some(seed)).map_err(err)
        }
        Method::TimeSeries { folds, gap } => {
            validate::time_series_splits(n, *folds, None, *gap).map_err(err)
        }
    }
}

/// Every parameter set to try: the grid's combinations over `base` (or `base` alone).
pub fn candidates(
    model: &str,
    base: &serde_json::Value,
    v: Option<&Validation>,
) -> Result<Vec<serde_json::Value>, MlError> {
    let Some(v) = v.filter(|v| !v.grid.is_empty()) else {
        return Ok(vec![base.clone()]);
    };
    let combos = validate::grid(&v.grid)
        .map_err(|e| MlError::data(model, format!("validation.grid: {e}")))?;
    Ok(combos
        .into_iter()
        .map(|combo| {
            let mut p = base.clone();
            for (k, value) in combo {
                p[k] = value;
            }
            p
        })
        .collect())
}

/// Cross-validates each candidate with `score(params, split) -> metric`, keeps the best
/// by `metric`; records every candidate's folds in `metrics`.
pub fn choose(
    model: &str,
    candidates: Vec<serde_json::Value>,
    splits: &[Split],
    metric: crate::algo::metrics::Metric,
    metrics: &mut BTreeMap<String, f64>,
    progress: &(dyn Fn(usize, usize, &str) + Sync),
    mut score: impl FnMut(&serde_json::Value, &Split) -> Result<f64, MlError>,
) -> Result<serde_json::Value, MlError> {
    let total = candidates.len() * splits.len();
    let mut scores = Vec::new();
    for (c, params) in candidates.iter().enumerate() {
        let mut folds = Vec::new();
        for (f, split) in splits.iter().enumerate() {
            progress(c * splits.len() + f, total, "validating");
            folds.push(score(params, split)?);
        }
        let s = Score::from_folds(folds)
            .map_err(|e| MlError::data(model, format!("validation: {e}")))?;
        scores.push(s);
    }
    let best = validate::best(&scores, metric)
        .map_err(|e| MlError::data(model, format!("validation: {e}")))?;
    let name = metric.as_str();
    let chosen = &scores[best];
    metrics.insert(name.to_string(), chosen.mean);
    metrics.insert(format!("{name}.std"), chosen.std);
    for (f, v) in chosen.per_fold.iter().enumerate() {
        metrics.insert(format!("{name}.fold{}", f + 1), *v);
    }
    if candidates.len() > 1 {
        metrics.insert("grid.candidates".into(), candidates.len() as f64);
    }
    Ok(candidates[best].clone())
}
