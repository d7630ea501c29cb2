//! socle's models in the warehouse: specs in `ml/<name>.yml`, trained where the data is,
//! every training kept as a version, results written back as warehouse tables.
//!
//! - [`spec`]: the spec files (strict, `file:line:col`), [`validation`] their
//!   `validation:` section.
//! - [`kinds`]: one module per model kind and one registry line to add one.
//! - [`run`]: training and prediction runs: input versions, version claims, files in the
//!   lake (`models/<name>/<version>/`), output tables.
//! - [`outputs`]: writing a version's output tables, one version at a time, all or none.
//! - [`frame`]: input rows as typed columns, output tables as Arrow batches.
//! - [`algo`]: the algorithms over plain values, one module each.
//! - [`error`]: errors that say whose fault.

pub mod algo;
pub mod error;
pub mod frame;
pub mod kinds;
pub mod outputs;
pub mod run;
pub mod spec;
pub mod validation;

pub use error::MlError;
