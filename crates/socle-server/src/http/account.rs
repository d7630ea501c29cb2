//! Signing in and out, the caller's own account, and the admin's views of users and of
//! the audit log.

use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, Body, COOKIE, Caller, SESSION_HOURS, SignedIn, internal, now};
use crate::auth::{self, Role};

#[derive(Deserialize)]
pub struct Login {
    username: String,
    password: String,
}

/// `POST /api/login`: checks the password, opens a session (an HttpOnly, SameSite=Strict
/// cookie) and returns the session's CSRF token.
pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(super::tls::Peer(addr)): ConnectInfo<super::tls::Peer>,
    Body(body): Body<Login>,
) -> Result<Response, ApiError> {
    let from = addr.ip().to_string();
    if let Some(wait) = state.throttle.wait(&body.username, addr.ip()) {
        return Ok(throttled(wait));
    }
    // One check at a time from an address; the wait may have begun while this one queued.
    let _turn = state.throttle.one_check(addr.ip()).await;
    if let Some(wait) = state.throttle.wait(&body.username, addr.ip()) {
        return Ok(throttled(wait));
    }
    let user = state.meta.user(&body.username).await.map_err(internal)?;
    // Same work whether the name exists or not: no timing hint about which names exist.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let ok = verify(body.password.clone(), stored).await?;
    let Some(user) = user.filter(|_| ok) else {
        state.throttle.failed(&body.username, addr.ip());
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
    state.throttle.succeeded(&body.username, addr.ip());
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
        if state.options.secure_cookies {
            "; Secure"
        } else {
            ""
        }
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

/// Checks `password` against a stored hash (a hash nobody knows when `None`), on a
/// blocking thread: argon2 takes tens of milliseconds of CPU, which must not hold one of
/// the threads that serve requests.
async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || match stored {
        Some(hash) => auth::verify_password(&password, &hash),
        None => {
            let _ = auth::verify_password(&password, dummy_hash());
            false
        }
    })
    .await
    .map_err(internal)
}

/// `429` with `Retry-After` (whole seconds), for a sign-in tried during its wait.
fn throttled(wait: std::time::Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut resp = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(json!({
            "error": format!(
                "too many wrong passwords for this account or from this address: try again in {secs} s"
            ),
            "code": "sign_in_throttled",
            "retry_after": secs,
        })),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
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

/// `POST /api/logout`: ends the session.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    SignedIn(caller): SignedIn,
) -> Result<Response, ApiError> {
    if let Some(h) = &caller.session_hash {
        state.meta.remove_session(h).await.map_err(internal)?;
    }
    caller.audit(&state, "logout", "").await?;
    let mut resp = Json(json!({ "signed_out": true })).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("socle_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

/// `GET /api/me`: who the caller is. A session also gets its CSRF token back, so that a
/// reloaded page can go on posting.
pub async fn me(
    State(state): State<Arc<AppState>>,
    SignedIn(caller): SignedIn,
) -> Result<Json<Value>, ApiError> {
    let user = state.meta.user(&caller.username).await.map_err(internal)?;
    Ok(Json(json!({
        "user": caller.username,
        "role": caller.role.as_str(),
        "via": if caller.csrf.is_some() { "session" } else { "token" },
        "csrf_token": caller.csrf,
        "must_change_password": user.map(|u| u.must_change_password).unwrap_or(false),
        "project": state.project_name(),
    })))
}

#[derive(Deserialize)]
pub struct PasswordChange {
    current: String,
    new: String,
}

/// `POST /api/password`: changes the caller's own password (also the one way on for a
/// session opened with a one-time password). The caller's other sessions end; the
/// current one goes on. A wrong current password counts as a wrong sign-in.
pub async fn change_password(
    State(state): State<Arc<AppState>>,
    caller: SignedIn,
    Body(body): Body<PasswordChange>,
) -> Result<Response, ApiError> {
    let caller = caller.0;
    let from: std::net::IpAddr = caller
        .address
        .parse()
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let _turn = state.throttle.one_check(from).await;
    if let Some(wait) = state.throttle.wait(&caller.username, from) {
        return Ok(throttled(wait));
    }
    let user = state
        .meta
        .user(&caller.username)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "no such user".into()))?;
    if !verify(body.current.clone(), Some(user.password_hash)).await? {
        state.throttle.failed(&caller.username, from);
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "the current password is wrong".into(),
        ));
    }
    if body.new == body.current {
        return Err(ApiError::bad_request(
            "the new password is the current one: choose another",
        ));
    }
    let new = body.new;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&new))
        .await
        .map_err(internal)?
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    state
        .meta
        .set_password(&caller.username, &hash, false)
        .await
        .map_err(internal)?;
    if caller.username == "admin" {
        // The first start's one-time password is no longer of use: not kept on disk.
        let kept = state
            .env
            .project
            .state_dir()
            .join(super::ADMIN_PASSWORD_FILE);
        if let Err(e) = std::fs::remove_file(&kept)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("server: cannot delete {}: {e}", kept.display());
        }
    }
    // Whoever knew the old password is signed out everywhere but here.
    let ended = match &caller.session_hash {
        Some(keep) => state
            .meta
            .remove_other_sessions(&caller.username, keep)
            .await
            .map_err(internal)?,
        None => {
            state
                .meta
                .remove_sessions_of(&caller.username)
                .await
                .map_err(internal)?;
            0
        }
    };
    caller.audit(&state, "user.passwd", "own password").await?;
    Ok(Json(json!({ "changed": true, "other_sessions_ended": ended })).into_response())
}

/// `GET /api/users` (admin).
pub async fn users(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Admin)?;
    let users = state.meta.users().await.map_err(internal)?;
    Ok(Json(json!(users
        .iter()
        .map(|u| json!({"user": u.username, "role": u.role, "must_change_password": u.must_change_password, "created_at": u.created_at}))
        .collect::<Vec<_>>())))
}

/// `GET /api/audit` (admin): the latest 500 entries, newest first.
pub async fn audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Admin)?;
    let log = state.meta.audit_log(500).await.map_err(internal)?;
    Ok(Json(json!(log
        .iter()
        .map(|e| json!({"at": e.at, "actor": e.actor, "action": e.action, "detail": e.detail, "address": e.address}))
        .collect::<Vec<_>>())))
}
