//! `POST /api/query`: SQL through the API, within the caller's role and the server's
//! limits.
//!
//! - viewers cannot query; analysts run one read-only query at a time over warehouse
//!   tables (never a file on the server's disk); editors and admins may also send
//!   statements that write (CREATE, INSERT, DROP...), each committed as with `socle sql`.
//! - at most `max_rows` rows come back (`limit` lowers it; `truncated` says when rows
//!   were cut); a query running longer than the timeout is stopped.
//! - `?format=csv` answers the rows as CSV (a download), `json` (default) as
//!   `{columns, rows, truncated, elapsed_ms}`.
//!
//! - at most [`slots`] queries run at once (twice the cores); others wait their turn
//!   within their timeout, and past [`MAX_WAITING`] waiting the server answers
//!   `503 Service Unavailable` with `Retry-After: 1` at once: an overloaded server stays
//!   responsive and its memory bounded instead of queueing without end.
//!
//! Every query is written to the audit log (its first 500 characters).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use socle_warehouse::{Outcome, WarehouseError};

use super::{ApiError, AppState, Body, Caller, Params, internal};
use crate::auth::Role;

/// Queries that may wait for a slot; more are refused with 503.
pub const MAX_WAITING: usize = 256;

/// Queries that run at once: twice the cores.
pub fn slots() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(4)
}

/// Decrements the waiting count when dropped.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[derive(Deserialize)]
pub struct QueryBody {
    sql: String,
    /// Most rows to return (at most the server's `max_rows`).
    limit: Option<usize>,
    /// Seconds the query may run (at most the server's timeout).
    timeout_seconds: Option<f64>,
}

#[derive(Deserialize)]
pub struct Format {
    format: Option<String>,
}

fn sql_error(e: WarehouseError) -> ApiError {
    match e {
        WarehouseError::Internal(m) => internal(m),
        other => ApiError::bad_request(other.to_string()),
    }
}

/// `POST /api/query` (analyst; writes need editor).
pub async fn query(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params(format): Params<Format>,
    Body(body): Body<QueryBody>,
) -> Result<Response, ApiError> {
    let caller = caller.need(Role::Analyst)?;
    let csv = match format.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown format `{other}`: json or csv"
            )));
        }
    };
    if body.sql.trim().is_empty() {
        return Err(ApiError::bad_request("the query is empty"));
    }
    let limit = body
        .limit
        .unwrap_or(state.options.max_rows)
        .clamp(1, state.options.max_rows);
    let timeout = body
        .timeout_seconds
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(std::time::Duration::from_secs_f64)
        .unwrap_or(state.options.query_timeout)
        .min(state.options.query_timeout);
    let waiting = state
        .queries_waiting
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let guard = Waiting(&state.queries_waiting);
    if waiting >= MAX_WAITING {
        return Ok((
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            axum::Json(json!({"error": format!("the server is busy ({waiting} queries waiting): retry in a moment")})),
        )
            .into_response());
    }
    let queued = Instant::now();
    let _slot = tokio::time::timeout(timeout, state.query_slots.acquire())
        .await
        .map_err(|_| {
            ApiError(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the server is busy: no query slot freed within {:.0} s; retry in a moment",
                    timeout.as_secs_f64()
                ),
            )
        })?
        .map_err(internal)?;
    drop(guard);
    let timeout = timeout.saturating_sub(queued.elapsed());
    let excerpt: String = body.sql.chars().take(500).collect();
    caller.audit(&state, "query", &excerpt).await?;
    let wh = state.env.warehouse.get().await.map_err(internal)?;
    // Statements that write change the catalog, even when a later one fails or times out.
    let writes = caller.role.allows(Role::Editor)
        && wh
            .parse(&body.sql)
            .map_err(sql_error)?
            .iter()
            .any(|p| !socle_warehouse::read_only::is_query(&p.statement));
    let started = Instant::now();
    let work = async {
        if caller.role.allows(Role::Editor) {
            run_any(&wh, &body.sql, limit).await
        } else {
            let df = wh.read_query(&body.sql).await.map_err(sql_error)?;
            collect(df, limit)
                .await
                .map(|(s, b, t)| (Some(s), b, t, None))
        }
    };
    let result = tokio::time::timeout(timeout, work).await;
    if writes {
        state.catalog.invalidate();
    }
    let (schema, batches, truncated, done) = result.map_err(|_| {
        ApiError(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            format!(
                "the query ran longer than {:.0} s and was stopped",
                timeout.as_secs_f64()
            ),
        )
    })??;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    if csv {
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"query.csv\"",
                ),
            ],
            to_csv(schema.as_deref(), &batches)?,
        )
            .into_response());
    }
    let (columns, rows) = to_json(schema.as_deref(), &batches)?;
    Ok(axum::Json(json!({
        "columns": columns,
        "rows": rows,
        "row_count": rows.len(),
        "truncated": truncated,
        "elapsed_ms": elapsed_ms,
        "message": done,
    }))
    .into_response())
}

/// Runs every statement (writes committed one by one); the last query's rows come back.
async fn run_any(
    wh: &socle_warehouse::Warehouse,
    sql: &str,
    limit: usize,
) -> Result<(Option<SchemaRef>, Vec<RecordBatch>, bool, Option<String>), ApiError> {
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
) -> Result<(SchemaRef, Vec<RecordBatch>, bool), ApiError> {
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df
        .execute_stream()
        .await
        .map_err(|e| ApiError::bad_request(WarehouseError::from_datafusion(e, "").to_string()))?;
    let (mut out, mut rows) = (Vec::new(), 0usize);
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| {
            ApiError::bad_request(WarehouseError::from_datafusion(e, "").to_string())
        })?;
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
) -> Result<Vec<ArrayFormatter<'a>>, ApiError> {
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
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
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
fn to_csv(schema: Option<&Schema>, batches: &[RecordBatch]) -> Result<String, ApiError> {
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
