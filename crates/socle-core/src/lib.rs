//! socle's project model, shared by every layer.
//!
//! - [`project`]: finding a project folder (`socle.yml` or `dbt_project.yml`) and loading it.
//! - [`backoff`]: the one retry backoff (exponential, capped, random jitter).
//! - [`config`]: the typed, validated contents of `socle.yml`.
//! - [`dates`]: a run's data interval and logical date (one type for every layer).
//! - [`diag`]: configuration errors that name `file:line:column` and suggest fixes.
//! - [`fault`]: whose fault an error is, and its one HTTP status.
//! - [`fields`]: a section of a project file read field by field, each with its place.
//! - [`frames`]: the framed protocol over pipes between `socle serve` and its child
//!   processes.
//! - [`process`]: this process's id (`host:pid:start`) and whether a recorded one still runs.
//! - [`failpoint`]: crash-test aborts, only in builds with the `failpoints` feature.
//! - [`duration`]: durations as written in configuration (`30s`, `5m`, `1h30m`).
//! - [`secrets`]: `${env:NAME}` and `${secret:NAME}` references and their resolution.
//!   [`secrets::store`]: the local encrypted secrets store (`socle secrets`).
//! - [`scaffold`]: `socle init`, a working project to start from.

pub mod alerts;
pub mod backoff;
pub mod config;
pub mod dates;
pub mod diag;
pub mod duration;
pub mod failpoint;
pub mod fault;
pub mod fields;
pub mod frames;
pub mod process;
pub mod project;
pub mod scaffold;
pub mod secrets;

pub use config::{Config, Dialect, LakeConfig, MetadataConfig, WarehouseConfig};
pub use diag::{ConfigError, Location, OneOrMany};
pub use project::Project;
