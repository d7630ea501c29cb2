//! Fitted trees and the fitted model, and prediction, as scikit-learn 1.9's `TreePredictor`
//! (`predictor.py`, `_predictor.pyx`) and the `predict*` methods of
//! `HistGradientBoostingRegressor` / `HistGradientBoostingClassifier`:
//!
//! - a sample's raw score is the baseline plus the value of the leaf it reaches in each tree,
//!   added tree after tree in training order (as sklearn, so scores agree to the bit);
//! - at a numeric split, `x ≤ threshold` goes left and NaN follows `missing_left`; at a
//!   categorical split, the codes in the node's set go left, other known codes right, and a
//!   missing value, a code not seen in training or a value that is not a code (negative,
//!   fractional, above 255) follows `missing_left`;
//! - probabilities are `expit` of the raw score (binary) or the softmax of the raw scores
//!   (multinomial); a classifier's `predict` is the most probable class.
//!
//! The fitted [`Booster`] is stored as JSON (serde), its layout versioned by
//! [`FORMAT_VERSION`]; [`Booster::check`] refuses a model whose trees do not hold together.

use serde::{Deserialize, Serialize};

use super::super::Matrix;
use super::binning::{BinMapper, Bitset, in_bitset};
use super::histogram::par_for_each;
use super::loss::{Objective, expit, softmax_into};
use super::{BoostError, Options, effective_threads};

/// The version of the [`Booster`] JSON layout.
pub const FORMAT_VERSION: u32 = 1;

/// Rows predicted per block when prediction is shared between threads.
const BLOCK_ROWS: usize = 2048;

/// One node of a fitted tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// For a leaf, what it adds to the raw score (already multiplied by the learning rate);
    /// for a split, the node's own value (not used to predict, as sklearn's).
    pub value: f64,
    /// Training samples that reached the node.
    pub count: u32,
    /// Index of the left child; 0 for a leaf (no node points back at the root).
    pub left: u32,
    /// Index of the right child; 0 for a leaf.
    pub right: u32,
    /// The feature split on.
    pub feature: u32,
    /// Numeric split: values `≤ threshold` go left. `f64::MAX` marks the split of the
    /// non-missing values (all left) from the missing ones.
    pub threshold: f64,
    /// The same numeric split in bins: bins `≤ bin` go left.
    pub bin: u8,
    /// Where missing values (and unknown categories) go.
    pub missing_left: bool,
    /// Categorical split: index in the tree's `category_sets` of the codes that go left.
    pub categories: Option<u32>,
}

impl Node {
    pub(crate) fn leaf(value: f64, count: u32) -> Self {
        Self {
            value,
            count,
            left: 0,
            right: 0,
            feature: 0,
            threshold: 0.0,
            bin: 0,
            missing_left: false,
            categories: None,
        }
    }

    /// Whether the node is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.left == 0
    }
}

/// A fitted tree: nodes in depth-first order (left subtree first), the root first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
    /// The sets of category codes that go left at categorical splits.
    pub category_sets: Vec<Bitset>,
}

impl Tree {
    /// The value of the leaf that `row` (raw feature values) reaches; `known` holds each
    /// categorical feature's known codes. The tree must have passed [`Tree::check`].
    pub(crate) fn predict_row(&self, row: &[f64], known: &[Option<Bitset>]) -> f64 {
        let mut i = 0;
        loop {
            let node = &self.nodes[i];
            if node.is_leaf() {
                return node.value;
            }
            let f = node.feature as usize;
            let x = row[f];
            let left = if x.is_nan() {
                node.missing_left
            } else if let Some(set) = node.categories {
                match category_code(x) {
                    Some(code) if known[f].is_some_and(|k| in_bitset(&k, code)) => {
                        in_bitset(&self.category_sets[set as usize], code)
                    }
                    _ => node.missing_left,
                }
            } else {
                x <= node.threshold || node.threshold == f64::MAX
            };
            i = if left { node.left } else { node.right } as usize;
        }
    }

    /// The value of the leaf that a binned row reaches.
    pub(crate) fn predict_binned_row(&self, row: &[u8], missing_bin: u8) -> f64 {
        let mut i = 0;
        loop {
            let node = &self.nodes[i];
            if node.is_leaf() {
                return node.value;
            }
            let b = row[node.feature as usize];
            let left = if b == missing_bin {
                node.missing_left
            } else if let Some(set) = node.categories {
                in_bitset(&self.category_sets[set as usize], b)
            } else {
                b <= node.bin
            };
            i = if left { node.left } else { node.right } as usize;
        }
    }

    /// Adds the tree's prediction for each binned row (row after row) to `out`.
    pub(crate) fn add_binned(&self, rows: &[u8], n_features: usize, missing: u8, out: &mut [f64]) {
        for (o, row) in out.iter_mut().zip(rows.chunks_exact(n_features)) {
            *o += self.predict_binned_row(row, missing);
        }
    }

    /// Checks that every child comes after its parent and every index is in range, so that
    /// prediction ends and cannot go out of bounds.
    fn check(&self, n_features: usize) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("a tree has no nodes".into());
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if node.is_leaf() {
                continue;
            }
            let (l, r) = (node.left as usize, node.right as usize);
            if l <= i || r <= i || l >= self.nodes.len() || r >= self.nodes.len() {
                return Err(format!("node {i} has children {l} and {r} out of order"));
            }
            if node.feature as usize >= n_features {
                return Err(format!("node {i} splits on feature {}", node.feature));
            }
            if node
                .categories
                .is_some_and(|c| c as usize >= self.category_sets.len())
            {
                return Err(format!("node {i} names a missing category set"));
            }
        }
        Ok(())
    }
}

/// The code of a categorical value, `None` if it is not a whole number in 0–255.
fn category_code(x: f64) -> Option<u8> {
    ((0.0..=255.0).contains(&x) && x.fract() == 0.0).then_some(x as u8)
}

/// A fitted gradient-boosting model. Stored as JSON; see [`FORMAT_VERSION`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booster {
    /// The layout version, [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    pub objective: Objective,
    /// Feature columns the model expects.
    pub n_features: usize,
    /// The options it was trained with.
    pub options: Options,
    /// The bins learned from the training rows (and each categorical feature's codes).
    pub mapper: BinMapper,
    /// The raw score(s) before any tree, one per tree of an iteration.
    pub baseline: Vec<f64>,
    /// The trees, iteration after iteration; a multinomial model has one per class in each
    /// iteration (class 0 first).
    pub trees: Vec<Tree>,
    /// Per feature, the summed loss reduction of its splits (see `feature_importances`).
    pub gains: Vec<f64>,
    /// With early stopping, the validation score (minus the mean loss) before the first
    /// iteration and after each one; empty without.
    pub validation_scores: Vec<f64>,
}

impl Booster {
    /// Boosting iterations kept (sklearn's `n_iter_`).
    pub fn n_iter(&self) -> usize {
        self.trees.len() / self.objective.n_trees_per_iteration().max(1)
    }

    /// Each feature's share of the total loss reduction of all splits (sums to 1; all zero
    /// when no tree split). sklearn's `HistGradientBoosting*` have no `feature_importances_`:
    /// this is the "gain" importance of LightGBM and XGBoost, a split's gain being
    /// `G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)` (sums of gradients G and hessians H).
    pub fn feature_importances(&self) -> Vec<f64> {
        let total: f64 = self.gains.iter().sum();
        if total > 0.0 {
            self.gains.iter().map(|g| g / total).collect()
        } else {
            vec![0.0; self.gains.len()]
        }
    }

    /// Checks that the model holds together (for a model read back from JSON).
    pub fn check(&self) -> Result<(), BoostError> {
        let bad = |m: String| Err(BoostError::BadModel(m));
        let k = self.objective.n_trees_per_iteration();
        if self.format_version != FORMAT_VERSION {
            return bad(format!(
                "format version {} is not {FORMAT_VERSION}",
                self.format_version
            ));
        }
        if self.baseline.len() != k || !self.trees.len().is_multiple_of(k) {
            return bad(format!(
                "{k} trees per iteration do not fit the baseline or the trees"
            ));
        }
        if self.mapper.categories.len() != self.n_features
            || self.mapper.thresholds.len() != self.n_features
            || self.gains.len() != self.n_features
        {
            return bad(format!(
                "the bins do not describe {} features",
                self.n_features
            ));
        }
        if matches!(self.objective, Objective::MultinomialLogLoss { n_classes } if n_classes < 3) {
            return bad("a multinomial model needs at least 3 classes".into());
        }
        for tree in &self.trees {
            tree.check(self.n_features).map_err(BoostError::BadModel)?;
        }
        Ok(())
    }

    /// Classes predicted: 0 for a regressor, 2 or more for a classifier.
    pub fn n_classes(&self) -> usize {
        self.objective.n_classes()
    }

    /// Raw scores (sklearn's `decision_function`; the values, for a regressor): one row per
    /// row of `x`, one column per tree of an iteration. NaN is a missing value. An error
    /// when `x` has not the training columns or the model does not hold together.
    pub fn try_predict_raw(&self, x: &Matrix) -> Result<Matrix, BoostError> {
        self.check()?;
        if x.cols != self.n_features {
            return Err(BoostError::WrongColumnCount {
                expected: self.n_features,
                got: x.cols,
            });
        }
        if x.rows.checked_mul(x.cols) != Some(x.data.len()) {
            return Err(BoostError::BadMatrix {
                rows: x.rows,
                cols: x.cols,
                values: x.data.len(),
            });
        }
        let k = self.objective.n_trees_per_iteration();
        let mut out = Matrix::zeros(x.rows, k);
        let threads = if x.rows >= 2 * BLOCK_ROWS {
            effective_threads(self.options.n_threads)
        } else {
            1
        };
        let known = &self.mapper.categories;
        let mut blocks: Vec<&mut [f64]> = out.data.chunks_mut(BLOCK_ROWS * k).collect();
        par_for_each(&mut blocks, threads, |b, block| {
            for (j, scores) in block.chunks_mut(k).enumerate() {
                let row = x.row(b * BLOCK_ROWS + j);
                scores.copy_from_slice(&self.baseline);
                for (t, tree) in self.trees.iter().enumerate() {
                    scores[t % k] += tree.predict_row(row, known);
                }
            }
        });
        Ok(out)
    }

    /// Predictions: the value for a regressor, the most probable class (as `f64`) for a
    /// classifier (sklearn's `predict`); an error as [`Booster::try_predict_raw`].
    pub fn try_predict(&self, x: &Matrix) -> Result<Vec<f64>, BoostError> {
        let raw = self.try_predict_raw(x)?;
        Ok(match self.objective {
            Objective::SquaredError => raw.data,
            Objective::BinaryLogLoss => raw
                .data
                .iter()
                .map(|&r| if r > 0.0 { 1.0 } else { 0.0 })
                .collect(),
            Objective::MultinomialLogLoss { .. } => {
                (0..raw.rows).map(|i| argmax(raw.row(i)) as f64).collect()
            }
        })
    }

    /// Class probabilities, one row per row of `x` and one column per class (sklearn's
    /// `predict_proba`); an error for a regressor or as [`Booster::try_predict_raw`].
    pub fn try_predict_proba(&self, x: &Matrix) -> Result<Matrix, BoostError> {
        if self.objective == Objective::SquaredError {
            return Err(BoostError::NotAClassifier);
        }
        let raw = self.try_predict_raw(x)?;
        let n_classes = self.objective.n_classes();
        let mut out = Matrix::zeros(raw.rows, n_classes);
        if n_classes == 2 {
            for (o, &r) in out.data.chunks_exact_mut(2).zip(&raw.data) {
                o[1] = expit(r);
                o[0] = 1.0 - o[1];
            }
        } else {
            let rows = out.data.chunks_exact_mut(n_classes);
            for (o, r) in rows.zip(raw.data.chunks_exact(n_classes)) {
                softmax_into(r.iter().copied(), o);
            }
        }
        Ok(out)
    }

    /// [`Booster::try_predict`] for a caller that builds `x` itself.
    ///
    /// # Panics
    /// When `x` has not the model's column count or the model does not hold together
    /// ([`Booster::check`]): mistakes of the calling code, not of the data.
    pub fn predict(&self, x: &Matrix) -> Vec<f64> {
        self.try_predict(x)
            .unwrap_or_else(|e| panic!("boosted model: {e}"))
    }

    /// [`Booster::try_predict_proba`] for a caller that builds `x` itself.
    ///
    /// # Panics
    /// As [`Booster::predict`], and for a regressor (see [`Booster::n_classes`]).
    pub fn predict_proba(&self, x: &Matrix) -> Matrix {
        self.try_predict_proba(x)
            .unwrap_or_else(|e| panic!("boosted model: {e}"))
    }
}

/// The index of the first largest value.
fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x0 ≤ 0.5 (missing left) → −1; else split on categorical x1: codes {2} left → 5,
    /// other known codes (0, 1) right → 7, unknown codes and missing right.
    fn tree() -> Tree {
        let split = |feature, threshold, left, right, missing_left, categories| Node {
            feature,
            threshold,
            left,
            right,
            missing_left,
            categories,
            ..Node::leaf(0.0, 10)
        };
        Tree {
            nodes: vec![
                split(0, 0.5, 1, 2, true, None),
                Node::leaf(-1.0, 4),
                split(1, 0.0, 3, 4, false, Some(0)),
                Node::leaf(5.0, 3),
                Node::leaf(7.0, 3),
            ],
            category_sets: vec![[0b100, 0, 0, 0, 0, 0, 0, 0]],
        }
    }

    #[test]
    fn rows_follow_thresholds_categories_and_missing_values() {
        let t = tree();
        let known = vec![None, Some([0b111, 0, 0, 0, 0, 0, 0, 0])];
        let p = |a: f64, b: f64| t.predict_row(&[a, b], &known);
        assert_eq!(p(0.5, 2.0), -1.0);
        assert_eq!(p(f64::NAN, 2.0), -1.0);
        assert_eq!(p(0.6, 2.0), 5.0);
        assert_eq!(p(0.6, 1.0), 7.0);
        assert_eq!(p(0.6, 3.0), 7.0, "unknown code: missing direction (right)");
        assert_eq!(p(0.6, f64::NAN), 7.0);
        assert_eq!(p(0.6, 2.5), 7.0, "not a code");
        assert_eq!(p(0.6, -2.0), 7.0);
        assert_eq!(p(f64::INFINITY, 2.0), 5.0);
        assert!(t.check(2).is_ok());
        assert!(t.check(1).is_err());
    }

    #[test]
    fn binned_rows_follow_bins() {
        let mut t = tree();
        t.nodes[0].bin = 3;
        assert_eq!(t.predict_binned_row(&[3, 2], 255), -1.0);
        assert_eq!(t.predict_binned_row(&[255, 2], 255), -1.0);
        assert_eq!(t.predict_binned_row(&[4, 2], 255), 5.0);
        assert_eq!(t.predict_binned_row(&[4, 0], 255), 7.0);
        assert_eq!(t.predict_binned_row(&[4, 255], 255), 7.0);
        let mut out = vec![1.0, 1.0];
        t.add_binned(&[0, 0, 9, 2], 2, 255, &mut out);
        assert_eq!(out, vec![0.0, 6.0]);
    }

    #[test]
    fn the_nan_split_sends_every_value_left() {
        let mut t = tree();
        t.nodes[0].threshold = f64::MAX;
        t.nodes[0].missing_left = false;
        let known = vec![None, Some([0b111, 0, 0, 0, 0, 0, 0, 0])];
        assert_eq!(t.predict_row(&[f64::INFINITY, 0.0], &known), -1.0);
        assert_eq!(t.predict_row(&[f64::NAN, 1.0], &known), 7.0);
    }

    #[test]
    fn malformed_trees_are_refused() {
        let mut t = tree();
        t.nodes[2].left = 1;
        assert!(t.check(2).is_err(), "a child before its parent could loop");
        let mut t = tree();
        t.nodes[2].right = 9;
        assert!(t.check(2).is_err());
        let mut t = tree();
        t.category_sets.clear();
        assert!(t.check(2).is_err());
        let empty = Tree {
            nodes: vec![],
            category_sets: vec![],
        };
        assert!(empty.check(2).is_err());
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }
}
