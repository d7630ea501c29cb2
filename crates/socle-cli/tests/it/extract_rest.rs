//! `socle extract` with the `rest` connector against the loopback HTTP fixture
//! (`fixtures/http_fixture.py`): a YouTube-Analytics-style reports API behind OAuth2 with
//! one refresh token per channel, an Adzuna-style job search, five pagination styles with
//! incremental cursors, four kinds of credentials, and an API that answers 429, 500,
//! slowly or with 4xx errors.

use std::path::Path;

use crate::common::*;

const KEY: &str = "correct horse battery staple";

/// Runs socle with the secrets key in the environment.
fn run_keyed(dir: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let home = dir.to_string_lossy().into_owned();
    run_with(
        dir,
        args,
        &[("SOCLE_SECRETS_KEY", KEY), ("HOME", &home)],
        stdin,
    )
}

/// Every byte under `dir` (raw files, metadata DB, logs) as lossy text.
fn all_bytes(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().contains("sources/") {
                out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn reports_api_with_oauth2_per_account_fan_out_and_token_refresh() {
    // Tokens die after one call: every second request meets a 401 and a refresh.
    let api = HttpFixture::start(&["--token-max-uses", "1"]);
    let (_tmp, dir) = project();
    for (name, value) in [
        ("yt_client_secret", "s3cret"),
        ("yt_alpha", "rt-alpha"),
        ("yt_beta", "rt-beta"),
    ] {
        let (ok, out, err) = run_keyed(&dir, &["secrets", "set", name], value);
        assert!(ok, "{out}{err}");
    }
    write(
        &dir,
        "sources/youtube.yml",
        &format!(
            r#"type: rest
base_url: {}/youtube/v2
auth:
  type: oauth2
  grant: refresh_token
  token_url: {}/oauth/token
  client_id: socle-client
  client_secret: "${{secret:yt_client_secret}}"
  refresh_token: "{{{{ account.refresh_token }}}}"
accounts:
  - {{ name: alpha, refresh_token: "${{secret:yt_alpha}}" }}
  - {{ name: beta, refresh_token: "${{secret:yt_beta}}" }}
concurrency: 2
streams:
  channel_daily:
    path: /reports
    params:
      ids: channel==MINE
      startDate: "2024-06-01"
      endDate: "{{{{ ds }}}}"
      metrics: "{{{{ report.metrics }}}}"
      dimensions: day
    records: {{ rows: /rows, header: /columnHeaders }}
    for_each:
      report:
        - {{ name: audience, metrics: "views,likes" }}
        - {{ name: money, metrics: "estimatedRevenue,cpm" }}
    write: merge
    primary_key: [_account, _report, day]
"#,
            api.base(),
            api.base()
        ),
    );
    let (ok, out, err) = run_keyed(
        &dir,
        &["extract", "--format", "json", "--date", "2024-06-30"],
        "",
    );
    assert!(ok, "{out}\n{err}");
    let reports: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let r = report(&reports, "channel_daily");
    // 2 accounts × 2 reports × 30 days.
    assert_eq!(r["rows_inserted"], 120, "{r}");
    assert_eq!(r["rejected"], 0);

    let rows = query(
        &dir,
        "select _account, _report, day, views, likes, \"estimatedRevenue\" as revenue \
         from raw.youtube__channel_daily where day = '2024-06-01' order by 1, 2",
    );
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(
        (&rows[0]["_account"], &rows[0]["_report"], &rows[0]["views"]),
        (&"alpha".into(), &"audience".into(), &4306.into())
    );
    assert_eq!(rows[0]["likes"], 86);
    assert_eq!(rows[1]["revenue"], 9.38);
    assert_eq!(rows[2]["views"], 8235);
    let sum = query(
        &dir,
        "select sum(views) as v from raw.youtube__channel_daily where _account = 'alpha'",
    );
    assert_eq!(sum[0]["v"], 71247);

    // One refresh token per channel, and refreshed tokens after the 401s.
    let stats = api.stats();
    let grants = &stats["token_grants"];
    assert!(grants["rt-alpha"].as_u64().unwrap() >= 2, "{stats}");
    assert!(grants["rt-beta"].as_u64().unwrap() >= 2, "{stats}");
    assert!(stats["unauthorized"].as_u64().unwrap() >= 2, "{stats}");

    // Same run again: merged, no duplicates.
    let (ok, out, err) = run_keyed(
        &dir,
        &["extract", "--format", "json", "--date", "2024-06-30"],
        "",
    );
    assert!(ok, "{out}\n{err}");
    let n = query(&dir, "select count(*) as n from raw.youtube__channel_daily");
    assert_eq!(n[0]["n"], 120);

    // The client-credentials grant: one token for the client, channels named explicitly,
    // client id and secret sent as HTTP basic.
    write(
        &dir,
        "sources/yt_service.yml",
        &format!(
            r#"type: rest
base_url: {}/youtube/v2
auth:
  type: oauth2
  grant: client_credentials
  token_url: {}/oauth/token
  client_id: socle-client
  client_secret: "${{secret:yt_client_secret}}"
  client_auth: basic
streams:
  gamma:
    path: /reports
    params: {{ ids: "channel==UC_gamma", startDate: "2024-06-01", endDate: "2024-06-03", metrics: views, dimensions: day }}
    records: {{ rows: /rows, header: /columnHeaders }}
"#,
            api.base(),
            api.base()
        ),
    );
    let (ok, out, err) = run_keyed(&dir, &["extract", "--format", "json", "yt_service"], "");
    assert!(ok, "{out}\n{err}");
    let reports: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(report(&reports, "gamma")["rows_inserted"], 3);
    assert!(
        api.stats()["token_grants"]["client_credentials"]
            .as_u64()
            .unwrap()
            >= 1
    );

    // A revoked refresh token fails with the API's words and no credential in sight.
    let (ok, _, _) = run_keyed(&dir, &["secrets", "set", "yt_beta"], "rt-revoked-9f8e7d");
    assert!(ok);
    let (ok, out, err) = run_keyed(&dir, &["extract", "youtube", "--date", "2024-06-30"], "");
    assert!(!ok, "{out}");
    let err = format!("{out}{err}");
    assert!(err.contains("account `beta`"), "{err}");
    assert!(err.contains("invalid_grant"), "{err}");
    assert!(err.contains("Token has been expired or revoked"), "{err}");
    for secret in ["rt-revoked-9f8e7d", "s3cret", "rt-alpha", "ya29."] {
        assert!(!err.contains(secret), "`{secret}` leaked: {err}");
        assert!(!out.contains(secret), "`{secret}` leaked: {out}");
    }
    let stored = all_bytes(&dir);
    for secret in ["rt-revoked-9f8e7d", "s3cret", "rt-alpha", "ya29."] {
        assert!(
            !stored.contains(secret),
            "`{secret}` is stored in the project"
        );
    }
}

#[test]
fn job_search_with_the_page_in_the_path_and_keys_in_the_query() {
    let api = HttpFixture::start(&[]);
    let (_tmp, dir) = project();
    write(
        &dir,
        "sources/adzuna.yml",
        &format!(
            r#"type: rest
base_url: {}/adzuna/v1/api
auth: {{ type: api_key, in: query, name: app_key, value: test-key }}
params: {{ app_id: test-app }}
streams:
  jobs:
    path: /jobs/fr/search/{{{{ page }}}}
    params: {{ results_per_page: 50 }}
    paginate: {{ type: page, size: 50 }}
    records: /results
    write: merge
    primary_key: [id]
"#,
            api.base()
        ),
    );
    let reports = extract_json(&dir, &[]);
    assert_eq!(report(&reports, "jobs")["rows_inserted"], 137);
    let rows = query(
        &dir,
        "select count(*) as n, count(distinct id) as ids, count(company__display_name) as named, \
         count(latitude) as located, count(contract_type) as typed \
         from raw.adzuna__jobs",
    );
    assert_eq!(rows[0]["n"], 137);
    assert_eq!(rows[0]["ids"], 137);
    assert_eq!(rows[0]["named"], 132);
    assert_eq!(rows[0]["located"], 117);
    assert_eq!(rows[0]["typed"], 92);
    let emoji = query(
        &dir,
        "select count(*) as n from raw.adzuna__jobs where title like '%🚀%' or description like '%🚀%'",
    );
    assert!(emoji[0]["n"].as_i64().unwrap() >= 1);
    // 50 + 50 + 37: the short third page ends the stream.
    let stats = api.stats();
    let pages: Vec<&str> = stats["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["path"].as_str().unwrap())
        .collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        pages[2].starts_with("/adzuna/v1/api/jobs/fr/search/3?"),
        "{pages:?}"
    );
    assert!(
        pages
            .iter()
            .all(|p| p.contains("app_key=test-key") && p.contains("app_id=test-app"))
    );
}

fn events_source(base: &str) -> String {
    format!(
        r#"type: rest
base_url: {base}
streams:
  paged:
    path: /paged/events
    params: {{ updated_since: "{{{{ cursor }}}}" }}
    paginate: {{ type: page, size_param: per_page, size: 10, total_pages: /total_pages }}
    records: /data
    incremental: {{ cursor_field: updated_at, initial: "2024-06-01T00:00:00Z", lookback: 2h }}
    write: merge
    primary_key: [id]
  offset:
    path: /offset/events
    params: {{ updated_since: "{{{{ cursor }}}}" }}
    paginate: {{ type: offset, size: 20, total: /total }}
    records: /items
    incremental: {{ cursor_field: updated_at, initial: "2024-06-01T00:00:00Z" }}
    write: merge
    primary_key: [id]
  cursor:
    path: /cursor/events
    params: {{ updated_since: "{{{{ cursor }}}}" }}
    paginate: {{ type: cursor, next: /meta/next_cursor, size_param: limit, size: 25 }}
    records: /events
    incremental: {{ cursor_field: updated_at, initial: "2024-06-01T00:00:00Z" }}
    write: merge
    primary_key: [id]
  link:
    path: /link/events
    params: {{ per_page: 30, updated_since: "{{{{ cursor }}}}" }}
    paginate: {{ type: link }}
    incremental: {{ cursor_field: updated_at, initial: "2024-06-01T00:00:00Z" }}
    write: merge
    primary_key: [id]
  nexturl:
    path: /nexturl/events
    params: {{ limit: 40, updated_since: "{{{{ cursor }}}}" }}
    paginate: {{ type: next_url, next: /next }}
    records: /results
    incremental: {{ cursor_field: updated_at, initial: "2024-06-01T00:00:00Z" }}
    write: merge
    primary_key: [id]
"#
    )
}

#[test]
fn every_pagination_style_with_incremental_cursors_and_late_rows() {
    let api = HttpFixture::start(&[]);
    let (_tmp, dir) = project();
    write(&dir, "sources/events.yml", &events_source(&api.base()));
    let reports = extract_json(&dir, &[]);
    for s in ["paged", "offset", "cursor", "link", "nexturl"] {
        assert_eq!(report(&reports, s)["rows_inserted"], 95, "{s}");
        let t = query(
            &dir,
            &format!(
                "select count(*) as n, count(distinct id) as ids, max(updated_at) as last, \
                 sum(amount) as total from raw.events__{s}"
            ),
        );
        assert_eq!(t[0]["n"], 95, "{s}");
        assert_eq!(t[0]["ids"], 95, "{s}");
        assert_eq!(t[0]["last"], "2024-06-04T23:00:00Z", "{s}");
    }
    let one = query(
        &dir,
        "select name, amount from raw.events__link where id = 1",
    );
    assert_eq!(one[0]["name"], "purchase-001");
    assert_eq!(one[0]["amount"], 79.19);

    // New and changed events, one late (updated before the cursor, inside the lookback).
    let answer = api.post(
        "/_admin/events",
        r#"[{"id": 96, "name": "signup-096", "updated_at": "2024-06-05T05:00:00Z", "amount": 1.5},
            {"id": 3, "amount": 99.99, "updated_at": "2024-06-05T06:00:00Z"},
            {"id": 97, "name": "late-097", "updated_at": "2024-06-04T22:30:00Z", "amount": 2.0}]"#,
    );
    assert_eq!(answer["total"], 97, "{answer}");
    api.reset();
    let reports = extract_json(&dir, &[]);
    // Cursor APIs keep updated_at >= cursor: the last event comes again and merges.
    let paged = report(&reports, "paged");
    assert_eq!(paged["rows_inserted"], 2, "{paged}");
    for s in ["paged", "offset", "cursor", "link", "nexturl"] {
        let t = query(
            &dir,
            &format!(
                "select count(*) as n, max(case when id = 3 then amount end) as a3 from raw.events__{s}"
            ),
        );
        assert_eq!(t[0]["a3"], 99.99, "{s}");
        // Only the lookback catches the late row.
        let expected = if s == "paged" { 97 } else { 96 };
        assert_eq!(t[0]["n"], expected, "{s}");
    }
    // Incremental: the second run asked from the cursor, not from the start.
    let stats = api.stats();
    let first = stats["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["path"].as_str().unwrap())
        .find(|p| p.starts_with("/offset/events"))
        .unwrap()
        .to_string();
    assert!(
        first.contains("updated_since=2024-06-04T23%3A00%3A00Z"),
        "{first}"
    );
    // A full refresh starts again from `initial`.
    let reports = extract_json(&dir, &["events.offset", "--full-refresh"]);
    assert_eq!(report(&reports, "offset")["rows_read"], 97);
    let n = query(&dir, "select count(*) as n from raw.events__offset");
    assert_eq!(n[0]["n"], 97);
}

#[test]
fn credentials_of_every_kind_and_clear_4xx_errors() {
    let api = HttpFixture::start(&[]);
    let (_tmp, dir) = project();
    let write_sources = |key: &str| {
        for (name, path, auth) in [
            (
                "by_header",
                "apikey-header",
                format!("{{ type: api_key, name: X-API-Key, value: {key} }}"),
            ),
            (
                "by_query",
                "apikey-query",
                format!("{{ type: api_key, in: query, name: api_key, value: {key} }}"),
            ),
            (
                "by_bearer",
                "bearer",
                "{ type: bearer, token: tok456 }".to_string(),
            ),
            (
                "by_basic",
                "basic",
                "{ type: basic, username: alice, password: \"pa:ss\" }".to_string(),
            ),
        ] {
            write(
                &dir,
                &format!("sources/{name}.yml"),
                &format!(
                    "type: rest\nbase_url: {}/auth\nauth: {auth}\nstreams:\n  events:\n    path: /{path}/events\n    records: /data\n",
                    api.base()
                ),
            );
        }
    };
    write_sources("k123");
    let reports = extract_json(&dir, &[]);
    assert_eq!(reports.len(), 4);
    for r in &reports {
        assert_eq!(r["rows_inserted"], 10, "{r}");
    }
    let stats = api.stats();
    assert_eq!(stats["unauthorized"], 0, "{stats}");

    // A wrong key: 401 with the API's answer, and the key masked.
    write_sources("wrong-key-777");
    let (okay, out, err) = run(&dir, &["extract", "by_query"]);
    assert!(!okay, "{out}");
    let err = format!("{out}{err}");
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(err.contains("unauthorized"), "{err}");
    assert!(err.contains("api_key=***"), "{err}");
    assert!(
        !err.contains("wrong-key-777") && !out.contains("wrong-key-777"),
        "{err}"
    );

    // Any other 4xx: fails at once (no retry) with an excerpt of the body.
    write(
        &dir,
        "sources/broken.yml",
        &format!(
            "type: rest\nbase_url: {}\nstreams:\n  json:\n    path: /error/400\n    params: {{ format: json }}\n  html:\n    path: /error/404\n    params: {{ format: html }}\n",
            api.base()
        ),
    );
    api.reset();
    let (okay, out, err) = run(&dir, &["extract", "broken.json"]);
    assert!(!okay);
    let err = format!("{out}{err}");
    assert!(err.contains("broken.json"), "{err}");
    assert!(err.contains("HTTP 400 Bad Request"), "{err}");
    assert!(
        err.contains("Invalid value for parameter 'since': expected an ISO-8601 timestamp"),
        "{err}"
    );
    assert!(
        err.len() < 3000,
        "the whole 5 KB body is in the error: {err}"
    );
    let (okay, out, err) = run(&dir, &["extract", "broken.html"]);
    assert!(!okay);
    let err = format!("{out}{err}");
    assert!(err.contains("HTTP 404 Not Found"), "{err}");
    assert!(err.contains("Invalid value for parameter"), "{err}");
    assert_eq!(api.stats()["total"], 2, "4xx must not be retried");

    // A 200 that is not JSON: the page is rejected with its URL, not dropped.
    write(
        &dir,
        "sources/htmlish.yml",
        &format!(
            "type: rest\nbase_url: {}\nmax_rejected: 1\nstreams:\n  page:\n    path: /jobs-board/jobs\n",
            api.base()
        ),
    );
    let reports = extract_json(&dir, &["htmlish"]);
    assert_eq!(report(&reports, "page")["rejected"], 1);
    let rejects = query(
        &dir,
        "select reason, location, raw from raw.htmlish__page__rejected",
    );
    assert!(
        rejects[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("the response is not JSON"),
        "{rejects:?}"
    );
    assert_eq!(
        rejects[0]["location"],
        format!("GET {}/jobs-board/jobs (page 1)", api.base())
    );
    assert!(
        rejects[0]["raw"]
            .as_str()
            .unwrap()
            .contains("<article class=\"job\"")
    );
}

#[test]
fn retries_on_429_and_500_honouring_retry_after_timeouts_and_rate_limits() {
    let api = HttpFixture::start(&["--slow-delay", "3"]);
    let (_tmp, dir) = project();
    write(
        &dir,
        "sources/flaky.yml",
        &format!(
            r#"type: rest
base_url: {}
retry: {{ attempts: 4, backoff: 100ms, max_backoff: 1s }}
streams:
  items:
    path: /flaky/items
    paginate: {{ type: cursor, param: page, next: /next_page }}
    records: /items
  dated:
    path: /flaky/date
    paginate: {{ type: cursor, param: page, next: /next_page }}
    records: /items
"#,
            api.base()
        ),
    );
    let started = std::time::Instant::now();
    let reports = extract_json(&dir, &["flaky.items"]);
    assert_eq!(report(&reports, "items")["rows_inserted"], 50);
    // Five pages, each first answered 429 + Retry-After: 1 and honoured.
    assert!(started.elapsed().as_secs_f64() >= 5.0);
    let stats = api.stats();
    assert_eq!(stats["flaky_attempts"]["items:3"], 3, "{stats}");
    assert_eq!(stats["flaky_attempts"]["items:1"], 2, "{stats}");
    let reports = extract_json(&dir, &["flaky.dated"]);
    assert_eq!(report(&reports, "dated")["rows_inserted"], 50);
    let ids = query(&dir, "select count(distinct id) as n from raw.flaky__items");
    assert_eq!(ids[0]["n"], 50);

    // Too few tries: the stream fails naming the status; nothing is loaded.
    api.reset();
    write(
        &dir,
        "sources/stubborn.yml",
        &format!(
            "type: rest\nbase_url: {}\nretry: {{ attempts: 1 }}\nstreams:\n  items:\n    path: /flaky/items\n    records: /items\n",
            api.base()
        ),
    );
    let (okay, out, err) = run(&dir, &["extract", "stubborn"]);
    assert!(!okay);
    let err = format!("{out}{err}");
    assert!(
        err.contains("HTTP 429 Too Many Requests after 1 tries"),
        "{err}"
    );

    // A timeout is retried, then fails clearly.
    write(
        &dir,
        "sources/slow.yml",
        &format!(
            "type: rest\nbase_url: {}\ntimeout: 500ms\nretry: {{ attempts: 2, backoff: 100ms }}\nstreams:\n  items:\n    path: /slow/items\n    records: /items\n",
            api.base()
        ),
    );
    api.reset();
    let (okay, out, err) = run(&dir, &["extract", "slow"]);
    assert!(!okay);
    let err = format!("{out}{err}");
    assert!(err.contains("timed out (after 2 tries)"), "{err}");

    // Rate limit: 10 pages at 5 requests per second take at least 1.8 s.
    write(
        &dir,
        "sources/polite.yml",
        &format!(
            "type: rest\nbase_url: {}\nrate_limit: 5\nstreams:\n  events:\n    path: /paged/events\n    paginate: {{ type: page, size_param: per_page, size: 10 }}\n    records: /data\n",
            api.base()
        ),
    );
    api.reset();
    extract_json(&dir, &["polite"]);
    // Only this stream's requests: a timed-out request of the test above may still be
    // logged by the fixture after its reset.
    let log: Vec<serde_json::Value> = api.stats()["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["path"]
                .as_str()
                .unwrap_or("")
                .starts_with("/paged/events")
        })
        .cloned()
        .collect();
    assert_eq!(log.len(), 10, "{log:?}");
    let span = log[9]["time"].as_f64().unwrap() - log[0]["time"].as_f64().unwrap();
    assert!(span >= 1.7, "10 requests in {span} s");
}
