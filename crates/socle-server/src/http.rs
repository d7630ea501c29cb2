//! The HTTP server: authentication (session cookies with CSRF tokens, or API tokens),
//! role checks on every route, security headers, a body-size limit, the audit log, and
//! Prometheus metrics of its own requests.
//!
//! Routes so far (more with the API and the web UI):
//!
//! | route | who |
//! |---|---|
//! | `GET /healthz`, `GET /readyz` | anyone (liveness, and whether the metadata database answers) |
//! | `POST /api/login` `{username, password}` | anyone; sets the session cookie, returns the CSRF token |
//! | `POST /api/logout`, `GET /api/me`, `POST /api/password` | signed in |
//! | `GET /metrics` | viewer |
//! | `GET /api/runs` | analyst |
//! | `GET /api/users`, `GET /api/audit` | admin |
//!
//! A browser session sends `X-CSRF-Token` with every POST; API tokens go in
//! `Authorization: Bearer socle_…`. Unauthenticated calls get 401, insufficient roles 403,
//! both as `{"error": "..."}`; no response carries a stack trace or a secret.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use socle_meta::MetaDb;

use crate::auth::{self, Role};

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// How long a browser session lasts.
pub const SESSION_HOURS: i64 = 12;
const COOKIE: &str = "socle_session";

/// What the handlers share.
pub struct AppState {
    pub meta: MetaDb,
    pub project: String,
    /// Mark cookies `Secure` (the server speaks TLS).
    pub secure_cookies: bool,
    metrics: Mutex<Metrics>,
    started: Instant,
}

impl AppState {
    pub fn new(meta: MetaDb, project: String, secure_cookies: bool) -> Arc<Self> {
        Arc::new(Self {
            meta,
            project,
            secure_cookies,
            metrics: Mutex::new(Metrics::default()),
            started: Instant::now(),
        })
    }
}

/// Request counts and latency histograms per route and status.
#[derive(Default)]
struct Metrics {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
}

const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// An error answer: a status and a message.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("server: {e}");
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error (see the server's log)".into(),
    )
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    pub username: String,
    pub role: Role,
    /// The session's CSRF token (None for API tokens).
    csrf: Option<String>,
    session_hash: Option<String>,
}

fn now() -> String {
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
) -> Result<Option<Principal>, ApiError> {
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
        let role = t
            .role
            .parse::<Role>()
            .map_err(internal)?
            .min(user.role.parse::<Role>().map_err(internal)?);
        return Ok(Some(Principal {
            username: user.username,
            role,
            csrf: None,
            session_hash: None,
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
    Ok(Some(Principal {
        username: user.username,
        role: user.role.parse().map_err(internal)?,
        csrf: Some(session.csrf),
        session_hash: Some(hash),
    }))
}

/// The caller, if they have at least `role`; 401 or 403 otherwise. A session's unsafe
/// request must carry its CSRF token.
async fn require(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    role: Role,
) -> Result<Principal, ApiError> {
    let p = authenticate(state, headers).await?.ok_or_else(|| {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "sign in (POST /api/login) or send an API token (Authorization: Bearer socle_…)".into(),
        )
    })?;
    if let Some(csrf) = &p.csrf
        && !matches!(*method, Method::GET | Method::HEAD)
        && headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) != Some(csrf.as_str())
    {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "missing or wrong X-CSRF-Token header".into(),
        ));
    }
    if !p.role.allows(role) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("this needs the {role} role; {} is {}", p.username, p.role),
        ));
    }
    Ok(p)
}

fn address(addr: &SocketAddr) -> String {
    addr.ip().to_string()
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Json(body): Json<Login>,
) -> Result<Response, ApiError> {
    let from = address(&addr);
    let user = state.meta.user(&body.username).await.map_err(internal)?;
    let ok = match &user {
        Some(u) => auth::verify_password(&body.password, &u.password_hash),
        None => {
            // Same work either way: no timing hint about which names exist.
            let _ = auth::verify_password(&body.password, dummy_hash());
            false
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        state
            .meta
            .audit(&body.username, "login.failed", "", &from)
            .await
            .map_err(internal)?;
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password".into(),
        ));
    };
    let secret = auth::new_secret().map_err(internal)?;
    let csrf = auth::new_secret().map_err(internal)?;
    let expires = chrono::Utc::now() + chrono::Duration::hours(SESSION_HOURS);
    state
        .meta
        .add_session(&socle_meta::users::Session {
            token_hash: auth::secret_hash(&secret),
            username: user.username.clone(),
            csrf: csrf.clone(),
            created_at: now(),
            expires_at: expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            address: from.clone(),
        })
        .await
        .map_err(internal)?;
    state
        .meta
        .audit(&user.username, "login", "", &from)
        .await
        .map_err(internal)?;
    let cookie = format!(
        "{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if state.secure_cookies { "; Secure" } else { "" }
    );
    let mut resp = Json(json!({
        "user": user.username,
        "role": user.role,
        "csrf_token": csrf,
        "must_change_password": user.must_change_password,
    }))
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(internal)?,
    );
    Ok(resp)
}

/// A hash of a password nobody knows, checked when the user does not exist.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        auth::generate_password()
            .and_then(|p| auth::hash_password(&p))
            .unwrap_or_default()
    })
}

async fn logout(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = require(&state, &headers, &method, Role::Viewer).await?;
    if let Some(h) = &p.session_hash {
        state.meta.remove_session(h).await.map_err(internal)?;
    }
    state
        .meta
        .audit(&p.username, "logout", "", &address(&addr))
        .await
        .map_err(internal)?;
    let mut resp = Json(json!({ "signed_out": true })).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("socle_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

async fn me(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = require(&state, &headers, &method, Role::Viewer).await?;
    let user = state.meta.user(&p.username).await.map_err(internal)?;
    Ok(Json(json!({
        "user": p.username,
        "role": p.role.as_str(),
        "via": if p.csrf.is_some() { "session" } else { "token" },
        "must_change_password": user.map(|u| u.must_change_password).unwrap_or(false),
        "project": state.project,
    })))
}

#[derive(Deserialize)]
struct PasswordChange {
    current: String,
    new: String,
}

async fn change_password(
    State(state): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    Json(body): Json<PasswordChange>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = require(&state, &headers, &method, Role::Viewer).await?;
    let user = state
        .meta
        .user(&p.username)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "no such user".into()))?;
    if !auth::verify_password(&body.current, &user.password_hash) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "the current password is wrong".into(),
        ));
    }
    let hash = auth::hash_password(&body.new)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    state
        .meta
        .set_password(&p.username, &hash, false)
        .await
        .map_err(internal)?;
    state
        .meta
        .audit(&p.username, "user.passwd", "own password", &address(&addr))
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "changed": true })))
}

async fn users(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, &method, Role::Admin).await?;
    let users = state.meta.users().await.map_err(internal)?;
    Ok(Json(json!(users
        .iter()
        .map(|u| json!({"user": u.username, "role": u.role, "must_change_password": u.must_change_password, "created_at": u.created_at}))
        .collect::<Vec<_>>())))
}

async fn audit(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, &method, Role::Admin).await?;
    let log = state.meta.audit_log(500).await.map_err(internal)?;
    Ok(Json(json!(log
        .iter()
        .map(|e| json!({"at": e.at, "actor": e.actor, "action": e.action, "detail": e.detail, "address": e.address}))
        .collect::<Vec<_>>())))
}

async fn runs(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require(&state, &headers, &method, Role::Analyst).await?;
    let runs = state.meta.list_runs(None, 200).await.map_err(internal)?;
    Ok(Json(json!(runs
        .iter()
        .map(|r| json!({"run_id": r.run_id, "pipeline": r.pipeline, "logical_date": r.logical_date, "trigger": r.trigger, "state": r.state, "created_at": r.created_at, "started_at": r.started_at, "ended_at": r.ended_at}))
        .collect::<Vec<_>>())))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Result<&'static str, ApiError> {
    state.meta.schema_version().await.map_err(|e| {
        tracing::warn!("readyz: {e}");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the metadata database does not answer".into(),
        )
    })?;
    Ok("ready\n")
}

async fn metrics(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&state, &headers, &method, Role::Viewer).await?;
    let m = state
        .metrics
        .lock()
        .expect("metrics")
        .clone_text(state.started);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m,
    )
        .into_response())
}

impl Metrics {
    fn clone_text(&self, started: Instant) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP socle_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE socle_http_requests_total counter\n");
        for ((route, method, status), n) in &self.requests {
            out.push_str(&format!(
                "socle_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}\n"
            ));
        }
        out.push_str("# HELP socle_http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE socle_http_request_duration_seconds histogram\n");
        for (route, h) in &self.latency {
            let mut cumulative = 0;
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                cumulative += c;
                out.push_str(&format!(
                    "socle_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {cumulative}\n"
                ));
            }
            out.push_str(&format!(
                "socle_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n",
                h.count
            ));
            out.push_str(&format!(
                "socle_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n",
                h.sum
            ));
            out.push_str(&format!(
                "socle_http_request_duration_seconds_count{{route=\"{route}\"}} {}\n",
                h.count
            ));
        }
        out.push_str("# HELP socle_uptime_seconds Seconds since the server started.\n");
        out.push_str("# TYPE socle_uptime_seconds gauge\n");
        out.push_str(&format!(
            "socle_uptime_seconds {}\n",
            started.elapsed().as_secs_f64()
        ));
        out
    }
}

/// Counts requests and adds the security headers to every answer.
async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let mut resp = next.run(req).await;
    let secs = started.elapsed().as_secs_f64();
    {
        let mut m = state.metrics.lock().expect("metrics");
        *m.requests
            .entry((route.clone(), method, resp.status().as_u16()))
            .or_default() += 1;
        let h = m.latency.entry(route).or_default();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            h.counts[i] += 1;
        }
        h.sum += secs;
        h.count += 1;
    }
    let headers = resp.headers_mut();
    for (k, v) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'",
        ),
        ("cache-control", "no-store"),
    ] {
        headers.insert(k, HeaderValue::from_static(v));
    }
    resp
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such route".into())
}

/// The server's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/password", post(change_password))
        .route("/api/users", get(users))
        .route("/api/audit", get(audit))
        .route("/api/runs", get(runs))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
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
        .add_user("admin", &hash, Role::Admin.as_str(), true)
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

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
