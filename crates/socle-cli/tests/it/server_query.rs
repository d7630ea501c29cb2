//! `POST /api/query` under load and with large answers: a query waits for a slot at most
//! `server.query_queue_wait` and is then told to retry (503, `Retry-After`); answers are
//! cut at `server.max_answer_bytes` with the wire format of docs/server.md ("Query
//! answers"), streamed, and neither the server nor its query process holds a big answer.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::server::{Answer, call, start};
use crate::server_api::user_with_token;
use crate::server_processes::children;

/// A fresh project served with `server:` settings `extra`; (server, analyst token).
fn served(extra: &str) -> (tempfile::TempDir, crate::server::Server, String) {
    let (tmp, dir) = project();
    let yml = std::fs::read_to_string(dir.join("socle.yml")).unwrap();
    std::fs::write(dir.join("socle.yml"), format!("{yml}\nserver:\n{extra}")).unwrap();
    let server = start(&dir);
    let token = user_with_token(&dir, "analyst");
    (tmp, server, token)
}

fn query(port: u16, token: &str, path: &str, body: serde_json::Value) -> Answer {
    call(
        port,
        "POST",
        path,
        &[("Authorization", token)],
        &body.to_string(),
    )
}

/// The value of header `name` in `head` (case-insensitive), if any.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn a_busy_server_answers_503_after_the_queue_wait() {
    let (_tmp, server, token) = served("  query_slots: 1\n  query_queue_wait: 300ms\n");
    let port = server.port;
    assert_eq!(
        query(
            port,
            &token,
            "/api/query",
            serde_json::json!({"sql": "SELECT 1 AS one"})
        )
        .status,
        200
    );
    // One query holds the only slot for 4 s (it runs until its timeout)...
    let slow = {
        let token = token.clone();
        std::thread::spawn(move || {
            let body = serde_json::json!({"sql": "SELECT count(*) FROM generate_series(1, 100000000000) t", "timeout_seconds": 4});
            query(port, &token, "/api/query", body).status
        })
    };
    std::thread::sleep(Duration::from_millis(700));
    // ...so a burst waits 300 ms for a slot, then is told to come back.
    let burst: Vec<_> = (0..6)
        .map(|_| {
            let token = token.clone();
            std::thread::spawn(move || {
                let asked = Instant::now();
                let a = query(
                    port,
                    &token,
                    "/api/query",
                    serde_json::json!({"sql": "SELECT 1 AS one"}),
                );
                (a, asked.elapsed())
            })
        })
        .collect();
    for t in burst {
        let (a, took) = t.join().unwrap();
        assert_eq!(a.status, 503, "{}", a.body);
        assert_eq!(
            header(&a.headers, "Retry-After"),
            Some("1"),
            "{}",
            a.headers
        );
        assert!(
            a.json()["error"].as_str().unwrap().contains("busy"),
            "{}",
            a.body
        );
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_millis(2500),
            "answered after {took:?}, not after the 300 ms queue wait"
        );
    }
    assert_eq!(slow.join().unwrap(), 408);
    // The slot is free again.
    assert_eq!(
        query(
            port,
            &token,
            "/api/query",
            serde_json::json!({"sql": "SELECT 1 AS one"})
        )
        .status,
        200
    );
}

/// A streamed answer read as HTTP/1.1 with `TE: trailers`: (head, body, trailers, whether
/// the chunked body ended with its last chunk).
fn streamed(port: u16, token: &str, path: &str, sql: &str) -> (String, Vec<u8>, String, bool) {
    let body = serde_json::json!({ "sql": sql }).to_string();
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        conn,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTE: trailers\r\nAuthorization: {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(conn);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        head.push_str(&line);
    }
    assert!(
        header(&head, "Transfer-Encoding") == Some("chunked"),
        "not streamed:\n{head}"
    );
    let (mut data, mut trailers) = (Vec::new(), String::new());
    loop {
        let mut size = String::new();
        if r.read_line(&mut size).unwrap_or(0) == 0 {
            return (head, data, trailers, false);
        }
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        let mut chunk = vec![0; n + 2];
        if r.read_exact(&mut chunk).is_err() {
            return (head, data, trailers, false);
        }
        data.extend_from_slice(&chunk[..n]);
    }
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        trailers.push_str(&line);
    }
    (head, data, trailers, true)
}

/// `body` with its `"elapsed_ms":N` set to 0.
fn no_time(body: &str) -> String {
    let at = body.find("\"elapsed_ms\":").unwrap() + "\"elapsed_ms\":".len();
    let digits = body[at..].chars().take_while(char::is_ascii_digit).count();
    format!("{}0{}", &body[..at], &body[at + digits..])
}

#[test]
fn answers_are_cut_at_max_answer_bytes_with_the_documented_format() {
    let (_tmp, server, token) = served("  max_answer_bytes: 1KiB\n");
    let port = server.port;
    let x100 = "x".repeat(100);
    let sql = "SELECT repeat('x', 100) AS x FROM generate_series(1, 50)";

    // JSON, sent whole: rows first, then the end's fields; the same in headers.
    let a = query(
        port,
        &token,
        "/api/query",
        serde_json::json!({ "sql": sql }),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let prefix = format!(
        "{{\"columns\":[{{\"name\":\"x\",\"type\":\"{}\"}}],\"rows\":[",
        a.json()["columns"][0]["type"].as_str().unwrap()
    );
    // Rows of `["x…"]` (104 bytes) and `,` between them, up to 1,024 bytes.
    let rows = (1024 - prefix.len() + 1) / 105;
    let expect = format!(
        "{prefix}{}],\"row_count\":{rows},\"truncated\":true,\"truncated_by\":\"bytes\",\"elapsed_ms\":0,\"message\":null}}",
        vec![format!("[\"{x100}\"]"); rows].join(",")
    );
    assert_eq!(no_time(&a.body), expect);
    assert!(prefix.len() + rows * 105 - 1 <= 1024 && prefix.len() + rows * 105 + 104 > 1024);
    for (name, value) in [
        ("X-Socle-Max-Answer-Bytes", "1024".to_string()),
        ("X-Socle-Max-Rows", "10000".to_string()),
        ("X-Socle-Row-Count", rows.to_string()),
        ("X-Socle-Truncated", "bytes".to_string()),
        ("Content-Length", a.body.len().to_string()),
    ] {
        assert_eq!(
            header(&a.headers, name),
            Some(value.as_str()),
            "{}",
            a.headers
        );
    }
    // Cut at the row limit: only when more rows exist.
    let a = query(
        port,
        &token,
        "/api/query",
        serde_json::json!({ "sql": sql, "limit": 2 }),
    );
    assert_eq!(
        (
            a.json()["truncated_by"].as_str(),
            a.json()["row_count"].as_u64()
        ),
        (Some("rows"), Some(2))
    );
    assert_eq!(header(&a.headers, "X-Socle-Truncated"), Some("rows"));
    let a = query(
        port,
        &token,
        "/api/query",
        serde_json::json!({ "sql": "SELECT 1 AS a", "limit": 1 }),
    );
    assert_eq!(
        (
            a.json()["truncated"].as_bool(),
            a.json()["truncated_by"].is_null()
        ),
        (Some(false), true)
    );
    assert_eq!(header(&a.headers, "X-Socle-Truncated"), Some("false"));

    // CSV, sent whole: the header line and 10 rows of 102 bytes fit in 1,024 bytes.
    let a = query(
        port,
        &token,
        "/api/query?format=csv",
        serde_json::json!({ "sql": sql }),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body, format!("x\r\n{}", format!("{x100}\r\n").repeat(10)));
    assert_eq!(header(&a.headers, "X-Socle-Truncated"), Some("bytes"));
    assert_eq!(header(&a.headers, "X-Socle-Row-Count"), Some("10"));
}

#[test]
fn long_answers_stream_with_trailers_and_errors_are_not_silent() {
    let (_tmp, server, token) = served("  max_answer_bytes: 1MiB\n");
    let port = server.port;
    let sql = "SELECT repeat('x', 1000) AS x FROM generate_series(1, 5000)";
    let x1000 = "x".repeat(1000);

    // CSV: streamed; the cut comes in trailers.
    let (head, body, trailers, complete) = streamed(port, &token, "/api/query?format=csv", sql);
    assert!(complete && head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "Content-Length"), None, "{head}");
    assert_eq!(
        header(&head, "Trailer"),
        Some("X-Socle-Row-Count, X-Socle-Truncated, X-Socle-Error")
    );
    assert_eq!(header(&head, "X-Socle-Max-Answer-Bytes"), Some("1048576"));
    let rows = (1_048_576 - 3) / 1002;
    assert_eq!(body.len(), 3 + rows * 1002);
    assert!(body == format!("x\r\n{}", format!("{x1000}\r\n").repeat(rows)).into_bytes());
    assert_eq!(
        header(&trailers, "X-Socle-Row-Count"),
        Some(rows.to_string().as_str())
    );
    assert_eq!(header(&trailers, "X-Socle-Truncated"), Some("bytes"));
    assert_eq!(header(&trailers, "X-Socle-Error"), None);

    // JSON: the same cut in the trailing fields and the trailers.
    let (_, body, trailers, complete) = streamed(port, &token, "/api/query", sql);
    assert!(complete);
    let body = String::from_utf8(body).unwrap();
    assert!(body.len() <= 1_048_576 + 200, "{}", body.len());
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rows = v["row_count"].as_u64().unwrap();
    assert_eq!(v["rows"].as_array().unwrap().len() as u64, rows);
    assert!(rows > 1000, "{rows}");
    assert!(body.ends_with(&format!(
        "],\"row_count\":{rows},\"truncated\":true,\"truncated_by\":\"bytes\",\"elapsed_ms\":{},\"message\":null}}",
        v["elapsed_ms"]
    )));
    assert_eq!(header(&trailers, "X-Socle-Truncated"), Some("bytes"));

    // An error after the answer started: JSON says it at the end...
    let failing = "SELECT repeat('x', 1000) || CAST(CAST(CASE WHEN value > 900 THEN 'bad' ELSE '1' END AS INT) AS VARCHAR) AS x FROM generate_series(1, 1000)";
    let (head, body, trailers, complete) = streamed(port, &token, "/api/query", failing);
    assert!(complete && head.starts_with("HTTP/1.1 200"), "{head}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let error = v["error"].as_str().unwrap();
    assert!(error.contains("bad"), "{error}");
    assert_eq!(v["truncated"], false);
    assert_eq!(
        v["rows"].as_array().unwrap().len() as u64,
        v["row_count"].as_u64().unwrap()
    );
    assert!(
        header(&trailers, "X-Socle-Error").unwrap().contains("bad"),
        "{trailers}"
    );
    // ...and CSV ends without its last chunk: a broken download, not a shorter file.
    let (head, body, _, complete) = streamed(port, &token, "/api/query?format=csv", failing);
    assert!(
        head.starts_with("HTTP/1.1 200") && body.len() > 256 * 1024,
        "{head}"
    );
    assert!(!complete, "a failed CSV answer looked complete");
}

/// KiB of `field` (`VmHWM`, `VmRSS`) of process `pid`.
fn kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn a_big_answer_stays_out_of_both_processes_memory() {
    let (_tmp, server, token) = served("  max_answer_bytes: 4MiB\n");
    let (port, pid) = (server.port, server.child.id());
    assert_eq!(
        query(
            port,
            &token,
            "/api/query",
            serde_json::json!({"sql": "SELECT 1 AS one"})
        )
        .status,
        200
    );
    let worker = children(pid, "query-worker")[0];
    let (server_before, worker_before) = (kib(pid, "VmRSS"), kib(worker, "VmRSS"));
    // 200 rows of 1 MB asked (a 200 MB answer), cut at 4 MiB.
    let (head, body, trailers, complete) = streamed(
        port,
        &token,
        "/api/query",
        "SELECT repeat('x', 1000000) AS x FROM generate_series(1, 200)",
    );
    assert!(complete && head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&trailers, "X-Socle-Truncated"), Some("bytes"));
    assert!(body.len() <= 4 << 20, "{}", body.len());
    let (server_peak, worker_peak) = (kib(pid, "VmHWM"), kib(worker, "VmHWM"));
    // Each process holds a few pieces of the answer and (the query process) a few batches
    // of 64 values of 1 MB; before streaming they held all of it, several times over.
    assert!(
        server_peak < server_before + 64 * 1024,
        "server: {server_before} KiB before, peak {server_peak} KiB"
    );
    assert!(
        worker_peak < worker_before + 350 * 1024,
        "query process: {worker_before} KiB before, peak {worker_peak} KiB"
    );
}
