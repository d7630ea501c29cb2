//! Evaluation metrics, computed as scikit-learn 1.9 computes them: `root_mean_squared_error`,
//! `mean_absolute_error`, `r2_score` (with `force_finite=True`: 1 for a perfect fit, 0 for a
//! constant true target that is missed), `mean_absolute_percentage_error` (denominator
//! `max(|y|, f64::EPSILON)`), `log_loss` (probabilities clipped to `[ε, 1 − ε]` with
//! `ε = f64::EPSILON`, not renormalised), `roc_auc_score` (trapezoids over the ROC curve, so
//! tied scores count one half; one-vs-rest macro average for several classes), `accuracy_score`,
//! `precision_score` / `recall_score` / `f1_score` (binary for one positive class, or macro over
//! the labels present in either vector, `zero_division` = 0) and `confusion_matrix`.
//!
//! Class labels are indices `0..classes` (`usize`); binary labels are 0 and 1 (1 positive).
//! Deliberate differences: the input is checked and errors are returned where scikit-learn
//! returns NaN or warns (R² of a single row, non-finite values, probabilities that are not
//! between 0 and 1); `log_loss` takes the classes from the probability columns (as if
//! `labels=range(columns)` were passed), so a fold whose true labels miss a class is still
//! scored; binary precision/recall/F1 on multiclass labels score the one class against the
//! rest instead of failing.
//!
//! The regression metrics and [`Metric`] are here, the classification metrics in
//! `metrics/classification.rs`.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod classification;

pub use classification::{
    Average, ConfusionMatrix, accuracy, confusion_matrix, f1, log_loss, log_loss_binary, precision,
    recall, roc_auc, roc_auc_ovr,
};

/// Why a metric cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    #[error("{truth} true values but {predicted} predictions: they must be as many")]
    LengthMismatch { truth: usize, predicted: usize },
    #[error("no rows to evaluate")]
    Empty,
    #[error("{what} at row {row} is {value}: metrics need finite numbers")]
    NonFinite {
        what: &'static str,
        row: usize,
        value: f64,
    },
    #[error("{metric} needs at least {needed} rows, got {got}")]
    TooFewRows {
        metric: &'static str,
        needed: usize,
        got: usize,
    },
    #[error("only class {class} is in the true labels: ROC AUC needs positives and negatives")]
    SingleClass { class: usize },
    #[error(
        "class {class} of {classes} never occurs in the true labels: one-vs-rest AUC needs each"
    )]
    MissingClass { class: usize, classes: usize },
    #[error("label {label} at row {row} is not a class: labels go from 0 to below {classes}")]
    LabelOutOfRange {
        row: usize,
        label: usize,
        classes: usize,
    },
    #[error("{classes} probability column(s): a classifier needs at least 2 classes")]
    TooFewClasses { classes: usize },
    #[error("{classes} classes are more than the {limit} a confusion matrix holds")]
    TooManyClasses { classes: usize, limit: usize },
    #[error("probability {value} at row {row} is not between 0 and 1")]
    NotAProbability { row: usize, value: f64 },
    #[error("the probabilities of row {row} sum to {sum}, not 1")]
    NotNormalised { row: usize, sum: f64 },
    #[error("unknown metric '{name}'; expected one of {expected}")]
    UnknownMetric { name: String, expected: String },
}

/// A metric by name, as written in a spec (`metric: rmse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Rmse,
    Mae,
    R2,
    Mape,
    LogLoss,
    #[serde(alias = "roc_auc")]
    Auc,
    Accuracy,
    F1,
    Precision,
    Recall,
}

impl Metric {
    /// Every metric, in a stable order.
    pub const ALL: [Metric; 10] = [
        Metric::Rmse,
        Metric::Mae,
        Metric::R2,
        Metric::Mape,
        Metric::LogLoss,
        Metric::Auc,
        Metric::Accuracy,
        Metric::F1,
        Metric::Precision,
        Metric::Recall,
    ];

    /// The lower-case name, as parsed.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
            Metric::Mape => "mape",
            Metric::LogLoss => "log_loss",
            Metric::Auc => "auc",
            Metric::Accuracy => "accuracy",
            Metric::F1 => "f1",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
        }
    }

    /// Whether a larger value is a better model (R², AUC, accuracy, F1, precision, recall).
    pub fn higher_is_better(self) -> bool {
        matches!(
            self,
            Metric::R2
                | Metric::Auc
                | Metric::Accuracy
                | Metric::F1
                | Metric::Precision
                | Metric::Recall
        )
    }

    /// Whether the metric scores a regression (numbers) rather than a classification.
    pub fn is_regression(self) -> bool {
        matches!(self, Metric::Rmse | Metric::Mae | Metric::R2 | Metric::Mape)
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = MetricError;

    /// Names in any case, and scikit-learn's long names: `rmse`, `mae`, `r2`, `mape`,
    /// `log_loss`, `auc` (or `roc_auc`), `accuracy`, `f1`, `precision`, `recall`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let metric = match s.trim().to_ascii_lowercase().as_str() {
            "rmse" | "root_mean_squared_error" => Metric::Rmse,
            "mae" | "mean_absolute_error" => Metric::Mae,
            "r2" | "r2_score" => Metric::R2,
            "mape" | "mean_absolute_percentage_error" => Metric::Mape,
            "log_loss" | "logloss" => Metric::LogLoss,
            "auc" | "roc_auc" => Metric::Auc,
            "accuracy" => Metric::Accuracy,
            "f1" => Metric::F1,
            "precision" => Metric::Precision,
            "recall" => Metric::Recall,
            _ => {
                let names: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
                return Err(MetricError::UnknownMetric {
                    name: s.to_string(),
                    expected: names.join(", "),
                });
            }
        };
        Ok(metric)
    }
}

fn check_numbers(y_true: &[f64], y_pred: &[f64]) -> Result<(), MetricError> {
    if y_true.len() != y_pred.len() {
        return Err(MetricError::LengthMismatch {
            truth: y_true.len(),
            predicted: y_pred.len(),
        });
    }
    if y_true.is_empty() {
        return Err(MetricError::Empty);
    }
    for (row, (&t, &p)) in y_true.iter().zip(y_pred).enumerate() {
        let bad = if !t.is_finite() {
            Some(("true value", t))
        } else if !p.is_finite() {
            Some(("prediction", p))
        } else {
            None
        };
        if let Some((what, value)) = bad {
            return Err(MetricError::NonFinite { what, row, value });
        }
    }
    Ok(())
}

/// Root mean squared error.
pub fn rmse(y_true: &[f64], y_pred: &[f64]) -> Result<f64, MetricError> {
    check_numbers(y_true, y_pred)?;
    let sum: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(t, p)| (t - p) * (t - p))
        .sum();
    Ok((sum / y_true.len() as f64).sqrt())
}

/// Mean absolute error.
pub fn mae(y_true: &[f64], y_pred: &[f64]) -> Result<f64, MetricError> {
    check_numbers(y_true, y_pred)?;
    let sum: f64 = y_true.iter().zip(y_pred).map(|(t, p)| (t - p).abs()).sum();
    Ok(sum / y_true.len() as f64)
}

/// The coefficient of determination R² = 1 − SS_res / SS_tot; 1 when the predictions are
/// exact, 0 when the true values are constant and the predictions are not. Needs two rows.
pub fn r2(y_true: &[f64], y_pred: &[f64]) -> Result<f64, MetricError> {
    check_numbers(y_true, y_pred)?;
    if y_true.len() < 2 {
        return Err(MetricError::TooFewRows {
            metric: "r2",
            needed: 2,
            got: y_true.len(),
        });
    }
    let mean = y_true.iter().sum::<f64>() / y_true.len() as f64;
    let ss_res: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(t, p)| (t - p) * (t - p))
        .sum();
    let ss_tot: f64 = y_true.iter().map(|t| (t - mean) * (t - mean)).sum();
    Ok(if ss_res == 0.0 {
        1.0
    } else if ss_tot == 0.0 {
        0.0
    } else {
        1.0 - ss_res / ss_tot
    })
}

/// Mean absolute percentage error as a fraction (0.1 = 10 %): mean of
/// `|y_pred − y_true| / max(|y_true|, f64::EPSILON)`, so a zero true value gives a huge term.
pub fn mape(y_true: &[f64], y_pred: &[f64]) -> Result<f64, MetricError> {
    check_numbers(y_true, y_pred)?;
    let sum: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(t, p)| (p - t).abs() / t.abs().max(f64::EPSILON))
        .sum();
    Ok(sum / y_true.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values: scikit-learn 1.9.1 (numpy 2.4.6), printed with repr().

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + b.abs())
    }

    const Y: [f64; 4] = [3.0, -0.5, 2.0, 7.0];
    const P: [f64; 4] = [2.5, 0.0, 2.0, 8.0];

    #[test]
    fn regression_metrics_match_sklearn() {
        assert!(close(rmse(&Y, &P).unwrap(), 0.6123724356957945));
        assert_eq!(mae(&Y, &P).unwrap(), 0.5);
        assert!(close(r2(&Y, &P).unwrap(), 0.9486081370449679));
        assert!(close(mape(&Y, &P).unwrap(), 0.3273809523809524));
        // Constant true values: 1 when hit, 0 when missed.
        assert_eq!(r2(&[1.0, 1.0, 1.0], &[1.0, 1.0, 1.0]).unwrap(), 1.0);
        assert_eq!(r2(&[1.0, 1.0, 1.0], &[1.0, 1.0, 2.0]).unwrap(), 0.0);
        // A zero true value divides by f64::EPSILON.
        assert_eq!(mape(&[0.0, 1.0], &[1.0, 1.5]).unwrap(), 2251799813685248.0);
    }

    #[test]
    fn regression_metrics_reject_bad_input() {
        assert_eq!(
            rmse(&[1.0], &[1.0, 2.0]),
            Err(MetricError::LengthMismatch {
                truth: 1,
                predicted: 2
            })
        );
        assert_eq!(mae(&[], &[]), Err(MetricError::Empty));
        let err = mape(&[1.0, 2.0], &[1.0, f64::NAN]).unwrap_err();
        assert!(matches!(
            err,
            MetricError::NonFinite {
                what: "prediction",
                row: 1,
                ..
            }
        ));
        assert!(matches!(
            r2(&[1.0], &[1.0]),
            Err(MetricError::TooFewRows { got: 1, .. })
        ));
        assert!(
            rmse(&[f64::INFINITY], &[1.0])
                .unwrap_err()
                .to_string()
                .contains("row 0")
        );
    }

    #[test]
    fn metric_names_parse_and_order() {
        for m in Metric::ALL {
            assert_eq!(m.as_str().parse::<Metric>(), Ok(m));
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
        }
        assert_eq!("roc_auc".parse::<Metric>(), Ok(Metric::Auc));
        assert_eq!("log_loss".parse::<Metric>(), Ok(Metric::LogLoss));
        assert!(Metric::Auc.higher_is_better() && Metric::R2.higher_is_better());
        assert!(!Metric::Rmse.higher_is_better() && !Metric::LogLoss.higher_is_better());
        assert!(Metric::Mape.is_regression() && !Metric::F1.is_regression());
        let err = "rsme".parse::<Metric>().unwrap_err();
        assert!(err.to_string().contains("'rsme'") && err.to_string().contains("rmse, mae"));
    }
}
