//! The HTTP answer of `POST /api/query` once its head said 200 (docs/server.md, "Query
//! answers", is the specification):
//!
//! - every answer carries `X-Socle-Max-Rows` and `X-Socle-Max-Answer-Bytes`, the limits
//!   it was cut at;
//! - an answer that ends within its first piece ([`PIECE`] bytes) is sent whole,
//!   with `Content-Length`, `X-Socle-Row-Count` and `X-Socle-Truncated` (`false`, `rows`
//!   or `bytes`), and an error in it is an error status like any other;
//! - a longer answer is streamed (chunked), piece by piece as the client reads it, never
//!   held whole; its row count, cut and error come at its end: in the JSON's trailing
//!   fields, and in HTTP trailers with the same names for a client that sends
//!   `TE: trailers`. A CSV answer that fails after it started ends without its last
//!   chunk (the client sees a broken download, not a short file).

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use socle_app::query::{Cut, End, Event, PIECE};

use super::engine::Answer;
use crate::http::{ApiError, internal};

pub const MAX_ROWS: HeaderName = HeaderName::from_static("x-socle-max-rows");
pub const MAX_BYTES: HeaderName = HeaderName::from_static("x-socle-max-answer-bytes");
pub const ROW_COUNT: HeaderName = HeaderName::from_static("x-socle-row-count");
pub const TRUNCATED: HeaderName = HeaderName::from_static("x-socle-truncated");
pub const ERROR: HeaderName = HeaderName::from_static("x-socle-error");

/// The answer's limits, stated in its headers.
pub struct Limits {
    pub rows: usize,
    pub bytes: u64,
}

/// What lives as long as the answer is sent (the query's slot).
pub type Hold = Box<dyn Send + Sync + 'static>;

/// The HTTP response for `answer`, whose head said 200.
pub async fn respond(
    mut answer: Answer,
    csv: bool,
    limits: Limits,
    hold: Hold,
) -> Result<Response, ApiError> {
    let mut first = Vec::new();
    let end = loop {
        match answer.next().await? {
            Some(Event::Data(d)) => {
                first.extend_from_slice(&d);
                if first.len() >= PIECE {
                    break None;
                }
            }
            Some(Event::End(end)) => break Some(end),
            Some(Event::Head(_)) => return Err(internal("the query process answered twice")),
            None => return Err(internal("the answer ended without its end")),
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if csv {
            "text/csv; charset=utf-8"
        } else {
            "application/json"
        }),
    );
    if csv {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"query.csv\""),
        );
    }
    headers.insert(MAX_ROWS, HeaderValue::from(limits.rows));
    headers.insert(MAX_BYTES, HeaderValue::from(limits.bytes));
    if let Some(end) = end {
        // Whole: the end is known before the first byte is sent.
        if let Some(e) = end.error {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            return Err(ApiError(status, e.message));
        }
        headers.extend(end_fields(&end));
        drop(hold);
        return Ok((headers, first).into_response());
    }
    headers.insert(
        header::TRAILER,
        HeaderValue::from_static("X-Socle-Row-Count, X-Socle-Truncated, X-Socle-Error"),
    );
    let stream =
        futures::stream::unfold(Some((answer, Some(first), hold)), move |state| async move {
            let (mut answer, first, hold) = state?;
            if let Some(first) = first {
                let frame: Result<Frame<Bytes>, Broken> = Ok(Frame::data(Bytes::from(first)));
                return Some((frame, Some((answer, None, hold))));
            }
            match answer.next().await {
                Ok(Some(Event::Data(d))) => {
                    Some((Ok(Frame::data(Bytes::from(d))), Some((answer, None, hold))))
                }
                Ok(Some(Event::End(end))) if end.error.is_none() || !csv => {
                    Some((Ok(Frame::trailers(end_fields(&end))), None))
                }
                Ok(Some(Event::End(end))) => {
                    let e = end.error.expect("an error");
                    tracing::warn!(
                        "server: a CSV answer failed after it started: {}",
                        e.message
                    );
                    Some((Err(Broken(e.message)), None))
                }
                Ok(_) => Some((Err(Broken("the answer ended early".into())), None)),
                Err(ApiError(_, message)) => {
                    tracing::warn!("server: an answer failed after it started: {message}");
                    Some((Err(Broken(message)), None))
                }
            }
        });
    let body = axum::body::Body::new(http_body_util::StreamBody::new(stream));
    Ok((headers, body).into_response())
}

/// An answer that cannot end well: the connection ends before the body's end.
#[derive(Debug)]
struct Broken(String);

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Broken {}

/// `X-Socle-Row-Count`, `X-Socle-Truncated` and (after an error) `X-Socle-Error`.
fn end_fields(end: &End) -> HeaderMap {
    let mut fields = HeaderMap::new();
    fields.insert(ROW_COUNT, HeaderValue::from(end.row_count));
    fields.insert(
        TRUNCATED,
        HeaderValue::from_static(end.truncated.map(Cut::as_str).unwrap_or("false")),
    );
    if let Some(e) = &end.error {
        // A header value is one line of visible ASCII.
        let text: String = e
            .message
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&text) {
            fields.insert(ERROR, v);
        }
    }
    fields
}
