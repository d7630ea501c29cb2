//! Reading query results into Arrow batches, with the type mapping of each database:
//!
//! | PostgreSQL | MySQL / MariaDB | SQLite (value's storage class) | warehouse |
//! |---|---|---|---|
//! | `boolean` | `tinyint(1)` / `boolean` | column declared `BOOLEAN` | BOOLEAN |
//! | `smallint`, `integer`, `bigint` | `tinyint` … `bigint` (signed and unsigned ≤ 2⁶³−1) | `INTEGER` | BIGINT |
//! | `real`, `double precision`, `numeric` | `float`, `double`, `decimal` | `REAL` | DOUBLE |
//! | `date` | `date` | text, inferred | DATE |
//! | `timestamp`, `timestamptz` | `datetime`, `timestamp` | text, inferred | TIMESTAMP (UTC) |
//! | `text`, `varchar`, `char`, `name`, `uuid`, `json`, `jsonb`, `time` | `char`, `varchar`, `*text`, `enum`, `set`, `json`, `time`, `*blob`/`binary` (UTF-8 as text, else hex) | `TEXT` (`BLOB` as hex) | STRING |
//!
//! `numeric`/`decimal` become DOUBLE (about 15 significant digits); cast them to text in a
//! `query:` to keep every digit. A `timestamp` without time zone is read as UTC. Other
//! types (`bytea`, arrays, intervals, `bit`…) fail the stream naming the column:
//! cast them in a `query:`.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{Field, Schema};
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::{Column, Connection, Row, TypeInfo, ValueRef};

use crate::infer::{ColumnBuilder, Kind, Parsed, parse_timestamp};
use crate::{RowMeta, StreamContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

impl Dialect {
    fn quote(&self, name: &str) -> String {
        match self {
            Dialect::MySql => format!("`{}`", name.replace('`', "``")),
            _ => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// `schema.table` quoted part by part.
    pub fn quote_path(&self, path: &str) -> String {
        path.split('.')
            .map(|p| self.quote(p))
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// A cursor value: the highest value of the cursor column read so far.
#[derive(Debug, Clone, PartialEq)]
pub enum CursorValue {
    Int(i64),
    Float(f64),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 UTC.
    Timestamp(i64),
    Text(String),
}

impl CursorValue {
    pub fn from_state(v: &Value) -> Option<Self> {
        let value = v.get("value")?;
        Some(match v.get("type")?.as_str()? {
            "int" => CursorValue::Int(value.as_i64()?),
            "float" => CursorValue::Float(value.as_f64()?),
            "date" => CursorValue::Date(crate::infer::parse_date(value.as_str()?)?),
            "timestamp" => CursorValue::Timestamp(parse_timestamp(value.as_str()?)?),
            _ => CursorValue::Text(value.as_str()?.to_string()),
        })
    }

    pub fn to_state(&self) -> Value {
        let (t, v) = match self {
            CursorValue::Int(i) => ("int", Value::from(*i)),
            CursorValue::Float(f) => ("float", Value::from(*f)),
            CursorValue::Date(d) => ("date", Value::from(date_text(*d))),
            CursorValue::Timestamp(t) => ("timestamp", Value::from(ts_text(*t, 'T') + "Z")),
            CursorValue::Text(s) => ("text", Value::from(s.as_str())),
        };
        serde_json::json!({ "type": t, "value": v })
    }

    /// The value `lookback` earlier (timestamps and dates; text that reads as a timestamp
    /// keeps its layout).
    pub fn minus(&self, lookback: Option<std::time::Duration>) -> Self {
        let Some(l) = lookback else {
            return self.clone();
        };
        let micros = l.as_micros() as i64;
        match self {
            CursorValue::Timestamp(t) => CursorValue::Timestamp(t - micros),
            CursorValue::Date(d) => CursorValue::Date(
                d - (micros + 86_400_000_000 - 1).div_euclid(86_400_000_000) as i32,
            ),
            CursorValue::Text(s) => match parse_timestamp(s) {
                Some(t) => {
                    let sep = if s.contains('T') { 'T' } else { ' ' };
                    let zulu = if s.ends_with('Z') { "Z" } else { "" };
                    CursorValue::Text(format!("{}{zulu}", ts_text(t - micros, sep)))
                }
                None => self.clone(),
            },
            other => other.clone(),
        }
    }

    /// The value as an SQL literal of `dialect`.
    pub fn literal(&self, dialect: Dialect) -> String {
        let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
        match self {
            CursorValue::Int(i) => i.to_string(),
            CursorValue::Float(f) => format!("{f:?}"),
            CursorValue::Date(d) => quoted(&date_text(*d)),
            CursorValue::Timestamp(t) => match dialect {
                Dialect::Postgres => quoted(&(ts_text(*t, 'T') + "Z")),
                _ => quoted(&ts_text(*t, ' ')),
            },
            CursorValue::Text(s) => quoted(s),
        }
    }

    pub fn greater_than(&self, other: &Self) -> bool {
        use CursorValue::*;
        match (self, other) {
            (Int(a), Int(b)) => a > b,
            (Float(a), Float(b)) => a > b,
            (Int(a), Float(b)) => (*a as f64) > *b,
            (Float(a), Int(b)) => *a > (*b as f64),
            (Date(a), Date(b)) => a > b,
            (Timestamp(a), Timestamp(b)) => a > b,
            (Date(a), Timestamp(b)) => (*a as i64) * 86_400_000_000 > *b,
            (Timestamp(a), Date(b)) => *a > (*b as i64) * 86_400_000_000,
            (Text(a), Text(b)) => a > b,
            // A typed value read from the database replaces a text `initial`.
            (_, Text(_)) => true,
            _ => false,
        }
    }

    fn of(p: &Parsed<'_>) -> Option<Self> {
        Some(match p {
            Parsed::Int(i) => CursorValue::Int(*i),
            Parsed::Float(f) => CursorValue::Float(*f),
            Parsed::Date(d) => CursorValue::Date(*d),
            Parsed::Timestamp(t) => CursorValue::Timestamp(*t),
            Parsed::Str(s) => CursorValue::Text(s.to_string()),
            Parsed::Owned(s) => CursorValue::Text(s.clone()),
            Parsed::Bool(_) | Parsed::Null => return None,
        })
    }
}

fn date_text(days: i32) -> String {
    (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
        + chrono::Duration::days(days as i64))
    .format("%Y-%m-%d")
    .to_string()
}

fn ts_text(micros: i64, sep: char) -> String {
    let t = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
    let frac = if micros % 1_000_000 != 0 { "%.6f" } else { "" };
    t.format(&format!("%Y-%m-%d{sep}%H:%M:%S{frac}"))
        .to_string()
}

/// How a column's values are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dec {
    Bool,
    I16,
    I32,
    I64,
    U64,
    F32,
    F64,
    Decimal,
    Date,
    NaiveTs,
    Ts,
    Time,
    Text,
    Uuid,
    Json,
    /// Text when it is UTF-8 (MariaDB's JSON, binary-collated text), else hex.
    Bytes,
}

fn plan(dialect: Dialect, column: &str, type_name: &str) -> Result<(Kind, Dec), String> {
    let t = type_name.to_ascii_uppercase();
    let found = match dialect {
        Dialect::Postgres => match t.as_str() {
            "BOOL" => Some((Kind::Bool, Dec::Bool)),
            "INT2" => Some((Kind::Int, Dec::I16)),
            "INT4" => Some((Kind::Int, Dec::I32)),
            "INT8" => Some((Kind::Int, Dec::I64)),
            "FLOAT4" => Some((Kind::Float, Dec::F32)),
            "FLOAT8" => Some((Kind::Float, Dec::F64)),
            "NUMERIC" => Some((Kind::Float, Dec::Decimal)),
            "DATE" => Some((Kind::Date, Dec::Date)),
            "TIMESTAMP" => Some((Kind::Timestamp, Dec::NaiveTs)),
            "TIMESTAMPTZ" => Some((Kind::Timestamp, Dec::Ts)),
            "TIME" => Some((Kind::String, Dec::Time)),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" => {
                Some((Kind::String, Dec::Text))
            }
            "UUID" => Some((Kind::String, Dec::Uuid)),
            "JSON" | "JSONB" => Some((Kind::String, Dec::Json)),
            _ => None,
        },
        Dialect::MySql => match t.as_str() {
            "BOOLEAN" => Some((Kind::Bool, Dec::Bool)),
            "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" => Some((Kind::Int, Dec::I64)),
            "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED"
            | "BIGINT UNSIGNED" => Some((Kind::Int, Dec::U64)),
            "FLOAT" => Some((Kind::Float, Dec::F32)),
            "DOUBLE" => Some((Kind::Float, Dec::F64)),
            "DECIMAL" => Some((Kind::Float, Dec::Decimal)),
            "DATE" => Some((Kind::Date, Dec::Date)),
            "DATETIME" => Some((Kind::Timestamp, Dec::NaiveTs)),
            "TIMESTAMP" => Some((Kind::Timestamp, Dec::Ts)),
            "TIME" => Some((Kind::String, Dec::Time)),
            "CHAR" | "VARCHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM"
            | "SET" => Some((Kind::String, Dec::Text)),
            "JSON" => Some((Kind::String, Dec::Json)),
            "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" | "BINARY" | "VARBINARY" => {
                Some((Kind::String, Dec::Bytes))
            }
            _ => None,
        },
        Dialect::Sqlite => None,
    };
    found.ok_or_else(|| {
        format!(
            "column `{column}` has type {type_name}, which socle does not read; cast it in a `query:` (to text, a number or a timestamp)"
        )
    })
}

/// Micros since the epoch of a naive (UTC) date-time.
fn naive_micros(t: chrono::NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

fn date_days(d: chrono::NaiveDate) -> i32 {
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

fn mysql_u64(row: &sqlx::mysql::MySqlRow, i: usize) -> Result<Option<u64>, sqlx::Error> {
    row.try_get::<Option<u64>, _>(i)
}

/// PostgreSQL has no unsigned integers (the plan never asks for one).
fn no_u64(_: &sqlx::postgres::PgRow, _: usize) -> Result<Option<u64>, sqlx::Error> {
    Ok(None)
}

macro_rules! decode_value {
    ($row:expr, $i:expr, $dec:expr, $u64:path) => {{
        use sqlx::types::chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
        let row = $row;
        let i = $i;
        let r: Result<Parsed<'static>, sqlx::Error> = (|| {
            Ok(match $dec {
                Dec::Bool => row.try_get::<Option<bool>, _>(i)?.map(Parsed::Bool),
                Dec::I16 => row
                    .try_get::<Option<i16>, _>(i)?
                    .map(|v| Parsed::Int(v as i64)),
                Dec::I32 => row
                    .try_get::<Option<i32>, _>(i)?
                    .map(|v| Parsed::Int(v as i64)),
                Dec::I64 => row.try_get::<Option<i64>, _>(i)?.map(Parsed::Int),
                Dec::U64 => match $u64(row, i)? {
                    Some(v) => Some(Parsed::Int(i64::try_from(v).map_err(|_| {
                        sqlx::Error::Decode(format!("{v} does not fit a BIGINT").into())
                    })?)),
                    None => None,
                },
                Dec::F32 => row
                    .try_get::<Option<f32>, _>(i)?
                    .map(|v| Parsed::Float(v as f64)),
                Dec::F64 => row.try_get::<Option<f64>, _>(i)?.map(Parsed::Float),
                Dec::Decimal => row
                    .try_get::<Option<sqlx::types::Decimal>, _>(i)?
                    .map(|v| Parsed::Float(v.to_string().parse().unwrap_or(f64::NAN))),
                Dec::Date => row
                    .try_get::<Option<NaiveDate>, _>(i)?
                    .map(|d| Parsed::Date(date_days(d))),
                Dec::NaiveTs => row
                    .try_get::<Option<NaiveDateTime>, _>(i)?
                    .map(|t| Parsed::Timestamp(naive_micros(t))),
                Dec::Ts => row
                    .try_get::<Option<DateTime<Utc>>, _>(i)?
                    .map(|t| Parsed::Timestamp(t.timestamp_micros())),
                Dec::Time => row
                    .try_get::<Option<NaiveTime>, _>(i)?
                    .map(|t| Parsed::Owned(t.to_string())),
                Dec::Text => row.try_get::<Option<String>, _>(i)?.map(Parsed::Owned),
                Dec::Uuid => row
                    .try_get::<Option<sqlx::types::Uuid>, _>(i)?
                    .map(|u| Parsed::Owned(u.to_string())),
                Dec::Json => row
                    .try_get::<Option<sqlx::types::JsonValue>, _>(i)?
                    .map(|j| Parsed::Owned(j.to_string())),
                Dec::Bytes => row.try_get::<Option<Vec<u8>>, _>(i)?.map(|b| {
                    Parsed::Owned(String::from_utf8(b).unwrap_or_else(|e| {
                        e.as_bytes().iter().map(|x| format!("{x:02x}")).collect()
                    }))
                }),
            }
            .unwrap_or(Parsed::Null))
        })();
        r
    }};
}

/// Columns of a result and their builders.
struct Batch {
    names: Vec<String>,
    decs: Vec<Dec>,
    builders: Vec<ColumnBuilder>,
    rows: usize,
}

impl Batch {
    fn finish(&mut self) -> Result<RecordBatch, String> {
        let columns: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(ColumnBuilder::finish)
            .collect();
        let fields: Vec<Field> = self
            .names
            .iter()
            .zip(&columns)
            .map(|(n, c)| Field::new(n, c.data_type().clone(), true))
            .collect();
        self.rows = 0;
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
    }
}

macro_rules! read_typed {
    ($conn:ty, $u64:path, $dialect:expr, $url:expr, $sql:expr, $chunk:expr, $cursor:expr, $ctx:expr) => {{
        let ctx = $ctx;
        let mut conn = <$conn>::connect($url)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let mut highest: Option<CursorValue> = None;
        {
            let mut rows = sqlx::query($sql).fetch(&mut conn);
            let mut batch: Option<Batch> = None;
            let mut cursor_at: Option<usize> = None;
            let meta = RowMeta::default();
            while let Some(row) = rows
                .try_next()
                .await
                .map_err(|e| format!("query failed: {e}"))?
            {
                let b = match &mut batch {
                    Some(b) => b,
                    None => {
                        let mut names = Vec::new();
                        let mut decs = Vec::new();
                        let mut builders = Vec::new();
                        for c in row.columns() {
                            let (kind, dec) = plan($dialect, c.name(), c.type_info().name())?;
                            if Some(c.name()) == $cursor {
                                cursor_at = Some(names.len());
                            }
                            names.push(c.name().to_string());
                            decs.push(dec);
                            builders.push(ColumnBuilder::new(kind, $chunk.min(65_536)));
                        }
                        if let Some(c) = $cursor
                            && cursor_at.is_none()
                        {
                            return Err(format!("the result has no cursor column `{c}`"));
                        }
                        batch.insert(Batch {
                            names,
                            decs,
                            builders,
                            rows: 0,
                        })
                    }
                };
                for i in 0..b.decs.len() {
                    let v = decode_value!(&row, i, b.decs[i], $u64)
                        .map_err(|e| format!("column `{}`: {e}", b.names[i]))?;
                    if Some(i) == cursor_at
                        && let Some(c) = CursorValue::of(&v)
                        && highest.as_ref().is_none_or(|h| c.greater_than(h))
                    {
                        highest = Some(c);
                    }
                    b.builders[i].append(v);
                }
                b.rows += 1;
                if b.rows >= $chunk {
                    let rb = b.finish()?;
                    ctx.sink.push(rb, &meta).await.map_err(|e| e.to_string())?;
                }
                if ctx.cancelled() {
                    return Err("cancelled".into());
                }
            }
            if let Some(b) = &mut batch
                && b.rows > 0
            {
                let rb = b.finish()?;
                ctx.sink.push(rb, &meta).await.map_err(|e| e.to_string())?;
            }
        }
        let _ = conn.close().await;
        Ok(highest)
    }};
}

/// Runs `sql` and pushes its rows to the sink in batches of `chunk` rows; returns the
/// highest value of the `cursor` column.
pub async fn read(
    dialect: Dialect,
    url: &str,
    sql: &str,
    chunk: usize,
    cursor: Option<&str>,
    ctx: &mut StreamContext<'_>,
) -> Result<Option<CursorValue>, String> {
    match dialect {
        Dialect::Postgres => read_typed!(
            sqlx::PgConnection,
            no_u64,
            dialect,
            url,
            sql,
            chunk,
            cursor,
            ctx
        ),
        Dialect::MySql => read_typed!(
            sqlx::MySqlConnection,
            mysql_u64,
            dialect,
            url,
            sql,
            chunk,
            cursor,
            ctx
        ),
        Dialect::Sqlite => read_sqlite(url, sql, chunk, cursor, ctx).await,
    }
}

/// SQLite types values, not columns: each value is read by its storage class and the
/// records go through JSON inference (dates and timestamps stored as text are found).
async fn read_sqlite(
    url: &str,
    sql: &str,
    chunk: usize,
    cursor: Option<&str>,
    ctx: &mut StreamContext<'_>,
) -> Result<Option<CursorValue>, String> {
    let mut conn = sqlx::SqliteConnection::connect(url)
        .await
        .map_err(|e| format!("cannot open: {e}"))?;
    let mut highest: Option<CursorValue> = None;
    {
        let mut rows = sqlx::query(sql).fetch(&mut conn);
        let mut records = Vec::with_capacity(chunk.min(65_536));
        let meta = RowMeta::default();
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(|e| format!("query failed: {e}"))?
        {
            let mut record = serde_json::Map::new();
            for (i, c) in row.columns().iter().enumerate() {
                let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
                let declared = c.type_info().name().to_ascii_uppercase();
                let v = if raw.is_null() {
                    Value::Null
                } else {
                    let storage = raw.type_info().name().to_ascii_uppercase();
                    match storage.as_str() {
                        "INTEGER" | "INT" | "BOOLEAN" if declared == "BOOLEAN" => {
                            Value::Bool(row.try_get::<i64, _>(i).map_err(|e| e.to_string())? != 0)
                        }
                        "INTEGER" | "INT" | "BOOLEAN" => {
                            Value::from(row.try_get::<i64, _>(i).map_err(|e| e.to_string())?)
                        }
                        "REAL" | "NUMERIC" => {
                            Value::from(row.try_get::<f64, _>(i).map_err(|e| e.to_string())?)
                        }
                        "BLOB" => {
                            let b: Vec<u8> = row.try_get(i).map_err(|e| e.to_string())?;
                            Value::String(b.iter().map(|x| format!("{x:02x}")).collect())
                        }
                        _ => Value::String(row.try_get::<String, _>(i).map_err(|e| e.to_string())?),
                    }
                };
                if Some(c.name()) == cursor {
                    let cv = match &v {
                        Value::Number(n) if n.is_i64() => n.as_i64().map(CursorValue::Int),
                        Value::Number(n) => n.as_f64().map(CursorValue::Float),
                        Value::String(s) => Some(CursorValue::Text(s.clone())),
                        _ => None,
                    };
                    if let Some(cv) = cv
                        && highest.as_ref().is_none_or(|h| cv.greater_than(h))
                    {
                        highest = Some(cv);
                    }
                }
                record.insert(c.name().to_string(), v);
            }
            records.push(Value::Object(record));
            if records.len() >= chunk {
                ctx.sink
                    .push_json(std::mem::take(&mut records), &meta, "query")
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        if !records.is_empty() {
            ctx.sink
                .push_json(records, &meta, "query")
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let _ = conn.close().await;
    Ok(highest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_values_round_trip_and_look_back() {
        let t = CursorValue::Timestamp(parse_timestamp("2024-06-01T10:00:00Z").unwrap());
        assert_eq!(CursorValue::from_state(&t.to_state()), Some(t.clone()));
        let back = t.minus(Some(std::time::Duration::from_secs(3600)));
        assert_eq!(back.literal(Dialect::Postgres), "'2024-06-01T09:00:00Z'");
        assert_eq!(back.literal(Dialect::MySql), "'2024-06-01 09:00:00'");
        let text = CursorValue::Text("2024-06-01 10:00:00".into());
        assert_eq!(
            text.minus(Some(std::time::Duration::from_secs(600))),
            CursorValue::Text("2024-06-01 09:50:00".into())
        );
        assert_eq!(
            CursorValue::Text("o'clock".into()).literal(Dialect::Sqlite),
            "'o''clock'"
        );
        let d = CursorValue::Date(19875);
        assert_eq!(
            d.minus(Some(std::time::Duration::from_secs(3600))),
            CursorValue::Date(19874)
        );
    }
}
