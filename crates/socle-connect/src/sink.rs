//! Where connectors put what they read: the [`Sink`] adds socle's metadata columns,
//! buffers records and lands them in the lake as immutable raw part files
//! (`raw/<source>/<stream>/dt=<date>/<run id>-<part>.<parquet|jsonl|avro>`), and keeps
//! rejected records (raw text, reason, location) for the `<table>__rejected` table.
//!
//! Memory stays bounded whatever the input size: a part is written as soon as the buffer
//! holds [`PART_ROWS`] rows or [`PART_BYTES`] bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray, new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use socle_lake::Lake;

use crate::config::{Landing, TypeConflict};
use crate::infer::{ColumnBuilder, Kind, declared_kind, excerpt, parse_json};

/// Rows buffered before a part is written.
pub const PART_ROWS: usize = 500_000;
/// Bytes (in memory) buffered before a part is written.
pub const PART_BYTES: usize = 96 * 1024 * 1024;
/// Raw text kept per rejected record.
const REJECT_TEXT_MAX: usize = 16 * 1024;

/// Metadata columns socle adds to every record.
pub const META_COLUMNS: &[&str] = &[
    "_socle_fetched_at",
    "_socle_run_id",
    "_socle_source",
    "_account",
    "_file",
];
/// Position of a record in its extraction run (raw files only; used to keep the last
/// version of a key when a merge batch repeats it).
pub const ROW_COLUMN: &str = "_socle_row";

/// A landed raw file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    /// Path relative to the lake root.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub format: String,
    /// The part's Arrow schema (known while the run that wrote it is alive).
    #[serde(skip)]
    pub schema: Option<SchemaRef>,
}

/// A record that could not be read.
#[derive(Debug, Clone)]
pub struct Reject {
    pub raw: String,
    pub reason: String,
    /// `file:line`, `url (page n)`, ...
    pub location: String,
}

/// Per-batch metadata values.
#[derive(Debug, Clone, Default)]
pub struct RowMeta {
    pub account: Option<String>,
    pub file: Option<String>,
}

/// Collects a stream's records and rejects during one extraction.
pub struct Sink {
    lake: Lake,
    landing: Landing,
    prefix: String,
    source: String,
    run_id: String,
    fetched_at: i64,
    policy: TypeConflict,
    declared: BTreeMap<String, Kind>,
    buffer: Vec<RecordBatch>,
    buffered_rows: usize,
    buffered_bytes: usize,
    next_row: i64,
    pub(crate) parts: Vec<Part>,
    pub(crate) rejects: Vec<Reject>,
    pub(crate) reject_parts: Vec<Part>,
    pub(crate) rejected: u64,
    /// Input bytes read (files, response bodies).
    pub bytes_in: u64,
    /// Input files (or pages) read.
    pub files_in: u64,
    progress: Option<Arc<dyn Fn(u64, u64) + Send + Sync>>,
}

impl Sink {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        lake: Lake,
        landing: Landing,
        prefix: String,
        source: String,
        run_id: String,
        policy: TypeConflict,
        declared: &BTreeMap<String, String>,
        progress: Option<Arc<dyn Fn(u64, u64) + Send + Sync>>,
    ) -> Self {
        Self {
            lake,
            landing,
            prefix,
            source,
            run_id,
            fetched_at: chrono::Utc::now().timestamp_micros(),
            policy,
            declared: declared
                .iter()
                .map(|(k, v)| (k.clone(), declared_kind(v)))
                .collect(),
            buffer: Vec::new(),
            buffered_rows: 0,
            buffered_bytes: 0,
            next_row: 0,
            parts: Vec::new(),
            rejects: Vec::new(),
            reject_parts: Vec::new(),
            rejected: 0,
            bytes_in: 0,
            files_in: 0,
            progress,
        }
    }

    /// Records read so far (loaded or to be loaded).
    pub fn rows(&self) -> u64 {
        self.next_row as u64
    }

    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Declared column kinds (`columns:`), which override inference.
    pub fn declared(&self) -> &BTreeMap<String, Kind> {
        &self.declared
    }

    fn tick(&self) {
        if let Some(p) = &self.progress {
            p(self.next_row as u64, self.bytes_in);
        }
    }

    /// Adds a batch of records (socle's metadata columns are appended here).
    pub async fn push(&mut self, batch: RecordBatch, meta: &RowMeta) -> crate::Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        // Connector columns first, in types the warehouse can store; then socle's.
        let mut fields: Vec<Field> = Vec::with_capacity(batch.num_columns() + 6);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns() + 6);
        for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
            if META_COLUMNS.contains(&f.name().as_str()) || f.name() == ROW_COLUMN {
                continue;
            }
            let c = match storable(f.data_type()) {
                Some(t) => cast(c, &t).map_err(|e| {
                    crate::ConnectError::Other(format!("column `{}`: {e}", f.name()))
                })?,
                None => c.clone(),
            };
            fields.push(Field::new(f.name(), c.data_type().clone(), true));
            columns.push(c);
        }
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")));
        fields.push(Field::new("_socle_fetched_at", ts, true));
        columns.push(Arc::new(
            TimestampMicrosecondArray::from(vec![self.fetched_at; n]).with_timezone("UTC"),
        ));
        fields.push(Field::new("_socle_run_id", DataType::Utf8, true));
        columns.push(Arc::new(StringArray::from(vec![self.run_id.as_str(); n])));
        fields.push(Field::new("_socle_source", DataType::Utf8, true));
        columns.push(Arc::new(StringArray::from(vec![self.source.as_str(); n])));
        for (name, value) in [("_account", &meta.account), ("_file", &meta.file)] {
            if let Some(v) = value {
                fields.push(Field::new(name, DataType::Utf8, true));
                columns.push(Arc::new(StringArray::from(vec![v.as_str(); n])));
            }
        }
        fields.push(Field::new(ROW_COLUMN, DataType::Int64, true));
        columns.push(Arc::new(Int64Array::from_iter_values(
            self.next_row..self.next_row + n as i64,
        )));
        self.next_row += n as i64;
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| crate::ConnectError::Other(format!("internal: {e}")))?;
        self.buffered_rows += n;
        self.buffered_bytes += batch.get_array_memory_size();
        self.buffer.push(batch);
        self.tick();
        if self.buffered_rows >= PART_ROWS || self.buffered_bytes >= PART_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    /// Adds JSON records: objects are flattened (`a: {b: 1}` becomes column `a__b`),
    /// arrays kept as JSON text, types inferred (see [`crate::infer`]). A record that is
    /// not an object, or whose value does not fit a declared type, is rejected.
    pub async fn push_json(
        &mut self,
        records: Vec<serde_json::Value>,
        meta: &RowMeta,
        location: &str,
    ) -> crate::Result<()> {
        let mut rows: Vec<serde_json::Map<String, serde_json::Value>> = Vec::new();
        for (i, r) in records.into_iter().enumerate() {
            match r {
                serde_json::Value::Object(m) => {
                    let mut flat = serde_json::Map::new();
                    flatten("", m, &mut flat);
                    rows.push(flat);
                }
                other => self.reject(
                    other.to_string(),
                    "a record must be a JSON object".into(),
                    format!("{location} (record {})", i + 1),
                ),
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        match json_batch(&rows, &self.declared, self.policy) {
            Ok((batch, bad)) => {
                for (i, reason) in bad {
                    self.reject(
                        serde_json::Value::Object(rows[i].clone()).to_string(),
                        reason,
                        format!("{location} (record {})", i + 1),
                    );
                }
                self.push(batch, meta).await
            }
            Err(message) => Err(crate::ConnectError::Other(format!("{location}: {message}"))),
        }
    }

    /// Quarantines a record with the reason and where it was.
    pub fn reject(&mut self, raw: String, reason: String, location: String) {
        self.rejected += 1;
        let (reason, location) = (
            socle_core::secrets::redact(&reason),
            socle_core::secrets::redact(&location),
        );
        let raw = if raw.len() > REJECT_TEXT_MAX {
            excerpt(&raw, REJECT_TEXT_MAX)
        } else {
            raw
        };
        self.rejects.push(Reject {
            raw,
            reason,
            location,
        });
    }

    /// Writes the buffered records as one part.
    pub(crate) async fn flush(&mut self) -> crate::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.buffer);
        self.buffered_rows = 0;
        self.buffered_bytes = 0;
        let schema = unify_all(batches.iter().map(|b| b.schema()), self.policy)
            .map_err(crate::ConnectError::Other)?;
        let batches = batches
            .iter()
            .map(|b| conform(b, &schema))
            .collect::<Result<Vec<_>, _>>()
            .map_err(crate::ConnectError::Other)?;
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let bytes = encode(self.landing, &schema, &batches)?;
        let part_schema = match self.landing {
            Landing::Avro => avro_schema(&schema),
            _ => schema.clone(),
        };
        let path = format!(
            "{}-{:05}.{}",
            self.prefix,
            self.parts.len() + 1,
            self.landing.extension()
        );
        let part = self
            .land(path, bytes, rows, self.landing, part_schema)
            .await?;
        self.parts.push(part);
        Ok(())
    }

    /// Writes one raw file to the lake (one put: atomic on every store).
    async fn land(
        &self,
        path: String,
        bytes: Vec<u8>,
        rows: usize,
        format: Landing,
        schema: SchemaRef,
    ) -> crate::Result<Part> {
        let size = bytes.len() as u64;
        self.lake.put(&path, bytes).await?;
        Ok(Part {
            path,
            rows: rows as u64,
            bytes: size,
            format: format.extension().into(),
            schema: Some(schema),
        })
    }

    /// Writes the rejected records kept in memory as a Parquet part.
    pub(crate) async fn flush_rejects(&mut self) -> crate::Result<()> {
        if self.rejects.is_empty() {
            return Ok(());
        }
        let rejects = std::mem::take(&mut self.rejects);
        let n = rejects.len();
        let schema = reject_schema();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    rejects.iter().map(|r| r.raw.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    rejects.iter().map(|r| r.reason.as_str()),
                )),
                Arc::new(StringArray::from_iter_values(
                    rejects.iter().map(|r| r.location.as_str()),
                )),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![self.fetched_at; n]).with_timezone("UTC"),
                ),
                Arc::new(StringArray::from(vec![self.run_id.as_str(); n])),
                Arc::new(StringArray::from(vec![self.source.as_str(); n])),
            ],
        )
        .map_err(|e| crate::ConnectError::Other(format!("internal: {e}")))?;
        let bytes = encode(Landing::Parquet, &schema, &[batch])?;
        let path = format!(
            "{}-rejected-{:05}.parquet",
            self.prefix,
            self.reject_parts.len() + 1
        );
        let part = self.land(path, bytes, n, Landing::Parquet, schema).await?;
        self.reject_parts.push(part);
        Ok(())
    }

    /// Keeps memory bounded when a source rejects a lot.
    pub(crate) async fn maybe_flush_rejects(&mut self) -> crate::Result<()> {
        if self.rejects.len() >= 50_000 {
            self.flush_rejects().await?;
        }
        Ok(())
    }
}

/// The type a column is stored with when the warehouse (Delta Lake) cannot store its own:
/// timestamps become microseconds in UTC (the same instants; naive ones are taken as UTC),
/// unsigned and small types widen, times and durations become text.
fn storable(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC" => None,
        DataType::Timestamp(_, _) => Some(crate::infer::timestamp_type()),
        DataType::Date64 => Some(DataType::Date32),
        DataType::UInt8 => Some(DataType::Int16),
        DataType::UInt16 => Some(DataType::Int32),
        DataType::UInt32 => Some(DataType::Int64),
        DataType::UInt64 => Some(DataType::Decimal128(20, 0)),
        DataType::Float16 => Some(DataType::Float32),
        DataType::LargeUtf8 | DataType::Utf8View => Some(DataType::Utf8),
        DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            Some(DataType::Binary)
        }
        DataType::Time32(_)
        | DataType::Time64(_)
        | DataType::Duration(_)
        | DataType::Interval(_) => Some(DataType::Utf8),
        _ => None,
    }
}

/// The columns of `<table>__rejected`.
pub(crate) fn reject_schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")));
    Arc::new(Schema::new(vec![
        Field::new("raw", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("location", DataType::Utf8, true),
        Field::new("_socle_fetched_at", ts, true),
        Field::new("_socle_run_id", DataType::Utf8, true),
        Field::new("_socle_source", DataType::Utf8, true),
    ]))
}

/// `a: {b: {c: 1}}` becomes `a__b__c: 1`; arrays and scalars stay.
fn flatten(
    prefix: &str,
    m: serde_json::Map<String, serde_json::Value>,
    out: &mut serde_json::Map<String, serde_json::Value>,
) {
    for (k, v) in m {
        let key = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}__{k}")
        };
        match v {
            serde_json::Value::Object(inner) if !inner.is_empty() => flatten(&key, inner, out),
            serde_json::Value::Object(_) => {
                out.insert(key, serde_json::Value::Null);
            }
            other => {
                out.insert(key, other);
            }
        }
    }
}

/// Builds one batch from flattened JSON records. Returns the rows rejected for not
/// fitting a declared type (they are left out of the batch).
#[allow(clippy::type_complexity)]
pub(crate) fn json_batch(
    rows: &[serde_json::Map<String, serde_json::Value>],
    declared: &BTreeMap<String, Kind>,
    policy: TypeConflict,
) -> Result<(RecordBatch, Vec<(usize, String)>), String> {
    // Columns in order of first appearance, with their joined kinds.
    let mut order: Vec<String> = Vec::new();
    let mut kinds: BTreeMap<String, Kind> = BTreeMap::new();
    for r in rows {
        for (k, v) in r {
            let kind = crate::infer::classify_json(v);
            match kinds.get_mut(k) {
                Some(have) => match have.join(kind) {
                    Some(j) => *have = j,
                    None if policy == TypeConflict::String || declared.contains_key(k) => {
                        *have = Kind::String
                    }
                    None => {
                        return Err(format!(
                            "field `{k}` is {} in one record and {} in another (on_type_conflict: fail)",
                            have.sql_name(),
                            kind.sql_name()
                        ));
                    }
                },
                None => {
                    order.push(k.clone());
                    kinds.insert(k.clone(), kind);
                }
            }
        }
    }
    for (k, d) in declared {
        if let Some(have) = kinds.get_mut(k) {
            *have = *d;
        }
    }
    let mut bad: Vec<(usize, String)> = Vec::new();
    let mut keep = vec![true; rows.len()];
    for (i, r) in rows.iter().enumerate() {
        for (k, v) in r {
            if let Err(e) = parse_json(kinds[k], v) {
                bad.push((i, format!("field `{k}`: {e}")));
                keep[i] = false;
                break;
            }
        }
    }
    let n = keep.iter().filter(|k| **k).count();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for name in &order {
        let kind = kinds[name];
        if kind == Kind::Null {
            fields.push(Field::new(name, DataType::Null, true));
            columns.push(new_null_array(&DataType::Null, n));
            continue;
        }
        let mut b = ColumnBuilder::new(kind, n);
        for (i, r) in rows.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            match r.get(name) {
                None => b.append_null(),
                Some(v) => b.append(parse_json(kind, v).expect("checked above")),
            }
        }
        fields.push(Field::new(name, kind.data_type(), true));
        columns.push(b.finish());
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = if columns.is_empty() {
        RecordBatch::try_new_with_options(
            schema,
            columns,
            &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(n)),
        )
    } else {
        RecordBatch::try_new(schema, columns)
    }
    .map_err(|e| e.to_string())?;
    Ok((batch, bad))
}

/// The schema holding every column of `schemas`, with types joined.
pub(crate) fn unify_all(
    mut schemas: impl Iterator<Item = SchemaRef>,
    policy: TypeConflict,
) -> Result<SchemaRef, String> {
    let Some(first) = schemas.next() else {
        return Ok(Arc::new(Schema::empty()));
    };
    let mut fields: Vec<Field> = first.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut same = true;
    for s in schemas {
        if s.as_ref() == first.as_ref() && same {
            continue;
        }
        same = false;
        for f in s.fields() {
            match fields.iter_mut().find(|x| x.name() == f.name()) {
                None => fields.push(f.as_ref().clone().with_nullable(true)),
                Some(have) if have.data_type() == f.data_type() => {}
                Some(have) => {
                    let joined = join_types(have.data_type(), f.data_type(), policy)
                        .map_err(|e| format!("column `{}`: {e}", f.name()))?;
                    *have = Field::new(f.name(), joined, true);
                }
            }
        }
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// The type holding values of both `a` and `b`.
pub(crate) fn join_types(
    a: &DataType,
    b: &DataType,
    policy: TypeConflict,
) -> Result<DataType, String> {
    if a == b {
        return Ok(a.clone());
    }
    match (Kind::of_type(a), Kind::of_type(b)) {
        (Some(Kind::Null), _) => Ok(b.clone()),
        (_, Some(Kind::Null)) => Ok(a.clone()),
        (Some(x), Some(y)) => match x.join(y) {
            Some(j) if Kind::of_type(a) == Some(j) => Ok(a.clone()),
            Some(j) if Kind::of_type(b) == Some(j) => Ok(b.clone()),
            Some(j) => Ok(j.data_type()),
            None if policy == TypeConflict::String => Ok(DataType::Utf8),
            None => Err(format!(
                "{} in some records and {} in others (on_type_conflict: fail)",
                x.sql_name(),
                y.sql_name()
            )),
        },
        _ => Err(format!("{a} in some records and {b} in others")),
    }
}

/// Casts `batch` to `schema` (missing columns are NULL).
pub(crate) fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    if batch.schema().as_ref() == schema.as_ref() {
        return Ok(batch.clone());
    }
    let mut columns = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let col = match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => c.clone(),
            Some(c) => cast(c, f.data_type()).map_err(|e| {
                format!(
                    "column `{}`: cannot convert {} to {}: {e}",
                    f.name(),
                    c.data_type(),
                    f.data_type()
                )
            })?,
            None => new_null_array(f.data_type(), batch.num_rows()),
        };
        columns.push(col);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

/// Encodes batches in a landing format.
pub(crate) fn encode(
    landing: Landing,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> crate::Result<Vec<u8>> {
    let err = |e: String| crate::ConnectError::Other(format!("cannot encode raw file: {e}"));
    match landing {
        Landing::Parquet => {
            let props = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_max_row_group_row_count(Some(128 * 1024))
                .build();
            let mut w = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props))
                .map_err(|e| err(e.to_string()))?;
            for b in batches {
                w.write(b).map_err(|e| err(e.to_string()))?;
            }
            w.into_inner().map_err(|e| err(e.to_string()))
        }
        Landing::Jsonl => {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(Vec::new());
            for b in batches {
                w.write(b).map_err(|e| err(e.to_string()))?;
            }
            w.finish().map_err(|e| err(e.to_string()))?;
            Ok(w.into_inner())
        }
        Landing::Avro => {
            let schema = avro_schema(schema);
            let mut w = arrow_avro::writer::AvroWriter::new(Vec::new(), schema.as_ref().clone())
                .map_err(|e| err(e.to_string()))?;
            for b in batches {
                let b = conform(b, &schema).map_err(err)?;
                w.write(&b).map_err(|e| err(e.to_string()))?;
            }
            w.finish().map_err(|e| err(e.to_string()))?;
            Ok(w.into_inner())
        }
    }
}

/// Avro has no type for all-NULL columns of unknown type: they are stored as text.
fn avro_schema(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Null => Field::new(f.name(), DataType::Utf8, true),
                _ => f.as_ref().clone(),
            })
            .collect::<Vec<_>>(),
    ))
}

#[cfg(test)]
#[path = "sink_props.rs"]
mod props;
