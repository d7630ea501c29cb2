//! Model kinds: one module per kind (a type implementing [`Kind`], holding the kind's
//! columns and parameters as read from its spec) and one line in [`kinds!`] to add one.
//! [`ModelKind`] is the enum of them.
//!
//! A kind names the column roles and parameters it takes (the spec loader refuses the
//! others with file and line), reads them, checks them together, trains on a [`Frame`]
//! (giving a fitted model as JSON, its metrics and its output tables) and applies a
//! fitted model to new rows.

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;
use serde::Serialize;
use socle_core::fields::Fields;

use crate::error::MlError;
use crate::frame::Frame;

pub mod supervised;

/// What a training run works with besides the rows.
pub struct TrainContext<'a> {
    /// The model's name, for errors.
    pub model: &'a str,
    pub seed: u64,
    pub validation: Option<&'a crate::validation::Validation>,
    /// Reports progress of long fits (`done` of `total` steps, and what).
    pub progress: &'a (dyn Fn(usize, usize, &str) + Sync),
}

/// What a training run gives.
pub struct Trained {
    /// The fitted model as JSON, stored as `fitted.json` in the version (its format is the
    /// kind's, versioned by [`Kind::FORMAT`]; written once as bytes, not held as a JSON tree).
    pub fitted: Vec<u8>,
    /// Validation metrics (`rmse`, `mape`, per fold as `rmse.fold1`, ...), and training
    /// facts (`rows`, `rows_dropped`).
    pub metrics: BTreeMap<String, f64>,
    /// The parameters the model was fitted with (the grid's choice included).
    pub params: serde_json::Value,
    /// What was done with the data that the user should know (rows dropped and why).
    pub notes: Vec<String>,
    /// Tables written at training (`""` is the main output table; others are suffixes).
    pub outputs: Vec<(&'static str, RecordBatch)>,
}

/// One model kind.
pub trait Kind: Sized + Serialize {
    /// The name in specs (`kind: forecast`).
    const NAME: &'static str;
    /// The column roles it takes under `columns:`.
    const ROLES: &'static [&'static str];
    /// The parameters it takes under `params:`.
    const PARAMS: &'static [&'static str];
    /// The version of its fitted model's format (stored with every version).
    const FORMAT: u32;
    /// Reads its columns and parameters; a field of the wrong type is an error recorded in
    /// the reader, at its place.
    fn parse(columns: &mut Fields, params: &mut Fields) -> Self;
    /// Checks the fields together once read (a required role missing, ...).
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
    /// The input columns it reads (for `socle check`).
    fn input_columns(&self) -> Vec<String>;
    /// The metric validation uses unless the spec names one.
    fn default_metric(&self) -> Option<&'static str> {
        None
    }
    /// Fits the model on `frame`.
    fn train(&self, frame: &Frame, ctx: &TrainContext) -> Result<Trained, MlError>;
    /// Applies a fitted model (as [`Trained::fitted`] gave it) to `frame`: the output
    /// tables (`""` the main one).
    fn predict(
        &self,
        model: &str,
        fitted: &[u8],
        frame: &Frame,
    ) -> Result<Vec<(&'static str, RecordBatch)>, MlError>;
}

/// Declares the model kinds and their modules: one line each, `module => Variant(Type);`.
macro_rules! kinds {
    ($($module:ident => $variant:ident($ty:ident);)+) => {
        $(pub mod $module;)+

        /// A model's kind, holding the kind's own columns and parameters.
        #[derive(Debug, Clone, Serialize)]
        #[serde(untagged)]
        pub enum ModelKind {
            $($variant($module::$ty)),+
        }

        impl ModelKind {
            /// Every kind's name, in order.
            pub const NAMES: &'static [&'static str] = &[$(<$module::$ty as Kind>::NAME),+];

            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$module::$ty as Kind>::NAME),+
                }
            }

            /// Reads kind `name` from its fields; `None` for an unknown kind.
            pub fn parse(name: &str, columns: &mut Fields, params: &mut Fields) -> Option<Self> {
                $(if name == <$module::$ty as Kind>::NAME {
                    return Some(Self::$variant(<$module::$ty as Kind>::parse(columns, params)));
                })+
                None
            }

            pub fn roles(&self) -> &'static [&'static str] {
                match self {
                    $(Self::$variant(_) => <$module::$ty as Kind>::ROLES),+
                }
            }

            pub fn params(&self) -> &'static [&'static str] {
                match self {
                    $(Self::$variant(_) => <$module::$ty as Kind>::PARAMS),+
                }
            }

            pub fn format(&self) -> u32 {
                match self {
                    $(Self::$variant(_) => <$module::$ty as Kind>::FORMAT),+
                }
            }

            pub fn check(&self) -> Result<(), String> {
                match self {
                    $(Self::$variant(k) => k.check()),+
                }
            }

            pub fn input_columns(&self) -> Vec<String> {
                match self {
                    $(Self::$variant(k) => k.input_columns()),+
                }
            }

            pub fn default_metric(&self) -> Option<&'static str> {
                match self {
                    $(Self::$variant(k) => k.default_metric()),+
                }
            }

            pub fn train(&self, frame: &Frame, ctx: &TrainContext) -> Result<Trained, MlError> {
                match self {
                    $(Self::$variant(k) => k.train(frame, ctx)),+
                }
            }

            pub fn predict(
                &self,
                model: &str,
                fitted: &[u8],
                frame: &Frame,
            ) -> Result<Vec<(&'static str, RecordBatch)>, MlError> {
                match self {
                    $(Self::$variant(k) => k.predict(model, fitted, frame)),+
                }
            }
        }
    };
}

// Every model kind: `module => Variant(Type);`, the type in `kinds/<module>.rs`. A new
// kind is its module and one line here.
kinds! {
    association_rules => AssociationRules(AssociationRules);
    anomaly => Anomaly(Anomaly);
    clustering => Clustering(Clustering);
    forecast => Forecast(Forecast);
    regression => Regression(Regression);
    classification => Classification(Classification);
    recommend => Recommend(Recommend);
}

/// A required column role, read as one column name.
pub fn role(columns: &mut Fields, role: &str) -> Option<String> {
    columns.value::<String>(role)
}

/// An optional role read as a list of column names (one name is a list of one).
pub fn role_list(columns: &mut Fields, role: &str) -> Vec<String> {
    columns
        .value::<socle_core::OneOrMany>(role)
        .map(|v| v.to_vec())
        .unwrap_or_default()
}

/// The numeric `columns` of `frame` as a matrix of the rows where every one is a finite
/// number, with those rows' indices; rows with a NULL (or NaN) are left out and counted.
/// An infinite value is an error naming its column and row count.
pub fn numeric_rows(
    model: &str,
    frame: &Frame,
    columns: &[String],
) -> Result<(crate::algo::Matrix, Vec<usize>, usize), MlError> {
    if columns.is_empty() {
        return Err(MlError::data(
            model,
            "no feature columns: give `columns: { features: [...] }`",
        ));
    }
    let values: Vec<Vec<f64>> = columns
        .iter()
        .map(|c| frame.f64s(c))
        .collect::<Result<_, _>>()?;
    for (name, column) in columns.iter().zip(&values) {
        let infinite = column.iter().filter(|v| v.is_infinite()).count();
        if infinite > 0 {
            return Err(MlError::data(
                model,
                format!("column `{name}` has {infinite} infinite values"),
            ));
        }
    }
    let kept: Vec<usize> = (0..frame.rows())
        .filter(|&i| values.iter().all(|c| !c[i].is_nan()))
        .collect();
    let dropped = frame.rows() - kept.len();
    let mut data = Vec::with_capacity(kept.len() * columns.len());
    for &i in &kept {
        data.extend(values.iter().map(|c| c[i]));
    }
    let matrix = crate::algo::Matrix::from_rows(kept.len(), columns.len(), data)
        .expect("rows × columns values");
    Ok((matrix, kept, dropped))
}

/// A kind's fitted model read back from the bytes [`Trained::fitted`] gave.
pub fn read_fitted<T: serde::de::DeserializeOwned>(
    model: &str,
    fitted: &[u8],
) -> Result<T, MlError> {
    serde_json::from_slice(fitted)
        .map_err(|e| MlError::data(model, format!("the stored model does not read: {e}")))
}
