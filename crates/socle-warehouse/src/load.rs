//! The load API every layer writes through: append, overwrite, or merge-upsert on key
//! columns — each one atomic Delta commit.
//!
//! Before anything is written the incoming schema is checked against the table's: columns
//! of the same type pass, safe widenings (INT → BIGINT, FLOAT → DOUBLE, ...) are cast, new
//! columns widen the table (nullable), and any other difference fails the load with the
//! column named. A merge batch must not repeat a key or have NULL keys. On any error the
//! table stays at its previous version.
//!
//! Concurrent writers: creating a table is exclusive (Delta's version 0 is written only if
//! absent), and so are overwrites and merges: when another writer commits first, the
//! commit is refused rather than rebased on a version it did not read
//! ([`WarehouseError::Conflict`]). [`Warehouse::load_with`] then loads again against the
//! new version, in the same mode, a bounded number of times, so two first loads of a table
//! end as if they had run one after the other. Appends to an existing table are rebased by
//! delta-rs (two appends never conflict).

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use datafusion::common::Column;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::logical_expr::{Expr, cast, col, lit};
use datafusion::prelude::DataFrame;
use deltalake::DeltaTable;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;
use futures::TryStreamExt;
use serde::Serialize;

use crate::error::{Result, WarehouseError};
use crate::names::RelName;
use crate::{Warehouse, nullable};

/// How a load changes the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    /// Add the rows.
    Append,
    /// Replace the rows (and the schema) of the table.
    Overwrite,
    /// Update rows whose key columns match, insert the others.
    Merge { keys: Vec<String> },
}

impl WriteMode {
    fn name(&self) -> &'static str {
        match self {
            WriteMode::Append => "append",
            WriteMode::Overwrite => "overwrite",
            WriteMode::Merge { .. } => "merge",
        }
    }
}

/// Extra settings of a load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// An application transaction `(app id, version)` recorded in the same commit as the
    /// data, so a writer can later ask whether its load made it
    /// ([`Warehouse::txn_version`]).
    pub txn: Option<(String, i64)>,
    /// The caller guarantees a merge batch has one row per key and no NULL key (skips
    /// the check, which costs a pass over the data).
    pub keys_checked: bool,
}

impl LoadOptions {
    /// The commit's properties; an `exclusive` commit fails when another writer committed
    /// since the table was read, instead of being rebased on that version.
    fn commit_properties(
        &self,
        exclusive: bool,
    ) -> deltalake::kernel::transaction::CommitProperties {
        let mut props = deltalake::kernel::transaction::CommitProperties::default();
        if exclusive {
            props = props.with_max_retries(0);
        }
        match &self.txn {
            Some((app, version)) => props
                .with_application_transaction(deltalake::kernel::Transaction::new(app, *version)),
            None => props,
        }
    }
}

/// What a load did.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub table: String,
    pub mode: &'static str,
    /// Rows read from the input.
    pub rows_in: u64,
    pub rows_inserted: u64,
    pub rows_updated: u64,
    /// The table version the load committed.
    pub version: i64,
    /// Columns the load added to the table.
    pub new_columns: Vec<String>,
}

fn load_err(rel: &RelName, reason: impl Into<String>) -> WarehouseError {
    WarehouseError::Load {
        table: rel.to_string(),
        reason: reason.into(),
    }
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Can a value of type `from` be stored in a column of type `to` without loss?
fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to || from.is_null() || (is_string(from) && is_string(to)) {
        return true;
    }
    let rank = |t: &DataType| match t {
        Int8 => Some(1),
        Int16 | UInt8 => Some(2),
        Int32 | UInt16 => Some(3),
        Int64 | UInt32 => Some(4),
        _ => None,
    };
    match (from, to) {
        (a, b) if rank(a).is_some() && rank(b).is_some() => {
            rank(a) <= rank(b) && !matches!(b, UInt8 | UInt16 | UInt32)
        }
        (Float16 | Float32, Float64) | (Float16, Float32) => true,
        (Int8 | Int16 | Int32 | UInt8 | UInt16 | Int64 | UInt32, Float64) => true,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            s1 <= s2 && (*p1 as i16 - *s1 as i16) <= (*p2 as i16 - *s2 as i16)
        }
        (Int8 | Int16 | Int32 | Int64, Decimal128(p, s)) => (*p as i16 - *s as i16) >= 19,
        // A double holds 15 significant digits exactly.
        (Decimal128(p, _), Float64) => *p <= 15,
        (Timestamp(_, tz1), Timestamp(_, tz2)) => tz1.is_some() == tz2.is_some(),
        (Date32, Timestamp(TimeUnit::Microsecond, _)) => false,
        (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView) => true,
        _ => false,
    }
}

/// Aligns `data` with the table's schema: casts safe widenings, reports new columns, and
/// refuses incompatible types.
fn align(rel: &RelName, data: DataFrame, table: &Schema) -> Result<(DataFrame, Vec<String>)> {
    let mut exprs = Vec::new();
    let mut new_columns = Vec::new();
    for field in data.schema().fields() {
        let name = field.name();
        let column = col(Column::from_name(name));
        match table.field_with_name(name) {
            Ok(target) if target.data_type() == field.data_type() => exprs.push(column),
            Ok(target) if widens(field.data_type(), target.data_type()) => {
                exprs.push(cast(column, target.data_type().clone()).alias(name))
            }
            Ok(target) => {
                return Err(load_err(
                    rel,
                    format!(
                        "column `{name}` is {} in the table but {} in the data; cast it in the query or load into a new column",
                        target.data_type(),
                        field.data_type()
                    ),
                ));
            }
            Err(_) => {
                if let Some(existing) = table
                    .fields()
                    .iter()
                    .find(|f| f.name().eq_ignore_ascii_case(name))
                {
                    return Err(load_err(
                        rel,
                        format!(
                            "column `{name}` differs only by case from the table's `{}`",
                            existing.name()
                        ),
                    ));
                }
                new_columns.push(name.clone());
                exprs.push(column);
            }
        }
    }
    let df = data
        .select(exprs)
        .map_err(|e| WarehouseError::Internal(e.to_string()))?;
    Ok((df, new_columns))
}

/// Writes `df` to `rel` in one commit. `existing` is the table as loaded (None: create it).
pub(crate) async fn write_dataframe(
    wh: &Warehouse,
    rel: &RelName,
    existing: Option<DeltaTable>,
    df: DataFrame,
    mode: SaveMode,
    replace_schema: bool,
    options: &LoadOptions,
) -> Result<LoadReport> {
    let delta_err = |source| WarehouseError::Delta {
        table: rel.to_string(),
        source,
    };
    let creating = existing.is_none();
    let table = match existing {
        Some(t) => t,
        None => {
            // Files left by a dropped or never-committed table under the same name are in
            // no version; they stay (a concurrent first writer may be writing its own
            // files here right now) and `socle table vacuum` removes them.
            let url = wh.shared.lake.url_of(&rel.lake_path())?;
            deltalake::DeltaTableBuilder::from_url(url.clone())
                .map_err(delta_err)?
                .with_storage_backend(wh.shared.lake.store(), url)
                .build()
                .map_err(delta_err)?
        }
    };
    let (state, plan) = df.into_parts();
    let schema_mode = if replace_schema && !creating {
        Some(SchemaMode::Overwrite)
    } else if !creating {
        Some(SchemaMode::Merge)
    } else {
        None
    };
    // Creating and replacing must not be rebased on a version this write did not read:
    // the first commit of a table is put-if-absent, and an overwrite that lost the race
    // would keep the winner's files next to its own.
    let exclusive = creating || mode == SaveMode::Overwrite;
    let mut builder = table
        .write(Vec::<RecordBatch>::new())
        .with_input_plan(plan)
        .with_session_state(Arc::new(state))
        .with_save_mode(mode)
        .with_table_name(&rel.name)
        .with_commit_properties(options.commit_properties(exclusive));
    if let Some(m) = schema_mode {
        builder = builder.with_schema_mode(m);
    }
    let table = builder.await.map_err(|e| classify_write_error(rel, e))?;
    let rows = added_rows(&table).await;
    Ok(LoadReport {
        table: rel.to_string(),
        mode: if mode == SaveMode::Overwrite {
            "overwrite"
        } else {
            "append"
        },
        rows_in: rows,
        rows_inserted: rows,
        rows_updated: 0,
        version: table.version().map_or(0, |v| v as i64),
        new_columns: Vec::new(),
    })
}

/// Errors from a write are mostly the data's fault (a bad value while reading the input),
/// or another writer's commit.
fn classify_write_error(rel: &RelName, e: deltalake::DeltaTableError) -> WarehouseError {
    use deltalake::DeltaTableError as E;
    use deltalake::kernel::transaction::TransactionError as T;
    match e {
        E::VersionAlreadyExists(_)
        | E::Transaction {
            source: T::MaxCommitAttempts(_) | T::CommitConflict(_) | T::VersionAlreadyExists(_),
        } => WarehouseError::Conflict {
            table: rel.to_string(),
        },
        E::Arrow { source } => load_err(rel, source.to_string()),
        E::GenericError { source } => load_err(rel, source.to_string()),
        E::SchemaMismatch { msg } => load_err(rel, msg),
        other => WarehouseError::Delta {
            table: rel.to_string(),
            source: other,
        },
    }
}

/// `num_added_rows` of the last commit.
async fn added_rows(table: &DeltaTable) -> u64 {
    let Ok(history) = table.history(Some(1)).try_collect::<Vec<_>>().await else {
        return 0;
    };
    history
        .first()
        .and_then(|c| c.info.get("operationMetrics"))
        .and_then(|m| m.get("num_added_rows"))
        .and_then(|v| v.as_u64())
        .unwrap_or(0)
}

impl Warehouse {
    /// Loads `data` into `table` (`schema.table` or `table`), creating it on first load.
    pub async fn load(&self, table: &str, data: DataFrame, mode: WriteMode) -> Result<LoadReport> {
        self.load_with(table, data, mode, &LoadOptions::default())
            .await
    }

    /// [`Warehouse::load`] with [`LoadOptions`].
    ///
    /// When another writer commits to the table first (or creates it first), the load is
    /// run again against the new version, up to [`LOAD_ATTEMPTS`] times, unless the data
    /// reads the table itself (it would be stale): then the conflict is the answer.
    pub async fn load_with(
        &self,
        table: &str,
        data: DataFrame,
        mode: WriteMode,
        options: &LoadOptions,
    ) -> Result<LoadReport> {
        let rel = RelName::parse(table, self.default_schema())?;
        let retry = !reads_table(data.logical_plan(), &rel);
        let mut attempt = 1;
        loop {
            match self.load_once(&rel, data.clone(), &mode, options).await {
                Err(WarehouseError::Conflict { .. }) if retry && attempt < LOAD_ATTEMPTS => {
                    tracing::info!(table = %rel, attempt, "another writer committed first; loading again");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn load_once(
        &self,
        rel: &RelName,
        data: DataFrame,
        mode: &WriteMode,
        options: &LoadOptions,
    ) -> Result<LoadReport> {
        let rel = rel.clone();
        if self
            .shared
            .meta
            .get_view(&rel.schema, &rel.name)
            .await?
            .is_some()
        {
            return Err(load_err(&rel, "it is a view; load into a table"));
        }
        let existing = self.shared.open_table(&rel, None).await?;
        let report = match (mode, existing) {
            (WriteMode::Merge { keys }, existing) => {
                self.merge(&rel, existing, data, keys, options).await?
            }
            (WriteMode::Overwrite, existing) => {
                let plan = nullable::make_nullable(data.logical_plan().clone())
                    .map_err(|e| WarehouseError::Internal(e.to_string()))?;
                let df = DataFrame::new(self.ctx.state(), plan);
                write_dataframe(self, &rel, existing, df, SaveMode::Overwrite, true, options)
                    .await?
            }
            (WriteMode::Append, None) => {
                let plan = nullable::make_nullable(data.logical_plan().clone())
                    .map_err(|e| WarehouseError::Internal(e.to_string()))?;
                let df = DataFrame::new(self.ctx.state(), plan);
                write_dataframe(self, &rel, None, df, SaveMode::Append, false, options).await?
            }
            (WriteMode::Append, Some(table)) => {
                let schema = table_schema(&rel, &table)?;
                let (df, new_columns) = align(&rel, data, &schema)?;
                let df = with_nullable(self, df, &new_columns)?;
                let mut report = write_dataframe(
                    self,
                    &rel,
                    Some(table),
                    df,
                    SaveMode::Append,
                    false,
                    options,
                )
                .await?;
                report.new_columns = new_columns;
                report
            }
        };
        self.shared.note(&rel.schema, Some(&rel.name), true);
        Ok(LoadReport {
            mode: mode.name(),
            ..report
        })
    }

    /// Loads in-memory batches (see [`Warehouse::load`]).
    pub async fn load_batches(
        &self,
        table: &str,
        batches: Vec<RecordBatch>,
        mode: WriteMode,
    ) -> Result<LoadReport> {
        let Some(first) = batches.first() else {
            return Err(WarehouseError::Load {
                table: table.to_string(),
                reason: "no data".into(),
            });
        };
        let schema = first.schema();
        let provider =
            datafusion::datasource::MemTable::try_new(schema, vec![batches]).map_err(|e| {
                WarehouseError::Load {
                    table: table.to_string(),
                    reason: e.strip_backtrace(),
                }
            })?;
        let df = self
            .ctx
            .read_table(Arc::new(provider))
            .map_err(|e| WarehouseError::Internal(e.to_string()))?;
        self.load(table, df, mode).await
    }

    async fn merge(
        &self,
        rel: &RelName,
        existing: Option<DeltaTable>,
        data: DataFrame,
        keys: &[String],
        options: &LoadOptions,
    ) -> Result<LoadReport> {
        if keys.is_empty() {
            return Err(load_err(rel, "merge needs at least one key column"));
        }
        for k in keys {
            if data.schema().field_with_unqualified_name(k).is_err() {
                return Err(load_err(
                    rel,
                    format!("key column `{k}` is not in the data"),
                ));
            }
        }
        if !options.keys_checked {
            check_keys(rel, &data, keys).await?;
        }
        let Some(table) = existing else {
            let plan = nullable::make_nullable(data.logical_plan().clone())
                .map_err(|e| WarehouseError::Internal(e.to_string()))?;
            let df = DataFrame::new(self.ctx.state(), plan);
            return write_dataframe(self, rel, None, df, SaveMode::Append, false, options).await;
        };
        let schema = table_schema(rel, &table)?;
        for k in keys {
            if schema.field_with_name(k).is_err() {
                return Err(load_err(
                    rel,
                    format!("key column `{k}` is not in the table"),
                ));
            }
        }
        let (df, new_columns) = align(rel, data, &schema)?;
        let df = with_nullable(self, df, &new_columns)?;
        let columns: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let side = |alias: &str, name: &str| col(Column::new(Some(alias.to_string()), name));
        let predicate = keys
            .iter()
            .map(|k| side("target", k).eq(side("source", k)))
            .reduce(Expr::and)
            .expect("at least one key");
        let state = Arc::new(self.ctx.state());
        let update_cols = columns.clone();
        let insert_cols = columns.clone();
        let delta_err = |source| WarehouseError::Delta {
            table: rel.to_string(),
            source,
        };
        let (table, metrics) = table
            .merge(df, predicate)
            .with_source_alias("source")
            .with_target_alias("target")
            .with_merge_schema(!new_columns.is_empty())
            .with_session_state(state)
            .with_commit_properties(options.commit_properties(true))
            .when_matched_update(move |u| {
                update_cols
                    .iter()
                    .fold(u, |u, c| u.update(quoted(c), side("source", c)))
            })
            .map_err(delta_err)?
            .when_not_matched_insert(move |i| {
                insert_cols
                    .iter()
                    .fold(i, |i, c| i.set(quoted(c), side("source", c)))
            })
            .map_err(delta_err)?
            .await
            .map_err(|e| classify_write_error(rel, e))?;
        Ok(LoadReport {
            table: rel.to_string(),
            mode: "merge",
            rows_in: metrics.num_source_rows as u64,
            rows_inserted: metrics.num_target_rows_inserted as u64,
            rows_updated: metrics.num_target_rows_updated as u64,
            version: table.version().map_or(0, |v| v as i64),
            new_columns,
        })
    }
}

impl Warehouse {
    /// The last version of application transaction `app_id` committed to `table` (None
    /// when the table does not exist or never saw that application).
    pub async fn txn_version(&self, table: &str, app_id: &str) -> Result<Option<i64>> {
        let rel = RelName::parse(table, self.default_schema())?;
        let Some(t) = self.shared.open_table(&rel, None).await? else {
            return Ok(None);
        };
        let delta_err = |source| WarehouseError::Delta {
            table: rel.to_string(),
            source,
        };
        let snapshot = t.snapshot().map_err(delta_err)?;
        snapshot
            .transaction_version(t.log_store().as_ref(), app_id)
            .await
            .map_err(delta_err)
    }
}

/// How many times a load is tried when other writers keep committing first.
pub const LOAD_ATTEMPTS: u32 = 10;

/// The wait before attempt `attempt + 1`: growing from 50 ms to 1.6 s, with jitter so
/// writers that collided do not collide again.
pub(crate) fn backoff(attempt: u32) -> std::time::Duration {
    socle_core::backoff::Backoff {
        base: std::time::Duration::from_millis(50),
        max: std::time::Duration::from_millis(1600),
        jitter: socle_core::backoff::Jitter::Below(0.5),
    }
    .delay(attempt)
}

/// Whether `plan` scans `rel` (a load computed from the table it writes).
pub(crate) fn reads_table(plan: &datafusion::logical_expr::LogicalPlan, rel: &RelName) -> bool {
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::LogicalPlan;
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let t = &scan.table_name;
            let table = t.table().split('@').next().unwrap_or_default();
            if table.eq_ignore_ascii_case(&rel.name)
                && t.schema()
                    .is_none_or(|s| s.eq_ignore_ascii_case(&rel.schema))
            {
                found = true;
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Column names for delta's `DeltaColumn` parser, which splits on dots and folds case.
fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn table_schema(rel: &RelName, table: &DeltaTable) -> Result<Schema> {
    let snapshot = table.snapshot().map_err(|source| WarehouseError::Delta {
        table: rel.to_string(),
        source,
    })?;
    Ok(snapshot.snapshot().arrow_schema().as_ref().clone())
}

/// New columns must be nullable: rows already in the table have no value for them.
fn with_nullable(wh: &Warehouse, df: DataFrame, new_columns: &[String]) -> Result<DataFrame> {
    if new_columns.is_empty() {
        return Ok(df);
    }
    let plan = nullable::make_nullable(df.logical_plan().clone())
        .map_err(|e| WarehouseError::Internal(e.to_string()))?;
    Ok(DataFrame::new(wh.ctx.state(), plan))
}

/// Refuses NULL keys and keys that appear twice in the batch (a merge would be ambiguous).
async fn check_keys(rel: &RelName, data: &DataFrame, keys: &[String]) -> Result<()> {
    let run = |e: datafusion::error::DataFusionError| load_err(rel, e.strip_backtrace());
    let key_cols: Vec<Expr> = keys.iter().map(|k| col(Column::from_name(k))).collect();
    let any_null = key_cols
        .iter()
        .cloned()
        .map(Expr::is_null)
        .reduce(Expr::or)
        .expect("keys");
    let nulls = data
        .clone()
        .filter(any_null)
        .map_err(run)?
        .count()
        .await
        .map_err(run)?;
    if nulls > 0 {
        return Err(load_err(
            rel,
            format!("{nulls} rows have a NULL in the key ({})", keys.join(", ")),
        ));
    }
    let dups = data
        .clone()
        .aggregate(key_cols, vec![count(lit(1)).alias("__socle_n")])
        .map_err(run)?
        .filter(col("__socle_n").gt(lit(1)))
        .map_err(run)?;
    let total = dups.clone().count().await.map_err(run)?;
    if total > 0 {
        let examples = dups
            .limit(0, Some(3))
            .map_err(run)?
            .collect()
            .await
            .map_err(run)?;
        let shown = datafusion::arrow::util::pretty::pretty_format_batches(&examples)
            .map(|t| t.to_string())
            .unwrap_or_default();
        return Err(load_err(
            rel,
            format!(
                "{total} keys appear more than once in the batch (a merge needs one row per key), e.g.:\n{shown}"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_rules() {
        assert!(widens(&DataType::Int32, &DataType::Int64));
        assert!(!widens(&DataType::Int64, &DataType::Int32));
        assert!(widens(&DataType::Utf8View, &DataType::Utf8));
        assert!(widens(&DataType::Int64, &DataType::Float64));
        assert!(widens(&DataType::Decimal128(3, 2), &DataType::Float64));
        assert!(!widens(&DataType::Decimal128(38, 2), &DataType::Float64));
        assert!(!widens(&DataType::Utf8, &DataType::Int64));
        assert!(widens(
            &DataType::Decimal128(10, 2),
            &DataType::Decimal128(12, 2)
        ));
        assert!(!widens(
            &DataType::Decimal128(10, 4),
            &DataType::Decimal128(10, 2)
        ));
    }
}
