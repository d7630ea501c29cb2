//! Histogram gradient boosting for regression and classification, as scikit-learn 1.9's
//! `HistGradientBoostingRegressor` and `HistGradientBoostingClassifier` (same algorithm,
//! same defaults, same formulas; see each file for the part of sklearn it follows).
//!
//! A fit, step by step:
//! 1. check the options and the data ([`BoostError`] says what is wrong);
//! 2. with early stopping (by default when there are more than 10,000 rows), hold out
//!    `validation_fraction` of the rows, stratified by class for a classifier;
//! 3. bin the training rows (`binning.rs`): up to `max_bins` bins per numeric feature from
//!    quantiles, a categorical feature's code as its bin, one more bin for missing values;
//! 4. start every sample at the baseline (`loss.rs`: mean, log-odds or class log-frequencies);
//! 5. each iteration: gradients and hessians of the loss, then one tree (one per class for
//!    the multinomial loss) grown leaf-wise on them (`grower.rs`) from per-feature
//!    histograms (`histogram.rs`), its leaf values times `learning_rate` added to the scores;
//! 6. with early stopping, stop once the validation score (minus the mean loss) has not
//!    beaten the score `n_iter_no_change` iterations earlier by more than `tol`.
//!
//! Prediction and the fitted model, stored as versioned JSON, are in `predict.rs`; the split
//! search in `splitting.rs`; the threads of a fit in `pool.rs`.
//!
//! Deliberate differences from sklearn:
//! - categorical features come as codes (whole numbers `0..max_bins`, NaN for missing),
//!   which the caller gets by encoding its categories; a code too large is an error, where
//!   sklearn encodes any values itself. Prediction treats an unseen code as missing, as
//!   sklearn does;
//! - the validation split and the binning subsample (above 200,000 rows) draw from socle's
//!   own seeded generator, so a model trained with early stopping is not sklearn's to the
//!   bit (it is without early stopping, up to categories tied in the categorical sort);
//! - an infinite feature value is an error (sklearn bins it as an extreme value): NaN is
//!   the missing value;
//! - `feature_importances` (sklearn's HGB has none): each feature's share of the total loss
//!   reduction of its splits;
//! - no sample weights, monotonic or interaction constraints, feature subsampling or warm
//!   start; the early-stopping score is always the loss.
//!
//! Threads: a fit keeps a pool of `n_threads` threads; a large node's histograms and split
//! searches are shared out feature by feature, each feature's done by one thread in a fixed
//! order, so the model does not depend on the number of threads: the same data, options and
//! seed give the same model, bit for bit.

mod binning;
mod grower;
mod histogram;
mod loss;
mod pool;
mod predict;
mod splitting;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_sklearn;

use std::sync::PoisonError;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Matrix, Rng};
use grower::{Grads, Params, Shared, TrainData, Workspace};

pub use binning::{BinMapper, Bitset};
pub use loss::Objective;
pub use predict::{Booster, FORMAT_VERSION, Node, Tree};

/// The most threads a fit or a prediction may use.
pub const MAX_THREADS: usize = 256;

/// Whether to stop early on a validation split (sklearn's `early_stopping`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EarlyStopping {
    /// On when there are more than 10,000 rows.
    #[default]
    Auto,
    On,
    Off,
}

/// Training options, with sklearn's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Multiplies every leaf value (shrinkage); > 0. Default 0.1.
    pub learning_rate: f64,
    /// Boosting iterations at most; ≥ 1. Default 100.
    pub max_iter: usize,
    /// Leaves per tree at most (≥ 2), or no limit. Default 31.
    pub max_leaf_nodes: Option<usize>,
    /// Depth at most (≥ 1; the root has depth 0), or no limit. Default none.
    pub max_depth: Option<usize>,
    /// Samples per leaf at least; ≥ 1. Default 20.
    pub min_samples_leaf: usize,
    /// L2 regularisation of the leaf values; ≥ 0. Default 0.
    pub l2_regularization: f64,
    /// Bins for the non-missing values of a feature, 2 to 255; categorical codes must be
    /// below it. Default 255.
    pub max_bins: usize,
    /// Default [`EarlyStopping::Auto`].
    pub early_stopping: EarlyStopping,
    /// Share of the rows held out for early stopping, strictly between 0 and 1. Default 0.1.
    pub validation_fraction: f64,
    /// Iterations without improvement before stopping; ≥ 1. Default 10.
    pub n_iter_no_change: usize,
    /// Improvement that counts; ≥ 0. Default 1e-7.
    pub tol: f64,
    /// Seed of the validation split and of the binning subsample. Default 0.
    pub seed: u64,
    /// Threads for histograms, split search, binning and prediction, at most
    /// [`MAX_THREADS`]; 0 = as many as the machine has. The model does not depend on it.
    /// Default 0.
    pub n_threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            learning_rate: 0.1,
            max_iter: 100,
            max_leaf_nodes: Some(31),
            max_depth: None,
            min_samples_leaf: 20,
            l2_regularization: 0.0,
            max_bins: 255,
            early_stopping: EarlyStopping::Auto,
            validation_fraction: 0.1,
            n_iter_no_change: 10,
            tol: 1e-7,
            seed: 0,
            n_threads: 0,
        }
    }
}

impl Options {
    /// Checks every option's range.
    pub fn validate(&self) -> Result<(), BoostError> {
        let bad = |m: String| Err(BoostError::InvalidOption(m));
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad(format!(
                "learning_rate = {} must be a finite number > 0",
                self.learning_rate
            ));
        }
        if self.max_iter == 0 {
            return bad("max_iter must be at least 1".into());
        }
        if let Some(m) = self.max_leaf_nodes.filter(|&m| m < 2) {
            return bad(format!("max_leaf_nodes = {m} must be at least 2"));
        }
        if self.max_depth == Some(0) {
            return bad("max_depth must be at least 1".into());
        }
        if self.min_samples_leaf == 0 {
            return bad("min_samples_leaf must be at least 1".into());
        }
        if !(self.l2_regularization >= 0.0 && self.l2_regularization.is_finite()) {
            return bad(format!(
                "l2_regularization = {} must be a finite number ≥ 0",
                self.l2_regularization
            ));
        }
        if !(2..=255).contains(&self.max_bins) {
            return bad(format!(
                "max_bins = {} must be between 2 and 255",
                self.max_bins
            ));
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return bad(format!(
                "validation_fraction = {} must be strictly between 0 and 1",
                self.validation_fraction
            ));
        }
        if self.n_iter_no_change == 0 {
            return bad("n_iter_no_change must be at least 1".into());
        }
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return bad(format!("tol = {} must be a finite number ≥ 0", self.tol));
        }
        if self.n_threads > MAX_THREADS {
            return bad(format!(
                "n_threads = {} is more than {MAX_THREADS}",
                self.n_threads
            ));
        }
        Ok(())
    }
}

/// What is wrong with a boosting request or model, in the user's terms.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BoostError {
    #[error("there are no rows to train on")]
    NoRows,
    #[error("there are no feature columns to train on")]
    NoFeatures,
    #[error("the matrix says {rows} rows × {cols} columns but holds {values} values")]
    BadMatrix {
        rows: usize,
        cols: usize,
        values: usize,
    },
    #[error("{rows} rows are more than the 4,294,967,295 that boosting can index")]
    TooManyRows { rows: usize },
    #[error("the features have {rows} rows but there are {targets} target values")]
    LengthMismatch { rows: usize, targets: usize },
    #[error("the categorical flags cover {flags} columns but the features have {cols}")]
    CategoricalFlags { flags: usize, cols: usize },
    #[error("the target holds a non-finite value ({value}) at row {row}")]
    NonFiniteTarget { row: usize, value: f64 },
    #[error("column {column} holds an infinite value at row {row}: use NaN for a missing value")]
    InfiniteFeature { row: usize, column: usize },
    #[error(
        "categorical column {column} holds {value} at row {row}: a category must be a code \
         from 0 to {max} (a whole number below max_bins), or NaN when missing"
    )]
    BadCategory {
        row: usize,
        column: usize,
        value: f64,
        max: usize,
    },
    #[error("n_classes = {0}: a classifier needs at least 2 classes")]
    TooFewClasses(usize),
    #[error("n_classes = {n_classes} is more than the {rows} rows")]
    TooManyClasses { n_classes: usize, rows: usize },
    #[error("class label {label} at row {row} is not below n_classes = {n_classes}")]
    LabelOutOfRange {
        row: usize,
        label: u32,
        n_classes: usize,
    },
    #[error("every label is class {class}: a classifier needs at least two classes")]
    SingleClass { class: u32 },
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error(
        "early stopping holds out {validation} of the {rows} rows, which leaves too few to \
         train or to validate on: turn early stopping off or give more rows"
    )]
    TooFewRows { rows: usize, validation: usize },
    #[error("the matrix has {got} columns but the model was trained on {expected}")]
    WrongColumnCount { expected: usize, got: usize },
    #[error("class probabilities need a classifier; this model is a regressor")]
    NotAClassifier,
    #[error("the model is damaged: {0}")]
    BadModel(String),
}

/// Trains a regressor (squared error) on `x` (NaN = missing) and targets `y`; `categorical`
/// flags the columns that hold category codes.
pub fn fit_regressor(
    x: &Matrix,
    y: &[f64],
    categorical: &[bool],
    opts: &Options,
) -> Result<Booster, BoostError> {
    check_inputs(x, y.len(), categorical, opts)?;
    if let Some((row, &value)) = y.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(BoostError::NonFiniteTarget { row, value });
    }
    fit(x, y, None, Objective::SquaredError, categorical, opts)
}

/// Trains a classifier (log loss) on `x` and class labels `y` in `0..n_classes`: binary
/// for two classes (one tree per iteration), multinomial for more (one tree per class).
pub fn fit_classifier(
    x: &Matrix,
    y: &[u32],
    n_classes: usize,
    categorical: &[bool],
    opts: &Options,
) -> Result<Booster, BoostError> {
    check_inputs(x, y.len(), categorical, opts)?;
    if n_classes < 2 {
        return Err(BoostError::TooFewClasses(n_classes));
    }
    if n_classes > x.rows.max(2) {
        return Err(BoostError::TooManyClasses {
            n_classes,
            rows: x.rows,
        });
    }
    if let Some((row, &label)) = y
        .iter()
        .enumerate()
        .find(|(_, l)| **l as usize >= n_classes)
    {
        return Err(BoostError::LabelOutOfRange {
            row,
            label,
            n_classes,
        });
    }
    if y.iter().all(|&l| l == y[0]) {
        return Err(BoostError::SingleClass { class: y[0] });
    }
    let objective = if n_classes == 2 {
        Objective::BinaryLogLoss
    } else {
        Objective::MultinomialLogLoss { n_classes }
    };
    let targets: Vec<f64> = y.iter().map(|&l| f64::from(l)).collect();
    fit(x, &targets, Some(y), objective, categorical, opts)
}

/// `requested` threads, or the machine's when 0 (at most [`MAX_THREADS`]).
pub(crate) fn effective_threads(requested: usize) -> usize {
    let n = if requested > 0 {
        requested
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    n.min(MAX_THREADS)
}

fn check_inputs(
    x: &Matrix,
    targets: usize,
    categorical: &[bool],
    opts: &Options,
) -> Result<(), BoostError> {
    opts.validate()?;
    if x.rows.checked_mul(x.cols) != Some(x.data.len()) {
        return Err(BoostError::BadMatrix {
            rows: x.rows,
            cols: x.cols,
            values: x.data.len(),
        });
    }
    if x.rows == 0 {
        return Err(BoostError::NoRows);
    }
    if x.cols == 0 {
        return Err(BoostError::NoFeatures);
    }
    if u32::try_from(x.rows).is_err() {
        return Err(BoostError::TooManyRows { rows: x.rows });
    }
    if targets != x.rows {
        return Err(BoostError::LengthMismatch {
            rows: x.rows,
            targets,
        });
    }
    if categorical.len() != x.cols {
        return Err(BoostError::CategoricalFlags {
            flags: categorical.len(),
            cols: x.cols,
        });
    }
    let max_code = opts.max_bins as f64;
    for (i, &v) in x.data.iter().enumerate() {
        let (row, column) = (i / x.cols, i % x.cols);
        if v.is_infinite() {
            return Err(BoostError::InfiniteFeature { row, column });
        }
        if categorical[column] && !v.is_nan() && !(v >= 0.0 && v < max_code && v.fract() == 0.0) {
            return Err(BoostError::BadCategory {
                row,
                column,
                value: v,
                max: opts.max_bins - 1,
            });
        }
    }
    Ok(())
}

/// The boosting loop, on checked inputs. `classes` (for a classifier) stratifies the split.
fn fit(
    x: &Matrix,
    y: &[f64],
    classes: Option<&[u32]>,
    objective: Objective,
    categorical: &[bool],
    opts: &Options,
) -> Result<Booster, BoostError> {
    let n_threads = effective_threads(opts.n_threads);
    let mut rng = Rng::new(opts.seed);
    let early = match opts.early_stopping {
        EarlyStopping::Auto => x.rows > 10_000,
        EarlyStopping::On => true,
        EarlyStopping::Off => false,
    };
    let (train_rows, val_rows) = if early {
        validation_split(x.rows, opts.validation_fraction, classes, &mut rng)?
    } else {
        ((0..x.rows).collect(), Vec::new())
    };
    let mapper = binning::BinMapper::fit(
        x,
        &train_rows,
        categorical,
        opts.max_bins,
        &mut rng,
        n_threads,
    );
    let binned = mapper.bin_columns(x, &train_rows, n_threads);
    let val_binned = mapper.bin_rows(x, &val_rows);
    let missing = mapper.missing_bin();
    let (n, n_val) = (train_rows.len(), val_rows.len());
    let has_missing: Vec<bool> = binned.chunks(n).map(|c| c.contains(&missing)).collect();
    let y_train: Vec<f64> = train_rows.iter().map(|&r| y[r]).collect();
    let y_val: Vec<f64> = val_rows.iter().map(|&r| y[r]).collect();

    let k = objective.n_trees_per_iteration();
    let baseline = objective.baseline(&y_train);
    let mut raw: Vec<f64> = baseline
        .iter()
        .flat_map(|&b| std::iter::repeat_n(b, n))
        .collect();
    let mut raw_val: Vec<f64> = baseline
        .iter()
        .flat_map(|&b| std::iter::repeat_n(b, n_val))
        .collect();
    let params = Params {
        max_leaf_nodes: opts.max_leaf_nodes,
        max_depth: opts.max_depth,
        min_samples_leaf: opts.min_samples_leaf,
        l2: opts.l2_regularization,
        shrinkage: opts.learning_rate,
    };
    let tie_order: Vec<usize> = (0..x.cols)
        .filter(|&f| categorical[f])
        .chain((0..x.cols).filter(|&f| !categorical[f]))
        .collect();
    let data = TrainData {
        binned: &binned,
        n_rows: n,
        mapper: &mapper,
        has_missing: &has_missing,
        tie_order: &tie_order,
    };
    let shared = Shared::new(data, k, objective.constant_hessian());
    let mut ws = Workspace::new(n);
    let mut trees = Vec::with_capacity(opts.max_iter.min(10_000) * k);
    let mut gains = vec![0.0; x.cols];
    let mut scores = Vec::new();
    if early {
        scores.push(-objective.mean_loss(&y_val, &raw_val));
    }
    pool::with_pool(n_threads, |pool| {
        for _ in 0..opts.max_iter {
            {
                let mut grads = shared.grads.write().unwrap_or_else(PoisonError::into_inner);
                let Grads { g, h } = &mut *grads;
                objective.gradients(&y_train, &raw, g, h);
            }
            for c in 0..k {
                let cols = c * n..(c + 1) * n;
                let tree = grower::grow(
                    &shared,
                    c,
                    &params,
                    pool,
                    &mut ws,
                    &mut raw[cols],
                    &mut gains,
                );
                if early {
                    let out = &mut raw_val[c * n_val..(c + 1) * n_val];
                    tree.add_binned(&val_binned, x.cols, missing, out);
                }
                trees.push(tree);
            }
            if early {
                scores.push(-objective.mean_loss(&y_val, &raw_val));
                if should_stop(&scores, opts.n_iter_no_change, opts.tol) {
                    break;
                }
            }
        }
    });
    Ok(Booster {
        format_version: FORMAT_VERSION,
        objective,
        n_features: x.cols,
        options: opts.clone(),
        mapper,
        baseline,
        trees,
        gains,
        validation_scores: scores,
    })
}

/// sklearn's `_should_stop`: none of the last `n_iter_no_change` scores beats the one
/// before them by more than `tol`.
fn should_stop(scores: &[f64], n_iter_no_change: usize, tol: f64) -> bool {
    let reference = n_iter_no_change + 1;
    if scores.len() < reference {
        return false;
    }
    let at = scores.len() - reference;
    let reference_score = scores[at] + tol;
    !scores[at + 1..].iter().any(|&s| s > reference_score)
}

/// Training and validation rows (each in increasing order): `ceil(fraction · n)` rows drawn
/// at random for validation, in proportion to each class for a classifier (every class
/// keeping at least one training row).
fn validation_split(
    n: usize,
    fraction: f64,
    classes: Option<&[u32]>,
    rng: &mut Rng,
) -> Result<(Vec<usize>, Vec<usize>), BoostError> {
    let n_val = ((fraction * n as f64).ceil() as usize).min(n);
    let (mut train, mut val) = (Vec::with_capacity(n - n_val), Vec::with_capacity(n_val));
    match classes {
        None => {
            let mut order: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut order);
            val.extend_from_slice(&order[..n_val]);
            train.extend_from_slice(&order[n_val..]);
        }
        Some(labels) => {
            let n_classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
            let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
            for (i, &l) in labels.iter().enumerate() {
                by_class[l as usize].push(i);
            }
            let share = |rows: usize| rows as f64 * n_val as f64 / n as f64;
            let mut quota: Vec<usize> = by_class.iter().map(|c| share(c.len()) as usize).collect();
            let mut order: Vec<usize> = (0..n_classes).collect();
            let frac = |c: usize| share(by_class[c].len()).fract();
            order.sort_by(|&a, &b| frac(b).total_cmp(&frac(a)).then(a.cmp(&b)));
            let left = n_val.saturating_sub(quota.iter().sum());
            for &c in order.iter().take(left) {
                quota[c] += 1;
            }
            for (rows, q) in by_class.iter_mut().zip(quota) {
                rng.shuffle(rows);
                let q = q.min(rows.len().saturating_sub(1));
                val.extend_from_slice(&rows[..q]);
                train.extend_from_slice(&rows[q..]);
            }
        }
    }
    if train.is_empty() || val.is_empty() {
        return Err(BoostError::TooFewRows {
            rows: n,
            validation: val.len(),
        });
    }
    train.sort_unstable();
    val.sort_unstable();
    Ok((train, val))
}
