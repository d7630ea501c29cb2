//! The HTTP server: authentication (session cookies with CSRF tokens, or API tokens), role
//! checks on every route, security headers, body-size and query limits, the audit log,
//! Prometheus metrics, the JSON API (described by `/api/openapi.json`) and the web UI.
//!
//! | module | routes |
//! |---|---|
//! | [`account`] | sign-in, sign-out, `/api/me`, password, users and audit log (admin) |
//! | [`throttle`] | (no route) the wait after wrong passwords, per account and address |
//! | [`catalog`] | project, sources, schemas, tables, columns, search, lineage, tests |
//! | [`query`] | `POST /api/query` (analyst reads; editor and admin may write) |
//! | [`pipelines`] | pipelines, runs, task instances, logs; trigger, rerun, backfill (editor) |
//! | [`metrics`] | `/metrics` (viewer), request counting |
//! | [`ui`] | `/` and `/ui/*`: the web UI, assets compiled into the binary |
//!
//! [`conn`] accepts connections (plain or [`tls`]) within the connection limits and
//! timeouts, and serves each with hyper.
//!
//! `/healthz` and `/readyz` are open (probes); `/api/openapi.json` and the UI's static
//! files are open (they hold no data); every other route needs a caller. A browser session
//! sends `X-CSRF-Token` with every POST; API tokens go in
//! `Authorization: Bearer socle_…`. Unauthenticated calls get 401, insufficient roles 403,
//! both as `{"error": "..."}`; no response carries a stack trace or a secret.

pub mod account;
pub mod catalog;
pub mod conn;
pub mod metrics;
pub mod openapi;
pub mod pipelines;
pub mod query;
pub mod throttle;
pub mod tls;
pub mod ui;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use socle_meta::MetaDb;
use socle_orchestrate::runner::RunEnv;

use crate::auth::{self, Role};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// How long a browser session lasts.
pub const SESSION_HOURS: i64 = 12;
pub(crate) const COOKIE: &str = "socle_session";

/// Limits and settings of the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Mark cookies `Secure` (the server speaks TLS).
    pub secure_cookies: bool,
    /// Longest a query through the API may run.
    pub query_timeout: Duration,
    /// Most rows a query through the API returns (more are cut, and said so).
    pub max_rows: usize,
    /// How long the catalog (tables, columns, row counts, lineage) is served before it is
    /// rebuilt in the background.
    pub catalog_ttl: Duration,
    /// A program (and its arguments) that prints the catalog as JSON on stdout, run to
    /// (re)build it in a child process; `None` builds it in this process.
    pub catalog_command: Option<Vec<std::ffi::OsString>>,
    /// A program (and its arguments) that runs queries (the query process, see
    /// [`query::engine`]); `None` runs them in this process.
    pub query_command: Option<Vec<std::ffi::OsString>>,
    /// How long the query process stays after its last query.
    pub query_idle: Duration,
    /// Connection caps and timeouts.
    pub connections: conn::Limits,
    /// Longest a query waits for a slot before the server answers 503.
    pub query_queue_wait: Duration,
    /// Queries that run at once (`None`: [`query::slots`]).
    pub query_slots: Option<usize>,
    /// Largest answer of a query, in bytes (longer answers are cut, and said so).
    pub max_answer_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            query_timeout: Duration::from_secs(30),
            max_rows: 10_000,
            catalog_ttl: Duration::from_secs(60),
            catalog_command: None,
            query_command: None,
            query_idle: Duration::from_secs(60),
            connections: conn::Limits::default(),
            query_queue_wait: Duration::from_millis(500),
            query_slots: None,
            max_answer_bytes: 64 << 20,
        }
    }
}

/// What the handlers share.
pub struct AppState {
    pub project: Arc<socle_core::Project>,
    pub meta: MetaDb,
    /// The project's warehouse for its own SQL (opened on first use, shared with the runs
    /// this process makes): the in-process catalog reads it.
    pub warehouse: socle_app::LazyWarehouse,
    /// What runs started through the API need (pools, task processes, progress).
    pub env: RunEnv,
    pub options: Options,
    metrics: Mutex<metrics::Metrics>,
    started: Instant,
    catalog: catalog::Cache,
    /// Runs started through the API, still going.
    runs: Mutex<tokio::task::JoinSet<()>>,
    /// Queries running at once (more wait up to `query_queue_wait`; past that, or past
    /// `MAX_WAITING` waiting, 503).
    pub(crate) query_slots: Arc<tokio::sync::Semaphore>,
    pub(crate) queries_waiting: std::sync::atomic::AtomicUsize,
    /// Where queries run.
    pub engine: query::engine::Engine,
    /// Wrong-password counts, for sign-in throttling.
    pub(crate) throttle: throttle::Throttle,
}

impl AppState {
    pub fn new(env: RunEnv, options: Options) -> Arc<Self> {
        let engine = match &options.query_command {
            Some(command) => query::engine::Engine::child(command.clone(), options.query_idle),
            // Not the runs' warehouse: SQL over HTTP gets one kept to the warehouse's tables.
            None => query::engine::Engine::in_process(socle_app::LazyWarehouse::with_access(
                env.project.clone(),
                env.meta.clone(),
                socle_warehouse::Access::Server,
            )),
        };
        let query_slots = options.query_slots.unwrap_or_else(query::slots);
        Arc::new(Self {
            engine,
            project: env.project.clone(),
            meta: env.meta.clone(),
            warehouse: env.warehouse.clone(),
            env,
            options,
            metrics: Mutex::new(metrics::Metrics::default()),
            started: Instant::now(),
            catalog: catalog::Cache::default(),
            runs: Mutex::new(tokio::task::JoinSet::new()),
            query_slots: Arc::new(tokio::sync::Semaphore::new(query_slots)),
            queries_waiting: std::sync::atomic::AtomicUsize::new(0),
            throttle: throttle::Throttle::default(),
        })
    }

    /// Runs `work` (a run started through the API) in the background, tracked so that
    /// [`drain`](Self::drain) can wait for it.
    pub(crate) fn spawn_run(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut runs = self.runs.lock().expect("runs");
        while runs.try_join_next().is_some() {}
        runs.spawn(work);
    }

    /// At shutdown: lets the runs started through the API finish within `grace`, then
    /// stops them and marks what they left running as failed.
    pub async fn drain(&self, grace: Duration) {
        let mut runs = std::mem::take(&mut *self.runs.lock().expect("runs"));
        if runs.is_empty() {
            return;
        }
        tracing::info!(
            runs = runs.len(),
            "server stopping: waiting for the runs it started"
        );
        let done =
            tokio::time::timeout(grace, async { while runs.join_next().await.is_some() {} }).await;
        if done.is_ok() {
            return;
        }
        runs.abort_all();
        while runs.join_next().await.is_some() {}
        let me = socle_orchestrate::runner::runner_id();
        let Ok(left) = self.meta.runs_in_state(socle_meta::RunState::Running).await else {
            return;
        };
        for run in left {
            if self
                .meta
                .run_runner(&run.run_id)
                .await
                .ok()
                .flatten()
                .as_deref()
                == Some(me)
            {
                let _ = self
                    .meta
                    .fail_running(&run.run_id, "the server stopped during this attempt")
                    .await;
                let _ = self
                    .meta
                    .set_run_state(&run.run_id, socle_meta::RunState::Failed)
                    .await;
            }
        }
    }

    pub fn project_name(&self) -> &str {
        &self.project.config.name
    }
}

/// An error answer: a status and a message.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self(StatusCode::NOT_FOUND, message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self(StatusCode::CONFLICT, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Messages are ours or the user's own input, masked for any known secret; a
        // backtrace a library appended to its error text is cut off.
        let mut message = socle_core::secrets::redact(&self.1);
        let lower = message.to_ascii_lowercase();
        if let Some(at) = ["stack backtrace", "\nbacktrace", "backtrace:"]
            .iter()
            .filter_map(|m| lower.find(m))
            .min()
        {
            message.truncate(at);
            message = message.trim_end().to_string();
        }
        (self.0, Json(json!({ "error": message }))).into_response()
    }
}

/// Logs `e` and answers a 500 without details.
pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("server: {e}");
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error (see the server's log)".into(),
    )
}

/// JSON bodies whose errors answer `{"error": ...}` like every other error.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError(
                    e.status(),
                    "the request body is too large (1 MiB at most)".into(),
                ))
            }
            Err(e) => Err(ApiError(e.status(), e.body_text())),
        }
    }
}

/// Query-string parameters whose errors answer `{"error": ...}` like every other error.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(e) => Err(ApiError(e.status(), e.body_text())),
        }
    }
}

/// Who is calling, and from where. Extracting it answers 401 to anonymous callers and
/// 403 to a session's unsafe request without its CSRF token; [`Caller::need`] checks the
/// role.
#[derive(Debug, Clone)]
pub struct Caller {
    pub username: String,
    pub role: Role,
    pub address: String,
    /// The session's CSRF token (None for API tokens).
    csrf: Option<String>,
    session_hash: Option<String>,
    /// A session opened with a one-time password that is not changed yet.
    must_change_password: bool,
}

impl Caller {
    /// This caller if their role is at least `role`; 403 otherwise.
    pub fn need(self, role: Role) -> Result<Self, ApiError> {
        if self.role.allows(role) {
            Ok(self)
        } else {
            Err(ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "this needs the {role} role; {} is {}",
                    self.username, self.role
                ),
            ))
        }
    }

    /// Writes an audit entry as this caller.
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        detail: &str,
    ) -> Result<(), ApiError> {
        state
            .meta
            .audit(&self.username, action, detail, &self.address)
            .await
            .map_err(internal)
    }
}

/// A caller whose session may still have to set a new password: only `/api/me`,
/// `/api/logout` and `/api/password` take one. Every other route takes a [`Caller`],
/// refused with 403 (`"code": "password_change_required"`) while the session was opened
/// with a one-time password. API tokens are not held back: an admin issues them on the
/// server's host (`socle tokens create`), and they are secrets of their own.
pub struct SignedIn(pub Caller);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let SignedIn(caller) = SignedIn::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if caller.must_change_password {
            return Err((
                StatusCode::FORBIDDEN,
                Json(json!({
                    "error": "this account signed in with a one-time password: set a new password first (POST /api/password with {\"current\", \"new\"}, or the form the web UI shows)",
                    "code": "password_change_required",
                })),
            )
                .into_response());
        }
        Ok(caller)
    }
}

impl FromRequestParts<Arc<AppState>> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<tls::Peer>>()
            .map(|c| c.0.0.ip().to_string())
            .unwrap_or_default();
        let caller = authenticate(state, &parts.headers, address)
            .await?
            .ok_or_else(|| {
                ApiError(
                    StatusCode::UNAUTHORIZED,
                    "sign in (POST /api/login) or send an API token (Authorization: Bearer socle_…)"
                        .into(),
                )
            })?;
        if let Some(csrf) = &caller.csrf
            && !matches!(parts.method, Method::GET | Method::HEAD)
            && parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                != Some(csrf.as_str())
        {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                "missing or wrong X-CSRF-Token header".into(),
            ));
        }
        Ok(SignedIn(caller))
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    address: String,
) -> Result<Option<Caller>, ApiError> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        let Some((id, secret)) = auth::parse_token(bearer) else {
            return Ok(None);
        };
        let Some(t) = state.meta.token(id).await.map_err(internal)? else {
            return Ok(None);
        };
        if t.revoked_at.is_some()
            || t.expires_at <= now()
            || t.token_hash != auth::secret_hash(secret)
        {
            return Ok(None);
        }
        let Some(user) = state.meta.user(&t.username).await.map_err(internal)? else {
            return Ok(None);
        };
        // A token never exceeds its owner's current role.
        let role = t.role.min(user.role);
        return Ok(Some(Caller {
            username: user.username,
            role,
            address,
            csrf: None,
            session_hash: None,
            must_change_password: false,
        }));
    }
    let Some(cookie) = cookie_value(headers) else {
        return Ok(None);
    };
    let hash = auth::secret_hash(&cookie);
    let Some(session) = state.meta.session(&hash, &now()).await.map_err(internal)? else {
        return Ok(None);
    };
    let Some(user) = state.meta.user(&session.username).await.map_err(internal)? else {
        return Ok(None);
    };
    Ok(Some(Caller {
        username: user.username,
        role: user.role,
        address,
        csrf: Some(session.csrf),
        session_hash: Some(hash),
        must_change_password: user.must_change_password,
    }))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
) -> Result<&'static str, ApiError> {
    state.meta.schema_version().await.map_err(|e| {
        tracing::warn!("readyz: {e}");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the metadata database does not answer".into(),
        )
    })?;
    Ok("ready\n")
}

/// Refuses bodies announced above [`BODY_LIMIT`] before reading them, and adds the
/// security headers to every answer.
async fn secure(req: Request, next: Next) -> Response {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut resp = if announced.is_some_and(|n| n > BODY_LIMIT as u64) {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large (1 MiB at most)".into(),
        )
        .into_response()
    } else {
        as_json_error(next.run(req).await).await
    };
    let headers = resp.headers_mut();
    for (k, v) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    ] {
        headers.insert(k, HeaderValue::from_static(v));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// Axum's own refusals (a path that does not decode, a method not allowed) are plain
/// text: they become `{"error": ...}` like every other error.
async fn as_json_error(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return resp;
    }
    let text = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase()
    } else {
        text
    };
    ApiError(status, message).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Every route with its method, as `router` serves them (checked against the OpenAPI
/// document by a test).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/login", post(account::login))
        .route("/api/logout", post(account::logout))
        .route("/api/me", get(account::me))
        .route("/api/password", post(account::change_password))
        .route("/api/users", get(account::users))
        .route("/api/audit", get(account::audit))
        .route("/api/project", get(catalog::project))
        .route("/api/sources", get(catalog::sources))
        .route("/api/tables", get(catalog::tables))
        .route("/api/tables/{schema}/{name}", get(catalog::table))
        .route("/api/search", get(catalog::search))
        .route("/api/lineage", get(catalog::lineage))
        .route("/api/tests", get(catalog::tests))
        .route("/api/query", post(query::query))
        .route("/api/pipelines", get(pipelines::list))
        .route("/api/pipelines/{name}", get(pipelines::detail))
        .route("/api/pipelines/{name}/trigger", post(pipelines::trigger))
        .route("/api/pipelines/{name}/backfill", post(pipelines::backfill))
        .route("/api/runs", get(pipelines::runs))
        .route("/api/runs/{run_id}", get(pipelines::run))
        .route("/api/runs/{run_id}/logs", get(pipelines::logs))
        .route("/api/runs/{run_id}/rerun", post(pipelines::rerun))
        .route("/", get(ui::index))
        .route("/ui/{file}", get(ui::asset))
        .fallback(not_found)
        .layer(middleware::from_fn(secure))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Where the first admin's one-time password is kept, in the project's state directory,
/// readable by its owner only (as Jenkins keeps `initialAdminPassword`): the daemon's log
/// names the file, never the password. Deleted when `admin` chooses a new password.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// Writes the first admin's one-time `password` to [`ADMIN_PASSWORD_FILE`] under
/// `state_dir` (mode 0600); returns the file's path.
pub fn keep_first_password(
    state_dir: &std::path::Path,
    password: &str,
) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(state_dir)?;
    let path = state_dir.join(ADMIN_PASSWORD_FILE);
    // A file left by an earlier project state is replaced, never appended to or followed.
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(format!("{password}\n").as_bytes())?;
    file.sync_all()?;
    Ok(path)
}

/// Creates the first admin when there is no user: `admin` with a one-time password,
/// returned to be shown once.
pub async fn first_admin(meta: &MetaDb) -> Result<Option<String>, String> {
    if !meta.users().await.map_err(|e| e.to_string())?.is_empty() {
        return Ok(None);
    }
    let password = auth::generate_password().map_err(|e| e.to_string())?;
    let hash = auth::hash_password(&password).map_err(|e| e.to_string())?;
    let added = meta
        .add_user("admin", &hash, Role::Admin, true)
        .await
        .map_err(|e| e.to_string())?;
    if !added {
        return Ok(None);
    }
    let _ = meta
        .audit(
            "server",
            "user.add",
            "admin as admin (first start)",
            "local",
        )
        .await;
    Ok(Some(password))
}

/// Serves `router` on `listener` (HTTPS with `tls`) until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if state.options.catalog_command.is_some() {
        // Read by a child process, the catalog costs the server only its answer: have it
        // ready before the first visitor asks.
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = catalog::snapshot(&state).await {
                tracing::warn!("catalog not read at start: {}", e.1);
            }
        });
    }
    let limits = state.options.connections;
    conn::run(listener, tls, router(state), limits, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router serves is in the OpenAPI document, with its method (the
    /// integration tests check the other way: every documented operation, every role).
    #[test]
    fn the_openapi_document_names_every_route() {
        let doc: serde_json::Value = serde_json::from_str(openapi::DOCUMENT).unwrap();
        let source = include_str!("mod.rs");
        let body = &source[source.find("pub fn router(").unwrap()..];
        let body = &body[..body.find(".fallback(").unwrap()];
        let mut n = 0;
        for part in body.split(".route(\"").skip(1) {
            let (path, rest) = part.split_once('"').unwrap();
            let method = rest
                .trim_start_matches([',', ' ', '\n'])
                .split('(')
                .next()
                .unwrap();
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is served but not in openapi.json"
            );
            n += 1;
        }
        assert!(n > 25, "{n}");
        assert_eq!(doc["paths"].as_object().unwrap().len(), {
            let mut paths: Vec<&str> = body
                .split(".route(\"")
                .skip(1)
                .map(|p| p.split_once('"').unwrap().0)
                .collect();
            paths.dedup();
            paths.len()
        });
    }

    #[tokio::test]
    async fn errors_never_carry_a_backtrace() {
        let resp = ApiError(
            StatusCode::BAD_REQUEST,
            "query failed: bad cast\n\nStack backtrace:\n   0: kernel::foo\n   at src/x.rs:1"
                .into(),
        )
        .into_response();
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "query failed: bad cast");
    }
}
