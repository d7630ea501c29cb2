//! socle's transformations: dbt projects run unchanged on the warehouse.
//!
//! Loading reads `dbt_project.yml`, schema YAML, SQL files and packages into [`nodes`];
//! [`jinja`] renders them with dbt's context; the DAG, selection and runner order and
//! execute them; materializations turn compiled SQL into warehouse writes.

pub mod artifacts;
pub mod config;
pub mod docs;
pub mod error;
pub mod graph;
pub mod jinja;
pub mod lineage;
pub mod loader;
pub mod materialize;
pub mod nodes;
pub mod project;
pub mod resolver;
pub mod run;
pub mod schema;
pub mod snapshot;
mod yaml;

pub use error::{Result, TransformError};
