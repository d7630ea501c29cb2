//! Alerts over real protocols on loopback: a JSON webhook and a Slack-style webhook served
//! by an HTTP server in this test, and email through an SMTP server (aiosmtpd) that
//! requires STARTTLS and authentication, trusting the test's own CA.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::common::*;

/// Requests received: (path, headers lower-cased, body).
type Received = Arc<Mutex<Vec<(String, Vec<(String, String)>, String)>>>;

fn http_server() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Received = Arc::default();
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut headers = Vec::new();
            let mut length = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                let (k, v) = (k.trim().to_lowercase(), v.trim().to_string());
                if k == "content-length" {
                    length = v.parse().unwrap();
                }
                headers.push((k, v));
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            sink.lock()
                .unwrap()
                .push((path, headers, String::from_utf8(body).unwrap()));
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, got)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A test CA and a server certificate for `localhost` signed by it.
fn certificates(dir: &Path) {
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=socle test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn failures_retries_sla_misses_and_notify_reach_webhooks_and_email() {
    let (_tmp, dir) = project();
    let (http_port, received) = http_server();
    certificates(&dir);
    let smtp_port = free_port();
    let mails = dir.join("mails.jsonl");
    let mut sink = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/smtp_sink.py"))
        .args([
            &smtp_port.to_string(),
            dir.join("cert.pem").to_str().unwrap(),
            dir.join("key.pem").to_str().unwrap(),
            "alerts",
            "s3cret",
            mails.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with aiosmtpd (scripts/test-services.sh installs it)");
    let mut ready = String::new();
    BufReader::new(sink.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    std::fs::write(
        dir.join("socle.yml"),
        format!(
            r#"name: proj
alerts:
  channels:
    hook:
      type: webhook
      url: http://127.0.0.1:{http_port}/hook
      headers: {{ X-Token: "${{env:HOOK_TOKEN}}" }}
    chat: {{ type: slack, url: "${{env:SLACK_URL}}" }}
    mail:
      type: email
      host: localhost
      port: {smtp_port}
      tls: starttls
      username: alerts
      password: "${{env:SMTP_PASSWORD}}"
      ca_file: ca.pem
      from: socle@example.com
      to: [data-team@example.com]
  on: [failure, retry, sla_miss]
  to: [hook, chat]
  logs_url: "https://socle.example.com/runs/{{run_id}}"
"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines/alerting.yml"),
        r#"schedule: "@daily"
sla: 1h
tasks:
  flaky:
    kind: command
    command: "echo boom; exit 3"
    retries: 1
    retry_delay: 0
  tell:
    kind: notify
    message: "flaky failed for {{ ds }}"
    channels: [mail]
    depends_on: [flaky]
    trigger_rule: one_failed
"#,
    )
    .unwrap();
    let out = socle()
        .current_dir(&dir)
        .env("HOOK_TOKEN", "t0ken")
        .env("SLACK_URL", format!("http://127.0.0.1:{http_port}/slack"))
        .env("SMTP_PASSWORD", "s3cret")
        .args(["run", "alerting", "--date", "2024-05-01"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("tell succeeded"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(sink.stdin.take());
    let _ = sink.wait();

    let got = received.lock().unwrap().clone();
    let hooks: Vec<Value> = got
        .iter()
        .filter(|(p, _, _)| p == "/hook")
        .map(|(_, _, b)| serde_json::from_str(b).unwrap())
        .collect();
    let events: Vec<&str> = hooks.iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["retry", "failure", "sla_miss"], "{hooks:#?}");
    let failure = &hooks[1];
    assert_eq!(failure["pipeline"], "alerting");
    assert_eq!(failure["task"], "flaky");
    assert_eq!(failure["logical_date"], "2024-05-01");
    assert_eq!(failure["attempt"], 2);
    assert_eq!(failure["run_id"], "alerting.20240501.1");
    assert_eq!(
        failure["logs"],
        "https://socle.example.com/runs/alerting.20240501.1"
    );
    let message = failure["message"].as_str().unwrap();
    assert!(
        message.contains("exited with status 3") && message.contains("boom"),
        "{message}"
    );
    assert!(
        got.iter()
            .filter(|(p, _, _)| p == "/hook")
            .all(|(_, h, _)| h.contains(&("x-token".into(), "t0ken".into()))),
        "{got:?}"
    );
    let slack: Vec<Value> = got
        .iter()
        .filter(|(p, _, _)| p == "/slack")
        .map(|(_, _, b)| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(slack.len(), 3);
    assert!(
        slack[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("[socle] alerting: task flaky failed (2024-05-01)"),
        "{slack:?}"
    );
    // The notify task's email went through STARTTLS and AUTH.
    let mail: Value = serde_json::from_str(
        std::fs::read_to_string(&mails)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(mail["tls"], true);
    assert_eq!(mail["auth"], true);
    assert_eq!(mail["to"][0], "data-team@example.com");
    let data = mail["data"].as_str().unwrap();
    assert!(
        data.contains("Subject: [socle] alerting: notification (2024-05-01)"),
        "{data}"
    );
    assert!(data.contains("flaky failed for 2024-05-01"), "{data}");
}

#[test]
fn unknown_channels_and_events_are_reported_with_file_and_line() {
    let (_tmp, dir) = project();
    std::fs::write(
        dir.join("socle.yml"),
        "name: proj\nalerts:\n  channels:\n    team: { type: slack, url: \"${env:SLACK_URL}\" }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines/p.yml"),
        "alerts: { on: [failure], to: [teams] }\ntasks:\n  t: { kind: notify, message: hi, channels: [team] }\n",
    )
    .unwrap();
    let (success, out, _) = run(&dir, &["check"]);
    assert!(!success);
    assert!(
        out.contains("pipelines/p.yml:1:31: no alerts channel `teams` in socle.yml"),
        "{out}"
    );
    assert!(out.contains("did you mean `team`?"), "{out}");
    std::fs::write(
        dir.join("pipelines/p.yml"),
        "alerts: { on: [failures] }\ntasks:\n  t: { kind: notify, message: hi }\n",
    )
    .unwrap();
    let (success, out, _) = run(&dir, &["check"]);
    assert!(!success);
    assert!(
        out.contains("pipelines/p.yml:1:16: unknown alert event `failures`"),
        "{out}"
    );
    // A webhook URL is a credential: plain text is refused.
    std::fs::write(
        dir.join("socle.yml"),
        "name: proj\nalerts:\n  channels:\n    team: { type: slack, url: \"https://hooks.slack.com/services/T/B/x\" }\n",
    )
    .unwrap();
    let (success, _, err) = run(&dir, &["check"]);
    assert!(!success);
    assert!(
        err.contains("socle.yml:4:11: alerts channel `team`: `url` holds a credential"),
        "{err}"
    );
}

#[test]
fn the_daemon_alerts_an_sla_miss_while_the_run_is_still_going() {
    let (_tmp, dir) = project();
    let (http_port, received) = http_server();
    std::fs::write(
        dir.join("socle.yml"),
        format!(
            "name: proj\nalerts:\n  channels:\n    hook: {{ type: webhook, url: \"http://127.0.0.1:{http_port}/hook\" }}\n  to: [hook]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines/slow.yml"),
        "schedule: \"*/2 * * * * *\"\nsla: 1s\ntasks:\n  wait:\n    kind: command\n    command: \"sleep 4\"\n",
    )
    .unwrap();
    let mut daemon = socle()
        .current_dir(&dir)
        .args(["serve", "--no-http", "--grace", "10s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let alert = loop {
        let found = received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, b)| serde_json::from_str::<Value>(b).unwrap())
            .find(|v| v["event"] == "sla_miss");
        if let Some(v) = found {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "no sla_miss alert");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGTERM);
    }
    daemon.wait().unwrap();
    assert!(
        alert["message"]
            .as_str()
            .unwrap()
            .contains("is still running"),
        "{alert}"
    );
    assert_eq!(alert["pipeline"], "slow");
    // One alert per run, even when the run ends late as well.
    let runs: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, b)| serde_json::from_str::<Value>(b).unwrap())
        .filter(|v| v["event"] == "sla_miss")
        .map(|v| v["run_id"].as_str().unwrap().to_string())
        .collect();
    let mut unique = runs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(runs.len(), unique.len(), "{runs:?}");
}
