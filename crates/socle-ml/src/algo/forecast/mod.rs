//! Additive forecasting of one time series, as Prophet 1.1–1.5 (Taylor & Letham, "Forecasting
//! at scale", 2018; `prophet/forecaster.py` and `prophet/stan/prophet.stan`), fitted by MAP with
//! L-BFGS like Prophet's default (Stan's optimizer):
//!
//! ```text
//! y(t) = trend(t) · (1 + Σ multiplicative terms) + Σ additive terms + ε,   ε ~ N(0, σ²)
//! ```
//!
//! 1. **Spec** ([`Spec`]): Prophet's arguments and defaults (growth, changepoints, yearly /
//!    weekly / daily seasonality with its `auto` rules, custom seasonalities, holidays and one-off
//!    windows, extra regressors, seasonality mode, prior scales, interval width, samples) plus a
//!    seed.
//! 2. **Features** (`features.rs`, `changepoints.rs`): Prophet's scaling (y / max|y|, t over
//!    [0, 1] of the history, regressors standardised), changepoints at Prophet's positions,
//!    Fourier columns in Prophet's layout, one indicator column per holiday and day offset
//!    (sorted by Prophet's column names), regressor columns.
//! 3. **Fit** ([`fit`], `fit.rs`): Prophet's priors (k, m ~ N(0, 5), δ ~ Laplace(0, τ),
//!    β ~ N(0, prior scale), σ ~ half-N(0, 0.5)) and initialisation, then the negative log
//!    posterior minimised by [`super::lbfgs`] with its analytic gradient in O(n·p).
//! 4. **Predict** ([`Model::predict`], `predict.rs`): yhat and every component at any timestamps,
//!    and uncertainty intervals as Prophet's vectorised `predict_uncertainty` with MAP: future
//!    trend changes simulated at the historical changepoint rate with Laplace sizes of the mean
//!    |δ|, plus Gaussian noise σ.
//!
//! The fitted [`Model`] holds everything prediction needs (parameters, scales, changepoints,
//! seasonality, holiday and regressor layout), serialises to JSON (versioned by
//! [`FORMAT_VERSION`]) and predicts without the training data.
//!
//! Deliberate differences from Prophet:
//! - Timestamps are seconds since the Unix epoch (UTC); a holiday's dates are the UTC days of
//!   its timestamps, and its window applies to all of them.
//! - The optimizer is always L-BFGS (Prophet uses Newton under 100 rows). Like Stan's, it runs on
//!   |δ| as is (the Laplace prior's kink at 0 is not smoothed; the gradient there is taken as 0,
//!   as Stan's `fabs`), so the δ that Prophet would set to ±1e-9 come out as small numbers too.
//! - Logistic growth, conditional seasonalities, built-in country holidays, MCMC sampling and
//!   regressor-forecasting sub-models are not supported.
//! - The random draws come from [`super::Rng`] seeded by [`Spec::seed`] (Prophet uses numpy's
//!   global generator): same model, same rows, same seed → bit-identical intervals.
//! - yhat_lower ≤ yhat ≤ yhat_upper (and the same for the trend) on every row: a quantile of the
//!   simulations can fall on the wrong side of yhat (few samples, a narrow interval, a skewed
//!   trend simulation); such a bound is clamped to yhat.
//! - A regressor column given to `fit` or `predict` that the spec does not name is an error
//!   (Prophet ignores extra columns of its data frame).

mod changepoints;
mod features;
mod fit;
mod predict;
mod spec;
#[cfg(test)]
mod tests;

pub use features::{HolidayColumn, HolidayTerm, Layout, RegressorTerm, SeasonalityTerm};
pub use fit::{FORMAT_VERSION, Model, OptimizerReport, Params, fit};
pub use predict::{Component, Forecast};
pub use spec::{
    CustomSeasonality, Growth, Holiday, Mode, RegressorSpec, Scaling, SeasonalitySetting, Spec,
    Standardize,
};

use thiserror::Error;

/// One named column of values, one per timestamp: an extra regressor's history (for [`fit`]) or
/// its values at the rows to predict (for [`Model::predict`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Column<'a> {
    pub name: &'a str,
    pub values: &'a [f64],
}

/// What is wrong with a forecast's spec, data or stored model.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ForecastError {
    /// The spec itself is invalid (the message names the field).
    #[error("invalid forecast spec: {0}")]
    Spec(String),
    #[error("{what} has {len} values but there are {expected} timestamps")]
    LengthMismatch {
        what: String,
        len: usize,
        expected: usize,
    },
    #[error("the history has {rows} non-missing values of y; at least 2 are needed to fit")]
    TooFewPoints { rows: usize },
    #[error("{column} at row {row} is {value}: only finite numbers are accepted")]
    NonFinite {
        column: String,
        row: usize,
        value: f64,
    },
    #[error("all {rows} timestamps of the history are equal: the history spans no time")]
    NoTimeSpan { rows: usize },
    #[error("the timestamps {first} and {last} are too far apart to scale")]
    TimestampRange { first: i64, last: i64 },
    #[error(
        "changepoint {at} lies outside the history ({first} to {last}, seconds since 1970-01-01)"
    )]
    ChangepointOutsideHistory { at: i64, first: i64, last: i64 },
    #[error("the regressor '{name}' is missing: give its values for every row")]
    MissingRegressor { name: String },
    #[error("'{name}' is not a regressor of the spec (its regressors: {known})")]
    UnknownRegressor { name: String, known: String },
    #[error("the column '{name}' is given twice")]
    DuplicateColumn { name: String },
    #[error("there are no timestamps to predict")]
    NothingToPredict,
    #[error("the stored model is unusable: {0}")]
    BadModel(String),
}

/// Seconds in a day: Prophet's periods are in days.
pub(crate) const SECONDS_PER_DAY: i64 = 86_400;

/// Resolves the named columns, in the order of `names`, checking that each is given once, no
/// other is given, all have `rows` values and (for the rows in `used`, or all when `None`) are
/// finite.
pub(crate) fn resolve_columns<'a>(
    names: &[&str],
    columns: &[Column<'a>],
    rows: usize,
    used: Option<&[usize]>,
) -> Result<Vec<&'a [f64]>, ForecastError> {
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].iter().any(|o| o.name == c.name) {
            return Err(ForecastError::DuplicateColumn {
                name: c.name.to_string(),
            });
        }
        if !names.contains(&c.name) {
            return Err(ForecastError::UnknownRegressor {
                name: c.name.to_string(),
                known: if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                },
            });
        }
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let column = columns.iter().find(|c| c.name == *name).ok_or_else(|| {
            ForecastError::MissingRegressor {
                name: name.to_string(),
            }
        })?;
        if column.values.len() != rows {
            return Err(ForecastError::LengthMismatch {
                what: format!("regressor '{name}'"),
                len: column.values.len(),
                expected: rows,
            });
        }
        let bad = match used {
            Some(indices) => indices
                .iter()
                .copied()
                .find(|&r| !column.values[r].is_finite()),
            None => column.values.iter().position(|v| !v.is_finite()),
        };
        if let Some(row) = bad {
            return Err(ForecastError::NonFinite {
                column: format!("regressor '{name}'"),
                row,
                value: column.values[row],
            });
        }
        out.push(column.values);
    }
    Ok(out)
}
