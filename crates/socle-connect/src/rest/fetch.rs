//! Fetching a `rest` stream: its partitions (accounts × `for_each` items) run
//! concurrently up to the source's `concurrency`, each walking its pages; pages reach
//! the sink through a bounded channel, so memory holds a few pages whatever the stream's
//! size. The stream's state holds one cursor per partition.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use futures::TryStreamExt;
use serde_json::{Map, Value};

use super::paginate::{self, Next, Position};
use super::{Account, RawFanOut, RestSource, RestStream, join_url};
use crate::http::Request;
use crate::infer::{excerpt, parse_timestamp};
use crate::{ConnectError, Result, RowMeta, StreamContext};

/// Pages in flight between the fetchers and the sink.
const CHANNEL_PAGES: usize = 8;

/// One partition: an account and one item of each `for_each` list.
struct Partition {
    /// `alpha/views/2024-06-01`: names the partition in state and messages.
    key: String,
    account: Option<String>,
    account_vars: Value,
    auth: super::auth::RawAuth,
    items: Vec<(String, Value)>,
}

enum Page {
    Records {
        records: Vec<Value>,
        account: Option<String>,
        location: String,
        bytes: u64,
    },
    Reject {
        raw: String,
        reason: String,
        location: String,
        bytes: u64,
    },
}

type Resolver<'a> = &'a (dyn socle_core::secrets::Resolver + Sync);

/// Renders a template, then resolves its secret references.
fn render(t: &str, vars: &Map<String, Value>, resolver: Resolver<'_>) -> Result<String, String> {
    let s = crate::template::render(t, vars)?;
    socle_core::secrets::resolve(&s, resolver).map_err(|e| e.to_string())
}

fn render_json(
    v: &Value,
    vars: &Map<String, Value>,
    resolver: Resolver<'_>,
) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => Value::String(render(s, vars, resolver)?),
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_json(x, vars, resolver))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), render_json(x, vars, resolver)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// An item's name in partition keys and `_<name>` columns.
fn item_label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("name")
            .map(item_label)
            .unwrap_or_else(|| v.to_string()),
        other => other.to_string(),
    }
}

/// Orders cursor values: timestamps by instant, numbers by value, text by text.
fn cursor_cmp(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => match (parse_timestamp(x), parse_timestamp(y)) {
            (Some(tx), Some(ty)) => tx.cmp(&ty),
            _ => x.cmp(y),
        },
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// The `cursor` a partition's requests use: the committed one minus the lookback.
fn cursor_var(cursor: &Value, lookback: Option<std::time::Duration>) -> Value {
    match (cursor, lookback) {
        (Value::String(s), Some(l)) => match parse_timestamp(s) {
            Some(micros) => {
                let t = chrono::DateTime::from_timestamp_micros(micros - l.as_micros() as i64)
                    .unwrap_or_default();
                Value::String(t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            }
            None => cursor.clone(),
        },
        _ => cursor.clone(),
    }
}

fn dates(start: &str, end: &str) -> Result<Vec<Value>, String> {
    let parse = |s: &str| {
        chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| format!("`for_each`: `{s}` is not a date (YYYY-MM-DD)"))
    };
    let (mut d, end) = (parse(start)?, parse(end)?);
    let mut out = Vec::new();
    while d <= end {
        if out.len() >= super::MAX_FAN_OUT {
            return Err(format!(
                "`for_each`: {start} to {end} is more than {} days",
                super::MAX_FAN_OUT
            ));
        }
        out.push(Value::String(d.format("%Y-%m-%d").to_string()));
        d = d.succ_opt().ok_or("date out of range")?;
    }
    Ok(out)
}

fn partitions(
    src: &RestSource,
    spec: &RestStream,
    vars: &Map<String, Value>,
    resolver: Resolver<'_>,
) -> Result<Vec<Partition>, String> {
    let mut accounts: Vec<(Option<String>, Value, super::auth::RawAuth)> = Vec::new();
    let plain = [Account {
        name: String::new(),
        fields: Map::new(),
        auth: None,
    }];
    let list: &[Account] = if src.accounts.is_empty() {
        &plain
    } else {
        &src.accounts
    };
    for a in list {
        let mut fields = Map::new();
        for (k, v) in &a.fields {
            let v = render_json(v, vars, resolver)
                .map_err(|e| format!("account `{}` field `{k}`: {e}", a.name))?;
            fields.insert(k.clone(), v);
        }
        let account_vars = Value::Object(fields);
        let mut avars = vars.clone();
        avars.insert("account".into(), account_vars.clone());
        let auth = a
            .auth
            .as_ref()
            .unwrap_or(&src.auth)
            .map(&mut |v| render(v, &avars, resolver))
            .map_err(|e| {
                if a.name.is_empty() {
                    format!("auth: {e}")
                } else {
                    format!("account `{}` auth: {e}", a.name)
                }
            })?;
        auth.remember();
        let name = (!a.name.is_empty()).then(|| a.name.clone());
        accounts.push((name, account_vars, auth));
    }
    let mut lists: Vec<(String, Vec<Value>)> = Vec::new();
    for (name, f) in &spec.for_each {
        let items = match f {
            RawFanOut::List(items) => items.clone(),
            RawFanOut::Dates { start, end } => dates(
                &render(start, vars, resolver)?,
                &render(end, vars, resolver)?,
            )?,
        };
        lists.push((name.clone(), items));
    }
    let mut combos: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (name, items) in &lists {
        let mut next = Vec::with_capacity(combos.len() * items.len());
        for c in &combos {
            for it in items {
                let mut c = c.clone();
                c.push((name.clone(), it.clone()));
                next.push(c);
            }
        }
        combos = next;
    }
    let mut out = Vec::new();
    for (account, account_vars, auth) in &accounts {
        for items in &combos {
            let key = account
                .iter()
                .cloned()
                .chain(items.iter().map(|(_, v)| item_label(v)))
                .collect::<Vec<_>>()
                .join("/");
            out.push(Partition {
                key,
                account: account.clone(),
                account_vars: account_vars.clone(),
                auth: auth.clone(),
                items: items.clone(),
            });
        }
    }
    Ok(out)
}

pub(super) async fn extract(
    src: &RestSource,
    spec: &RestStream,
    ctx: &mut StreamContext<'_>,
) -> Result<()> {
    let source_name = ctx.source.name.clone();
    let stream_name = ctx.stream.name.clone();
    let fail = |message: String| ConnectError::Fetch {
        source_name: source_name.clone(),
        stream: stream_name.clone(),
        message: socle_core::secrets::redact(&message),
    };
    let vars = ctx.template_vars();
    let resolver = ctx.resolver;
    let parts = partitions(src, spec, &vars, resolver).map_err(&fail)?;
    let committed: Map<String, Value> = ctx
        .state
        .get("cursors")
        .and_then(|c| c.as_object())
        .cloned()
        .unwrap_or_default();
    let initial = match spec.incremental.as_ref().and_then(|i| i.initial.as_ref()) {
        Some(t) => Value::String(render(t, &vars, resolver).map_err(&fail)?),
        None => Value::Null,
    };
    let cancel = ctx.cancel.clone();
    let found: std::sync::Mutex<BTreeMap<String, Value>> = Default::default();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Page>(CHANNEL_PAGES);
    let producer = {
        let (vars, committed, initial, found, cancel) =
            (&vars, &committed, &initial, &found, &cancel);
        async move {
            let result = futures::stream::iter(parts.iter().map(Ok))
                .try_for_each_concurrent(src.concurrency, |p| {
                    let tx = tx.clone();
                    async move {
                        let cursor = committed
                            .get(&p.key)
                            .cloned()
                            .unwrap_or_else(|| initial.clone());
                        let max =
                            fetch_partition(src, spec, p, vars, resolver, cursor, &tx, cancel)
                                .await
                                .map_err(|e| {
                                    if p.key.is_empty() {
                                        e
                                    } else {
                                        format!("[{}] {e}", p.key)
                                    }
                                })?;
                        if let Some(m) = max {
                            found.lock().expect("cursor map").insert(p.key.clone(), m);
                        }
                        Ok::<(), String>(())
                    }
                })
                .await;
            drop(tx);
            result
        }
    };
    let sink = &mut ctx.sink;
    let consumer = async move {
        while let Some(page) = rx.recv().await {
            match page {
                Page::Records {
                    records,
                    account,
                    location,
                    bytes,
                } => {
                    sink.files_in += 1;
                    sink.bytes_in += bytes;
                    let meta = RowMeta {
                        account,
                        file: None,
                    };
                    sink.push_json(records, &meta, &location).await?;
                }
                Page::Reject {
                    raw,
                    reason,
                    location,
                    bytes,
                } => {
                    sink.files_in += 1;
                    sink.bytes_in += bytes;
                    sink.reject(raw, reason, location);
                }
            }
        }
        Ok::<(), ConnectError>(())
    };
    let (produced, consumed) = tokio::join!(producer, consumer);
    consumed?;
    produced.map_err(&fail)?;
    if spec.incremental.is_some() {
        let mut cursors = committed.clone();
        for (k, v) in found.into_inner().expect("cursor map") {
            let newer = cursors
                .get(&k)
                .is_none_or(|old| cursor_cmp(&v, old) == Ordering::Greater);
            if newer {
                cursors.insert(k, v);
            }
        }
        ctx.set_state(serde_json::json!({ "cursors": cursors }));
    }
    Ok(())
}

/// Sends a request with the partition's credentials; with OAuth2, a 401 gets one fresh
/// token and one more try.
async fn send(
    src: &RestSource,
    req: &Request,
    part: &Partition,
    base: &str,
) -> Result<crate::http::Response, String> {
    let account = part.account.as_deref().unwrap_or("");
    for attempt in 0..2 {
        let mut r = req.clone();
        super::auth::apply(&mut r, &part.auth, &src.tokens, &src.http, base, account).await?;
        let resp = src.http.send(&r).await.map_err(|e| e.to_string())?;
        if resp.status.as_u16() == 401 && part.auth.kind == "oauth2" && attempt == 0 {
            tracing::info!("{}: HTTP 401, getting a new access token", r.describe());
            src.tokens.invalidate(account).await;
            continue;
        }
        if !resp.status.is_success() {
            return Err(format!(
                "{}: HTTP {}: {}",
                r.describe(),
                resp.status,
                resp.excerpt(500)
            ));
        }
        return Ok(resp);
    }
    unreachable!("the loop returns")
}

#[allow(clippy::too_many_arguments)]
async fn fetch_partition(
    src: &RestSource,
    spec: &RestStream,
    part: &Partition,
    base_vars: &Map<String, Value>,
    resolver: Resolver<'_>,
    cursor: Value,
    tx: &tokio::sync::mpsc::Sender<Page>,
    cancel: &AtomicBool,
) -> Result<Option<Value>, String> {
    let mut vars = base_vars.clone();
    vars.insert("account".into(), part.account_vars.clone());
    for (name, item) in &part.items {
        vars.insert(name.clone(), item.clone());
    }
    vars.insert("cursor".into(), cursor_var(&cursor, spec.lookback));
    let base = render(&src.base_url, &vars, resolver)?;
    let (first, page) = spec.paginate.first();
    if let Some(p) = page {
        vars.insert("page".into(), p.into());
    }
    let mut query: Vec<(String, String)> = Vec::new();
    for (k, v) in &spec.params {
        query.push((k.clone(), render(v, &vars, resolver)?));
    }
    for (k, v) in first {
        query.retain(|(k2, _)| *k2 != k);
        query.push((k, v));
    }
    let mut headers = vec![("Accept".to_string(), "application/json".to_string())];
    for (k, v) in &spec.headers {
        headers.retain(|(k2, _)| !k2.eq_ignore_ascii_case(k));
        headers.push((k.clone(), render(v, &vars, resolver)?));
    }
    let body = spec
        .body
        .as_ref()
        .map(|b| render_json(b, &vars, resolver))
        .transpose()?;
    let mut pos = Position {
        index: match &spec.paginate {
            paginate::Paginate::Page { start, .. } | paginate::Paginate::Offset { start, .. } => {
                *start
            }
            _ => 0,
        },
        records: 0,
    };
    let cursor_field = spec.incremental.as_ref().map(|i| i.cursor_field.as_str());
    let mut max_cursor: Option<Value> = None;
    let mut next_url: Option<url::Url> = None;
    let mut previous: Option<url::Url> = None;
    for page_no in 1..=spec.max_pages {
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let url = match next_url.take() {
            Some(u) => u,
            None => {
                let path = render(&spec.path, &vars, resolver)?;
                let mut u = join_url(&base, &path)?;
                {
                    let mut q = u.query_pairs_mut();
                    for (k, v) in &query {
                        q.append_pair(k, v);
                    }
                }
                if u.query() == Some("") {
                    u.set_query(None);
                }
                u
            }
        };
        if previous.as_ref() == Some(&url) {
            return Err(format!(
                "pagination does not advance: page {page_no} asks for {} again",
                socle_core::secrets::redact(url.as_str())
            ));
        }
        let mut req = Request::get(url.clone());
        req.method = spec.method.clone();
        req.headers = headers.clone();
        req.json = body.clone();
        let resp = send(src, &req, part, &base).await?;
        let bytes = resp.body.len() as u64;
        let location = format!("{} (page {page_no})", req.describe());
        let doc: Value = match serde_json::from_slice(&resp.body) {
            Ok(d) => d,
            Err(e) => {
                let raw = excerpt(&String::from_utf8_lossy(&resp.body), 4096);
                let page = Page::Reject {
                    raw,
                    reason: format!("the response is not JSON: {e}"),
                    location,
                    bytes,
                };
                tx.send(page).await.map_err(|_| "stopped".to_string())?;
                // Without the page, the next one is unknown: the partition ends here.
                break;
            }
        };
        let mut records = paginate::select(&spec.records, &doc)?;
        let next = paginate::next(
            &spec.paginate,
            &mut pos,
            &doc,
            resp.header("link"),
            records.len(),
        )?;
        drop(doc);
        if let Some(field) = cursor_field {
            for r in &records {
                let v = if field.starts_with('/') {
                    r.pointer(field)
                } else {
                    r.get(field)
                };
                if let Some(v) = v.filter(|v| !v.is_null())
                    && max_cursor
                        .as_ref()
                        .is_none_or(|m| cursor_cmp(v, m) == Ordering::Greater)
                {
                    max_cursor = Some(v.clone());
                }
            }
        }
        if !part.items.is_empty() {
            for r in records.iter_mut() {
                if let Value::Object(o) = r {
                    for (name, item) in &part.items {
                        o.insert(format!("_{name}"), Value::String(item_label(item)));
                    }
                }
            }
        }
        let page = Page::Records {
            records,
            account: part.account.clone(),
            location,
            bytes,
        };
        tx.send(page).await.map_err(|_| "stopped".to_string())?;
        previous = Some(url.clone());
        match next {
            Next::Done => return Ok(max_cursor),
            Next::Params(q, page) => {
                for (k, v) in q {
                    query.retain(|(k2, _)| *k2 != k);
                    query.push((k, v));
                }
                if let Some(p) = page {
                    vars.insert("page".into(), p.into());
                }
            }
            Next::Url(u) => {
                next_url = Some(
                    resp.url
                        .join(&u)
                        .map_err(|e| format!("next page URL `{u}`: {e}"))?,
                );
            }
        }
        if page_no == spec.max_pages {
            tracing::warn!(
                "{}: stopped after max_pages ({}) pages",
                part.key,
                spec.max_pages
            );
        }
    }
    Ok(max_cursor)
}
