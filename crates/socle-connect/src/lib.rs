//! socle's extraction layer: declarative sources in `sources/*.yml` whose streams are
//! read by connectors, landed as immutable raw files in the lake and loaded into the
//! warehouse's `raw` schema in one commit per stream.
//!
//! - [`config`]: the source files and the settings every kind shares.
//! - [`registry`]: the connector kinds (one module each, one line to add one).
//! - [`infer`]: type inference for untyped input and the column builders.
//! - [`sink`]: metadata columns, raw landing, rejected records.
//! - [`run`]: one extraction: reconcile, extract, load, commit the state with the data.
//! - [`template`]: `{{ ds }}`, cursor values and account fields in source settings.
//! - [`files`]: local and object-store files (CSV/TSV, JSON, JSON Lines, Excel, Parquet,
//!   Avro).
//! - [`rest`]: JSON HTTP APIs (auth, accounts, pagination, fan-out, cursors), over
//!   [`http`] (retries, rate limits).
//! - [`scrape`]: HTML pages with CSS selectors, politely (robots.txt, delays).
//! - [`sql`]: PostgreSQL, MySQL/MariaDB and SQLite tables or queries, in chunks,
//!   incremental on a cursor column.

pub mod config;
pub mod error;
pub mod files;
pub mod http;
pub mod infer;
mod parts;
mod pending;
pub mod registry;
pub mod rest;
pub mod run;
pub mod scrape;
pub mod sink;
pub mod sql;
pub mod template;

use std::path::Path;
use std::sync::Arc;

pub use config::{SourceCommon, StreamConfig};
pub use error::{ConnectError, Result};
pub use run::{ExtractOptions, Extraction, Progress, StreamReport};
pub use sink::{RowMeta, Sink};

/// A configured source: one connector kind with its streams.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// Name, file, streams and the settings every kind shares.
    fn common(&self) -> &SourceCommon;

    /// Reads one stream, pushing records (and rejects) into `ctx.sink` and setting the
    /// state to commit with them through `ctx.set_state`.
    async fn extract(&self, stream: &StreamConfig, ctx: &mut StreamContext<'_>) -> Result<()>;
}

/// The dates an extraction is for (the run's data interval; see [`socle_core::dates`]).
pub use socle_core::dates::RunDates;

/// What a connector sees while it reads a stream.
pub struct StreamContext<'a> {
    pub source: &'a SourceCommon,
    pub stream: &'a StreamConfig,
    pub run_id: &'a str,
    pub dates: &'a RunDates,
    /// The project folder (relative paths in source files are relative to it).
    pub root: &'a Path,
    /// The committed state of the stream (`{}` the first time and on a full refresh).
    pub state: serde_json::Value,
    pub full_refresh: bool,
    pub resolver: &'a (dyn socle_core::secrets::Resolver + Sync),
    pub sink: Sink,
    new_state: Option<serde_json::Value>,
    /// What the stream's summary should say (a path that matched no file, ...).
    pub warnings: Vec<String>,
    /// Stops the extraction early (Ctrl-C); connectors check it between pages/files.
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
}

impl StreamContext<'_> {
    /// The state to commit together with this extraction's data.
    pub fn set_state(&mut self, state: serde_json::Value) {
        self.new_state = Some(state);
    }

    /// Adds a line to the stream's summary.
    pub fn warn(&mut self, message: impl Into<String>) {
        self.warnings.push(message.into());
    }

    /// Template variables for this run (see [`template`]).
    pub fn template_vars(&self) -> serde_json::Map<String, serde_json::Value> {
        template::run_vars(self.dates, self.run_id, &self.state)
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A fetch error of this stream.
    pub fn fetch_error(&self, message: impl Into<String>) -> ConnectError {
        ConnectError::Fetch {
            source_name: self.source.name.clone(),
            stream: self.stream.name.clone(),
            message: message.into(),
        }
    }
}

/// Reads every source file of a project (all problems are reported together).
pub fn load_sources(root: &Path) -> Result<Vec<Box<dyn Source>>> {
    let files = config::source_files(root).map_err(ConnectError::Configs)?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        match registry::parse(&f) {
            Ok(s) => out.push(s),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ConnectError::Configs(errors))
    }
}
