//! `GET /api/openapi.json`: the API described in OpenAPI 3.1 (`openapi.json` beside this
//! file, compiled in). A test checks that it names exactly the routes the router serves.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        DOCUMENT,
    )
}
