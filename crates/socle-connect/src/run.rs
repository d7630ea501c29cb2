//! One extraction of one stream, from the connector to the committed table and state.
//!
//! 1. *Reconcile*: a load left pending by a crash is finished (its Delta commit is in the
//!    table: the state advances) or discarded (it is not: its raw files are removed and
//!    the state stays), so nothing is skipped or loaded twice.
//! 2. *Extract*: the connector pushes records into the [`Sink`], which lands raw parts.
//! 3. *Check*: too many rejected records fail the stream (the rejects are still loaded, so
//!    they can be inspected; the data and the state are not).
//! 4. *Load*: the parts become one DataFrame, conformed to the table (new columns evolve
//!    it, type conflicts follow the stream's policy), deduplicated on the primary key for
//!    a merge (the last record read wins) and written in one commit that carries the
//!    stream's next sequence number as a Delta application transaction.
//! 5. *Commit*: rejected records go to `<table>__rejected`; the pending state becomes the
//!    stream's state.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::Column;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{ExprFunctionExt, SortExpr, cast, col, lit};
use datafusion::prelude::DataFrame;
use serde::Serialize;
use socle_lake::Lake;
use socle_meta::extract::{ExtractRun, Pending};
use socle_meta::{MetaDb, StreamState};
use socle_warehouse::{LoadOptions, Warehouse, WriteMode};

use crate::config::{StreamConfig, TypeConflict, Write};
use crate::infer::Kind;
use crate::pending::PendingDetail;
use crate::sink::{Part, ROW_COLUMN, Sink, join_types, unify_all};
use crate::{ConnectError, Result, RunDates, Source, StreamContext};

/// What to extract and how.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    pub dates: RunDates,
    /// Forget the streams' state and replace their tables.
    pub full_refresh: bool,
    /// The run id (default: a new one from the time).
    pub run_id: String,
}

impl ExtractOptions {
    pub fn new(dates: RunDates, full_refresh: bool) -> Self {
        let run_id = format!(
            "{}-{:04x}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%3f"),
            std::process::id() & 0xffff
        );
        Self {
            dates,
            full_refresh,
            run_id,
        }
    }
}

/// Progress of an extraction, for a terminal or a log.
pub trait Progress: Send + Sync {
    fn stream_started(&self, _source: &str, _stream: &str) {}
    /// Records read and input bytes so far.
    fn stream_progress(&self, _source: &str, _stream: &str, _rows: u64, _bytes: u64) {}
    fn stream_finished(&self, _report: &StreamReport) {}
    /// Something worth telling (a reconciled load, a table evolution).
    fn note(&self, _message: &str) {}
}

/// No progress output.
pub struct Silent;
impl Progress for Silent {}

/// How one stream's extraction ended.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    pub source: String,
    pub stream: String,
    pub table: String,
    /// `success` or `failed`.
    pub status: StreamState,
    pub write: String,
    /// Records read (loaded or rejected).
    pub rows_read: u64,
    pub rows_inserted: u64,
    pub rows_updated: u64,
    pub rejected: u64,
    /// Input bytes read.
    pub bytes: u64,
    /// Input files or pages read.
    pub files: u64,
    /// Raw files landed in the lake.
    pub raw_files: Vec<String>,
    pub duration_ms: u64,
    pub table_version: Option<i64>,
    pub new_columns: Vec<String>,
    /// Things the run should say although it succeeded (a path that matched no file).
    pub warnings: Vec<String>,
    pub error: Option<String>,
}

/// Everything an extraction works with.
pub struct Extraction<'a> {
    pub warehouse: &'a Warehouse,
    pub meta: &'a MetaDb,
    pub lake: &'a Lake,
    pub root: &'a Path,
    pub resolver: &'a (dyn socle_core::secrets::Resolver + Sync),
    pub progress: Arc<dyn Progress>,
    pub cancel: Arc<AtomicBool>,
}

pub(crate) fn app_id(source: &str, stream: &str) -> String {
    format!("socle-extract:{source}.{stream}")
}

pub(crate) fn rejected_table(table: &str) -> String {
    format!("{table}__rejected")
}

impl Extraction<'_> {
    /// Extracts the selected streams (`source` or `source.stream`; all when empty), one
    /// after the other. A failed stream does not stop the others.
    pub async fn run(
        &self,
        sources: &[Box<dyn Source>],
        selection: &[String],
        options: &ExtractOptions,
    ) -> Result<Vec<StreamReport>> {
        let mut chosen: Vec<(&dyn Source, &StreamConfig)> = Vec::new();
        if selection.is_empty() {
            for s in sources {
                for st in &s.common().streams {
                    chosen.push((s.as_ref(), st));
                }
            }
        }
        for sel in selection {
            let (src, stream) = match sel.split_once('.') {
                Some((a, b)) => (a, Some(b)),
                None => (sel.as_str(), None),
            };
            let Some(source) = sources.iter().find(|s| s.common().name == src) else {
                let names: Vec<&str> = sources.iter().map(|s| s.common().name.as_str()).collect();
                return Err(ConnectError::UnknownSource {
                    name: src.to_string(),
                    hint: socle_core::diag::did_you_mean(src, names).map(str::to_string),
                });
            };
            match stream {
                None => chosen.extend(
                    source
                        .common()
                        .streams
                        .iter()
                        .map(|st| (source.as_ref(), st)),
                ),
                Some(name) => match source.common().stream(name) {
                    Some(st) => chosen.push((source.as_ref(), st)),
                    None => {
                        return Err(ConnectError::UnknownStream {
                            source_name: src.to_string(),
                            stream: name.to_string(),
                            known: source
                                .common()
                                .streams
                                .iter()
                                .map(|s| s.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", "),
                        });
                    }
                },
            }
        }
        let mut reports = Vec::new();
        for (source, stream) in chosen {
            if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            reports.push(self.run_stream(source, stream, options).await);
        }
        Ok(reports)
    }

    /// Extracts one stream; failures are in the report.
    pub async fn run_stream(
        &self,
        source: &dyn Source,
        stream: &StreamConfig,
        options: &ExtractOptions,
    ) -> StreamReport {
        let started = Instant::now();
        let common = source.common();
        self.progress.stream_started(&common.name, &stream.name);
        let mut report = StreamReport {
            source: common.name.clone(),
            stream: stream.name.clone(),
            table: stream.table.clone(),
            status: StreamState::Success,
            write: if options.full_refresh {
                "replace".into()
            } else {
                stream.write.as_str().into()
            },
            rows_read: 0,
            rows_inserted: 0,
            rows_updated: 0,
            rejected: 0,
            bytes: 0,
            files: 0,
            raw_files: Vec::new(),
            duration_ms: 0,
            table_version: None,
            new_columns: Vec::new(),
            warnings: Vec::new(),
            error: None,
        };
        let date = options.dates.logical_date().to_string();
        let _ = self
            .meta
            .start_extract_run(&options.run_id, &common.name, &stream.name, &date)
            .await;
        if let Err(e) = self
            .extract_and_load(source, stream, options, &mut report)
            .await
        {
            report.status = StreamState::Failed;
            report.error = Some(socle_core::secrets::redact(&e.to_string()));
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        let _ = self
            .meta
            .finish_extract_run(&ExtractRun {
                run_id: options.run_id.clone(),
                source: common.name.clone(),
                stream: stream.name.clone(),
                logical_date: date,
                status: report.status,
                rows_loaded: (report.rows_inserted + report.rows_updated) as i64,
                rows_rejected: report.rejected as i64,
                bytes: report.bytes as i64,
                files: report.files as i64,
                started_at: String::new(),
                ended_at: None,
                error: report.error.clone(),
            })
            .await;
        self.progress.stream_finished(&report);
        report
    }

    async fn extract_and_load(
        &self,
        source: &dyn Source,
        stream: &StreamConfig,
        options: &ExtractOptions,
        report: &mut StreamReport,
    ) -> Result<()> {
        let common = source.common();
        let (src, name) = (common.name.as_str(), stream.name.as_str());
        self.reconcile(src, name).await?;
        let previous = self.meta.stream_state(src, name).await?;
        let seq = previous.as_ref().map_or(0, |p| p.seq) + 1;
        let state: serde_json::Value = match &previous {
            Some(p) if !options.full_refresh => {
                serde_json::from_str(&p.state).unwrap_or_else(|_| serde_json::json!({}))
            }
            _ => serde_json::json!({}),
        };
        let prefix = format!(
            "raw/{src}/{name}/dt={}/{}",
            options.dates.logical_date(),
            options.run_id
        );
        let progress = self.progress.clone();
        let (s1, s2) = (src.to_string(), name.to_string());
        let sink = Sink::new(
            self.lake.clone(),
            common.landing,
            prefix,
            src.to_string(),
            options.run_id.clone(),
            stream.on_type_conflict,
            &stream.columns,
            Some(Arc::new(move |rows, bytes| {
                progress.stream_progress(&s1, &s2, rows, bytes)
            })),
        );
        let mut ctx = StreamContext {
            source: common,
            stream,
            run_id: &options.run_id,
            dates: &options.dates,
            root: self.root,
            state: state.clone(),
            full_refresh: options.full_refresh,
            resolver: self.resolver,
            sink,
            new_state: None,
            warnings: Vec::new(),
            cancel: self.cancel.clone(),
        };
        let extracted = source.extract(stream, &mut ctx).await;
        let extracted = match extracted {
            Ok(()) => ctx.sink.flush().await,
            Err(e) => Err(e),
        };
        let new_state = ctx.new_state.take().unwrap_or(state);
        report.warnings = std::mem::take(&mut ctx.warnings);
        let mut sink = ctx.sink;
        report.bytes = sink.bytes_in;
        report.files = sink.files_in;
        report.rows_read = sink.rows() + sink.rejected();
        report.rejected = sink.rejected();
        if let Err(e) = extracted {
            // Nothing was committed: the landed parts of this run go.
            let _ = self.remove_parts(&sink.parts).await;
            return Err(e);
        }
        if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = self.remove_parts(&sink.parts).await;
            return Err(ConnectError::Other(format!("{src}.{name}: interrupted")));
        }
        let app = app_id(src, name);
        let rejected_table = rejected_table(&stream.table);

        // Primary keys must have a value: rows without one are rejected before the load.
        let mut df = None;
        if sink.rows() > 0 {
            let data = self.parts_frame(&sink.parts, stream)?;
            let data = if stream.write == Write::Merge {
                self.reject_null_keys(data, stream, &mut sink).await?
            } else {
                data
            };
            df = Some(data);
        }
        sink.flush_rejects().await?;
        report.rejected = sink.rejected();
        report.raw_files = sink
            .parts
            .iter()
            .chain(&sink.reject_parts)
            .map(|p| p.path.clone())
            .collect();
        report.rows_read = sink.rows() + sink.rejected();
        if stream
            .max_rejected
            .exceeded(sink.rejected(), report.rows_read)
        {
            if !sink.reject_parts.is_empty() {
                self.load_rejects(&rejected_table, &sink.reject_parts, &app, 0)
                    .await?;
            }
            let _ = self.remove_parts(&sink.parts).await;
            return Err(ConnectError::Data {
                source_name: src.into(),
                stream: name.into(),
                message: format!(
                    "{} of {} records rejected, more than max_rejected ({}); nothing was loaded. See {rejected_table}",
                    sink.rejected(),
                    report.rows_read,
                    stream.max_rejected.describe()
                ),
            });
        }
        let data_rows = sink.rows();
        let pending = Pending {
            seq,
            run_id: options.run_id.clone(),
            state: new_state.to_string(),
            detail: serde_json::to_string(&PendingDetail::new(
                stream.table.clone(),
                sink.parts.clone(),
                sink.reject_parts.clone(),
                data_rows,
            ))
            .unwrap_or_default(),
        };
        self.meta.begin_load(src, name, &pending).await?;
        socle_core::failpoint::hit("extract-before-load");
        let replace = options.full_refresh || stream.write == Write::Replace;
        let txn = LoadOptions {
            txn: Some((app.clone(), seq)),
            keys_checked: true,
        };
        match df {
            Some(data) => {
                let data = self.conform_to_table(data, stream, replace).await?;
                let merge = stream.write == Write::Merge;
                let data = if merge {
                    let repeated = self.repeated_keys(&sink.parts, stream).await?;
                    last_per_key(data, &stream.primary_key, repeated)?
                } else {
                    drop_row_column(data)?
                };
                let mode = if replace {
                    WriteMode::Overwrite
                } else if merge {
                    WriteMode::Merge {
                        keys: stream.primary_key.clone(),
                    }
                } else {
                    WriteMode::Append
                };
                let loaded = self
                    .warehouse
                    .load_with(&stream.table, data, mode, &txn)
                    .await?;
                report.rows_inserted = loaded.rows_inserted;
                report.rows_updated = loaded.rows_updated;
                report.table_version = Some(loaded.version);
                report.new_columns = loaded.new_columns;
            }
            // Input was read and held no record (an empty file, an API's empty answer):
            // a replaced table becomes empty. When nothing was read at all (no new file
            // on an incremental run), the table keeps its rows.
            None if replace && sink.files_in > 0 => {
                if let Ok(existing) = self.warehouse.session().table(stream.table.as_str()).await {
                    let empty = existing.limit(0, Some(0)).map_err(df_err)?;
                    let loaded = self
                        .warehouse
                        .load_with(&stream.table, empty, WriteMode::Overwrite, &txn)
                        .await?;
                    report.table_version = Some(loaded.version);
                }
            }
            None => {}
        }
        socle_core::failpoint::hit("extract-after-load");
        if !sink.reject_parts.is_empty() {
            self.load_rejects(&rejected_table, &sink.reject_parts, &app, seq)
                .await?;
        }
        self.meta.confirm_load(src, name).await?;
        socle_core::failpoint::hit("extract-after-commit");
        Ok(())
    }

    /// The run's parts as one DataFrame over a unified schema.
    fn parts_frame(&self, parts: &[Part], stream: &StreamConfig) -> Result<DataFrame> {
        let schema = unify_all(
            parts.iter().filter_map(|p| p.schema.clone()),
            stream.on_type_conflict,
        )
        .map_err(|m| data_err(stream, m))?;
        let partitions = self
            .warehouse
            .session()
            .state()
            .config()
            .target_partitions();
        let table =
            crate::parts::parts_table(self.lake, parts, schema, partitions).map_err(df_err)?;
        self.warehouse
            .session()
            .read_table(Arc::new(table))
            .map_err(df_err)
    }

    /// Whether a primary key value repeats among the landed parts (NULL keys aside). The
    /// check runs in its own session whose memory pool ([`KEY_CHECK_MEMORY`]) spills to
    /// disk, so its memory stays flat however many keys the stream has.
    async fn repeated_keys(&self, parts: &[Part], stream: &StreamConfig) -> Result<bool> {
        use datafusion::execution::memory_pool::FairSpillPool;
        use datafusion::execution::runtime_env::RuntimeEnvBuilder;
        use datafusion::prelude::{SessionConfig, SessionContext};
        let schema = unify_all(
            parts.iter().filter_map(|p| p.schema.clone()),
            stream.on_type_conflict,
        )
        .map_err(|m| data_err(stream, m))?;
        let partitions = self
            .warehouse
            .session()
            .state()
            .config()
            .target_partitions();
        let table =
            crate::parts::parts_table(self.lake, parts, schema, partitions).map_err(df_err)?;
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(KEY_CHECK_MEMORY)))
            .build_arc()
            .map_err(df_err)?;
        let ctx = SessionContext::new_with_config_rt(
            SessionConfig::new().with_target_partitions(partitions),
            runtime,
        );
        let key_cols: Vec<_> = stream
            .primary_key
            .iter()
            .map(|k| col(Column::from_name(k)))
            .collect();
        let known = key_cols
            .iter()
            .map(|k| k.clone().is_not_null())
            .reduce(|a, b| a.and(b))
            .expect("merge streams have a key");
        let n = ctx
            .read_table(Arc::new(table))
            .and_then(|df| df.select(key_cols.clone()))
            .and_then(|df| df.filter(known))
            .and_then(|df| df.aggregate(key_cols, vec![count(lit(1)).alias("__socle_n")]))
            .and_then(|df| df.filter(col("__socle_n").gt(lit(1))))
            .map_err(df_err)?
            .count()
            .await
            .map_err(df_err)?;
        Ok(n > 0)
    }

    /// Rows whose primary key has a NULL are rejected (a merge cannot place them).
    async fn reject_null_keys(
        &self,
        data: DataFrame,
        stream: &StreamConfig,
        sink: &mut Sink,
    ) -> Result<DataFrame> {
        for k in &stream.primary_key {
            if data.schema().field_with_unqualified_name(k).is_err() {
                return Err(data_err(
                    stream,
                    format!(
                        "primary key column `{k}` is not in the data (columns: {})",
                        data.schema()
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .filter(|n| !n.starts_with("_socle"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        let any_null = stream
            .primary_key
            .iter()
            .map(|k| col(Column::from_name(k)).is_null())
            .reduce(|a, b| a.or(b))
            .expect("merge streams have a key");
        let bad = data.clone().filter(any_null.clone()).map_err(df_err)?;
        let n = bad.clone().count().await.map_err(df_err)? as u64;
        if n == 0 {
            return Ok(data);
        }
        if stream
            .max_rejected
            .exceeded(n + sink.rejected(), sink.rows())
        {
            return Err(data_err(
                stream,
                format!(
                    "{n} records have no value for the primary key ({}); nothing was loaded",
                    stream.primary_key.join(", ")
                ),
            ));
        }
        let rows = bad.collect().await.map_err(df_err)?;
        let mut w = datafusion::arrow::json::LineDelimitedWriter::new(Vec::new());
        for b in &rows {
            w.write(b).map_err(|e| ConnectError::Other(e.to_string()))?;
        }
        w.finish().map_err(|e| ConnectError::Other(e.to_string()))?;
        let text = String::from_utf8_lossy(&w.into_inner()).to_string();
        for line in text.lines() {
            let position = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get(ROW_COLUMN).and_then(|r| r.as_i64()))
                .map(|r| format!("record {} of run", r + 1))
                .unwrap_or_default();
            sink.reject(
                line.to_string(),
                format!(
                    "no value for the primary key ({})",
                    stream.primary_key.join(", ")
                ),
                position,
            );
        }
        data.filter(!any_null).map_err(df_err)
    }

    /// Casts the data to the table's column types, evolving the table where the data
    /// needs a wider type (BIGINT → DOUBLE, DATE → TIMESTAMP, anything → STRING under
    /// `on_type_conflict: string`).
    async fn conform_to_table(
        &self,
        data: DataFrame,
        stream: &StreamConfig,
        replace: bool,
    ) -> Result<DataFrame> {
        let existing: Option<SchemaRef> =
            match self.warehouse.session().table(stream.table.as_str()).await {
                Ok(t) if !replace => Some(Arc::new(t.schema().as_arrow().clone())),
                _ => None,
            };
        let mut exprs = Vec::new();
        let mut evolve: Vec<(String, DataType)> = Vec::new();
        for f in data.schema().fields() {
            let name = f.name();
            let c = col(Column::from_name(name));
            let target = match existing.as_ref().and_then(|s| s.field_with_name(name).ok()) {
                None => match f.data_type() {
                    DataType::Null => Some(DataType::Utf8),
                    _ => None,
                },
                Some(t) if t.data_type() == f.data_type() => None,
                Some(t) if f.data_type() == &DataType::Null => Some(t.data_type().clone()),
                Some(t) => {
                    let joined = join_types(t.data_type(), f.data_type(), stream.on_type_conflict)
                        .map_err(|e| {
                            data_err(stream, format!("column `{name}` of {}: {e}", stream.table))
                        })?;
                    if &joined != t.data_type() {
                        evolve.push((name.clone(), joined.clone()));
                    }
                    Some(joined)
                }
            };
            match target {
                Some(t) if &t != f.data_type() => exprs.push(cast(c, t).alias(name)),
                _ => exprs.push(c),
            }
        }
        if !evolve.is_empty() {
            self.evolve_table(stream, &evolve).await?;
        }
        data.select(exprs).map_err(df_err)
    }

    /// Rewrites the table with wider column types (one commit; the rows stay).
    async fn evolve_table(
        &self,
        stream: &StreamConfig,
        columns: &[(String, DataType)],
    ) -> Result<()> {
        let table = self
            .warehouse
            .session()
            .table(stream.table.as_str())
            .await
            .map_err(df_err)?;
        let exprs: Vec<_> = table
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let c = col(Column::from_name(f.name()));
                match columns.iter().find(|(n, _)| n == f.name()) {
                    Some((_, t)) => cast(c, t.clone()).alias(f.name()),
                    None => c,
                }
            })
            .collect();
        // Streamed: the overwrite reads the version it replaces.
        let df = table.select(exprs).map_err(df_err)?;
        self.warehouse
            .load(&stream.table, df, WriteMode::Overwrite)
            .await?;
        self.progress.note(&format!(
            "{}: widened {} to make room for the new data",
            stream.table,
            columns
                .iter()
                .map(|(n, t)| format!(
                    "`{n}` to {}",
                    Kind::of_type(t).map_or("?", |k| k.sql_name())
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(())
    }

    pub(crate) async fn load_rejects(
        &self,
        table: &str,
        parts: &[Part],
        app: &str,
        seq: i64,
    ) -> Result<()> {
        let schema = unify_all(
            parts.iter().filter_map(|p| p.schema.clone()),
            TypeConflict::String,
        )
        .map_err(ConnectError::Other)?;
        let schema = if schema.fields().is_empty() {
            crate::sink::reject_schema()
        } else {
            schema
        };
        let provider = crate::parts::parts_table(self.lake, parts, schema, 1).map_err(df_err)?;
        let df = self
            .warehouse
            .session()
            .read_table(Arc::new(provider))
            .map_err(df_err)?;
        let options = LoadOptions {
            txn: (seq > 0).then(|| (app.to_string(), seq)),
            keys_checked: false,
        };
        self.warehouse
            .load_with(table, df, WriteMode::Append, &options)
            .await?;
        Ok(())
    }
}

fn drop_row_column(df: DataFrame) -> Result<DataFrame> {
    df.drop_columns(&[ROW_COLUMN]).map_err(df_err)
}

/// Keeps the last record read of each key (a merge needs one row per key); `repeated`
/// says whether any key repeats (see [`Extraction::repeated_keys`]).
fn last_per_key(df: DataFrame, keys: &[String], repeated: bool) -> Result<DataFrame> {
    if !repeated {
        return drop_row_column(df);
    }
    let key_cols: Vec<_> = keys.iter().map(|k| col(Column::from_name(k))).collect();
    let order = vec![SortExpr::new(col(ROW_COLUMN), false, false)];
    let rn = row_number()
        .partition_by(key_cols)
        .order_by(order)
        .build()
        .map_err(df_err)?
        .alias("__socle_rn");
    let df = df
        .window(vec![rn])
        .map_err(df_err)?
        .filter(col("__socle_rn").eq(lit(1u64)))
        .map_err(df_err)?
        .drop_columns(&["__socle_rn"])
        .map_err(df_err)?;
    drop_row_column(df)
}

/// Memory of the repeated-key check before it spills to disk.
const KEY_CHECK_MEMORY: usize = 256 * 1024 * 1024;

fn df_err(e: datafusion::error::DataFusionError) -> ConnectError {
    ConnectError::Other(e.strip_backtrace())
}

fn data_err(stream: &StreamConfig, message: impl Into<String>) -> ConnectError {
    ConnectError::Data {
        source_name: stream.source.clone(),
        stream: stream.name.clone(),
        message: message.into(),
    }
}
