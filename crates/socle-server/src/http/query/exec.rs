//! Running one query request against a warehouse and rendering its answer (JSON or CSV):
//! the same code whether it runs in the server process or in the query process
//! ([`super::engine`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socle_warehouse::{Outcome, Warehouse, WarehouseError};

/// A query to run, as the handler checked it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub sql: String,
    /// The caller may write (editor or admin); otherwise one read-only query.
    pub write: bool,
    /// Most rows to return.
    pub limit: usize,
    /// How long it may run, in milliseconds.
    pub timeout_ms: u64,
    /// Answer as CSV instead of JSON.
    pub csv: bool,
}

/// The answer: an HTTP status and a body: on 200 the JSON (or CSV when asked) answer,
/// otherwise the error message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reply {
    pub status: u16,
    /// The body is CSV.
    pub csv: bool,
    /// A statement that writes was run (the catalog changed, even if a later one failed).
    pub wrote: bool,
    #[serde(skip)]
    pub body: Vec<u8>,
}

impl Reply {
    fn error(status: u16, message: impl std::fmt::Display, wrote: bool) -> Self {
        Self {
            status,
            csv: false,
            wrote,
            body: message.to_string().into_bytes(),
        }
    }
}

/// A failure with its status.
struct Failed(u16, String);

fn sql_error(e: WarehouseError) -> Failed {
    match e {
        WarehouseError::Internal(m) => Failed(500, m),
        // Refused by the server's SQL policy (files, COPY, SET...): forbidden, not malformed.
        e @ WarehouseError::NotAllowed(_) => Failed(403, e.to_string()),
        other => Failed(400, other.to_string()),
    }
}

fn internal(e: impl std::fmt::Display) -> Failed {
    Failed(500, e.to_string())
}

/// Runs `req` within its timeout and renders the answer.
pub async fn execute(wh: &Warehouse, req: &Request) -> Reply {
    // Statements that write change the catalog, even when a later one fails or times out.
    let writes = if req.write {
        match wh.parse(&req.sql) {
            Ok(parsed) => parsed
                .iter()
                .any(|p| !socle_warehouse::read_only::is_query(&p.statement)),
            Err(e) => {
                let Failed(status, m) = sql_error(e);
                return Reply::error(status, m, false);
            }
        }
    } else {
        false
    };
    let timeout = Duration::from_millis(req.timeout_ms);
    let started = Instant::now();
    let work = async {
        if req.write {
            run_any(wh, &req.sql, req.limit).await
        } else {
            let df = wh.read_query(&req.sql).await.map_err(sql_error)?;
            collect(df, req.limit)
                .await
                .map(|(s, b, t)| (Some(s), b, t, None))
        }
    };
    let (schema, batches, truncated, done) = match tokio::time::timeout(timeout, work).await {
        Err(_) => {
            return Reply::error(
                408,
                format!(
                    "the query ran longer than {:.0} s and was stopped",
                    timeout.as_secs_f64()
                ),
                writes,
            );
        }
        Ok(Err(Failed(status, m))) => return Reply::error(status, m, writes),
        Ok(Ok(answer)) => answer,
    };
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let rendered = if req.csv {
        to_csv(schema.as_deref(), &batches).map(String::into_bytes)
    } else {
        to_json(schema.as_deref(), &batches).map(|(columns, rows)| {
            json!({
                "columns": columns,
                "rows": rows,
                "row_count": rows.len(),
                "truncated": truncated,
                "elapsed_ms": elapsed_ms,
                "message": done,
            })
            .to_string()
            .into_bytes()
        })
    };
    match rendered {
        Ok(body) => Reply {
            status: 200,
            csv: req.csv,
            wrote: writes,
            body,
        },
        Err(Failed(status, m)) => Reply::error(status, m, writes),
    }
}

/// Runs every statement (writes committed one by one); the last query's rows come back.
#[allow(clippy::type_complexity)]
async fn run_any(
    wh: &Warehouse,
    sql: &str,
    limit: usize,
) -> Result<(Option<SchemaRef>, Vec<RecordBatch>, bool, Option<String>), Failed> {
    let mut last = (None, Vec::new(), false, None);
    for p in wh.parse(sql).map_err(sql_error)? {
        last = match wh.run(p).await.map_err(sql_error)? {
            Outcome::Query(df) => {
                let (s, b, t) = collect(df, limit).await?;
                (Some(s), b, t, None)
            }
            Outcome::Done(m) => (None, Vec::new(), false, Some(m)),
        };
    }
    Ok(last)
}

/// The first `limit` rows, and whether there were more.
async fn collect(
    df: datafusion::prelude::DataFrame,
    limit: usize,
) -> Result<(SchemaRef, Vec<RecordBatch>, bool), Failed> {
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df
        .execute_stream()
        .await
        .map_err(|e| Failed(400, WarehouseError::from_datafusion(e, "").to_string()))?;
    let (mut out, mut rows) = (Vec::new(), 0usize);
    while let Some(batch) = stream.next().await {
        let batch =
            batch.map_err(|e| Failed(400, WarehouseError::from_datafusion(e, "").to_string()))?;
        if rows + batch.num_rows() > limit {
            out.push(batch.slice(0, limit - rows));
            return Ok((schema, out, true));
        }
        rows += batch.num_rows();
        out.push(batch);
    }
    Ok((schema, out, false))
}

fn options() -> FormatOptions<'static> {
    FormatOptions::default().with_null("")
}

/// One display formatter per column of `b`.
fn formatters<'a>(
    b: &'a RecordBatch,
    opts: &'a FormatOptions<'a>,
) -> Result<Vec<ArrayFormatter<'a>>, Failed> {
    b.columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), opts))
        .collect::<Result<_, _>>()
        .map_err(internal)
}

/// Column names and types, and rows as arrays of JSON values (numbers and booleans as
/// such, everything else as its display text; NULL as null).
fn to_json(
    schema: Option<&Schema>,
    batches: &[RecordBatch],
) -> Result<(Vec<Value>, Vec<Value>), Failed> {
    use datafusion::arrow::datatypes::DataType as T;
    let Some(schema) = schema else {
        return Ok((Vec::new(), Vec::new()));
    };
    let columns = schema
        .fields()
        .iter()
        .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    let opts = options();
    let mut rows = Vec::new();
    for b in batches {
        let formatters = formatters(b, &opts)?;
        for i in 0..b.num_rows() {
            let mut row = Vec::with_capacity(b.num_columns());
            for (c, f) in b.columns().iter().zip(&formatters) {
                if c.is_null(i) {
                    row.push(Value::Null);
                    continue;
                }
                let text = f.value(i).to_string();
                row.push(match c.data_type() {
                    T::Boolean => Value::Bool(text == "true"),
                    T::Int8
                    | T::Int16
                    | T::Int32
                    | T::Int64
                    | T::UInt8
                    | T::UInt16
                    | T::UInt32
                    | T::UInt64 => text
                        .parse::<i64>()
                        .map(Value::from)
                        .or_else(|_| text.parse::<u64>().map(Value::from))
                        .unwrap_or(Value::String(text)),
                    T::Float16 | T::Float32 | T::Float64 => text
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                        .unwrap_or(Value::String(text)),
                    _ => Value::String(text),
                });
            }
            rows.push(Value::Array(row));
        }
    }
    Ok((columns, rows))
}

/// RFC 4180 CSV with a header line.
fn to_csv(schema: Option<&Schema>, batches: &[RecordBatch]) -> Result<String, Failed> {
    fn field(out: &mut String, text: &str) {
        if text.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&text.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(text);
        }
    }
    let mut out = String::new();
    let Some(schema) = schema else {
        return Ok(out);
    };
    for (i, f) in schema.fields().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(&mut out, f.name());
    }
    out.push_str("\r\n");
    let opts = options();
    for b in batches {
        let formatters = formatters(b, &opts)?;
        for i in 0..b.num_rows() {
            for (j, f) in formatters.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                field(&mut out, &f.value(i).to_string());
            }
            out.push_str("\r\n");
        }
    }
    Ok(out)
}
