//! `socle serve`'s log: every event through `tracing` on stderr, one JSON object each with
//! `--log-json` (fields a collector can index), nothing on stdout when it is not a terminal,
//! and never the first admin's one-time password.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// Runs yesterday's interval as soon as the daemon starts (`catchup: false`).
const DAILY: &str = "schedule: \"0 6 * * *\"\nstart_date: 2024-01-01\ntasks:\n  hello:\n    kind: command\n    command: [\"true\"]\n";

#[test]
fn the_daemon_logs_json_events_and_never_the_password() {
    let (_tmp, dir) = project();
    write(&dir, "pipelines/daily.yml", DAILY);
    let mut child = socle()
        .current_dir(&dir)
        .args(["--log-json", "serve", "--port", "0", "--grace", "5s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut stdout = child.stdout.take().unwrap();
    let printed = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let mut lines = Vec::new();
    let finished = |l: &String| l.contains("\"task\":\"hello\"") && l.contains("\"state\"");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lines.iter().any(finished) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!("no task event within 60 s:\n{}", lines.join("\n")),
        }
    }
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    lines.extend(rx.iter());
    let log = lines.join("\n");

    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let with = |key: &str, value: &str| {
        events
            .iter()
            .find(|e| e["fields"][key].as_str() == Some(value))
            .unwrap_or_else(|| panic!("no event with {key} = {value}:\n{log}"))
    };
    let message = |e: &Value| e["fields"]["message"].as_str().unwrap_or("").to_string();
    for e in &events {
        assert!(e["level"].is_string() && e["timestamp"].is_string(), "{e}");
    }
    let listening = events
        .iter()
        .find(|e| message(e).contains("listening on"))
        .unwrap_or_else(|| panic!("no listening event:\n{log}"));
    assert!(
        listening["fields"]["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:")),
        "{listening}"
    );
    let done = with("task", "hello");
    let done = events
        .iter()
        .filter(|e| e["fields"]["task"] == "hello")
        .find(|e| e["fields"]["state"] == "success")
        .unwrap_or_else(|| panic!("the task's end is not logged as success: {done}\n{log}"));
    assert!(done["fields"]["duration_ms"].is_u64(), "{done}");
    assert!(
        events.iter().any(|e| e["fields"]["run_id"].is_string()),
        "no run event:\n{log}"
    );
    assert!(
        events.iter().any(|e| message(e) == "server: stopped"),
        "{log}"
    );

    // The password is in its owner-only file, named by the log, and nowhere else.
    let created = with("file", ".socle/admin-password");
    assert!(
        message(created).contains("one-time password is in"),
        "{created}"
    );
    let password = std::fs::read_to_string(dir.join(".socle/admin-password")).unwrap();
    let password = password.trim();
    assert!(password.len() >= 12, "{password}");
    assert!(
        !log.contains(password),
        "the log shows the password:\n{log}"
    );
    let printed = printed.join().unwrap();
    assert!(printed.is_empty(), "stdout is not a terminal: {printed}");
}
