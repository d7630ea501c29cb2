//! The classification metrics (see the parent module for the references and differences):
//! log loss, ROC AUC, accuracy, precision, recall, F1 and the confusion matrix, over class
//! indices `0..classes`.

use serde::{Deserialize, Serialize};

use super::MetricError;
use crate::algo::Matrix;

/// The most classes a confusion matrix has (its table grows as the square).
const MAX_CLASSES: usize = 4096;

fn check_labels(y_true: &[usize], predicted: usize) -> Result<(), MetricError> {
    if y_true.len() != predicted {
        return Err(MetricError::LengthMismatch {
            truth: y_true.len(),
            predicted,
        });
    }
    if y_true.is_empty() {
        return Err(MetricError::Empty);
    }
    Ok(())
}

fn check_binary(y_true: &[usize]) -> Result<(), MetricError> {
    match y_true.iter().position(|&y| y > 1) {
        Some(row) => Err(MetricError::LabelOutOfRange {
            row,
            label: y_true[row],
            classes: 2,
        }),
        None => Ok(()),
    }
}

fn check_scores(scores: &[f64], what: &'static str) -> Result<(), MetricError> {
    match scores.iter().position(|s| !s.is_finite()) {
        Some(row) => Err(MetricError::NonFinite {
            what,
            row,
            value: scores[row],
        }),
        None => Ok(()),
    }
}

fn check_probability(row: usize, value: f64) -> Result<(), MetricError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(MetricError::NotAProbability { row, value })
    }
}

fn clipped_log(p: f64) -> f64 {
    p.clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln()
}

/// Binary cross-entropy: `y_true` in {0, 1}, `p` the probability of class 1.
pub fn log_loss_binary(y_true: &[usize], p: &[f64]) -> Result<f64, MetricError> {
    check_labels(y_true, p.len())?;
    check_binary(y_true)?;
    let mut sum = 0.0;
    for (row, (&y, &q)) in y_true.iter().zip(p).enumerate() {
        check_probability(row, q)?;
        sum -= clipped_log(if y == 1 { q } else { 1.0 - q });
    }
    Ok(sum / y_true.len() as f64)
}

/// Multiclass cross-entropy: `proba` has one row per label and one column per class
/// (at least 2), `y_true[i]` the column of row `i`'s class.
pub fn log_loss(y_true: &[usize], proba: &Matrix) -> Result<f64, MetricError> {
    check_labels(y_true, proba.rows)?;
    if proba.cols < 2 {
        return Err(MetricError::TooFewClasses {
            classes: proba.cols,
        });
    }
    let mut sum = 0.0;
    for (row, &y) in y_true.iter().enumerate() {
        let probs = proba.row(row);
        for &q in probs {
            check_probability(row, q)?;
        }
        let q = *probs.get(y).ok_or(MetricError::LabelOutOfRange {
            row,
            label: y,
            classes: proba.cols,
        })?;
        sum -= clipped_log(q);
    }
    Ok(sum / y_true.len() as f64)
}

/// The area under the ROC curve of `(score, is positive)` pairs; `pairs` holds both classes.
/// Sorted by decreasing score, each run of tied scores is one trapezoid, as scikit-learn's
/// `roc_curve` + `auc` do; computed on integer counts, then divided once.
fn auc_of(pairs: &mut [(f64, bool)]) -> f64 {
    pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0u64, 0u64);
    // Twice the area in units of one positive × one negative.
    let mut area2: u128 = 0;
    for run in pairs.chunk_by(|a, b| a.0 == b.0) {
        let pos = run.iter().filter(|(_, p)| *p).count() as u64;
        let neg = run.len() as u64 - pos;
        area2 += u128::from(neg) * u128::from(2 * tp + pos);
        tp += pos;
        fp += neg;
    }
    area2 as f64 / (2.0 * tp as f64 * fp as f64)
}

/// Binary ROC AUC: `y_true` in {0, 1} (1 positive) with both present, `score` any finite
/// number that is higher for the positive class.
pub fn roc_auc(y_true: &[usize], score: &[f64]) -> Result<f64, MetricError> {
    check_labels(y_true, score.len())?;
    check_binary(y_true)?;
    check_scores(score, "score")?;
    let positives = y_true.iter().filter(|&&y| y == 1).count();
    if positives == 0 || positives == y_true.len() {
        return Err(MetricError::SingleClass { class: y_true[0] });
    }
    // `+ 0.0` turns -0.0 into 0.0 so that the two zeros tie.
    let mut pairs: Vec<(f64, bool)> = score
        .iter()
        .zip(y_true)
        .map(|(&s, &y)| (s + 0.0, y == 1))
        .collect();
    Ok(auc_of(&mut pairs))
}

/// One-vs-rest ROC AUC, macro-averaged over the classes: `proba` has one column per class
/// (at least 2), each row sums to 1 (as scikit-learn demands), and every class occurs in
/// `y_true`.
pub fn roc_auc_ovr(y_true: &[usize], proba: &Matrix) -> Result<f64, MetricError> {
    check_labels(y_true, proba.rows)?;
    let classes = proba.cols;
    if classes < 2 {
        return Err(MetricError::TooFewClasses { classes });
    }
    if let Some(i) = proba.data.iter().position(|v| !v.is_finite()) {
        return Err(MetricError::NonFinite {
            what: "probability",
            row: i / classes,
            value: proba.data[i],
        });
    }
    let mut seen = vec![false; classes];
    for (row, &y) in y_true.iter().enumerate() {
        if y >= classes {
            return Err(MetricError::LabelOutOfRange {
                row,
                label: y,
                classes,
            });
        }
        seen[y] = true;
        let sum: f64 = proba.row(row).iter().sum();
        // numpy's allclose(1, sum): |1 − sum| <= 1e-8 + 1e-5·|sum|.
        if (1.0 - sum).abs() > 1e-8 + 1e-5 * sum.abs() {
            return Err(MetricError::NotNormalised { row, sum });
        }
    }
    if let Some(class) = seen.iter().position(|s| !s) {
        return Err(MetricError::MissingClass { class, classes });
    }
    let mut pairs: Vec<(f64, bool)> = Vec::with_capacity(y_true.len());
    let mut total = 0.0;
    for class in 0..classes {
        pairs.clear();
        pairs.extend(
            y_true
                .iter()
                .enumerate()
                .map(|(row, &y)| (proba.get(row, class) + 0.0, y == class)),
        );
        total += auc_of(&mut pairs);
    }
    Ok(total / classes as f64)
}

/// The fraction of rows whose predicted label is the true one.
pub fn accuracy(y_true: &[usize], y_pred: &[usize]) -> Result<f64, MetricError> {
    check_labels(y_true, y_pred.len())?;
    let hits = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    Ok(hits as f64 / y_true.len() as f64)
}

/// How precision, recall and F1 combine the classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Average {
    /// The score of one class against all the others (scikit-learn's `average="binary"`).
    Binary { positive: usize },
    /// The unweighted mean over the labels present in the true or predicted labels.
    Macro,
}

impl Average {
    /// Binary with class 1 positive for two classes, macro otherwise.
    pub fn for_classes(classes: usize) -> Self {
        if classes == 2 {
            Average::Binary { positive: 1 }
        } else {
            Average::Macro
        }
    }
}

/// True positives, false positives and false negatives of one class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
}

impl Counts {
    fn ratio(num: u64, den: u64) -> f64 {
        if den == 0 {
            0.0
        } else {
            num as f64 / den as f64
        }
    }

    fn precision(self) -> f64 {
        Self::ratio(self.tp, self.tp + self.fp)
    }

    fn recall(self) -> f64 {
        Self::ratio(self.tp, self.tp + self.fn_)
    }

    fn f1(self) -> f64 {
        Self::ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

/// The counts of every label present in either vector, by label.
fn per_class(y_true: &[usize], y_pred: &[usize]) -> Vec<Counts> {
    let max = y_true.iter().chain(y_pred).copied().max().unwrap_or(0);
    let labels: Vec<usize> = if max <= 4 * y_true.len() + 1024 {
        let mut present = vec![false; max + 1];
        for &label in y_true.iter().chain(y_pred) {
            present[label] = true;
        }
        (0..=max).filter(|&label| present[label]).collect()
    } else {
        // Sparse labels: no table as long as the largest label.
        let mut all: Vec<usize> = y_true.iter().chain(y_pred).copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    let slot = |label: usize| labels.binary_search(&label).unwrap_or(0);
    let mut counts = vec![Counts::default(); labels.len()];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        if t == p {
            counts[slot(t)].tp += 1;
        } else {
            counts[slot(p)].fp += 1;
            counts[slot(t)].fn_ += 1;
        }
    }
    counts
}

fn averaged(
    y_true: &[usize],
    y_pred: &[usize],
    average: Average,
    score: fn(Counts) -> f64,
) -> Result<f64, MetricError> {
    check_labels(y_true, y_pred.len())?;
    match average {
        Average::Binary { positive } => {
            let mut c = Counts::default();
            for (&t, &p) in y_true.iter().zip(y_pred) {
                match (t == positive, p == positive) {
                    (true, true) => c.tp += 1,
                    (false, true) => c.fp += 1,
                    (true, false) => c.fn_ += 1,
                    (false, false) => {}
                }
            }
            Ok(score(c))
        }
        Average::Macro => {
            let classes = per_class(y_true, y_pred);
            Ok(classes.iter().map(|&c| score(c)).sum::<f64>() / classes.len() as f64)
        }
    }
}

/// Precision `tp / (tp + fp)` (0 when nothing is predicted positive).
pub fn precision(y_true: &[usize], y_pred: &[usize], average: Average) -> Result<f64, MetricError> {
    averaged(y_true, y_pred, average, Counts::precision)
}

/// Recall `tp / (tp + fn)` (0 when there is no positive).
pub fn recall(y_true: &[usize], y_pred: &[usize], average: Average) -> Result<f64, MetricError> {
    averaged(y_true, y_pred, average, Counts::recall)
}

/// F1 `2·tp / (2·tp + fp + fn)`, the harmonic mean of precision and recall (0 when undefined).
pub fn f1(y_true: &[usize], y_pred: &[usize], average: Average) -> Result<f64, MetricError> {
    averaged(y_true, y_pred, average, Counts::f1)
}

/// Counts of (true class, predicted class) pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    pub classes: usize,
    /// Row-major: `counts[truth * classes + predicted]`.
    pub counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// Rows whose true class is `truth` and predicted class is `predicted`.
    pub fn get(&self, truth: usize, predicted: usize) -> u64 {
        self.counts[truth * self.classes + predicted]
    }

    /// Row `truth`: how its rows were predicted.
    pub fn row(&self, truth: usize) -> &[u64] {
        &self.counts[truth * self.classes..(truth + 1) * self.classes]
    }
}

/// The confusion matrix over classes `0..classes` (rows: true class, columns: predicted).
pub fn confusion_matrix(
    y_true: &[usize],
    y_pred: &[usize],
    classes: usize,
) -> Result<ConfusionMatrix, MetricError> {
    check_labels(y_true, y_pred.len())?;
    if classes > MAX_CLASSES {
        return Err(MetricError::TooManyClasses {
            classes,
            limit: MAX_CLASSES,
        });
    }
    let mut counts = vec![0u64; classes * classes];
    for (row, (&t, &p)) in y_true.iter().zip(y_pred).enumerate() {
        if let Some(label) = [t, p].into_iter().find(|&l| l >= classes) {
            return Err(MetricError::LabelOutOfRange {
                row,
                label,
                classes,
            });
        }
        counts[t * classes + p] += 1;
    }
    Ok(ConfusionMatrix { classes, counts })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values: scikit-learn 1.9.1 (numpy 2.4.6), printed with repr().

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + b.abs())
    }

    #[test]
    fn log_loss_matches_sklearn_with_clipping() {
        let y = [0, 1, 1, 0];
        assert!(close(
            log_loss_binary(&y, &[0.1, 0.9, 0.8, 0.35]).unwrap(),
            0.21616187468057912
        ));
        // Certain and wrong: clipped to ε = 2.22e-16 instead of an infinite loss.
        assert!(close(
            log_loss_binary(&y, &[0.0, 1.0, 0.8, 1.0]).unwrap(),
            9.06669923510784
        ));
        let proba = Matrix::from_vecs(&[
            vec![0.7, 0.2, 0.1],
            vec![0.1, 0.3, 0.6],
            vec![0.2, 0.5, 0.3],
            vec![0.3, 0.3, 0.4],
            vec![0.5, 0.4, 0.1],
        ])
        .unwrap();
        assert!(close(
            log_loss(&[0, 2, 1, 2, 0], &proba).unwrap(),
            0.6340171321397537
        ));
        // Class 2 absent from the true labels (sklearn with labels=[0, 1, 2]).
        let four = proba.select_rows(&[0, 1, 2, 3]);
        assert!(close(
            log_loss(&[0, 0, 1, 0], &four).unwrap(),
            1.139095005454665
        ));

        assert!(matches!(
            log_loss_binary(&[0, 2], &[0.5, 0.5]),
            Err(MetricError::LabelOutOfRange {
                row: 1,
                label: 2,
                classes: 2
            })
        ));
        assert!(matches!(
            log_loss_binary(&[0, 1], &[0.5, 1.5]),
            Err(MetricError::NotAProbability { row: 1, .. })
        ));
        assert!(matches!(
            log_loss(&[0, 3], &proba.select_rows(&[0, 1])),
            Err(MetricError::LabelOutOfRange {
                label: 3,
                classes: 3,
                ..
            })
        ));
        let one_column = Matrix::from_rows(2, 1, vec![1.0, 1.0]).unwrap();
        assert!(matches!(
            log_loss(&[0, 0], &one_column),
            Err(MetricError::TooFewClasses { classes: 1 })
        ));
    }

    #[test]
    fn auc_handles_ties_like_sklearn() {
        let y = [0, 0, 1, 1, 1, 0, 1];
        let s = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.1];
        assert!(close(roc_auc(&y, &s).unwrap(), 0.5416666666666667));
        let y = [1, 0, 1, 0, 1, 1, 0, 0, 1, 0];
        let s = [0.5, 0.5, 0.5, 0.5, 0.5, 0.2, 0.5, 0.9, 0.9, 0.1];
        assert!(close(roc_auc(&y, &s).unwrap(), 0.52));
        // Perfect, reversed, all tied; -0.0 ties with 0.0.
        assert_eq!(roc_auc(&[0, 0, 1], &[0.1, 0.2, 0.3]).unwrap(), 1.0);
        assert_eq!(roc_auc(&[1, 0, 0], &[0.1, 0.2, 0.3]).unwrap(), 0.0);
        assert_eq!(roc_auc(&[1, 0, 1, 0], &[2.0; 4]).unwrap(), 0.5);
        assert_eq!(roc_auc(&[1, 0], &[0.0, -0.0]).unwrap(), 0.5);

        assert_eq!(
            roc_auc(&[1, 1], &[0.2, 0.3]),
            Err(MetricError::SingleClass { class: 1 })
        );
        assert!(matches!(
            roc_auc(&[1, 0], &[0.2, f64::NAN]),
            Err(MetricError::NonFinite { row: 1, .. })
        ));
    }

    #[test]
    fn one_vs_rest_auc_matches_sklearn() {
        let y = [0, 1, 2, 2, 1, 0, 2, 1];
        let proba = Matrix::from_vecs(&[
            vec![0.6, 0.3, 0.1],
            vec![0.2, 0.5, 0.3],
            vec![0.1, 0.2, 0.7],
            vec![0.3, 0.3, 0.4],
            vec![0.3, 0.4, 0.3],
            vec![0.5, 0.25, 0.25],
            vec![0.2, 0.2, 0.6],
            vec![0.4, 0.3, 0.3],
        ])
        .unwrap();
        assert!(close(roc_auc_ovr(&y, &proba).unwrap(), 0.9777777777777777));
        assert_eq!(
            roc_auc_ovr(&[0, 1, 1, 1, 1, 0, 1, 1], &proba),
            Err(MetricError::MissingClass {
                class: 2,
                classes: 3
            })
        );
        let mut bad = proba.clone();
        bad.set(3, 0, 0.9);
        assert!(matches!(
            roc_auc_ovr(&y, &bad),
            Err(MetricError::NotNormalised { row: 3, .. })
        ));
        bad.set(3, 0, f64::NAN);
        assert!(matches!(
            roc_auc_ovr(&y, &bad),
            Err(MetricError::NonFinite { row: 3, .. })
        ));
    }

    #[test]
    fn classification_counts_match_sklearn() {
        let t = [0, 1, 1, 0, 1, 1, 0, 2];
        let p = [0, 1, 0, 0, 1, 2, 1, 2];
        assert_eq!(accuracy(&t, &p).unwrap(), 0.625);
        assert!(close(
            f1(&t, &p, Average::Macro).unwrap(),
            0.6349206349206349
        ));
        assert!(close(
            precision(&t, &p, Average::Macro).unwrap(),
            0.611111111111111
        ));
        assert!(close(
            recall(&t, &p, Average::Macro).unwrap(),
            0.7222222222222222
        ));
        let cm = confusion_matrix(&t, &p, 3).unwrap();
        assert_eq!(cm.counts, vec![2, 1, 0, 1, 2, 1, 0, 0, 1]);
        assert_eq!(cm.get(1, 2), 1);
        assert_eq!(cm.row(0), &[2, 1, 0]);

        let t = [0, 1, 1, 0, 1, 1, 0, 0];
        let p = [0, 1, 0, 0, 1, 1, 1, 1];
        let pos = Average::for_classes(2);
        assert!(close(f1(&t, &p, pos).unwrap(), 0.6666666666666666));
        assert!(close(precision(&t, &p, pos).unwrap(), 0.6));
        assert!(close(recall(&t, &p, pos).unwrap(), 0.75));
        let zero = Average::Binary { positive: 0 };
        assert!(close(f1(&t, &p, zero).unwrap(), 0.5714285714285714));
        // Zero division counts as 0, as sklearn's default.
        assert!(close(
            f1(&[0, 0, 1], &[0, 0, 0], Average::Macro).unwrap(),
            0.4
        ));
        assert!(close(
            precision(&[0, 0, 1], &[0, 0, 0], Average::Macro).unwrap(),
            0.3333333333333333
        ));
        // Sparse labels take the map path and give the same answer.
        let big = [0, 5_000_000, 5_000_000, 0, 5_000_000, 5_000_000, 0, 7];
        let big_p = [0, 5_000_000, 0, 0, 5_000_000, 7, 5_000_000, 7];
        assert!(close(
            f1(&big, &big_p, Average::Macro).unwrap(),
            0.6349206349206349
        ));

        assert!(matches!(
            confusion_matrix(&[0, 3], &[0, 1], 3),
            Err(MetricError::LabelOutOfRange {
                row: 1,
                label: 3,
                classes: 3
            })
        ));
        assert_eq!(accuracy(&[], &[]), Err(MetricError::Empty));
        assert!(matches!(
            confusion_matrix(&[0], &[0], 1 << 40),
            Err(MetricError::TooManyClasses { .. })
        ));
        assert!(matches!(
            f1(&[0], &[0, 1], Average::Macro),
            Err(MetricError::LengthMismatch { .. })
        ));
    }
}
