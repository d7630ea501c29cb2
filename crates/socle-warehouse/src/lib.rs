//! socle's warehouse: Apache DataFusion over Delta Lake tables kept in the lake.
//!
//! ```text
//!  SQL text ─▶ parse (time travel, dialect, rewrites) ─▶ statement
//!     ├─ CREATE VIEW / DROP / CREATE SCHEMA ───────────▶ metadata DB + lake   (statements.rs)
//!     ├─ CREATE TABLE [AS] / INSERT ─▶ logical plan ──▶ Delta write, one commit (statements.rs)
//!     └─ query ─▶ logical plan over catalog `socle` ──▶ DataFrame (streamed by the caller)
//!                        │
//!           catalog.rs: schema = folder under warehouse/, table = Delta table, view = SQL
//! ```
//!
//! Every write is a single Delta commit: a failure or a kill leaves the table at its last
//! committed version. The load API ([`Warehouse::load`], in `load.rs`) is what every other
//! layer uses to write: append, overwrite, or merge-upsert on key columns, with schema
//! evolution. Maintenance (history, optimize, vacuum) is in `maintenance.rs`.

mod catalog;
pub mod error;
pub mod guard;
mod load;
mod maintenance;
pub mod names;
mod nullable;
mod parse;
pub mod read_only;
mod statements;
pub mod time_travel;

use std::sync::Arc;

use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement;
use socle_core::WarehouseConfig;
use socle_lake::Lake;
use socle_meta::MetaDb;

pub use error::{Result, SqlError, WarehouseError};
pub use guard::Access;
pub use load::{LoadOptions, LoadReport, WriteMode};
pub use maintenance::{
    ColumnInfo, OptimizeReport, RelationDetail, RelationInfo, VacuumReport, VersionInfo,
};
pub use names::RelName;

/// The DataFusion catalog holding the warehouse's schemas.
pub const CATALOG: &str = "socle";

/// The result of one statement.
pub enum Outcome {
    /// A query: rows to stream (not yet computed).
    Query(DataFrame),
    /// A statement that changed something, with a one-line summary.
    Done(String),
}

/// A parsed statement, with the text it came from (for error positions).
pub struct Prepared {
    pub statement: Statement,
    pub sql: Arc<str>,
}

/// An open warehouse. Cheap to clone.
#[derive(Clone)]
pub struct Warehouse {
    ctx: SessionContext,
    shared: Arc<catalog::Shared>,
    parser: parse::Parser,
    /// Whose SQL this warehouse runs (the server's callers are kept to its tables).
    access: Access,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse")
            .field("lake", self.shared.lake.url())
            .finish()
    }
}

impl Warehouse {
    /// Opens the warehouse stored in `lake`, with catalog extras in `meta`, for the
    /// project's own SQL ([`Access::Project`]).
    pub async fn open(lake: Lake, meta: MetaDb, config: &WarehouseConfig) -> Result<Self> {
        Self::open_with(lake, meta, config, Access::Project).await
    }

    /// [`open`](Self::open) for SQL of the given origin: [`Access::Server`] for what
    /// arrives over HTTP (no file paths as tables, see [`guard`]).
    pub async fn open_with(
        lake: Lake,
        meta: MetaDb,
        config: &WarehouseConfig,
        access: Access,
    ) -> Result<Self> {
        register_log_stores();
        let mut session = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, &config.default_schema)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(true)
            .set_str(
                "datafusion.sql_parser.dialect",
                config.dialect.datafusion_name(),
            )
            .set_bool("datafusion.sql_parser.collect_spans", true)
            .set_bool("datafusion.sql_parser.enable_ident_normalization", true)
            // delta-rs' workaround: hash-join IN-list pushdown can panic on dictionary keys.
            .set_usize("datafusion.optimizer.hash_join_inlist_pushdown_max_size", 0)
            .set_usize(
                "datafusion.optimizer.hash_join_inlist_pushdown_max_distinct_values",
                0,
            );
        if let Some(n) = config.target_partitions {
            session = session.with_target_partitions(n);
        }
        if let Some(n) = config.batch_size {
            session = session.with_batch_size(n);
        }
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(limit) = config.memory_limit {
            runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit as usize)));
        }
        let runtime = runtime
            .build_arc()
            .map_err(|e| WarehouseError::Internal(e.to_string()))?;
        // Delta's planner knows the extension nodes its writers put into plans.
        let state = SessionStateBuilder::new()
            .with_config(session)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_query_planner(deltalake::delta_datafusion::planner::DeltaPlanner::new())
            .build();
        let mut ctx = SessionContext::new_with_state(state);
        // Object stores other than the local file system are registered for the lake's bucket.
        if lake.url().scheme() != "file" {
            let mut root = lake.url().clone();
            root.set_path("/");
            ctx.runtime_env().register_object_store(&root, lake.store());
        }
        socle_functions::register_all(&mut ctx)
            .map_err(|e| WarehouseError::Internal(e.to_string()))?;
        ctx.register_udf(nullable::Nullable::udf().as_ref().clone());
        // `SELECT * FROM 'data/orders.csv'`: the project's SQL may read files by path.
        let ctx = match access {
            Access::Project => ctx.enable_url_table(),
            Access::Server => ctx,
        };
        let parser = parse::Parser {
            dialect: config.dialect,
        };
        let shared = Arc::new(catalog::Shared::new(
            lake,
            meta,
            config.default_schema.clone(),
            parser,
        ));
        ctx.register_catalog(
            CATALOG,
            Arc::new(catalog::SocleCatalog {
                shared: shared.clone(),
            }),
        );
        shared
            .state
            .set(ctx.state())
            .map_err(|_| WarehouseError::Internal("session set twice".into()))?;
        shared.refresh().await?;
        Ok(Self {
            ctx,
            shared,
            parser,
            access,
        })
    }

    /// The DataFusion session (for reading files into DataFrames to load, for example).
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// Whose SQL this warehouse runs.
    pub fn access(&self) -> Access {
        self.access
    }

    pub fn default_schema(&self) -> &str {
        &self.shared.default_schema
    }

    /// Parses `sql` into statements to [`run`](Self::run) one by one.
    pub fn parse(&self, sql: &str) -> Result<Vec<Prepared>> {
        let text: Arc<str> = Arc::from(sql);
        Ok(self
            .parser
            .parse(sql)?
            .into_iter()
            .map(|statement| Prepared {
                statement,
                sql: text.clone(),
            })
            .collect())
    }

    /// Runs one statement. Writes are committed before this returns; queries return a
    /// DataFrame to stream.
    pub async fn run(&self, prepared: Prepared) -> Result<Outcome> {
        statements::run(self, prepared).await
    }

    /// Runs every statement of `sql`, collecting query results (for tests and small jobs).
    pub async fn execute(&self, sql: &str) -> Result<Vec<Executed>> {
        let mut out = Vec::new();
        for p in self.parse(sql)? {
            let text = p.sql.clone();
            out.push(match self.run(p).await? {
                Outcome::Query(df) => Executed::Rows(
                    df.collect()
                        .await
                        .map_err(|e| WarehouseError::from_datafusion(e, &text))?,
                ),
                Outcome::Done(m) => Executed::Done(m),
            });
        }
        Ok(out)
    }

    /// The logical plan of one query, names resolved and nothing optimized or run: views
    /// stay scans of their names, CTEs stay aliased sub-plans (what column lineage needs).
    pub async fn logical_plan(&self, sql: &str) -> Result<datafusion::logical_expr::LogicalPlan> {
        let mut prepared = self.parse(sql)?;
        let Some(one) = prepared.pop().filter(|_| prepared.is_empty()) else {
            return Err(WarehouseError::sql("expected a single query", sql, None));
        };
        self.ctx
            .state()
            .statement_to_plan(one.statement)
            .await
            .map_err(|e| WarehouseError::from_datafusion(e, sql))
    }

    /// Runs a single query and collects its rows.
    pub async fn query(&self, sql: &str) -> Result<Vec<datafusion::arrow::array::RecordBatch>> {
        let mut results = self.execute(sql).await?;
        match results.pop() {
            Some(Executed::Rows(rows)) if results.is_empty() => Ok(rows),
            _ => Err(WarehouseError::sql("expected a single query", sql, None)),
        }
    }

    /// Re-reads the list of schemas and tables (after another process changed them).
    pub async fn refresh(&self) -> Result<()> {
        self.shared.refresh().await
    }
}

/// delta-rs finds the log store of a table by URL scheme; it knows `file://` and
/// `memory://` only. socle gives it the lake's own object store for the other schemes, so
/// the plain log store (commits by put-if-absent, which S3, GCS and Azure all support) is
/// registered for them, once per process.
fn register_log_stores() {
    use deltalake::logstore::{
        LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
        logstore_factories,
    };
    #[derive(Debug)]
    struct PlainLogStore;
    impl LogStoreFactory for PlainLogStore {
        fn with_options(
            &self,
            prefixed_store: ObjectStoreRef,
            root_store: ObjectStoreRef,
            location: &url::Url,
            options: &StorageConfig,
        ) -> deltalake::DeltaResult<Arc<dyn LogStore>> {
            Ok(default_logstore(
                prefixed_store,
                root_store,
                location,
                options,
            ))
        }
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for scheme in ["s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://"] {
            let url = url::Url::parse(scheme).expect("valid scheme url");
            logstore_factories().insert(url, Arc::new(PlainLogStore));
        }
    });
}

/// A collected statement result.
#[derive(Debug)]
pub enum Executed {
    Rows(Vec<datafusion::arrow::array::RecordBatch>),
    Done(String),
}
