//! `scrape`: HTML pages read with CSS selectors — items on listing pages, followed
//! `next` links and detail pages, politely (robots.txt, a delay between requests, a
//! named User-Agent).
//!
//! ```yaml
//! type: scrape
//! user_agent: "acme-jobs/1.0 (+mailto:data@acme.fr)"   # default socle/<version>
//! delay: 1s          # between requests; robots.txt's Crawl-delay wins when longer
//! robots: true       # honour robots.txt (default); false only for your own sites
//! streams:
//!   jobs:
//!     start_urls: ["https://jobs.example.fr/jobs?page=1"]
//!     item: article.job                  # one record per match
//!     fields:
//!       id: { attr: data-id }            # no `select`: the item itself
//!       title: h2.title a                # text of the first match
//!       url: { select: h2.title a, attr: href, url: true }  # absolute URL
//!       tags: { select: ul.tags li, all: true }             # every match, as a JSON list
//!       posted: { select: time, attr: datetime }
//!     next: a.next[rel=next]             # the next listing page (its href)
//!     max_pages: 50                      # listing pages at most (default 100)
//!     detail:                            # one more page per item
//!       link: h2.title a
//!       fields:
//!         salary: dd.salary
//!         description: { select: div.description, html: true }  # inner HTML
//!     key: id                            # an item seen again is skipped
//! ```
//!
//! A field whose selector matches nothing is null. An item without its `key` is
//! rejected with the page URL. Pages robots.txt forbids are skipped with a warning and
//! counted; a robots.txt that cannot be fetched (5xx, no answer) forbids the whole site,
//! as RFC 9309 says; a missing one (4xx) allows everything. Retries, timeout and rate
//! limit are those of [`crate::http`].

mod page;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_saphyr::Spanned;
use socle_core::ConfigError;
use socle_core::duration::DurationText;

use self::page::{Field, RawField};
use crate::config::{OneOrMany, SourceCommon, SourceFile, StreamConfig, common, loc};
use crate::http::{Http, HttpSettings, RawRetry, Request};
use crate::{Result, RowMeta, Source, StreamContext};

crate::raw_stream! {
    pub struct RawScrapeStream {
        start_urls: Spanned<OneOrMany>,
        item: Spanned<String>,
        fields: Spanned<BTreeMap<String, RawField>>,
        next: Option<Spanned<String>>,
        max_pages: Option<u64>,
        detail: Option<Spanned<RawDetail>>,
        key: Option<Spanned<String>>,
    }
}

crate::raw_source! {
    pub struct RawScrapeSource<RawScrapeStream> {
        delay: Option<Spanned<DurationText>>,
        robots: Option<bool>,
        timeout: Option<Spanned<DurationText>>,
        user_agent: Option<String>,
        rate_limit: Option<Spanned<f64>>,
        retry: Option<Spanned<RawRetry>>,
    }
}

/// `detail:` of a stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDetail {
    /// Selector of the link, inside the item.
    pub link: String,
    pub fields: BTreeMap<String, RawField>,
}

struct ScrapeStream {
    start_urls: Vec<String>,
    item: scraper::Selector,
    fields: Vec<(String, Field)>,
    next: Option<scraper::Selector>,
    max_pages: u64,
    detail: Option<(scraper::Selector, Vec<(String, Field)>)>,
    key: Option<String>,
}

/// A `scrape` source.
pub struct ScrapeSource {
    common: SourceCommon,
    streams: BTreeMap<String, ScrapeStream>,
    delay: Duration,
    robots: bool,
    http: Http,
}

pub fn parse(file: &SourceFile) -> std::result::Result<Box<dyn Source>, Vec<ConfigError>> {
    let raw: RawScrapeSource = file.parse()?;
    let (common, mut errors) = common(file, &raw);
    let settings = HttpSettings::parse(
        file,
        raw.timeout.as_ref(),
        raw.user_agent.as_ref(),
        raw.rate_limit.as_ref(),
        raw.retry.as_ref(),
        &mut errors,
    );
    let delay = match &raw.delay {
        None => Duration::from_secs(1),
        Some(d) => d.value.get().unwrap_or_else(|| {
            errors.push(
                file.error(loc(d), "`delay` is not a duration")
                    .with_hint(socle_core::duration::HINT),
            );
            Duration::ZERO
        }),
    };
    let mut streams = BTreeMap::new();
    for (name, s) in &raw.streams.value {
        let s = &s.value;
        let selector = |text: &str, at: socle_core::Location, errors: &mut Vec<ConfigError>| {
            scraper::Selector::parse(text)
                .map_err(|e| {
                    errors.push(file.error(
                        at,
                        format!("stream `{name}`: `{text}` is not a CSS selector: {e}"),
                    ))
                })
                .ok()
        };
        let item = selector(&s.item.value, loc(&s.item), &mut errors);
        let next = s
            .next
            .as_ref()
            .and_then(|n| selector(&n.value, loc(n), &mut errors));
        let mut fields = Vec::new();
        for (f, spec) in &s.fields.value {
            match Field::parse(spec) {
                Ok(x) => fields.push((f.clone(), x)),
                Err(m) => errors
                    .push(file.error(loc(&s.fields), format!("stream `{name}`: field `{f}`: {m}"))),
            }
        }
        if fields.is_empty() {
            errors.push(file.error(loc(&s.fields), format!("stream `{name}`: no `fields`")));
        }
        let detail = s.detail.as_ref().and_then(|d| {
            let link = selector(&d.value.link, loc(d), &mut errors)?;
            let mut out = Vec::new();
            for (f, spec) in &d.value.fields {
                match Field::parse(spec) {
                    Ok(x) => out.push((f.clone(), x)),
                    Err(m) => errors.push(
                        file.error(loc(d), format!("stream `{name}`: detail field `{f}`: {m}")),
                    ),
                }
            }
            Some((link, out))
        });
        let start_urls = s.start_urls.value.to_vec();
        for u in &start_urls {
            if !u.contains("{{") && !u.contains("${") && url::Url::parse(u).is_err() {
                errors.push(file.error(
                    loc(&s.start_urls),
                    format!("stream `{name}`: `{u}` is not a URL"),
                ));
            }
        }
        if let Some(k) = &s.key
            && !fields.iter().any(|(f, _)| *f == k.value)
        {
            errors.push(file.error(
                loc(k),
                format!(
                    "stream `{name}`: `key` `{}` is not one of its fields",
                    k.value
                ),
            ));
        }
        if let Some(item) = item {
            streams.insert(
                name.clone(),
                ScrapeStream {
                    start_urls,
                    item,
                    fields,
                    next,
                    max_pages: s.max_pages.unwrap_or(100),
                    detail,
                    key: s.key.as_ref().map(|k| k.value.clone()),
                },
            );
        }
    }
    let http = Http::new(settings).map_err(|m| vec![ConfigError::file(&file.path, m)])?;
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Box::new(ScrapeSource {
        common,
        streams,
        delay,
        robots: raw.robots.unwrap_or(true),
        http,
    }))
}

/// robots.txt rules per site (`scheme://host:port`), fetched once per extraction.
struct Robots {
    sites: HashMap<String, Option<texting_robots::Robot>>,
    /// Sites whose robots.txt could not be fetched: everything is forbidden.
    unreachable: HashSet<String>,
}

/// The name robots.txt groups match: `EvilBot` in `EvilBot/1.0 (+https://…)`.
fn product_token(user_agent: &str) -> &str {
    user_agent
        .split(['/', ' '])
        .next()
        .filter(|t| !t.is_empty())
        .unwrap_or(user_agent)
}

fn site(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

impl ScrapeSource {
    /// Whether robots.txt allows `url`, and its Crawl-delay.
    async fn allowed(&self, robots: &mut Robots, url: &url::Url) -> (bool, Option<Duration>) {
        if !self.robots {
            return (true, None);
        }
        let s = site(url);
        if !robots.sites.contains_key(&s) && !robots.unreachable.contains(&s) {
            let robots_url = format!("{s}/robots.txt");
            let rule = match url::Url::parse(&robots_url) {
                Ok(u) => match self.http.send(&Request::get(u)).await {
                    Ok(r) if r.status.is_success() => texting_robots::Robot::new(
                        product_token(&self.http.settings().user_agent),
                        &r.body,
                    )
                    .ok(),
                    Ok(r) if r.status.is_client_error() => None,
                    Ok(r) => {
                        tracing::warn!(
                            "{robots_url}: HTTP {}: the site is treated as forbidden (RFC 9309)",
                            r.status
                        );
                        robots.unreachable.insert(s.clone());
                        None
                    }
                    Err(e) => {
                        tracing::warn!("{e}: the site is treated as forbidden (RFC 9309)");
                        robots.unreachable.insert(s.clone());
                        None
                    }
                },
                Err(_) => None,
            };
            robots.sites.insert(s.clone(), rule);
        }
        if robots.unreachable.contains(&s) {
            return (false, None);
        }
        match robots.sites.get(&s).and_then(|r| r.as_ref()) {
            Some(r) => (
                r.allowed(url.as_str()),
                r.delay.map(|d| Duration::from_secs_f32(d.max(0.0))),
            ),
            None => (true, None),
        }
    }

    /// Fetches a page politely; None when robots.txt forbids it.
    async fn get(
        &self,
        robots: &mut Robots,
        last: &mut Option<Instant>,
        url: &url::Url,
        skipped: &mut u64,
    ) -> std::result::Result<Option<crate::http::Response>, String> {
        let (ok, crawl_delay) = self.allowed(robots, url).await;
        if !ok {
            tracing::warn!("{url}: forbidden by robots.txt, skipped");
            *skipped += 1;
            return Ok(None);
        }
        let delay = crawl_delay.map_or(self.delay, |c| c.max(self.delay));
        if let Some(t) = last {
            let wait = (*t + delay).saturating_duration_since(Instant::now());
            tokio::time::sleep(wait).await;
        }
        *last = Some(Instant::now());
        let mut req = Request::get(url.clone());
        req.headers
            .push(("Accept".into(), "text/html,application/xhtml+xml".into()));
        let resp = self.http.send(&req).await.map_err(|e| e.to_string())?;
        if !resp.status.is_success() {
            return Err(format!(
                "{}: HTTP {}: {}",
                req.describe(),
                resp.status,
                resp.excerpt(300)
            ));
        }
        Ok(Some(resp))
    }
}

#[async_trait::async_trait]
impl Source for ScrapeSource {
    fn common(&self) -> &SourceCommon {
        &self.common
    }

    async fn extract(&self, stream: &StreamConfig, ctx: &mut StreamContext<'_>) -> Result<()> {
        let spec = &self.streams[&stream.name];
        let vars = ctx.template_vars();
        let mut queue: std::collections::VecDeque<url::Url> = Default::default();
        for u in &spec.start_urls {
            let u = crate::template::render(u, &vars)
                .and_then(|u| {
                    socle_core::secrets::resolve(&u, ctx.resolver).map_err(|e| e.to_string())
                })
                .map_err(|e| ctx.fetch_error(e))?;
            queue.push_back(
                url::Url::parse(&u).map_err(|e| ctx.fetch_error(format!("`{u}`: {e}")))?,
            );
        }
        let mut robots = Robots {
            sites: HashMap::new(),
            unreachable: HashSet::new(),
        };
        let mut last = None;
        let mut visited: HashSet<url::Url> = HashSet::new();
        let mut keys: HashSet<String> = HashSet::new();
        let (mut pages, mut skipped, mut duplicates) = (0u64, 0u64, 0u64);
        let meta = RowMeta::default();
        while let Some(url) = queue.pop_front() {
            if ctx.cancelled() || pages >= spec.max_pages {
                break;
            }
            if !visited.insert(url.clone()) {
                continue;
            }
            let Some(resp) = self
                .get(&mut robots, &mut last, &url, &mut skipped)
                .await
                .map_err(|e| ctx.fetch_error(e))?
            else {
                continue;
            };
            pages += 1;
            ctx.sink.files_in += 1;
            ctx.sink.bytes_in += resp.body.len() as u64;
            let text = String::from_utf8_lossy(&resp.body).into_owned();
            let listing = page::read_listing(&text, &resp.url, spec);
            if let Some(n) = listing.next
                && !visited.contains(&n)
            {
                queue.push_back(n);
            }
            let location = socle_core::secrets::redact(resp.url.as_str());
            let mut records = Vec::new();
            for (i, mut item) in listing.items.into_iter().enumerate() {
                if let Some(k) = &spec.key {
                    match item.record.get(k).filter(|v| !v.is_null()) {
                        None => {
                            ctx.sink.reject(
                                serde_json::Value::Object(item.record).to_string(),
                                format!("no `{k}` (the key) in the item"),
                                format!("{location} (item {})", i + 1),
                            );
                            continue;
                        }
                        Some(v) => {
                            let k = v
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string());
                            if !keys.insert(k) {
                                duplicates += 1;
                                continue;
                            }
                        }
                    }
                }
                if let (Some((_, fields)), Some(link)) = (&spec.detail, item.detail.take())
                    && let Some(d) = self
                        .get(&mut robots, &mut last, &link, &mut skipped)
                        .await
                        .map_err(|e| ctx.fetch_error(e))?
                {
                    ctx.sink.files_in += 1;
                    ctx.sink.bytes_in += d.body.len() as u64;
                    let html = String::from_utf8_lossy(&d.body).into_owned();
                    for (k, v) in page::read_detail(&html, &d.url, fields) {
                        item.record.insert(k, v);
                    }
                }
                records.push(serde_json::Value::Object(item.record));
            }
            ctx.sink.push_json(records, &meta, &location).await?;
        }
        tracing::info!(
            "{}.{}: {pages} page(s), {duplicates} repeated item(s) skipped, {skipped} page(s) forbidden by robots.txt",
            ctx.source.name,
            stream.name
        );
        Ok(())
    }
}
