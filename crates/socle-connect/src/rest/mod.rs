//! `rest`: JSON HTTP APIs — authentication ([`auth`]), accounts as partitions,
//! templated requests, pagination and record selection ([`paginate`]), rate limits and
//! retries ([`crate::http`]), fan-out over lists and dates with a concurrency limit,
//! and incremental cursors.
//!
//! ```yaml
//! type: rest
//! base_url: https://youtubeanalytics.googleapis.com
//! auth:
//!   type: oauth2
//!   grant: refresh_token
//!   token_url: https://oauth2.googleapis.com/token
//!   client_id: "${env:YT_CLIENT_ID}"
//!   client_secret: "${secret:yt_client_secret}"
//!   refresh_token: "{{ account.refresh_token }}"
//! accounts:                        # each a partition; records get `_account`
//!   - { name: alpha, refresh_token: "${secret:yt_alpha}" }
//!   - { name: beta, refresh_token: "${secret:yt_beta}" }
//! concurrency: 4                   # partitions fetched at once (default 4)
//! rate_limit: 5                    # requests per second (see crate::http for retry, timeout)
//! streams:
//!   channel_daily:
//!     path: /v2/reports
//!     params:
//!       ids: channel==MINE
//!       startDate: "{{ day }}"
//!       endDate: "{{ day }}"
//!       metrics: "{{ report.metrics }}"
//!       dimensions: day
//!     records: { rows: /rows, header: /columnHeaders }
//!     for_each:                    # accounts × report × day
//!       report: [{ name: views, metrics: "views,likes" }, { name: money, metrics: estimatedRevenue }]
//!       day: { start: "{{ ds }}", end: "{{ ds }}" }
//!     write: merge
//!     primary_key: [_account, _report, day]
//!   events:
//!     path: /events
//!     params: { updated_since: "{{ cursor }}" }
//!     paginate: { type: cursor, next: /meta/next_cursor, size_param: limit, size: 100 }
//!     records: /events
//!     incremental: { cursor_field: updated_at, initial: "2024-01-01T00:00:00Z", lookback: 1h }
//!     write: merge
//!     primary_key: [id]
//! ```
//!
//! Templates see the run's variables ([`crate::template`]), `account` (the account's
//! fields), each `for_each` name, `page` (page pagination) and `cursor`. Each record gets
//! `_<name>` per `for_each` list (an item's `name`, or the item itself). An HTTP 4xx
//! other than 429 fails the stream with an excerpt of the body (after one token refresh
//! on 401 for OAuth2); a body that is not JSON is rejected with its URL and page.

pub mod auth;
mod fetch;
pub mod paginate;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;
use socle_core::ConfigError;
use socle_core::duration::DurationText;

use self::auth::{RawAuth, Tokens};
use self::paginate::{Paginate, RawPaginate, RawRecords};
use crate::config::{SourceCommon, SourceFile, StreamConfig, common, loc};
use crate::http::{Http, HttpSettings, RawRetry};
use crate::{Result, Source, StreamContext};

crate::raw_stream! {
    pub struct RawRestStream {
        path: Spanned<String>,
        method: Option<Spanned<String>>,
        params: Option<Spanned<BTreeMap<String, serde_json::Value>>>,
        headers: Option<Spanned<BTreeMap<String, String>>>,
        body: Option<serde_json::Value>,
        records: Option<Spanned<RawRecords>>,
        paginate: Option<Spanned<RawPaginate>>,
        incremental: Option<Spanned<RawIncremental>>,
        for_each: Option<Spanned<BTreeMap<String, RawFanOut>>>,
    }
}

crate::raw_source! {
    pub struct RawRestSource<RawRestStream> {
        base_url: Spanned<String>,
        auth: Option<Spanned<RawAuth>>,
        accounts: Option<Spanned<Vec<Spanned<BTreeMap<String, serde_json::Value>>>>>,
        headers: Option<Spanned<BTreeMap<String, String>>>,
        params: Option<Spanned<BTreeMap<String, serde_json::Value>>>,
        records: Option<Spanned<RawRecords>>,
        paginate: Option<Spanned<RawPaginate>>,
        concurrency: Option<Spanned<u32>>,
        timeout: Option<Spanned<DurationText>>,
        user_agent: Option<String>,
        rate_limit: Option<Spanned<f64>>,
        retry: Option<Spanned<RawRetry>>,
    }
}

/// `incremental:` of a stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIncremental {
    /// The record field whose highest value is the next run's `cursor`.
    pub cursor_field: String,
    /// `cursor` on the first run and after `--full-refresh` (a template).
    pub initial: Option<String>,
    /// Subtracted from a timestamp cursor, to catch records that arrive late.
    pub lookback: Option<DurationText>,
}

/// A `for_each` list: values (scalars or maps), or every day between two dates.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawFanOut {
    List(Vec<serde_json::Value>),
    Dates { start: String, end: String },
}

/// Most items a `for_each` dates range may produce.
const MAX_FAN_OUT: usize = 10_000;

/// A stream, validated.
#[derive(Debug, Clone)]
pub(crate) struct RestStream {
    pub method: reqwest::Method,
    pub path: String,
    pub params: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<serde_json::Value>,
    pub records: RawRecords,
    pub paginate: Paginate,
    pub max_pages: u64,
    pub incremental: Option<RawIncremental>,
    pub lookback: Option<std::time::Duration>,
    pub for_each: Vec<(String, RawFanOut)>,
}

/// An account: its name, its fields (with secret references) and its own `auth`.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub name: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub auth: Option<RawAuth>,
}

/// A `rest` source.
pub struct RestSource {
    common: SourceCommon,
    pub(crate) base_url: String,
    pub(crate) auth: RawAuth,
    pub(crate) accounts: Vec<Account>,
    pub(crate) concurrency: usize,
    pub(crate) streams: BTreeMap<String, RestStream>,
    pub(crate) http: Http,
    pub(crate) tokens: Tokens,
}

/// Query parameter values as written: text, numbers and booleans; null leaves the
/// parameter out.
fn param_list(m: &BTreeMap<String, serde_json::Value>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (k, v) in m {
        match v {
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => out.push((k.clone(), s.clone())),
            serde_json::Value::Number(n) => out.push((k.clone(), n.to_string())),
            serde_json::Value::Bool(b) => out.push((k.clone(), b.to_string())),
            other => {
                return Err(format!(
                    "parameter `{k}`: {other} is not a text, number or boolean"
                ));
            }
        }
    }
    Ok(out)
}

/// Parses a `type: rest` source file.
pub fn parse(file: &SourceFile) -> std::result::Result<Box<dyn Source>, Vec<ConfigError>> {
    let raw: RawRestSource = file.parse()?;
    let (common, mut errors) = common(file, &raw);
    let check_template = |t: &str, at: &socle_core::Location, errors: &mut Vec<ConfigError>| {
        if let Err(e) = crate::template::check(t) {
            errors.push(file.error(*at, e));
        }
        if let Err(e) = socle_core::secrets::check_syntax(t) {
            errors.push(file.error(*at, e.to_string()));
        }
    };
    let base_at = loc(&raw.base_url);
    check_template(&raw.base_url.value, &base_at, &mut errors);
    if !raw.base_url.value.contains("{{")
        && !raw.base_url.value.contains("${")
        && url::Url::parse(&raw.base_url.value).is_err()
    {
        errors.push(
            file.error(
                base_at,
                format!("`base_url`: `{}` is not a URL", raw.base_url.value),
            )
            .with_hint("write the scheme and host: https://api.example.com/v1"),
        );
    }
    let auth = raw
        .auth
        .as_ref()
        .map(|a| a.value.clone())
        .unwrap_or(RawAuth {
            kind: "none".into(),
            ..Default::default()
        });
    if let Some(a) = &raw.auth {
        for m in a.value.check() {
            errors.push(file.error(loc(a), m));
        }
        for v in a.value.values() {
            check_template(v, &loc(a), &mut errors);
        }
    }
    let mut accounts = Vec::new();
    if let Some(list) = &raw.accounts {
        if list.value.is_empty() {
            errors.push(file.error(loc(list), "`accounts` is empty: remove it or list accounts"));
        }
        for a in &list.value {
            let at = loc(a);
            let mut fields = serde_json::Map::new();
            let mut own_auth = None;
            for (k, v) in &a.value {
                if k == "auth" {
                    match serde_json::from_value::<RawAuth>(v.clone()) {
                        Ok(x) => {
                            for m in x.check() {
                                errors.push(file.error(at, format!("account: {m}")));
                            }
                            own_auth = Some(x);
                        }
                        Err(e) => errors.push(file.error(at, format!("account `auth`: {e}"))),
                    }
                } else {
                    if let Some(s) = v.as_str() {
                        check_template(s, &at, &mut errors);
                    }
                    fields.insert(k.clone(), v.clone());
                }
            }
            let name = match fields.get("name").and_then(|n| n.as_str()) {
                Some(n) if !n.trim().is_empty() => n.to_string(),
                _ => {
                    errors.push(
                        file.error(at, "an account needs a `name` (it fills `_account`)")
                            .with_hint("- { name: alpha, refresh_token: \"${secret:alpha_rt}\" }"),
                    );
                    continue;
                }
            };
            if accounts.iter().any(|x: &Account| x.name == name) {
                errors.push(file.error(at, format!("account `{name}` is listed twice")));
            }
            accounts.push(Account {
                name,
                fields,
                auth: own_auth,
            });
        }
    }
    let mut source_params = Vec::new();
    if let Some(p) = &raw.params {
        match param_list(&p.value) {
            Ok(v) => source_params = v,
            Err(m) => errors.push(file.error(loc(p), format!("`params`: {m}"))),
        }
    }
    let source_headers: Vec<(String, String)> = raw
        .headers
        .as_ref()
        .map(|h| h.value.clone().into_iter().collect())
        .unwrap_or_default();
    let concurrency = match &raw.concurrency {
        Some(c) if c.value == 0 => {
            errors.push(file.error(loc(c), "`concurrency` must be at least 1"));
            1
        }
        Some(c) => c.value as usize,
        None => 4,
    };
    let settings = HttpSettings::parse(
        file,
        raw.timeout.as_ref(),
        raw.user_agent.as_ref(),
        raw.rate_limit.as_ref(),
        raw.retry.as_ref(),
        &mut errors,
    );
    let mut streams = BTreeMap::new();
    for (name, s) in &raw.streams.value {
        let at = loc(s);
        let s = &s.value;
        let mut err = |at: socle_core::Location, m: String| {
            errors.push(file.error(at, format!("stream `{name}`: {m}")));
        };
        let method = match s.method.as_ref().map(|m| m.value.to_ascii_uppercase()) {
            None => reqwest::Method::GET,
            Some(m) if m == "GET" => reqwest::Method::GET,
            Some(m) if m == "POST" => reqwest::Method::POST,
            Some(m) => {
                err(
                    loc(s.method.as_ref().expect("set")),
                    format!("`method` `{m}` is not GET or POST"),
                );
                reqwest::Method::GET
            }
        };
        let mut params = source_params.clone();
        if let Some(p) = &s.params {
            match param_list(&p.value) {
                Ok(v) => {
                    params.retain(|(k, _)| !v.iter().any(|(k2, _)| k2 == k));
                    params.extend(v);
                }
                Err(m) => err(loc(p), format!("`params`: {m}")),
            }
        }
        let mut headers = source_headers.clone();
        if let Some(h) = &s.headers {
            headers.retain(|(k, _)| !h.value.keys().any(|k2| k2.eq_ignore_ascii_case(k)));
            headers.extend(h.value.clone());
        }
        let path_has_page = s.path.value.contains("{{") && s.path.value.contains("page");
        let raw_paginate = s
            .paginate
            .as_ref()
            .or(raw.paginate.as_ref())
            .map(|p| p.value.clone())
            .unwrap_or_else(|| RawPaginate {
                kind: "none".into(),
                ..Default::default()
            });
        let paginate = match Paginate::parse(&raw_paginate, path_has_page) {
            Ok(p) => p,
            Err(m) => {
                let l = s
                    .paginate
                    .as_ref()
                    .or(raw.paginate.as_ref())
                    .map(loc)
                    .unwrap_or(at);
                err(l, m);
                Paginate::None
            }
        };
        let records = s
            .records
            .as_ref()
            .or(raw.records.as_ref())
            .map(|r| r.value.clone())
            .unwrap_or(RawRecords::Pointer(String::new()));
        let pointers = match &records {
            RawRecords::Pointer(p) => vec![p.clone()],
            RawRecords::Tabular { rows, header } => vec![rows.clone(), header.clone()],
        };
        for p in pointers {
            if !p.is_empty() && !p.starts_with('/') {
                let l = s
                    .records
                    .as_ref()
                    .or(raw.records.as_ref())
                    .map(loc)
                    .unwrap_or(at);
                err(
                    l,
                    format!("`records`: `{p}` is not a JSON pointer (write `/{p}`)"),
                );
            }
        }
        let mut lookback = None;
        if let Some(inc) = &s.incremental {
            if let Some(l) = &inc.value.lookback {
                lookback = l.get();
                if lookback.is_none() {
                    err(loc(inc), "`incremental.lookback` is not a duration".into());
                }
            }
            if inc.value.cursor_field.trim().is_empty() {
                err(loc(inc), "`incremental.cursor_field` is empty".into());
            }
        }
        let for_each: Vec<(String, RawFanOut)> = s
            .for_each
            .as_ref()
            .map(|f| f.value.clone().into_iter().collect())
            .unwrap_or_default();
        for (n, _) in &for_each {
            if ["account", "page", "cursor", "ds", "state"].contains(&n.as_str()) {
                err(
                    loc(s.for_each.as_ref().expect("set")),
                    format!("`for_each`: `{n}` is a reserved template variable; pick another name"),
                );
            }
        }
        let mut templates: Vec<&str> = vec![&s.path.value];
        templates.extend(params.iter().map(|(_, v)| v.as_str()));
        templates.extend(headers.iter().map(|(_, v)| v.as_str()));
        for t in templates {
            check_template(t, &at, &mut errors);
        }
        streams.insert(
            name.clone(),
            RestStream {
                method,
                path: s.path.value.clone(),
                params,
                headers,
                body: s.body.clone(),
                records,
                paginate,
                max_pages: raw_paginate
                    .max_pages
                    .unwrap_or(paginate::DEFAULT_MAX_PAGES),
                incremental: s.incremental.as_ref().map(|i| i.value.clone()),
                lookback,
                for_each,
            },
        );
    }
    let http = match Http::new(settings) {
        Ok(h) => Some(h),
        Err(m) => {
            errors.push(file.error(loc(&raw.base_url), m));
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Box::new(RestSource {
        common,
        base_url: raw.base_url.value.clone(),
        auth,
        accounts,
        concurrency,
        streams,
        http: http.expect("no errors"),
        tokens: Tokens::default(),
    }))
}

/// `path` under `base` (`https://api/v1` + `/events` = `https://api/v1/events`), or
/// `path` itself when it is a full URL.
pub(crate) fn join_url(base: &str, path: &str) -> std::result::Result<url::Url, String> {
    if path.contains("://") {
        return url::Url::parse(path).map_err(|e| format!("`{path}` is not a URL: {e}"));
    }
    let joined = if path.is_empty() {
        base.to_string()
    } else {
        format!(
            "{}/{}",
            base.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    };
    url::Url::parse(&joined).map_err(|e| format!("`{joined}` is not a URL: {e}"))
}

#[async_trait::async_trait]
impl Source for RestSource {
    fn common(&self) -> &SourceCommon {
        &self.common
    }

    async fn extract(&self, stream: &StreamConfig, ctx: &mut StreamContext<'_>) -> Result<()> {
        fetch::extract(self, &self.streams[&stream.name], ctx).await
    }
}
