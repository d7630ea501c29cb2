//! `regression` and `classification`: gradient-boosted trees (missing values and categorical
//! columns handled natively, as scikit-learn's `HistGradientBoosting*`) or linear models
//! (OLS, ridge, lasso, elastic net; logistic), an optional log-transformed target, and
//! validation with a parameter grid (see [`super::supervised`]).
//!
//! ```yaml
//! kind: regression
//! input: { model: post_features }
//! columns: { target: views, features: [hour, followers], categorical: [channel], id: post_id }
//! params: { learner: boosted, log_target: true }
//! validation: { method: time_series, folds: 5, metric: rmse, grid: { learning_rate: [0.05, 0.1] } }
//! ```
//!
//! Training writes `<output>_importance` (`feature`, `importance`). Predicting writes the
//! input's rows and columns with `prediction` (classification: the class, `probability` of
//! it, and `probability_<class>` for each class).

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};
use socle_core::fields::Fields;

use super::supervised::{Encoder, candidates, choose, complete_rows, splits};
use super::{Kind, TrainContext, Trained, role, role_list};
use crate::algo::Matrix;
use crate::algo::boost::{self, Booster};
use crate::algo::linear::{LinearModel, Scaler};
use crate::algo::logistic::{LogisticModel, LogisticOptions, logistic};
use crate::algo::metrics::{self, Metric};
use crate::error::MlError;
use crate::frame::{Frame, OutColumn, batch};

/// A `regression` model.
#[derive(Debug, Clone, Serialize)]
pub struct Regression(pub Supervised);

/// A `classification` model.
#[derive(Debug, Clone, Serialize)]
pub struct Classification(pub Supervised);

/// What both kinds read from their spec.
#[derive(Debug, Clone, Serialize)]
pub struct Supervised {
    pub target: Option<String>,
    pub features: Vec<String>,
    pub categorical: Vec<String>,
    pub id: Option<String>,
    /// The learner and its settings (`learner`, `learning_rate`, `alpha`, ...).
    pub params: serde_json::Value,
}

const LEARNER_PARAMS: &[&str] = &[
    "learner",
    "log_target",
    "learning_rate",
    "max_iter",
    "max_leaf_nodes",
    "max_depth",
    "min_samples_leaf",
    "l2_regularization",
    "max_bins",
    "early_stopping",
    "alpha",
    "l1_ratio",
    "c",
    "standardize",
    "tol",
    "cd_max_iter",
];

const REGRESSION_LEARNERS: &[&str] = &["boosted", "ols", "ridge", "lasso", "elastic_net"];
const CLASSIFICATION_LEARNERS: &[&str] = &["boosted", "logistic"];

fn parse(columns: &mut Fields, params: &mut Fields) -> Supervised {
    let mut p = serde_json::Map::new();
    for name in LEARNER_PARAMS {
        if let Some(v) = params.value::<serde_json::Value>(name) {
            p.insert(name.to_string(), v);
        }
    }
    Supervised {
        target: role(columns, "target"),
        features: role_list(columns, "features"),
        categorical: role_list(columns, "categorical"),
        id: role(columns, "id"),
        params: serde_json::Value::Object(p),
    }
}

/// The learners' settings, read from `params` (defaults as scikit-learn's).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "boosted")]
    learner: String,
    #[serde(default)]
    log_target: bool,
    #[serde(default = "learning_rate")]
    learning_rate: f64,
    #[serde(default = "max_iter")]
    max_iter: usize,
    #[serde(default = "max_leaf_nodes")]
    max_leaf_nodes: usize,
    #[serde(default)]
    max_depth: Option<usize>,
    #[serde(default = "min_samples_leaf")]
    min_samples_leaf: usize,
    #[serde(default)]
    l2_regularization: f64,
    #[serde(default = "max_bins")]
    max_bins: usize,
    #[serde(default = "auto")]
    early_stopping: String,
    #[serde(default = "one")]
    alpha: f64,
    #[serde(default = "half")]
    l1_ratio: f64,
    #[serde(default = "one")]
    c: f64,
    #[serde(default = "yes")]
    standardize: bool,
    /// Lasso and elastic net: coordinate descent's tolerance (scikit-learn's `tol`).
    #[serde(default = "cd_tol")]
    tol: f64,
    /// Lasso and elastic net: most passes over the coordinates (scikit-learn's `max_iter`).
    #[serde(default = "cd_max_iter")]
    cd_max_iter: usize,
}

fn cd_tol() -> f64 {
    1e-4
}
fn cd_max_iter() -> usize {
    10_000
}

fn boosted() -> String {
    "boosted".into()
}
fn auto() -> String {
    "auto".into()
}
fn learning_rate() -> f64 {
    0.1
}
fn max_iter() -> usize {
    100
}
fn max_leaf_nodes() -> usize {
    31
}
fn min_samples_leaf() -> usize {
    20
}
fn max_bins() -> usize {
    255
}
fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn yes() -> bool {
    true
}

impl Settings {
    fn read(params: &serde_json::Value, learners: &[&str]) -> Result<Self, String> {
        let s: Settings = serde_json::from_value(params.clone()).map_err(|e| e.to_string())?;
        if !learners.contains(&s.learner.as_str()) {
            return Err(format!(
                "`learner: {}` is not one of: {}",
                s.learner,
                learners.join(", ")
            ));
        }
        Ok(s)
    }

    fn boost_options(&self, seed: u64) -> Result<boost::Options, String> {
        let early_stopping = match self.early_stopping.as_str() {
            "auto" => boost::EarlyStopping::Auto,
            "true" | "on" => boost::EarlyStopping::On,
            "false" | "off" => boost::EarlyStopping::Off,
            other => return Err(format!("`early_stopping: {other}`: auto, on or off")),
        };
        Ok(boost::Options {
            learning_rate: self.learning_rate,
            max_iter: self.max_iter,
            max_leaf_nodes: Some(self.max_leaf_nodes),
            max_depth: self.max_depth,
            min_samples_leaf: self.min_samples_leaf,
            l2_regularization: self.l2_regularization,
            max_bins: self.max_bins,
            early_stopping,
            seed,
            ..boost::Options::default()
        })
    }
}

/// A fitted learner.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "learner", rename_all = "snake_case")]
enum Learner {
    Boosted { booster: Box<Booster> },
    Linear { scaler: Option<Scaler>, model: LinearModel },
    Logistic { scaler: Option<Scaler>, model: LogisticModel },
}

/// The fitted model.
#[derive(Debug, Serialize, Deserialize)]
struct Fitted {
    encoder: Encoder,
    log_target: bool,
    /// Classification: the class names (label = position).
    classes: Vec<String>,
    learner: Learner,
}

impl Learner {
    /// Regression values, or the probability of each class (a row per input row).
    fn predict(&self, x: &Matrix) -> Prediction {
        match self {
            Learner::Boosted { booster } if booster.n_classes() > 1 => {
                Prediction::Proba(booster.predict_proba(x))
            }
            Learner::Boosted { booster } => Prediction::Values(booster.predict(x)),
            Learner::Linear { scaler, model } => {
                Prediction::Values(model.predict(&scaled(scaler, x)))
            }
            Learner::Logistic { scaler, model } => {
                Prediction::Proba(model.predict_proba(&scaled(scaler, x)))
            }
        }
    }
}

enum Prediction {
    Values(Vec<f64>),
    Proba(Matrix),
}

fn scaled(scaler: &Option<Scaler>, x: &Matrix) -> Matrix {
    scaler.as_ref().map_or_else(|| x.clone(), |s| s.transform(x))
}

/// Fits `settings`' learner on rows `x` (inputs) and `y` (targets, or labels as f64).
fn fit(
    model: &str,
    s: &Settings,
    encoder: &Encoder,
    x: &Matrix,
    y: &[f64],
    classes: usize,
    seed: u64,
) -> Result<Learner, MlError> {
    let err = |e: String| MlError::data(model, e);
    match s.learner.as_str() {
        "boosted" => {
            let opts = s.boost_options(seed).map_err(err)?;
            let mask = encoder.categorical_mask();
            let booster = if classes > 1 {
                let labels: Vec<u32> = y.iter().map(|&v| v as u32).collect();
                boost::fit_classifier(x, &labels, classes, &mask, &opts)
            } else {
                boost::fit_regressor(x, y, &mask, &opts)
            }
            .map_err(|e| err(e.to_string()))?;
            Ok(Learner::Boosted {
                booster: Box::new(booster),
            })
        }
        learner => {
            // Linear learners take complete rows only.
            let rows = complete_rows(x);
            let (x, y): (Matrix, Vec<f64>) = (x.select_rows(&rows), rows.iter().map(|&i| y[i]).collect());
            let scaler = if s.standardize && x.cols > 0 {
                Some(Scaler::fit(&x).map_err(|e| err(e.to_string()))?)
            } else {
                None
            };
            let xs = scaled(&scaler, &x);
            let e = |e: crate::algo::linear::LinearError| err(e.to_string());
            Ok(match learner {
                "ols" => Learner::Linear { scaler, model: crate::algo::linear::ols(&xs, &y, true).map_err(e)? },
                "ridge" => Learner::Linear { scaler, model: crate::algo::linear::ridge(&xs, &y, s.alpha, true).map_err(e)? },
                "lasso" => Learner::Linear {
                    scaler,
                    model: crate::algo::linear::lasso(&xs, &y, s.alpha, true, s.tol, s.cd_max_iter).map_err(e)?.model,
                },
                "elastic_net" => Learner::Linear {
                    scaler,
                    model: crate::algo::linear::elastic_net(&xs, &y, s.alpha, s.l1_ratio, true, s.tol, s.cd_max_iter)
                        .map_err(e)?
                        .model,
                },
                _ => {
                    let labels: Vec<u32> = y.iter().map(|&v| v as u32).collect();
                    let opts = LogisticOptions { c: s.c, ..LogisticOptions::default() };
                    Learner::Logistic { scaler, model: logistic(&xs, &labels, &opts).map_err(e)?.model }
                }
            })
        }
    }
}

impl Supervised {
    fn check(&self, kind: &str, learners: &[&str]) -> Result<(), String> {
        if self.target.is_none() {
            return Err(format!("a `{kind}` model needs `columns: {{ target }}`"));
        }
        if self.features.is_empty() && self.categorical.is_empty() {
            return Err(format!(
                "a `{kind}` model needs `columns: {{ features: [...] }}` (or `categorical`)"
            ));
        }
        Settings::read(&self.params, learners).map(|_| ())
    }

    fn input_columns(&self) -> Vec<String> {
        let mut c: Vec<String> = self.target.iter().cloned().collect();
        c.extend(self.features.iter().cloned());
        c.extend(self.categorical.iter().cloned());
        c.extend(self.id.iter().cloned());
        c
    }

    fn train(&self, frame: &Frame, ctx: &TrainContext, classify: bool) -> Result<Trained, MlError> {
        let model = ctx.model;
        let learners = if classify { CLASSIFICATION_LEARNERS } else { REGRESSION_LEARNERS };
        let base = Settings::read(&self.params, learners).map_err(|e| MlError::data(model, e))?;
        let target = self.target.as_deref().unwrap_or_default();
        let mut notes = Vec::new();
        // Targets: numbers (regression) or class labels (classification); rows without one
        // are left out and counted.
        let (rows, y, classes): (Vec<usize>, Vec<f64>, Vec<String>) = if classify {
            let text = frame.strings(target)?;
            let mut classes: Vec<String> = text.iter().flatten().cloned().collect();
            classes.sort();
            classes.dedup();
            if classes.len() < 2 {
                return Err(MlError::data(
                    model,
                    format!("column `{target}` has {} class(es): a classifier needs at least 2", classes.len()),
                ));
            }
            let rows: Vec<usize> = (0..text.len()).filter(|&i| text[i].is_some()).collect();
            let y = rows
                .iter()
                .map(|&i| classes.binary_search(text[i].as_ref().expect("kept")).expect("a class") as f64)
                .collect();
            (rows, y, classes)
        } else {
            let values = frame.f64s(target)?;
            let infinite = values.iter().filter(|v| v.is_infinite()).count();
            if infinite > 0 {
                return Err(MlError::data(model, format!("column `{target}` has {infinite} infinite values")));
            }
            let rows: Vec<usize> = (0..values.len()).filter(|&i| !values[i].is_nan()).collect();
            let mut y: Vec<f64> = rows.iter().map(|&i| values[i]).collect();
            if base.log_target {
                if let Some(bad) = y.iter().find(|v| **v <= -1.0) {
                    return Err(MlError::data(
                        model,
                        format!("`log_target`: column `{target}` has {bad}; log(1 + y) needs y > -1"),
                    ));
                }
                y.iter_mut().for_each(|v| *v = v.ln_1p());
            }
            (rows, y, Vec::new())
        };
        let dropped = frame.rows() - rows.len();
        if dropped > 0 {
            notes.push(format!("{dropped} rows without a value in `{target}` were left out"));
        }
        if rows.is_empty() {
            return Err(MlError::data(model, format!("no row has a value in `{target}`")));
        }
        let encoder = Encoder::fit(model, frame, &self.features, &self.categorical, base.learner != "boosted")?;
        let x = encoder.transform(frame)?.select_rows(&rows);
        let n_classes = if classify { classes.len() } else { 0 };
        let metric_name = ctx
            .validation
            .and_then(|v| v.metric.clone())
            .unwrap_or_else(|| if classify { "log_loss".into() } else { "rmse".into() });
        let metric: Metric = metric_name
            .parse()
            .map_err(|e: metrics::MetricError| MlError::data(model, format!("validation.metric: {e}")))?;
        let mut metrics_out = BTreeMap::new();
        let chosen = match ctx.validation {
            Some(v) => {
                let splits = splits(model, v, rows.len(), ctx.seed)?;
                let candidates = candidates(model, &self.params, Some(v))?;
                choose(model, candidates, &splits, metric, &mut metrics_out, ctx.progress, |params, split| {
                    let s = Settings::read(params, learners).map_err(|e| MlError::data(model, e))?;
                    let (xt, yt) = (x.select_rows(&split.train), pick(&y, &split.train));
                    let learner = fit(model, &s, &encoder, &xt, &yt, n_classes, ctx.seed)?;
                    let xv = x.select_rows(&split.test);
                    let truth = pick(&y, &split.test);
                    score(model, metric, &learner.predict(&xv), &truth, s.log_target)
                })?
            }
            None => self.params.clone(),
        };
        let settings = Settings::read(&chosen, learners).map_err(|e| MlError::data(model, e))?;
        (ctx.progress)(1, 2, "fitting on every row");
        let learner = fit(model, &settings, &encoder, &x, &y, n_classes, ctx.seed)?;
        metrics_out.insert("rows".into(), rows.len() as f64);
        metrics_out.insert("rows_dropped".into(), dropped as f64);
        let importance = importance(&learner, &encoder);
        let fitted = Fitted {
            encoder,
            log_target: settings.log_target,
            classes,
            learner,
        };
        Ok(Trained {
            fitted: serde_json::to_vec(&fitted).expect("model serializes"),
            metrics: metrics_out,
            params: serde_json::to_value(&settings).expect("settings serialize"),
            notes,
            outputs: vec![("_importance", importance)],
        })
    }

    fn predict(
        &self,
        model: &str,
        fitted: &[u8],
        frame: &Frame,
    ) -> Result<Vec<(&'static str, RecordBatch)>, MlError> {
        let fitted: Fitted = super::read_fitted(model, fitted)?;
        let x = fitted.encoder.transform(frame)?;
        let complete = complete_rows(&x);
        let linear = !matches!(fitted.learner, Learner::Boosted { .. });
        let table = match fitted.learner.predict(&x) {
            Prediction::Values(v) => {
                let values = v
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| {
                        let missing = linear && complete.binary_search(&i).is_err();
                        (!missing).then(|| if fitted.log_target { p.exp_m1() } else { p })
                    })
                    .collect();
                frame.with_columns(vec![("prediction", OutColumn::Float(values))])?
            }
            Prediction::Proba(p) => {
                let mut class = Vec::with_capacity(p.rows);
                let mut prob = Vec::with_capacity(p.rows);
                for i in 0..p.rows {
                    let missing = linear && complete.binary_search(&i).is_err();
                    let (k, best) = argmax(p.row(i));
                    class.push((!missing).then(|| fitted.classes[k].clone()));
                    prob.push((!missing).then_some(best));
                }
                let names: Vec<String> = fitted.classes.iter().map(|c| format!("probability_{c}")).collect();
                let mut columns = vec![
                    ("prediction", OutColumn::Text(class)),
                    ("probability", OutColumn::Float(prob)),
                ];
                for (k, name) in names.iter().enumerate() {
                    columns.push((name.as_str(), OutColumn::Float(p.column(k).into_iter().map(Some).collect())));
                }
                frame.with_columns(columns)?
            }
        };
        Ok(vec![("", table)])
    }
}

fn pick(values: &[f64], rows: &[usize]) -> Vec<f64> {
    rows.iter().map(|&i| values[i]).collect()
}

fn argmax(row: &[f64]) -> (usize, f64) {
    row.iter()
        .copied()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (k, v)| if v > best.1 { (k, v) } else { best })
}

/// `metric` of predictions against `truth` (on the target's own scale).
fn score(model: &str, metric: Metric, p: &Prediction, truth: &[f64], log_target: bool) -> Result<f64, MlError> {
    let err = |e: metrics::MetricError| MlError::data(model, format!("validation: {e}"));
    match p {
        Prediction::Values(v) => {
            let (mut t, mut v): (Vec<f64>, Vec<f64>) = (truth.to_vec(), v.clone());
            if log_target {
                t.iter_mut().for_each(|x| *x = x.exp_m1());
                v.iter_mut().for_each(|x| *x = x.exp_m1());
            }
            // Rows a linear model cannot score (a missing input) are left out.
            let keep: Vec<usize> = (0..v.len()).filter(|&i| !v[i].is_nan()).collect();
            let (t, v) = (pick(&t, &keep), pick(&v, &keep));
            match metric {
                Metric::Rmse => metrics::rmse(&t, &v),
                Metric::Mae => metrics::mae(&t, &v),
                Metric::R2 => metrics::r2(&t, &v),
                Metric::Mape => metrics::mape(&t, &v),
                other => {
                    return Err(MlError::data(model, format!("validation.metric `{}` is for classifiers", other.as_str())));
                }
            }
            .map_err(err)
        }
        Prediction::Proba(p) => {
            let labels: Vec<usize> = truth.iter().map(|&v| v as usize).collect();
            let predicted: Vec<usize> = (0..p.rows).map(|i| argmax(p.row(i)).0).collect();
            match metric {
                Metric::LogLoss => metrics::log_loss(&labels, p),
                Metric::Auc if p.cols == 2 => metrics::roc_auc(&labels, &p.column(1)),
                Metric::Auc => metrics::roc_auc_ovr(&labels, p),
                Metric::Accuracy => metrics::accuracy(&labels, &predicted),
                Metric::F1 => metrics::f1(&labels, &predicted, metrics::Average::for_classes(p.cols)),
                other => {
                    return Err(MlError::data(model, format!("validation.metric `{}` is for regressions", other.as_str())));
                }
            }
            .map_err(err)
        }
    }
}

/// One row per model input: how much it counts (boosted: share of the trees' gain; linear:
/// share of the absolute standardised coefficients).
fn importance(learner: &Learner, encoder: &Encoder) -> RecordBatch {
    let names = encoder.feature_names();
    let raw: Vec<f64> = match learner {
        Learner::Boosted { booster } => booster.feature_importances(),
        Learner::Linear { model, .. } => model.coef.iter().map(|c| c.abs()).collect(),
        Learner::Logistic { model, .. } => (0..names.len())
            .map(|j| model.coef.iter().map(|row| row[j].abs()).sum::<f64>())
            .collect(),
    };
    let total: f64 = raw.iter().sum();
    let shares: Vec<Option<f64>> = raw
        .iter()
        .map(|v| Some(if total > 0.0 { v / total } else { 0.0 }))
        .collect();
    batch(vec![
        ("feature", OutColumn::Text(names.into_iter().map(Some).collect())),
        ("importance", OutColumn::Float(shares)),
    ])
}

impl Kind for Regression {
    const NAME: &'static str = "regression";
    const ROLES: &'static [&'static str] = &["target", "features", "categorical", "id"];
    const PARAMS: &'static [&'static str] = LEARNER_PARAMS;
    const FORMAT: u32 = 1;

    fn parse(columns: &mut Fields, params: &mut Fields) -> Self {
        Self(parse(columns, params))
    }
    fn check(&self) -> Result<(), String> {
        self.0.check(Self::NAME, REGRESSION_LEARNERS)
    }
    fn input_columns(&self) -> Vec<String> {
        self.0.input_columns()
    }
    fn default_metric(&self) -> Option<&'static str> {
        Some("rmse")
    }
    fn train(&self, frame: &Frame, ctx: &TrainContext) -> Result<Trained, MlError> {
        self.0.train(frame, ctx, false)
    }
    fn predict(
        &self,
        model: &str,
        fitted: &[u8],
        frame: &Frame,
    ) -> Result<Vec<(&'static str, RecordBatch)>, MlError> {
        self.0.predict(model, fitted, frame)
    }
}

impl Kind for Classification {
    const NAME: &'static str = "classification";
    const ROLES: &'static [&'static str] = &["target", "features", "categorical", "id"];
    const PARAMS: &'static [&'static str] = LEARNER_PARAMS;
    const FORMAT: u32 = 1;

    fn parse(columns: &mut Fields, params: &mut Fields) -> Self {
        Self(parse(columns, params))
    }
    fn check(&self) -> Result<(), String> {
        self.0.check(Self::NAME, CLASSIFICATION_LEARNERS)
    }
    fn input_columns(&self) -> Vec<String> {
        self.0.input_columns()
    }
    fn default_metric(&self) -> Option<&'static str> {
        Some("log_loss")
    }
    fn train(&self, frame: &Frame, ctx: &TrainContext) -> Result<Trained, MlError> {
        self.0.train(frame, ctx, true)
    }
    fn predict(
        &self,
        model: &str,
        fitted: &[u8],
        frame: &Frame,
    ) -> Result<Vec<(&'static str, RecordBatch)>, MlError> {
        self.0.predict(model, fitted, frame)
    }
}
