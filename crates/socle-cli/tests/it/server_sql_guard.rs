//! The host-access matrix (issue 16, item 1), against the real binary over HTTP: no SQL
//! that arrives at `POST /api/query` reads or writes a file outside the warehouse's own
//! tables, whatever the caller's role. Canary files of unique content sit outside the
//! warehouse (in another folder and in the project folder); every statement form × every
//! role must be refused, and afterwards no answer, server log line or audit entry holds a
//! canary's content, and no file outside the warehouse appeared or changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::common::*;
use crate::server::{call, start_logged};
use crate::server_api::user_with_token;

/// Every file under `root` (but the metadata database, which the audit log writes) with
/// its content.
fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if !name.starts_with("socle.db") {
                out.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    out
}

/// The statement forms, `{o}` for the outside folder and `{p}` for the project folder.
const FORMS: &[&str] = &[
    "SELECT * FROM '{o}/canary.csv'",
    "SELECT * FROM '{o}/canary.json'",
    "SELECT * FROM '{o}/canary.parquet'",
    "SELECT * FROM 'data/canary_in.csv'",
    "SELECT * FROM \"{o}/canary.csv\"",
    "SELECT * FROM 'file://{o}/canary.csv'",
    "SELECT * FROM '{o}/'",
    "SELECT * FROM '{o}/*.csv'",
    "SELECT * FROM '{p}/socle.yml'",
    "WITH x AS (SELECT * FROM '{o}/canary.csv') SELECT * FROM x",
    "SELECT (SELECT max(secret) FROM '{o}/canary.csv') AS s",
    "SELECT 1 WHERE EXISTS (SELECT 1 FROM '{o}/canary.parquet')",
    "SELECT a FROM guard_t UNION ALL SELECT secret FROM '{o}/canary.csv'",
    "SELECT * FROM guard_t JOIN '{o}/canary.csv' c ON true",
    "EXPLAIN SELECT * FROM '{o}/canary.csv'",
    "EXPLAIN ANALYZE SELECT * FROM '{o}/canary.parquet'",
    "DESCRIBE '{o}/canary.csv'",
    "CREATE EXTERNAL TABLE ext STORED AS CSV LOCATION '{o}/canary.csv' OPTIONS ('format.has_header' 'true'); SELECT * FROM ext",
    "CREATE EXTERNAL TABLE ext2 (a VARCHAR) STORED AS CSV LOCATION '{o}/newdir/'",
    "CREATE EXTERNAL TABLE ext3 STORED AS PARQUET LOCATION '{o}/canary.parquet'",
    "CREATE TABLE g2 (a INT) LOCATION '{o}/g2'",
    "COPY (SELECT 1 AS a) TO '{o}/copy.csv'",
    "COPY (SELECT 1 AS a) TO '{o}/copy.parquet' STORED AS PARQUET",
    "COPY guard_t TO '{o}/copy2.json' STORED AS JSON",
    "COPY (SELECT 'tasks: {}' AS a) TO '{p}/pipelines/pwn.yml' STORED AS CSV",
    "COPY (SELECT 'x' AS a) TO '{p}/socle.yml' STORED AS CSV",
    "COPY (SELECT 'x' AS a) TO '{p}/.socle/secrets.json' STORED AS JSON",
    "COPY (SELECT * FROM '{o}/canary.csv') TO '{o}/leak.csv'",
    "EXPLAIN ANALYZE COPY (SELECT 1 AS a) TO '{o}/explain.csv'",
    "CREATE TABLE g1 AS SELECT * FROM '{o}/canary.csv'",
    "INSERT INTO guard_t SELECT secret FROM '{o}/canary.csv'",
    "CREATE VIEW gv AS SELECT * FROM '{o}/canary.parquet'",
    "CREATE VIEW gv2 AS SELECT 1 AS a; SELECT * FROM '{o}/canary.json'",
    "INSERT INTO '{o}/insert.csv' VALUES (1)",
    "SET datafusion.catalog.location = '{o}'",
    "SET datafusion.execution.target_partitions = 1",
    "RESET datafusion.execution.batch_size",
    "SELECT * FROM read_csv('{o}/canary.csv')",
    "SELECT * FROM read_parquet('{o}/canary.parquet')",
    "SELECT * FROM parquet_metadata('{o}/canary.parquet')",
];

#[test]
fn no_sql_over_http_reaches_a_file_on_the_host() {
    let (_tmp, dir) = project();
    let outside = tempfile::tempdir().unwrap();
    let o = outside.path().to_str().unwrap().to_string();
    let p = dir.to_str().unwrap().to_string();
    // Unique content, never written in any statement.
    let mark = format!(
        "{:x}{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let canaries: Vec<String> = ["CSV", "JSON", "PARQUET", "INSIDE"]
        .iter()
        .map(|k| format!("CANARY{k}{mark}"))
        .collect();
    std::fs::write(
        outside.path().join("canary.csv"),
        format!("secret\n{}\n", canaries[0]),
    )
    .unwrap();
    std::fs::write(
        outside.path().join("canary.json"),
        format!("{{\"secret\": \"{}\"}}\n", canaries[1]),
    )
    .unwrap();
    write(
        &dir,
        "data/canary_in.csv",
        &format!("secret\n{}\n", canaries[3]),
    );
    // The project's own SQL (the command line) may read and write files: the parquet
    // canary is written by it, and a table to write into made with it.
    ok(
        &dir,
        &[
            "sql",
            &format!(
                "COPY (SELECT upper('canary') || 'PARQUET' || '{mark}' AS secret) TO '{o}/canary.parquet' STORED AS PARQUET"
            ),
        ],
    );
    ok(&dir, &["sql", "CREATE TABLE guard_t AS SELECT 'a' AS a"]);
    // The server first: its first start in an empty database creates the admin.
    let log_path = outside.path().join("..").join(format!("server-{mark}.log"));
    let server = start_logged(&dir, &[], Some(&log_path));
    let roles = ["viewer", "analyst", "editor", "admin"];
    let tokens: Vec<String> = roles.iter().map(|r| user_with_token(&dir, r)).collect();
    let before_outside = files(outside.path());
    let before_project = files(&dir);

    // The server works: its own tables answer.
    let query = |auth: Option<&str>, sql: &str| {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        call(
            server.port,
            "POST",
            "/api/query",
            &headers,
            &json!({ "sql": sql }).to_string(),
        )
    };
    for t in &tokens[1..] {
        let a = query(Some(t), "SELECT count(*) AS n FROM guard_t");
        assert_eq!(a.status, 200, "{}", a.body);
    }

    let mut answers = Vec::new();
    let mut checks = 0;
    for form in FORMS {
        let sql = form.replace("{o}", &o).replace("{p}", &p);
        let a = query(None, &sql);
        assert_eq!(a.status, 401, "anonymous: {sql}: {}", a.body);
        for (role, token) in roles.iter().zip(&tokens) {
            let a = query(Some(token), &sql);
            assert!(
                (400..500).contains(&a.status),
                "{role} ran `{sql}`: {} {}",
                a.status,
                a.body
            );
            if *role == "viewer" {
                assert_eq!(a.status, 403, "{}", a.body);
            }
            answers.push(format!("{role} {sql}: {} {}", a.headers, a.body));
            checks += 1;
        }
    }
    assert!(checks >= 30 * 4, "{checks} checks");
    // What editors and admins are refused says why, in socle's words.
    let copy = query(
        Some(&tokens[2]),
        &format!("COPY (SELECT 1 AS a) TO '{o}/copy.csv'"),
    );
    assert_eq!(copy.status, 403, "{}", copy.body);
    assert!(copy.body.contains("not allowed"), "{}", copy.body);

    // A pipeline written through COPY would be triggerable: there is none.
    let trigger = call(
        server.port,
        "POST",
        "/api/pipelines/pwn/trigger",
        &[("Authorization", &tokens[2])],
        "{}",
    );
    assert_eq!(trigger.status, 404, "{}", trigger.body);

    let audit = call(
        server.port,
        "GET",
        "/api/audit",
        &[("Authorization", &tokens[3])],
        "",
    );
    assert_eq!(audit.status, 200, "{}", audit.body);
    assert!(
        audit.body.contains("COPY"),
        "queries are audited: {}",
        audit.body
    );
    drop(server);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);

    for canary in &canaries {
        for a in &answers {
            assert!(!a.contains(canary.as_str()), "a canary leaked: {a}");
        }
        assert!(!log.contains(canary.as_str()), "a canary reached the log");
        assert!(
            !audit.body.contains(canary.as_str()),
            "a canary reached the audit"
        );
    }
    assert_eq!(
        files(outside.path()),
        before_outside,
        "a file outside the warehouse appeared or changed"
    );
    let after_project = files(&dir);
    let changed: Vec<_> = after_project
        .iter()
        .filter(|(k, v)| before_project.get(*k) != Some(*v))
        .map(|(k, _)| k.display().to_string())
        .chain(
            before_project
                .keys()
                .filter(|k| !after_project.contains_key(*k))
                .map(|k| k.display().to_string()),
        )
        .collect();
    assert!(changed.is_empty(), "project files changed: {changed:?}");
}

/// A pipeline's `sql` task is the project's code: triggered over HTTP, it still reads a
/// file by path as `socle sql` does, while the same statement sent to `/api/query` is
/// refused.
#[test]
fn project_sql_triggered_over_http_keeps_file_access() {
    let (_tmp, dir) = project();
    write(&dir, "data/prices.csv", "sku,price\na,1.5\nb,2.5\nc,4\n");
    write(
        &dir,
        "pipelines/prices.yml",
        "tasks:\n  load:\n    kind: sql\n    sql: CREATE OR REPLACE TABLE prices AS SELECT * FROM 'data/prices.csv'\n",
    );
    let server = crate::server::start(&dir);
    let editor = user_with_token(&dir, "editor");
    let sent = call(
        server.port,
        "POST",
        "/api/query",
        &[("Authorization", &editor)],
        &json!({"sql": "CREATE OR REPLACE TABLE prices AS SELECT * FROM 'data/prices.csv'"})
            .to_string(),
    );
    // Sent over HTTP, the path is not a table (no file is opened).
    assert_eq!(sent.status, 400, "{}", sent.body);
    assert!(sent.body.contains("not found"), "{}", sent.body);
    let run = call(
        server.port,
        "POST",
        "/api/pipelines/prices/trigger",
        &[("Authorization", &editor)],
        "{}",
    );
    assert_eq!(run.status, 202, "{}", run.body);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let state = loop {
        let r = call(
            server.port,
            "GET",
            &format!("/api/runs/{run_id}"),
            &[("Authorization", &editor)],
            "",
        )
        .json();
        if !matches!(r["state"].as_str(), Some("running" | "queued")) {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not end: {r}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(state["state"], "success", "{state}");
    let rows = call(
        server.port,
        "POST",
        "/api/query",
        &[("Authorization", &editor)],
        &json!({"sql": "SELECT sum(price) AS total FROM prices"}).to_string(),
    );
    assert_eq!(rows.status, 200, "{}", rows.body);
    assert_eq!(rows.json()["rows"], json!([[8.0]]), "{}", rows.body);
}
