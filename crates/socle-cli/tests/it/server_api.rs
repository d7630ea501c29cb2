//! The server's JSON API over the shop example, over real HTTP: every documented
//! operation × every role (the roles the OpenAPI document states are the roles enforced),
//! the catalog (tables, columns, row counts, freshness, tests, lineage, search, sources),
//! queries within role and limits (read-only analysts, no file reads, row limit, timeout,
//! CSV), pipelines (grid, trigger, logs, rerun, backfill), the audit log and /metrics.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;
use crate::server::{Answer, call, start};

/// The users' password.
pub const PASSWORD: &str = "a long enough passphrase";
const ROLES: [&str; 4] = ["viewer", "analyst", "editor", "admin"];

pub struct Api {
    port: u16,
    /// role → bearer header value
    tokens: Vec<(String, String)>,
}

impl Api {
    fn token(&self, role: &str) -> &str {
        &self.tokens.iter().find(|(r, _)| r == role).unwrap().1
    }

    fn get(&self, role: &str, path: &str) -> Answer {
        call(
            self.port,
            "GET",
            path,
            &[("Authorization", self.token(role))],
            "",
        )
    }

    fn post(&self, role: &str, path: &str, body: &Value) -> Answer {
        call(
            self.port,
            "POST",
            path,
            &[("Authorization", self.token(role))],
            &body.to_string(),
        )
    }

    fn ok(&self, role: &str, path: &str) -> Value {
        let a = self.get(role, path);
        assert_eq!(a.status, 200, "GET {path} as {role}: {}", a.body);
        a.json()
    }

    /// Polls a run until it has ended (bounded).
    fn wait_run(&self, run_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let r = self.ok("analyst", &format!("/api/runs/{run_id}"));
            if !matches!(r["state"].as_str(), Some("running" | "queued")) {
                return r;
            }
            assert!(Instant::now() < deadline, "run {run_id} did not end: {r}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Adds user `u_<role>` with that role (password [`PASSWORD`]) and an API token of it;
/// answers the `Authorization` header that carries the token.
pub fn user_with_token(dir: &std::path::Path, role: &str) -> String {
    let user = format!("u_{role}");
    let (okay, out, err) = run_with(
        dir,
        &["users", "add", &user, "--role", role, "--password-stdin"],
        &[],
        PASSWORD,
    );
    assert!(okay, "{out}{err}");
    let out = ok(
        dir,
        &["tokens", "create", "t", "--user", &user, "--role", role],
    );
    let token = out.lines().find(|l| l.starts_with("socle_")).unwrap();
    format!("Bearer {token}")
}

/// The shop, served, with one user and API token per role (password [`PASSWORD`]) and
/// its scheduled run done.
pub fn setup() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    crate::server::Server,
    Api,
) {
    let (tmp, dir) = shop();
    // A pipeline that fails until a flag file exists, for reruns.
    write(
        &dir,
        "pipelines/flaky.yml",
        "description: Fails until the flag exists.\ntasks:\n  check:\n    kind: command\n    command: [\"test\", \"-f\", \"flag\"]\n  after:\n    kind: command\n    command: [\"true\"]\n    depends_on: [check]\n",
    );
    let server = start(&dir);
    let mut tokens = Vec::new();
    for role in ROLES {
        tokens.push((role.to_string(), user_with_token(&dir, role)));
    }
    let api = Api {
        port: server.port,
        tokens,
    };
    // The scheduler runs the latest interval of `daily` at start: wait for it.
    let deadline = Instant::now() + Duration::from_secs(120);
    let run_id = loop {
        let runs = api.ok("analyst", "/api/runs?pipeline=daily");
        if let Some(r) = runs.as_array().unwrap().first() {
            break r["run_id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no scheduled run");
        std::thread::sleep(Duration::from_millis(200));
    };
    let run = api.wait_run(&run_id);
    assert_eq!(run["state"], "success", "{run}");
    (tmp, dir, server, api)
}

/// A request for `path` (template) with its parameters filled in.
fn fill(path: &str, run_id: &str) -> String {
    path.replace("{schema}", "marts")
        .replace(
            "{name}",
            if path.starts_with("/api/tables") {
                "daily_revenue"
            } else {
                "flaky"
            },
        )
        .replace("{run_id}", run_id)
        .replace("{file}", "app.js")
        .replace("/api/search", "/api/search?q=revenue")
}

#[test]
fn every_documented_operation_enforces_its_role() {
    let (_tmp, _dir, server, api) = setup();
    let port = server.port;
    let doc = call(port, "GET", "/api/openapi.json", &[], "").json();
    assert_eq!(doc["openapi"], "3.1.0");
    let run_id = api.ok("analyst", "/api/runs?pipeline=daily")[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let bodies = |path: &str| match path {
        "/api/query" => json!({"sql": "SELECT 1 AS one"}),
        "/api/pipelines/{name}/trigger" => json!({}),
        "/api/pipelines/{name}/backfill" => json!({"from": "2024-01-01", "to": "2024-01-01"}),
        "/api/login" => json!({"username": "u_viewer", "password": "a long enough passphrase"}),
        "/api/password" => json!({"current": "wrong", "new": "whatever whatever"}),
        _ => json!({}),
    };
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let method = method.to_uppercase();
            let needed = op["x-socle-role"].as_str().unwrap();
            let url = fill(path, &run_id);
            let body = if method == "POST" {
                bodies(path).to_string()
            } else {
                String::new()
            };
            let anon = call(port, &method, &url, &[], &body);
            if needed == "anyone" {
                assert!(
                    anon.status < 400,
                    "{method} {url} anonymous: {} {}",
                    anon.status,
                    anon.body
                );
                checked += 1;
                continue;
            }
            assert_eq!(anon.status, 401, "{method} {url} anonymous: {}", anon.body);
            let rank = ROLES.iter().position(|r| *r == needed).unwrap();
            for (i, role) in ROLES.iter().enumerate() {
                // Writes run once, as the least role allowed (a second trigger would start
                // another run).
                if method == "POST" && i > rank && path != "/api/query" {
                    continue;
                }
                let a = call(
                    port,
                    &method,
                    &url,
                    &[("Authorization", api.token(role))],
                    &body,
                );
                if i < rank {
                    assert_eq!(a.status, 403, "{method} {url} as {role}: {}", a.body);
                    assert!(a.json()["error"].as_str().unwrap().contains(needed));
                } else {
                    // /api/password answers 403 for the wrong current password: allowed
                    // through the role check all the same.
                    let fine = a.status < 400
                        || (path == "/api/password"
                            && a.body.contains("current password is wrong"));
                    assert!(fine, "{method} {url} as {role}: {} {}", a.status, a.body);
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 80, "{checked}");
    // Undocumented routes are 404 with a JSON message; wrong methods are refused.
    let a = api.get("admin", "/api/nothing");
    assert_eq!(a.status, 404);
    assert_eq!(a.json()["error"], "no such route");
    let a = api.post("admin", "/api/tables", &json!({}));
    assert_eq!(a.status, 405);
    assert_eq!(a.json()["error"], "method not allowed");
    let a = api.get("analyst", "/api/runs?limit=many");
    assert_eq!(a.status, 400);
    assert!(
        a.json()["error"].as_str().unwrap().contains("limit"),
        "{}",
        a.body
    );
    // Let the runs started above end before the project folder goes away.
    for r in api.ok("analyst", "/api/runs").as_array().unwrap() {
        api.wait_run(r["run_id"].as_str().unwrap());
    }
}

#[test]
fn catalog_queries_pipelines_audit_and_metrics() {
    let (_tmp, dir, _server, api) = setup();

    // The catalog: tables with rows, freshness and test outcomes.
    let cat = api.ok("viewer", "/api/tables");
    let tables = cat["tables"].as_array().unwrap();
    let daily = tables
        .iter()
        .find(|t| t["schema"] == "marts" && t["name"] == "daily_revenue")
        .unwrap_or_else(|| panic!("{cat}"));
    assert_eq!(daily["rows"], 366);
    assert_eq!(daily["materialized"], "table");
    assert!(daily["last_modified"].as_str().unwrap().starts_with("20"));
    assert!(daily["tests"]["pass"].as_u64().unwrap() >= 2, "{daily}");
    assert!(
        tables.iter().any(|t| t["schema"] == "raw"
            && t["name"] == "shop_exports__orders"
            && t["rows"] == 600),
        "{cat}"
    );
    let only = api.ok("viewer", "/api/tables?schema=staging");
    assert!(
        only["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["schema"] == "staging")
    );

    // One table: columns with descriptions, tests and column lineage; the node's SQL.
    let t = api.ok("viewer", "/api/tables/marts/daily_revenue");
    let columns = t["columns"].as_array().unwrap();
    let day = columns.iter().find(|c| c["name"] == "day").unwrap();
    let tests: Vec<&str> = day["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert!(
        tests.contains(&"unique") && tests.contains(&"not_null"),
        "{day}"
    );
    assert!(
        columns.iter().any(|c| c["lineage"]["sources"]
            .as_array()
            .is_some_and(|s| !s.is_empty())),
        "{t}"
    );
    assert!(
        t["node"]["compiled_sql"]
            .as_str()
            .unwrap()
            .contains("SELECT")
            || t["node"]["compiled_sql"]
                .as_str()
                .unwrap()
                .contains("select")
    );
    let missing = api.get("viewer", "/api/tables/marts/daily_revenu");
    assert_eq!(missing.status, 404);
    assert!(
        missing.body.contains("did you mean `marts.daily_revenue`"),
        "{}",
        missing.body
    );

    // Search, lineage, tests, sources.
    let hits = api.ok("viewer", "/api/search?q=daily_revenue");
    assert_eq!(hits["hits"][0]["table"], "daily_revenue", "{hits}");
    let hits = api.ok("viewer", "/api/search?q=revenue");
    assert!(
        hits["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["type"] == "column"),
        "{hits}"
    );
    assert_eq!(api.get("viewer", "/api/search?q=").status, 400);
    let lineage = api.ok("viewer", "/api/lineage");
    assert!(
        lineage["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["from"] == "model.shop.stg_orders" && e["to"] == "model.shop.daily_revenue"),
        "{lineage}"
    );
    let tests = api.ok("viewer", "/api/tests");
    let all = tests["tests"].as_array().unwrap();
    assert!(
        all.len() >= 5 && all.iter().all(|t| t["status"] == "pass"),
        "{tests}"
    );
    let sources = api.ok("viewer", "/api/sources");
    let streams = sources[0]["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 7);
    let orders = streams.iter().find(|s| s["name"] == "orders").unwrap();
    assert_eq!(orders["last_extraction"]["status"], "success");
    assert_eq!(orders["last_extraction"]["rows_loaded"], 600);

    // Queries: analysts read, within limits; files and writes are refused.
    let r = api.post(
        "analyst",
        "/api/query",
        &json!({"sql": "SELECT day, orders FROM marts.daily_revenue ORDER BY day", "limit": 5}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = r.json();
    assert_eq!(r["row_count"], 5);
    assert_eq!(r["truncated"], true);
    assert_eq!(r["columns"][0]["name"], "day");
    assert_eq!(r["rows"][0][0], "2024-01-01");
    let csv = api.post(
        "analyst",
        "/api/query?format=csv",
        &json!({"sql": "SELECT 1 AS a, 'x,y' AS b UNION ALL SELECT 2, NULL ORDER BY a"}),
    );
    assert_eq!(csv.status, 200);
    assert!(csv.headers.to_lowercase().contains("text/csv"));
    assert_eq!(csv.body, "a,b\r\n1,\"x,y\"\r\n2,\r\n");
    for (sql, expect) in [
        ("CREATE TABLE main.nope AS SELECT 1 AS a", "only queries"),
        ("DROP TABLE marts.daily_revenue", "only queries"),
        ("SELECT * FROM 'exports/orders.csv'", "not found"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("SELEC 1", "SELEC"),
    ] {
        let a = api.post("analyst", "/api/query", &json!({"sql": sql}));
        assert_eq!(a.status, 400, "{sql}: {}", a.body);
        assert!(a.body.contains(expect), "{sql}: {}", a.body);
        assert!(
            !a.body.contains("backtrace") && !a.body.contains(".rs:"),
            "{}",
            a.body
        );
    }
    assert_eq!(
        api.post("viewer", "/api/query", &json!({"sql": "SELECT 1"}))
            .status,
        403
    );
    let slow = api.post(
        "analyst",
        "/api/query",
        &json!({"sql": "SELECT count(*) FROM generate_series(1, 100000000000) t", "timeout_seconds": 1}),
    );
    assert_eq!(slow.status, 408, "{}", slow.body);
    assert_eq!(
        query(&dir, "SELECT count(*) AS n FROM marts.daily_revenue")[0]["n"],
        366,
        "the warehouse is untouched"
    );
    // Editors may write; the catalog picks the new table up.
    let w = api.post(
        "editor",
        "/api/query",
        &json!({"sql": "CREATE TABLE main.scratch AS SELECT 1 AS a; SELECT count(*) AS n FROM main.scratch"}),
    );
    assert_eq!(w.status, 200, "{}", w.body);
    assert_eq!(w.json()["rows"][0][0], 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !api.ok("viewer", "/api/tables")["tables"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "scratch")
    {
        assert!(
            Instant::now() < deadline,
            "the catalog never showed main.scratch"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Pipelines: the grid, a run that fails, its logs, a rerun that succeeds.
    let pipelines = api.ok("analyst", "/api/pipelines");
    let daily = pipelines
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "daily")
        .unwrap();
    // extract, build, quality, the three models (forecast, basket, downtime), outlook, export.
    assert_eq!(daily["tasks"].as_array().unwrap().len(), 8);
    let grid = api.ok("analyst", "/api/pipelines/daily");
    let first = &grid["runs"][0];
    assert_eq!(first["tasks"].as_array().unwrap().len(), 8, "{grid}");
    assert!(
        first["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] == "success")
    );
    assert_eq!(api.get("analyst", "/api/pipelines/nope").status, 404);
    assert_eq!(api.get("analyst", "/api/pipelines/..%2Fsocle").status, 404);

    let t = api.post(
        "editor",
        "/api/pipelines/flaky/trigger",
        &json!({"date": "2024-03-01"}),
    );
    assert_eq!(t.status, 202, "{}", t.body);
    let run_id = t.json()["run_id"].as_str().unwrap().to_string();
    let run = api.wait_run(&run_id);
    assert_eq!(run["state"], "failed", "{run}");
    let states: Vec<(&str, &str)> = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["task"].as_str().unwrap(), t["state"].as_str().unwrap()))
        .collect();
    assert!(
        states.contains(&("check", "failed")) && states.contains(&("after", "upstream_failed")),
        "{states:?}"
    );
    let logs = api.ok("analyst", &format!("/api/runs/{run_id}/logs?task=check"));
    assert!(!logs.as_array().unwrap().is_empty());
    assert_eq!(
        api.post("analyst", &format!("/api/runs/{run_id}/rerun"), &json!({}))
            .status,
        403
    );
    write(&dir, "flag", "");
    let r = api.post("editor", &format!("/api/runs/{run_id}/rerun"), &json!({}));
    assert_eq!(r.status, 202, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        let run = api.wait_run(&run_id);
        if run["state"] == "success" || Instant::now() > deadline {
            break run;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(run["state"], "success", "{run}");
    assert_eq!(api.get("analyst", "/api/runs/nope").status, 404);
    let bad = api.post(
        "editor",
        "/api/pipelines/flaky/trigger",
        &json!({"tasks": ["nope"]}),
    );
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("no task `nope`"), "{}", bad.body);
    let bad = api.post(
        "editor",
        "/api/pipelines/flaky/backfill",
        &json!({"from": "2024-03-05", "to": "2024-03-01"}),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    let b = api.post(
        "editor",
        "/api/pipelines/flaky/backfill",
        &json!({"from": "2024-02-01", "to": "2024-02-02"}),
    );
    assert_eq!(b.status, 202, "{}", b.body);
    assert_eq!(b.json()["intervals"], 2);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = api.ok("analyst", "/api/runs?pipeline=flaky");
        let done = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["trigger"] == "backfill" && r["state"] == "success")
            .count();
        if done == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "backfill did not finish: {runs}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The audit log has the queries and the runs, with who asked.
    let audit = api.ok("admin", "/api/audit");
    let entries: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["detail"].as_str().unwrap()
            )
        })
        .collect();
    for needed in [
        "u_analyst query SELECT day, orders",
        "u_editor run.trigger flaky.20240301.1",
        "u_editor run.rerun flaky.20240301.1",
        "u_editor run.backfill flaky 2024-02-01 to 2024-02-02",
    ] {
        assert!(
            entries.iter().any(|e| e.starts_with(needed)),
            "no `{needed}` in {entries:#?}"
        );
    }

    // Many callers at once (a bounded burst; timing is measured in bench/server): every
    // answer is right.
    let port = api.port;
    let token = api.token("analyst").to_string();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let token = token.clone();
            std::thread::spawn(move || {
                for j in 0..20 {
                    let auth = [("Authorization", token.as_str())];
                    let a = if (i + j) % 2 == 0 {
                        call(port, "GET", "/api/tables/marts/daily_revenue", &auth, "")
                    } else {
                        call(
                            port,
                            "POST",
                            "/api/query",
                            &auth,
                            r#"{"sql": "SELECT count(*) AS n FROM marts.daily_revenue"}"#,
                        )
                    };
                    assert_eq!(a.status, 200, "{}", a.body);
                    let v = a.json();
                    assert!(v["rows"] == 366 || v["rows"][0][0] == 366, "{v}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    // Metrics: pipelines, tasks, streams, freshness, scheduler lag.
    let m = api.get("viewer", "/metrics").body;
    for needed in [
        "socle_pipeline_runs{pipeline=\"daily\",state=\"success\",trigger=\"scheduled\"} 1",
        "socle_pipeline_runs{pipeline=\"flaky\",state=\"success\",trigger=\"manual\"} 1",
        "socle_task_instances{pipeline=\"flaky\",task=\"check\",state=\"success\"}",
        "socle_stream_rows_loaded_total{source=\"shop_exports\",stream=\"orders\"} 600",
        "socle_stream_last_success_timestamp_seconds{source=\"shop_exports\",stream=\"orders\"}",
        "socle_table_last_modified_timestamp_seconds{schema=\"marts\",table=\"daily_revenue\"}",
        "socle_scheduler_lag_seconds{pipeline=\"daily\"}",
        "socle_http_requests_total{route=\"/api/query\",method=\"POST\",status=\"408\"} 1",
    ] {
        assert!(m.contains(needed), "no `{needed}` in\n{m}");
    }
}
