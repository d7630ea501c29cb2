//! The HTTP status of each kind of error, by whose fault it is (`socle_core::fault`): the
//! caller's SQL 400, a refused statement 403, a missing object 404, a query past its time
//! 408, an object in the way 409; a failure of the storage under the warehouse 500 with
//! its detail in the log, not in the answer. A caller without the role gets the same answer
//! for an object that exists and one that does not.

use serde_json::json;

use crate::common::*;
use crate::server::{call, start_logged};
use crate::server_api::user_with_token;

#[test]
fn each_error_kind_has_its_status() {
    let (tmp, dir) = project();
    ok(&dir, &["sql", "CREATE TABLE kept AS SELECT 1 AS a"]);
    ok(&dir, &["sql", "CREATE TABLE broken AS SELECT 1 AS a"]);
    write(
        &dir,
        "pipelines/daily.yml",
        "tasks:\n  hello:\n    kind: command\n    command: [\"true\"]\n",
    );
    let log_path = tmp.path().join("server.log");
    let server = start_logged(&dir, &[], Some(&log_path));
    let editor = user_with_token(&dir, "editor");
    let viewer = user_with_token(&dir, "viewer");
    let sql = |sql: &str, timeout: Option<u64>| {
        let mut body = json!({ "sql": sql });
        if let Some(t) = timeout {
            body["timeout_seconds"] = json!(t);
        }
        call(
            server.port,
            "POST",
            "/api/query",
            &[("Authorization", &editor)],
            &body.to_string(),
        )
    };

    for (statement, status, words) in [
        ("SELEC 1", 400, "SELEC"),
        ("SELECT * FROM nope", 400, "nope"),
        (
            "COPY (SELECT 1 AS a) TO '/tmp/socle-never.csv'",
            403,
            "not allowed",
        ),
        ("DROP TABLE main.nope", 404, "nope"),
        ("CREATE TABLE kept AS SELECT 2 AS a", 409, "already exists"),
    ] {
        let a = sql(statement, None);
        assert_eq!(a.status, status, "{statement}: {}", a.body);
        assert!(a.body.contains(words), "{statement}: {}", a.body);
    }
    let slow = sql(
        "SELECT count(*) FROM generate_series(1, 100000000000) t",
        Some(1),
    );
    assert_eq!(slow.status, 408, "{}", slow.body);

    // The storage under a table fails (its data file is gone): the server's fault, said
    // without the storage's detail; the detail is in the log.
    let mut removed = 0;
    for f in walk(&dir.join(".socle/lake/warehouse/main/broken")) {
        if f.extension().is_some_and(|e| e == "parquet") {
            std::fs::remove_file(&f).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 0, "no data file found for the table");
    let failed = sql("SELECT * FROM broken", None);
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert!(failed.body.contains("internal error"), "{}", failed.body);
    assert!(
        !failed.body.contains(".socle") && !failed.body.contains("parquet"),
        "{}",
        failed.body
    );
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("parquet"), "the detail is logged:\n{log}");

    // Without the role, an object that exists and one that does not look alike.
    let get =
        |path: &str, token: &str| call(server.port, "GET", path, &[("Authorization", token)], "");
    let there = get("/api/pipelines/daily", &viewer);
    let absent = get("/api/pipelines/nope", &viewer);
    assert_eq!((there.status, absent.status), (403, 403));
    assert_eq!(
        there.body.replace("daily", "X"),
        absent.body.replace("nope", "X")
    );
    // With it, the missing one is 404.
    assert_eq!(get("/api/pipelines/nope", &editor).status, 404);
    assert_eq!(get("/api/tables/main/nope", &editor).status, 404);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
