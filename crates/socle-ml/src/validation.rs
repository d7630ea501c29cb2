//! `validation:` of a model spec: how a training run measures the model before it is kept
//! (holdout, k-fold or time-series cross-validation), with which metric, and the grid of
//! parameters searched. The splitting itself is [`crate::algo::validate`].
//!
//! ```yaml
//! validation:
//!   method: time_series     # holdout (default) | kfold | time_series
//!   folds: 5                # kfold and time_series (default 5)
//!   test_fraction: 0.2      # holdout (default 0.2)
//!   gap: 0                  # time_series: rows left out between train and test
//!   shuffle: false          # holdout and kfold: shuffle rows (with the spec's seed) first
//!   metric: rmse            # default: the kind's
//!   grid:                   # parameters to try, every combination
//!     learning_rate: [0.05, 0.1]
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;
use socle_core::{ConfigError, Location};

/// How a model is validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validation {
    pub method: Method,
    /// A metric name (`rmse`, `mape`, `auc`, ...); `None`: the kind's default.
    pub metric: Option<String>,
    /// Parameters to try: each key a parameter of the kind, with its values.
    pub grid: BTreeMap<String, Vec<serde_json::Value>>,
}

/// The splitting of the rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Method {
    Holdout { test_fraction: f64, shuffle: bool },
    Kfold { folds: usize, shuffle: bool },
    TimeSeries { folds: usize, gap: usize },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawValidation {
    method: Option<Spanned<String>>,
    folds: Option<Spanned<usize>>,
    test_fraction: Option<Spanned<f64>>,
    gap: Option<usize>,
    shuffle: Option<bool>,
    metric: Option<String>,
    grid: Option<BTreeMap<String, Vec<serde_json::Value>>>,
}

const METHODS: &[&str] = &["holdout", "kfold", "time_series"];

/// Most combinations a grid may have.
pub const MAX_GRID: usize = 1_000;

pub(crate) fn parse(
    file: &Path,
    model: &str,
    raw: Spanned<RawValidation>,
) -> Result<Validation, ConfigError> {
    let at = Location::of(&raw);
    let raw = raw.value;
    let err = |at: Location, message: String| ConfigError::new(file, at, message);
    let folds = match &raw.folds {
        Some(f) if f.value < 2 => {
            return Err(err(
                Location::of(f),
                format!("model `{model}`: `validation.folds` must be at least 2"),
            ));
        }
        Some(f) => f.value,
        None => 5,
    };
    let method = match raw.method.as_ref().map(|m| m.value.as_str()) {
        None | Some("holdout") => {
            let fraction = raw.test_fraction.as_ref().map_or(0.2, |f| f.value);
            if !(fraction > 0.0 && fraction < 1.0) {
                let at = raw.test_fraction.as_ref().map_or(at, Location::of);
                return Err(err(
                    at,
                    format!("model `{model}`: `validation.test_fraction` must be between 0 and 1"),
                ));
            }
            Method::Holdout {
                test_fraction: fraction,
                shuffle: raw.shuffle.unwrap_or(false),
            }
        }
        Some("kfold") => Method::Kfold {
            folds,
            shuffle: raw.shuffle.unwrap_or(true),
        },
        Some("time_series") => Method::TimeSeries {
            folds,
            gap: raw.gap.unwrap_or(0),
        },
        Some(other) => {
            let m = raw.method.as_ref().expect("a method");
            let mut e = err(
                Location::of(m),
                format!("model `{model}`: unknown validation method `{other}`"),
            );
            e.hint = Some(
                match socle_core::diag::did_you_mean(other, METHODS.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("methods: {}", METHODS.join(", ")),
                },
            );
            return Err(e);
        }
    };
    let grid = raw.grid.unwrap_or_default();
    let mut combinations: usize = 1;
    for (key, values) in &grid {
        if values.is_empty() {
            return Err(err(
                at,
                format!("model `{model}`: `validation.grid.{key}` lists no value"),
            ));
        }
        combinations = combinations.saturating_mul(values.len());
    }
    if combinations > MAX_GRID {
        return Err(err(
            at,
            format!(
                "model `{model}`: the grid has {combinations} combinations, more than {MAX_GRID}"
            ),
        ));
    }
    Ok(Validation {
        method,
        metric: raw.metric,
        grid,
    })
}
