//! `socle serve` reads the catalog and runs queries in child processes: the query process
//! starts at the first query, stops after `server.query_idle`, starts again at the next
//! one, and a query process that dies costs the query it ran (500), not the server.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::server::{Answer, call, start};
use crate::server_api::user_with_token;

/// The server's child processes running `socle <subcommand>` (each thread lists the
/// children it started).
pub(crate) fn children(server_pid: u32, subcommand: &str) -> Vec<u32> {
    let mut list = String::new();
    for task in std::fs::read_dir(format!("/proc/{server_pid}/task")).unwrap() {
        let path = task.unwrap().path().join("children");
        list += &std::fs::read_to_string(path).unwrap_or_default();
        list.push(' ');
    }
    let mut found: Vec<u32> = list
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| c.split(|b| *b == 0).any(|arg| arg == subcommand.as_bytes()))
                .unwrap_or(false)
                && alive(&p.to_string())
        })
        .collect();
    found.sort();
    found
}

/// Waits (bounded) until `check` holds.
fn eventually(what: &str, seconds: u64, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {seconds} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn get(port: u16, token: &str, path: &str) -> Answer {
    call(port, "GET", path, &[("Authorization", token)], "")
}

fn query(port: u16, token: &str, body: serde_json::Value) -> Answer {
    call(
        port,
        "POST",
        "/api/query",
        &[("Authorization", token)],
        &body.to_string(),
    )
}

#[test]
fn queries_and_the_catalog_run_in_child_processes() {
    let (_tmp, dir) = project();
    let yml = std::fs::read_to_string(dir.join("socle.yml")).unwrap();
    std::fs::write(
        dir.join("socle.yml"),
        format!("{yml}\nserver:\n  query_idle: 3s\n"),
    )
    .unwrap();
    ok(
        &dir,
        &[
            "sql",
            "CREATE TABLE sales AS SELECT * FROM (VALUES (1, 'north', 10.5), (2, 'south', 4.5), (3, 'north', 2.0)) AS t(id, region, amount)",
        ],
    );
    let server = start(&dir);
    let analyst = user_with_token(&dir, "analyst");
    let editor = user_with_token(&dir, "editor");
    let (port, pid) = (server.port, server.child.id());
    assert!(children(pid, "query-worker").is_empty(), "started early");

    // The catalog is read at start, by a child that exits once it has answered.
    eventually("the catalog is read at start", 60, || {
        let p = get(port, &analyst, "/api/project").json();
        p["catalog_read_ms"].is_u64() && p["tables"] == 1
    });
    let tables = get(port, &analyst, "/api/tables");
    assert_eq!(tables.status, 200, "{}", tables.body);
    assert!(tables.body.contains("\"sales\""), "{}", tables.body);
    eventually("the catalog reader exits", 20, || {
        children(pid, "catalog-snapshot").is_empty()
    });

    // The first query starts the query process; it answers and stays for the next query.
    let sum = r#"SELECT region, sum(amount) AS total FROM sales GROUP BY region ORDER BY region"#;
    let a = query(port, &analyst, serde_json::json!({"sql": sum}));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json()["rows"],
        serde_json::json!([["north", 12.5], ["south", 4.5]])
    );
    let first = children(pid, "query-worker");
    assert_eq!(first.len(), 1, "one query process");
    let metrics = |token: &str| get(port, token, "/metrics").body;
    assert!(metrics(&analyst).contains("\nsocle_query_process_running 1\n"));
    let csv = call(
        port,
        "POST",
        "/api/query?format=csv",
        &[("Authorization", &analyst)],
        &serde_json::json!({"sql": sum}).to_string(),
    );
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert_eq!(csv.body, "region,total\r\nnorth,12.5\r\nsouth,4.5\r\n");
    assert!(
        csv.headers
            .to_lowercase()
            .contains("content-type: text/csv")
    );
    assert_eq!(children(pid, "query-worker"), first, "the same process");

    // Errors keep their status through the child: a bad query is the caller's 400, a write
    // by an analyst is refused.
    let bad = query(
        port,
        &analyst,
        serde_json::json!({"sql": "SELECT nope FROM sales"}),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        bad.json()["error"].as_str().unwrap().contains("nope"),
        "{}",
        bad.body
    );
    let analyst_write = query(
        port,
        &analyst,
        serde_json::json!({"sql": "DROP TABLE sales"}),
    );
    assert_eq!(analyst_write.status, 400, "{}", analyst_write.body);

    // Idle for `query_idle`: the process stops; the next query starts another.
    eventually("the idle query process stops", 30, || {
        children(pid, "query-worker").is_empty()
    });
    assert!(metrics(&analyst).contains("\nsocle_query_process_running 0\n"));
    let a = query(
        port,
        &analyst,
        serde_json::json!({"sql": "SELECT count(*) AS n FROM sales"}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["rows"], serde_json::json!([[3]]));
    let second = children(pid, "query-worker");
    assert_eq!(second.len(), 1);
    assert_ne!(second, first, "a new process");

    // A write through the query process lands, and the catalog shows it.
    let made = query(
        port,
        &editor,
        serde_json::json!({"sql": "CREATE TABLE big_sales AS SELECT * FROM sales WHERE amount > 4"}),
    );
    assert_eq!(made.status, 200, "{}", made.body);
    eventually("the catalog shows the new table", 30, || {
        get(port, &analyst, "/api/tables")
            .body
            .contains("\"big_sales\"")
    });

    // The query process dies during a query: that query fails with a message, the server
    // lives on and the next query gets a new process.
    let slow = std::thread::spawn({
        let analyst = analyst.clone();
        move || {
            query(
                port,
                &analyst,
                serde_json::json!({"sql": "SELECT count(*) FROM generate_series(1, 100000000000) t", "timeout_seconds": 60}),
            )
        }
    });
    let mut victim = Vec::new();
    eventually("the slow query reaches the query process", 30, || {
        victim = children(pid, "query-worker");
        !victim.is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(victim[0] as i32, libc::SIGKILL) };
    let died = slow.join().unwrap();
    assert_eq!(died.status, 500, "{}", died.body);
    assert!(
        died.json()["error"]
            .as_str()
            .unwrap()
            .contains("query process stopped"),
        "{}",
        died.body
    );
    let a = query(
        port,
        &analyst,
        serde_json::json!({"sql": "SELECT count(*) AS n FROM big_sales"}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["rows"], serde_json::json!([[2]]));
    assert_ne!(children(pid, "query-worker"), victim);
    let health = call(port, "GET", "/healthz", &[], "");
    assert_eq!(health.status, 200);

    // Tasks that use the warehouse run in a task process; a timeout kills it.
    write(
        &dir,
        "pipelines/crunch.yml",
        "tasks:\n  tally:\n    kind: sql\n    sql: CREATE OR REPLACE TABLE tally AS SELECT region, count(*) AS n FROM sales GROUP BY region\n  spin:\n    kind: sql\n    sql: SELECT count(*) FROM generate_series(1, 100000000000) t\n    timeout: 4s\n    retries: 0\n    depends_on: [tally]\n",
    );
    let run = call(
        port,
        "POST",
        "/api/pipelines/crunch/trigger",
        &[("Authorization", &editor)],
        "{}",
    );
    assert_eq!(run.status, 202, "{}", run.body);
    let run_id = run.json()["run_id"].as_str().unwrap().to_string();
    eventually("the slow task runs in a task process", 60, || {
        children(pid, "task-attempt").len() == 1
    });
    let mut detail = serde_json::Value::Null;
    eventually("the run ends", 60, || {
        detail = get(port, &analyst, &format!("/api/runs/{run_id}")).json();
        !matches!(detail["state"].as_str(), Some("running" | "queued"))
    });
    assert_eq!(detail["state"], "failed", "{detail}");
    let logs = get(port, &analyst, &format!("/api/runs/{run_id}/logs")).body;
    assert!(
        logs.contains("statement 1: "),
        "the task process's log lines: {logs}"
    );
    assert!(logs.contains("timed out after 4.0s"), "{logs}");
    eventually("the timed-out task process is gone", 20, || {
        children(pid, "task-attempt").is_empty()
    });
    let tally = query(
        port,
        &analyst,
        serde_json::json!({"sql": "SELECT region, n FROM tally ORDER BY region"}),
    );
    assert_eq!(
        tally.json()["rows"],
        serde_json::json!([["north", 2], ["south", 1]])
    );

    // At shutdown the query process goes with the server.
    let last = children(pid, "query-worker");
    drop(server);
    eventually("the query process stops with the server", 20, || {
        last.iter().all(|p| !alive(&p.to_string()))
    });
}
