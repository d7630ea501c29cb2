//! socle's orchestrator: pipelines (`pipelines/*.yml`) of tasks with dependencies, run for
//! a logical date with Airflow's data-interval semantics.
//!
//! [`pipeline`] reads and validates the files; [`schedule`] turns cron expressions into
//! data intervals; [`template`] renders task fields (`{{ ds }}`, ...); [`tasks`] holds one
//! module per task kind; [`runner`] executes a run (parallel tasks, retries, timeouts,
//! trigger rules) and records it in the metadata database.

pub mod alerts;
mod attempt;
pub mod backfill;
pub mod dag;
pub mod error;
pub mod pipeline;
pub mod pools;
pub mod runner;
pub mod schedule;
pub mod scheduler;
pub mod takeover;
pub mod tasks;
pub mod template;

pub use error::{OrchestrateError, Result};
pub use pipeline::{Pipeline, TaskSpec};
