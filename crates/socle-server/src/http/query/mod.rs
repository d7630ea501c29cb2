//! `POST /api/query`: SQL through the API, within the caller's role and the server's
//! limits.
//!
//! - viewers cannot query; analysts run one read-only query at a time over warehouse
//!   tables (never a file on the server's disk); editors and admins may also send
//!   statements that write (CREATE, INSERT, DROP...), each committed as with `socle sql`.
//! - at most `max_rows` rows come back (`limit` lowers it), and at most
//!   `max_answer_bytes` bytes: the answer is cut before it would pass either, and says so
//!   ([`wire`] has the format). A query running longer than the timeout is stopped.
//! - `?format=csv` answers the rows as CSV (a download), `json` (default) as
//!   `{columns, rows, row_count, truncated, truncated_by, elapsed_ms, message}`.
//! - answers are streamed: the query process renders them piece by piece and the server
//!   passes each piece on as the client reads it, so neither holds a whole answer.
//!
//! - at most [`slots`] queries run at once (`server.query_slots`, by default twice the
//!   cores); others wait for a slot up to `server.query_queue_wait`, and past it (or past
//!   [`MAX_WAITING`] waiting) the server answers `503 Service Unavailable` with
//!   `Retry-After: 1`: an overloaded server sheds load at once and stays responsive,
//!   instead of queueing every query up to its timeout.
//!
//! Every query is written to the audit log (its first 500 characters).
//!
//! The checks and limits live here; [`socle_app::query`] runs a query and renders its
//! answer, in the query process that [`engine`] keeps (or in this process).

pub mod engine;
pub mod wire;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use socle_app::query::{Event, Request};

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
        return Ok(busy(format!(
            "the server is busy ({waiting} queries waiting): retry in a moment"
        )));
    }
    let queued = Instant::now();
    let wait = state.options.query_queue_wait.min(timeout);
    let slot = match tokio::time::timeout(wait, state.query_slots.clone().acquire_owned()).await {
        Err(_) => {
            return Ok(busy(format!(
                "the server is busy: no query slot freed within {} ms (server.query_queue_wait); retry in a moment",
                wait.as_millis()
            )));
        }
        Ok(slot) => slot.map_err(internal)?,
    };
    drop(guard);
    let timeout = timeout.saturating_sub(queued.elapsed());
    let excerpt: String = body.sql.chars().take(500).collect();
    caller.audit(&state, "query", &excerpt).await?;
    let request = Request {
        sql: body.sql,
        write: caller.role.allows(Role::Editor),
        limit,
        max_bytes: state.options.max_answer_bytes,
        timeout_ms: timeout.as_millis() as u64,
        csv,
    };
    let mut answer = state.engine.run(request).await?;
    let head = match answer.next().await? {
        Some(Event::Head(head)) => head,
        _ => return Err(internal("the query process answered without a head")),
    };
    if head.wrote {
        state.catalog.invalidate();
    }
    if head.status != 200 {
        let message = head.message.unwrap_or_default();
        return Err(match StatusCode::from_u16(head.status) {
            Ok(status) if status != StatusCode::INTERNAL_SERVER_ERROR => ApiError(status, message),
            _ => internal(message),
        });
    }
    let limits = wire::Limits {
        rows: limit,
        bytes: state.options.max_answer_bytes,
    };
    wire::respond(answer, head.csv, limits, Box::new(slot)).await
}

/// `503 Service Unavailable` with `Retry-After: 1`.
fn busy(message: String) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        axum::Json(json!({ "error": message })),
    )
        .into_response()
}
