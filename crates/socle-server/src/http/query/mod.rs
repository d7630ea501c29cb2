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
//!
//! The checks and limits live here; [`exec`] runs a query and renders its answer, in the
//! query process that [`engine`] keeps (or in this process).

pub mod engine;
pub mod exec;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

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
    let request = exec::Request {
        sql: body.sql,
        write: caller.role.allows(Role::Editor),
        limit,
        timeout_ms: timeout.as_millis() as u64,
        csv,
    };
    let reply = state.engine.run(request).await?;
    if reply.wrote {
        state.catalog.invalidate();
    }
    if reply.status != 200 {
        let message = String::from_utf8_lossy(&reply.body).into_owned();
        return Err(match StatusCode::from_u16(reply.status) {
            Ok(status) if status != StatusCode::INTERNAL_SERVER_ERROR => ApiError(status, message),
            _ => internal(message),
        });
    }
    let content_type = if reply.csv {
        "text/csv; charset=utf-8"
    } else {
        "application/json"
    };
    let mut response = ([(header::CONTENT_TYPE, content_type)], reply.body).into_response();
    if reply.csv {
        response.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            header::HeaderValue::from_static("attachment; filename=\"query.csv\""),
        );
    }
    Ok(response)
}
