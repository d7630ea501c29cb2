//! HTTP for the `rest` and `scrape` connectors: one client per source with a timeout,
//! a User-Agent, a rate limit shared by all its requests, and retries with exponential
//! backoff and jitter on 429, 5xx, timeouts and connection errors, honouring
//! `Retry-After` (seconds or an HTTP date).
//!
//! Shared settings, under the source:
//!
//! ```yaml
//! timeout: 30s                  # per request (default 30s)
//! user_agent: "acme-data/1.0"   # default socle/<version>
//! rate_limit: 5                 # requests per second for the whole source (default none)
//! retry:
//!   attempts: 5                 # tries per request, the first included (default 5)
//!   backoff: 1s                 # first wait; doubled each retry, with jitter (default 1s)
//!   max_backoff: 60s            # longest wait between tries (default 60s)
//!   max_retry_after: 5m         # a longer Retry-After fails the request (default 5m)
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_saphyr::Spanned;
use socle_core::ConfigError;
use socle_core::duration::DurationText;

use crate::config::{SourceFile, loc};
use crate::infer::excerpt;

/// `retry:` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub attempts: Option<u32>,
    pub backoff: Option<DurationText>,
    pub max_backoff: Option<DurationText>,
    pub max_retry_after: Option<DurationText>,
}

/// How failed requests are tried again.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries per request, the first included.
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before try `attempt + 1` (after `attempt` failures): the backoff doubled
    /// per failure, capped, times a random factor in [0.5, 1] ([`socle_core::backoff`]).
    pub fn delay(&self, attempt: u32) -> Duration {
        socle_core::backoff::Backoff {
            base: self.backoff,
            max: self.max_backoff,
            jitter: socle_core::backoff::Jitter::Below(0.5),
        }
        .delay(attempt)
    }
}

/// Client settings of a source, validated.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub timeout: Duration,
    pub user_agent: String,
    /// Requests per second, for the whole source.
    pub rate_limit: Option<f64>,
    pub retry: RetryPolicy,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            user_agent: default_user_agent(),
            rate_limit: None,
            retry: RetryPolicy::default(),
        }
    }
}

pub fn default_user_agent() -> String {
    format!("socle/{}", env!("CARGO_PKG_VERSION"))
}

fn duration_field(
    file: &SourceFile,
    at: &Spanned<RawRetry>,
    field: &str,
    raw: &Option<DurationText>,
    errors: &mut Vec<ConfigError>,
) -> Option<Duration> {
    let raw = raw.as_ref()?;
    let d = raw.get();
    if d.is_none() {
        errors.push(
            file.error(loc(at), format!("`retry.{field}` is not a duration"))
                .with_hint(socle_core::duration::HINT),
        );
    }
    d
}

impl HttpSettings {
    /// Validates the shared client fields of a source file.
    pub fn parse(
        file: &SourceFile,
        timeout: Option<&Spanned<DurationText>>,
        user_agent: Option<&String>,
        rate_limit: Option<&Spanned<f64>>,
        retry: Option<&Spanned<RawRetry>>,
        errors: &mut Vec<ConfigError>,
    ) -> Self {
        let mut s = HttpSettings::default();
        if let Some(t) = timeout {
            match t.value.get() {
                Some(d) if !d.is_zero() => s.timeout = d,
                _ => errors.push(
                    file.error(loc(t), "`timeout` is not a duration")
                        .with_hint(socle_core::duration::HINT),
                ),
            }
        }
        if let Some(ua) = user_agent {
            s.user_agent = ua.clone();
        }
        if let Some(r) = rate_limit {
            if r.value > 0.0 && r.value.is_finite() && 1.0 / r.value <= MAX_REQUEST_INTERVAL_SECS {
                s.rate_limit = Some(r.value);
            } else {
                errors.push(
                    file.error(
                        loc(r),
                        "`rate_limit` must be a positive number of requests per second",
                    )
                    .with_hint("0.5 is one request every two seconds"),
                );
            }
        }
        if let Some(r) = retry {
            if let Some(a) = r.value.attempts {
                if a == 0 {
                    errors.push(file.error(
                        loc(r),
                        "`retry.attempts` counts the first try: use 1 for no retries",
                    ));
                }
                s.retry.attempts = a.max(1);
            }
            if let Some(d) = duration_field(file, r, "backoff", &r.value.backoff, errors) {
                s.retry.backoff = d;
            }
            if let Some(d) = duration_field(file, r, "max_backoff", &r.value.max_backoff, errors) {
                s.retry.max_backoff = d;
            }
            if let Some(d) =
                duration_field(file, r, "max_retry_after", &r.value.max_retry_after, errors)
            {
                s.retry.max_retry_after = d;
            }
        }
        s
    }
}

/// The longest wait between two requests that a `rate_limit` may ask for (about 31
/// years): a smaller rate is a mistake, and its wait would not fit the clock (a rate of
/// `1e-300` panicked when the client was built).
const MAX_REQUEST_INTERVAL_SECS: f64 = 1e9;

/// Spaces requests evenly: at most `rate` per second over the whole source.
struct Limiter {
    interval: Duration,
    next: tokio::sync::Mutex<Instant>,
}

impl Limiter {
    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot.into()).await;
    }
}

/// A request to send (cloned for each try).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: reqwest::Method,
    pub url: url::Url,
    pub headers: Vec<(String, String)>,
    /// A form body (`application/x-www-form-urlencoded`).
    pub form: Option<Vec<(String, String)>>,
    pub json: Option<serde_json::Value>,
    pub basic: Option<(String, String)>,
}

impl Request {
    pub fn get(url: url::Url) -> Self {
        Self {
            method: reqwest::Method::GET,
            url,
            headers: Vec::new(),
            form: None,
            json: None,
            basic: None,
        }
    }

    /// `GET https://…` with credentials masked, for messages.
    pub fn describe(&self) -> String {
        socle_core::secrets::redact(&format!("{} {}", self.method, self.url))
    }
}

/// A response read whole.
#[derive(Debug)]
pub struct Response {
    pub status: reqwest::StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The URL answered (after redirects).
    pub url: url::Url,
}

impl Response {
    /// The start of the body as text, whitespace collapsed, for error messages.
    pub fn excerpt(&self, max: usize) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        socle_core::secrets::redact(&excerpt(&collapsed, max))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Counters of a client.
#[derive(Debug, Default)]
pub struct HttpStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub bytes: AtomicU64,
}

/// A source's HTTP client.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    settings: Arc<HttpSettings>,
    limiter: Option<Arc<Limiter>>,
    pub stats: Arc<HttpStats>,
}

/// Why a request failed after its tries.
#[derive(Debug)]
pub enum HttpFailure {
    /// No response (connection refused, timeout, TLS...).
    Transport(String),
    /// The server kept answering 429 or 5xx, or asked to wait too long.
    Status(String),
}

impl std::fmt::Display for HttpFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpFailure::Transport(m) => f.write_str(m),
            HttpFailure::Status(m) => f.write_str(m),
        }
    }
}

impl Http {
    pub fn new(settings: HttpSettings) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(30)))
            .user_agent(settings.user_agent.clone())
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let limiter = settings.rate_limit.map(|rate| {
            Arc::new(Limiter {
                interval: Duration::try_from_secs_f64((1.0 / rate).min(MAX_REQUEST_INTERVAL_SECS))
                    .unwrap_or_default(),
                next: tokio::sync::Mutex::new(Instant::now()),
            })
        });
        Ok(Self {
            client,
            settings: Arc::new(settings),
            limiter,
            stats: Arc::new(HttpStats::default()),
        })
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    fn build(&self, req: &Request) -> reqwest::RequestBuilder {
        let mut b = self.client.request(req.method.clone(), req.url.clone());
        for (k, v) in &req.headers {
            b = b.header(k, v);
        }
        if let Some((u, p)) = &req.basic {
            b = b.basic_auth(u, Some(p));
        }
        if let Some(form) = &req.form {
            b = b.form(form);
        }
        if let Some(json) = &req.json {
            b = b.json(json);
        }
        b
    }

    /// Sends `req`, trying again on 429, 5xx, timeouts and connection errors. Any other
    /// answer (2xx, 3xx, 4xx) is returned for the caller to judge.
    pub async fn send(&self, req: &Request) -> Result<Response, HttpFailure> {
        let retry = &self.settings.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if let Some(l) = &self.limiter {
                l.wait().await;
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let outcome = match self.build(req).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let url = resp.url().clone();
                    match resp.bytes().await {
                        Ok(body) => {
                            self.stats
                                .bytes
                                .fetch_add(body.len() as u64, Ordering::Relaxed);
                            Ok(Response {
                                status,
                                headers,
                                body,
                                url,
                            })
                        }
                        Err(e) => Err(transport_message(req, &e)),
                    }
                }
                Err(e) => Err(transport_message(req, &e)),
            };
            let wait = match &outcome {
                Ok(r) if r.status.as_u16() == 429 || r.status.is_server_error() => {
                    match retry_after(r) {
                        Some(d) if d > retry.max_retry_after => {
                            let r = outcome.expect("a response");
                            let m = format!(
                                "{}: HTTP {} asked to wait {} s (Retry-After), longer than retry.max_retry_after ({} s)",
                                req.describe(),
                                r.status,
                                d.as_secs(),
                                retry.max_retry_after.as_secs()
                            );
                            return Err(HttpFailure::Status(m));
                        }
                        Some(d) => d,
                        None => retry.delay(attempt),
                    }
                }
                Ok(_) => return Ok(outcome.expect("a response")),
                Err(_) => retry.delay(attempt),
            };
            if attempt >= retry.attempts {
                return Err(match outcome {
                    Ok(r) => {
                        let m = format!(
                            "{}: HTTP {} after {attempt} tries: {}",
                            req.describe(),
                            r.status,
                            r.excerpt(300)
                        );
                        HttpFailure::Status(m)
                    }
                    Err(m) => HttpFailure::Transport(format!("{m} (after {attempt} tries)")),
                });
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            match &outcome {
                Ok(r) => tracing::info!(
                    "{}: HTTP {}, try {} of {} in {:.1} s",
                    req.describe(),
                    r.status,
                    attempt + 1,
                    retry.attempts,
                    wait.as_secs_f64()
                ),
                Err(m) => tracing::info!(
                    "{m}; try {} of {} in {:.1} s",
                    attempt + 1,
                    retry.attempts,
                    wait.as_secs_f64()
                ),
            }
            tokio::time::sleep(wait).await;
        }
    }
}

fn transport_message(req: &Request, e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    let detail = if detail.is_empty() || e.is_timeout() {
        String::new()
    } else {
        format!(" ({detail})")
    };
    socle_core::secrets::redact(&format!("{}: {what}{detail}", req.describe()))
}

/// The wait a 429 or 503 asks for: `Retry-After` in seconds or as an HTTP date.
pub fn retry_after(r: &Response) -> Option<Duration> {
    let v = r.header("retry-after")?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        // A wait past `Duration::MAX` (`1e300`) is the longest wait, not a panic.
        return (secs >= 0.0 && secs.is_finite())
            .then(|| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let p = RetryPolicy {
            attempts: 10,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(1),
        };
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (4, 500), (9, 500)] {
            for _ in 0..20 {
                let d = p.delay(attempt).as_millis() as u64;
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d} ms");
            }
        }
    }

    /// Found while writing the fuzz tests: a server's `Retry-After` past `Duration::MAX`
    /// panicked the connector.
    #[test]
    fn regression_a_retry_after_past_the_largest_duration() {
        let response = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("retry-after", value.parse().unwrap());
            Response {
                status: reqwest::StatusCode::TOO_MANY_REQUESTS,
                headers,
                body: Bytes::new(),
                url: url::Url::parse("http://127.0.0.1/").unwrap(),
            }
        };
        assert_eq!(retry_after(&response("1e300")), Some(Duration::MAX));
        assert_eq!(
            retry_after(&response("1.5")),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(retry_after(&response("-1")), None);
    }
}
