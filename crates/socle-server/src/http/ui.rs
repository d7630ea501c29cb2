//! The web UI: one page (`assets/index.html`) with its script and styles, compiled into
//! the binary; no CDN, nothing fetched at run time. It talks to the JSON API only, so
//! everything it shows is role-checked there.
//!
//! Views (hash routes): `#/pipelines` (grid of runs × tasks), `#/runs/<id>` (Gantt and
//! logs), `#/catalog` and `#/tables/<schema>/<name>` (columns, tests, lineage), `#/sql`
//! (editor, results, CSV download, quick chart), `#/search?q=`.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::ApiError;

const INDEX: &str = include_str!("assets/index.html");
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
];

/// `GET /`: the page.
pub async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

/// `GET /ui/{file}`: a script or style sheet.
pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (_, kind, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::not_found(format!("no file `{file}`")))?;
    Ok((
        [
            (header::CONTENT_TYPE, *kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    )
        .into_response())
}
