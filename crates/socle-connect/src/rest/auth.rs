//! Authentication of `rest` requests: none, API key (header or query parameter),
//! bearer token, HTTP basic, and OAuth2 (refresh-token and client-credentials grants)
//! with access tokens cached per account and refreshed before they expire or when the
//! API answers 401.
//!
//! ```yaml
//! auth: { type: api_key, in: query, name: app_key, value: "${secret:adzuna_key}" }
//! auth: { type: bearer, token: "${env:API_TOKEN}" }
//! auth: { type: basic, username: alice, password: "${secret:pw}" }
//! auth:
//!   type: oauth2
//!   grant: refresh_token              # or client_credentials
//!   token_url: /oauth/token           # relative to base_url, or absolute
//!   client_id: "${env:YT_CLIENT_ID}"
//!   client_secret: "${secret:yt_client_secret}"
//!   refresh_token: "{{ account.refresh_token }}"   # each account its own
//!   scope: https://www.googleapis.com/auth/yt-analytics.readonly
//!   client_auth: body                 # client id/secret in the form (default) or `basic`
//! ```
//!
//! Every value may use `{{ account.<field> }}` and `${env:..}` / `${secret:..}`; the
//! resolved values are masked in every message.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::http::{Http, Request};

/// `auth:` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    #[serde(rename = "type")]
    pub kind: String,
    /// api_key: `header` (default) or `query`.
    #[serde(rename = "in")]
    pub location: Option<String>,
    /// api_key: the header or parameter name.
    pub name: Option<String>,
    /// api_key: the key.
    pub value: Option<String>,
    /// bearer: the token.
    pub token: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// oauth2: `refresh_token` or `client_credentials`.
    pub grant: Option<String>,
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    /// oauth2: `body` (default) or `basic`.
    pub client_auth: Option<String>,
}

impl RawAuth {
    /// Problems with the fields of this kind (messages without location).
    pub fn check(&self) -> Vec<String> {
        let mut out = Vec::new();
        let need = |v: &Option<String>, f: &str, out: &mut Vec<String>| {
            if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
                out.push(format!("`auth.{f}` is required for `type: {}`", self.kind));
            }
        };
        match self.kind.as_str() {
            "none" => {}
            "api_key" => {
                need(&self.name, "name", &mut out);
                need(&self.value, "value", &mut out);
                if let Some(l) = &self.location
                    && l != "header"
                    && l != "query"
                {
                    out.push(format!("`auth.in`: `{l}` is not `header` or `query`"));
                }
            }
            "bearer" => need(&self.token, "token", &mut out),
            "basic" => {
                need(&self.username, "username", &mut out);
                if self.password.is_none() {
                    out.push("`auth.password` is required for `type: basic`".into());
                }
            }
            "oauth2" => {
                need(&self.token_url, "token_url", &mut out);
                match self.grant.as_deref() {
                    Some("refresh_token") => need(&self.refresh_token, "refresh_token", &mut out),
                    Some("client_credentials") => {}
                    Some(g) => out.push(format!(
                        "`auth.grant`: `{g}` is not `refresh_token` or `client_credentials`"
                    )),
                    None => out.push(
                        "`auth.grant` is required for `type: oauth2` (refresh_token or client_credentials)"
                            .into(),
                    ),
                }
                if let Some(c) = &self.client_auth
                    && c != "body"
                    && c != "basic"
                {
                    out.push(format!(
                        "`auth.client_auth`: `{c}` is not `body` or `basic`"
                    ));
                }
            }
            other => out.push(format!(
                "`auth.type`: unknown `{other}` (use none, api_key, bearer, basic or oauth2)"
            )),
        }
        out
    }

    /// Every string field, for template checks.
    pub fn values(&self) -> Vec<&str> {
        [
            &self.name,
            &self.value,
            &self.token,
            &self.username,
            &self.password,
            &self.token_url,
            &self.client_id,
            &self.client_secret,
            &self.refresh_token,
            &self.scope,
        ]
        .into_iter()
        .filter_map(|v| v.as_deref())
        .collect()
    }

    /// The same with every value rendered by `f` (templates, then secret references).
    pub fn map(&self, f: &mut dyn FnMut(&str) -> Result<String, String>) -> Result<Self, String> {
        let mut m = |v: &Option<String>| v.as_deref().map(&mut *f).transpose();
        Ok(Self {
            kind: self.kind.clone(),
            location: self.location.clone(),
            name: m(&self.name)?,
            value: m(&self.value)?,
            token: m(&self.token)?,
            username: m(&self.username)?,
            password: m(&self.password)?,
            grant: self.grant.clone(),
            token_url: m(&self.token_url)?,
            client_id: m(&self.client_id)?,
            client_secret: m(&self.client_secret)?,
            refresh_token: m(&self.refresh_token)?,
            scope: m(&self.scope)?,
            client_auth: self.client_auth.clone(),
        })
    }

    /// Remembers every credential for masking.
    pub fn remember(&self) {
        for v in [
            &self.value,
            &self.token,
            &self.password,
            &self.client_secret,
            &self.refresh_token,
        ]
        .into_iter()
        .flatten()
        {
            socle_core::secrets::remember(v);
        }
    }
}

/// An access token and when it stops being usable.
#[derive(Debug, Clone)]
struct Token {
    access: String,
    expires: Option<Instant>,
}

/// OAuth2 access tokens of a source, one per account, obtained on first use and
/// refreshed a minute before they expire or after a 401.
#[derive(Default)]
pub struct Tokens {
    cache: tokio::sync::Mutex<HashMap<String, Token>>,
    /// Grants obtained (for the run summary and tests).
    pub grants: std::sync::atomic::AtomicU64,
}

/// Refresh this long before the announced expiry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

impl Tokens {
    /// Forgets an account's token (after a 401).
    pub async fn invalidate(&self, account: &str) {
        self.cache.lock().await.remove(account);
    }

    /// The account's access token, obtained from the token endpoint when needed.
    pub async fn get(
        &self,
        http: &Http,
        base: &str,
        auth: &RawAuth,
        account: &str,
    ) -> Result<String, String> {
        let mut cache = self.cache.lock().await;
        if let Some(t) = cache.get(account)
            && t.expires.is_none_or(|e| Instant::now() + EXPIRY_MARGIN < e)
        {
            return Ok(t.access.clone());
        }
        let token_url = auth.token_url.as_deref().unwrap_or_default();
        let url = super::join_url(base, token_url).map_err(|e| format!("`auth.token_url`: {e}"))?;
        let mut form = vec![(
            "grant_type".to_string(),
            auth.grant.clone().unwrap_or_default(),
        )];
        if auth.grant.as_deref() == Some("refresh_token") {
            form.push((
                "refresh_token".into(),
                auth.refresh_token.clone().unwrap_or_default(),
            ));
        }
        if let Some(s) = &auth.scope {
            form.push(("scope".into(), s.clone()));
        }
        let mut req = Request::get(url);
        req.method = reqwest::Method::POST;
        req.headers
            .push(("Accept".into(), "application/json".into()));
        let client_id = auth.client_id.clone().unwrap_or_default();
        let client_secret = auth.client_secret.clone().unwrap_or_default();
        if auth.client_auth.as_deref() == Some("basic") {
            req.basic = Some((client_id, client_secret));
        } else {
            if !client_id.is_empty() {
                form.push(("client_id".into(), client_id));
            }
            if !client_secret.is_empty() {
                form.push(("client_secret".into(), client_secret));
            }
        }
        req.form = Some(form);
        let resp = http.send(&req).await.map_err(|e| e.to_string())?;
        if !resp.status.is_success() {
            return Err(format!(
                "OAuth2 token request for account `{account}` ({}): HTTP {}: {}",
                req.describe(),
                resp.status,
                resp.excerpt(300)
            ));
        }
        let body: serde_json::Value = serde_json::from_slice(&resp.body).map_err(|e| {
            format!(
                "OAuth2 token response for account `{account}` is not JSON ({e}): {}",
                resp.excerpt(200)
            )
        })?;
        let access = body
            .get("access_token")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                format!("OAuth2 token response for account `{account}` has no `access_token`")
            })?
            .to_string();
        socle_core::secrets::remember(&access);
        let expires = body
            .get("expires_in")
            .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
            .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.0)));
        self.grants
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        cache.insert(
            account.to_string(),
            Token {
                access: access.clone(),
                expires,
            },
        );
        Ok(access)
    }
}

/// Adds the credentials of `auth` to a request (OAuth2 tokens come from `tokens`).
pub async fn apply(
    req: &mut Request,
    auth: &RawAuth,
    tokens: &Tokens,
    http: &Http,
    base: &str,
    account: &str,
) -> Result<(), String> {
    match auth.kind.as_str() {
        "api_key" => {
            let name = auth.name.clone().unwrap_or_default();
            let value = auth.value.clone().unwrap_or_default();
            if auth.location.as_deref() == Some("query") {
                // A next-page URL may carry the key already: set it once.
                let others: Vec<(String, String)> = req
                    .url
                    .query_pairs()
                    .filter(|(k, _)| *k != name.as_str())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                req.url
                    .query_pairs_mut()
                    .clear()
                    .extend_pairs(others)
                    .append_pair(&name, &value);
            } else {
                req.headers.push((name, value));
            }
        }
        "bearer" => req.headers.push((
            "Authorization".into(),
            format!("Bearer {}", auth.token.as_deref().unwrap_or_default()),
        )),
        "basic" => {
            req.basic = Some((
                auth.username.clone().unwrap_or_default(),
                auth.password.clone().unwrap_or_default(),
            ))
        }
        "oauth2" => {
            let token = tokens.get(http, base, auth, account).await?;
            req.headers
                .push(("Authorization".into(), format!("Bearer {token}")));
        }
        _ => {}
    }
    Ok(())
}
