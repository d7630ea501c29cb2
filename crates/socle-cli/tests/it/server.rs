//! `socle serve --port`: the first admin, sign-in with session cookies and CSRF tokens,
//! API tokens, every route × every role, malformed and oversized bodies, security
//! headers, the audit log and /metrics — over real HTTP on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};

use crate::common::*;

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub admin_password: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// An API token of the `admin` user (the one the first start creates): `Bearer ...`.
pub fn admin_token(dir: &std::path::Path) -> String {
    let out = crate::common::ok(
        dir,
        &[
            "tokens", "create", "t", "--user", "admin", "--role", "admin",
        ],
    );
    format!(
        "Bearer {}",
        out.lines().find(|l| l.starts_with("socle_")).unwrap()
    )
}

/// Starts `socle serve --port 0` in `dir`; returns once it listens.
pub fn start(dir: &std::path::Path) -> Server {
    start_with(dir, &[])
}

/// `start` with more arguments for `socle serve`.
pub fn start_with(dir: &std::path::Path, args: &[&str]) -> Server {
    start_logged(dir, args, None)
}

/// `start_with`, the server's log (stderr) written to the file `log`.
pub fn start_logged(dir: &std::path::Path, args: &[&str], log: Option<&std::path::Path>) -> Server {
    let mut command = socle();
    command
        .current_dir(dir)
        .args(["serve", "--port", "0"])
        .args(args);
    start_command_logged(command, log)
}

/// Starts `command` (a `socle serve --port 0` with its project as current directory);
/// returns once it listens.
pub fn start_command(command: std::process::Command) -> Server {
    start_command_logged(command, None)
}

/// `start_command`, the server's log (stderr) written to the file `log` (read back for where
/// it listens), or read from a pipe and drained. The first start's one-time password is
/// read from the file the log names, which only its owner may read; stdout (not a
/// terminal) shows nothing.
pub fn start_command_logged(
    mut command: std::process::Command,
    log: Option<&std::path::Path>,
) -> Server {
    let dir = command
        .get_current_dir()
        .expect("the project is the server's current directory")
        .to_path_buf();
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::piped(),
    };
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let listening = |line: &str| {
        line.split("listening on http://")
            .nth(1)
            .or_else(|| line.split("listening on https://").nth(1))
            .map(|addr| addr.split_whitespace().next().unwrap_or(addr))
            .map(|addr| {
                addr.rsplit(':')
                    .next()
                    .unwrap()
                    .trim()
                    .parse::<u16>()
                    .unwrap()
            })
    };
    let mut port = 0;
    match log {
        Some(path) => {
            // The log is the file: read it until the server says where it listens.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while port == 0 && std::time::Instant::now() < deadline {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                port = text.lines().find_map(listening).unwrap_or(0);
                if port == 0 {
                    assert!(
                        child.try_wait().unwrap().is_none(),
                        "the server stopped:\n{text}"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
        }
        None => {
            let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
            for line in lines.by_ref().take(50) {
                if let Some(p) = listening(&line.unwrap()) {
                    port = p;
                    break;
                }
            }
            // Keep draining the log so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
        }
    }
    assert!(port > 0, "the server did not say where it listens");
    let kept = dir.join(".socle").join("admin-password");
    let admin_password = std::fs::read_to_string(&kept)
        .map(|p| p.trim().to_string())
        .unwrap_or_default();
    assert!(
        !admin_password.is_empty(),
        "no one-time password in {}",
        kept.display()
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the one-time password is readable by others"
    );
    let mut stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut printed = String::new();
        let _ = stdout.read_to_string(&mut printed);
        assert!(
            printed.is_empty(),
            "the daemon printed to stdout: {printed}"
        );
    });
    Server {
        child,
        port,
        admin_password,
    }
}

pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request on a new connection.
pub fn call(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).unwrap();
    conn.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap();
    Answer {
        status,
        headers: head.to_string(),
        body: body.to_string(),
    }
}

/// Signs in; returns (cookie header, CSRF token).
pub fn login(port: u16, user: &str, password: &str) -> (String, String) {
    let a = call(
        port,
        "POST",
        "/api/login",
        &[],
        &serde_json::json!({"username": user, "password": password}).to_string(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let cookie = a
        .headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(a.headers.contains("HttpOnly") && a.headers.contains("SameSite=Strict"));
    (cookie, a.json()["csrf_token"].as_str().unwrap().to_string())
}

#[test]
fn sign_in_roles_tokens_and_audit() {
    let (_tmp, dir) = project();
    let server = start(&dir);
    let port = server.port;
    for (user, role) in [("vic", "viewer"), ("ana", "analyst"), ("eddy", "editor")] {
        let (okay, out, err) = run_with(
            &dir,
            &["users", "add", user, "--role", role, "--password-stdin"],
            &[],
            "a long enough passphrase",
        );
        assert!(okay, "{out}{err}");
    }
    assert_eq!(call(port, "GET", "/healthz", &[], "").status, 200);
    assert_eq!(call(port, "GET", "/readyz", &[], "").status, 200);

    // Wrong password: 401, nothing about which part was wrong, nothing echoed.
    let a = call(
        port,
        "POST",
        "/api/login",
        &[],
        r#"{"username": "ana", "password": "guess-guess-guess"}"#,
    );
    assert_eq!(a.status, 401);
    assert!(!a.body.contains("guess"));
    let a = call(
        port,
        "POST",
        "/api/login",
        &[],
        r#"{"username": "nobody", "password": "x"}"#,
    );
    assert_eq!(a.status, 401);
    // Malformed and oversized bodies: 4xx with a message.
    let a = call(port, "POST", "/api/login", &[], "{not json");
    assert!(
        (400..500).contains(&a.status) && !a.body.is_empty(),
        "{} {}",
        a.status,
        a.body
    );
    // A body announced above the 1 MiB limit is refused before it is read (only the
    // headers are sent, so the refusal cannot race a half-sent body).
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(
        b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let mut sessions = vec![("admin", login(port, "admin", &server.admin_password))];
    for user in ["vic", "ana", "eddy"] {
        sessions.push((user, login(port, user, "a long enough passphrase")));
    }
    let me = call(port, "GET", "/api/me", &[("Cookie", &sessions[0].1.0)], "");
    assert_eq!(me.json()["must_change_password"], true);
    // The one-time password is changed first (nothing else is allowed before).
    let (admin_cookie, admin_csrf) = &sessions[0].1;
    let change =
        serde_json::json!({"current": server.admin_password, "new": "the admin's own passphrase"});
    let a = call(
        port,
        "POST",
        "/api/password",
        &[("Cookie", admin_cookie), ("X-CSRF-Token", admin_csrf)],
        &change.to_string(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let headers = me.headers.to_ascii_lowercase();
    assert!(headers.contains("x-content-type-options: nosniff"));
    assert!(headers.contains("content-security-policy"));

    // Every route × every role (and no one): 401, 403 or 200.
    let routes = [
        ("GET", "/api/me", 0),
        ("GET", "/metrics", 0),
        ("GET", "/api/runs", 1),
        ("GET", "/api/users", 3),
        ("GET", "/api/audit", 3),
    ];
    let rank = |user: &str| match user {
        "vic" => 0,
        "ana" => 1,
        "eddy" => 2,
        _ => 3,
    };
    for (method, path, needed) in routes {
        assert_eq!(
            call(port, method, path, &[], "").status,
            401,
            "{path} anonymous"
        );
        assert_eq!(
            call(
                port,
                method,
                path,
                &[("Cookie", "socle_session=forged")],
                ""
            )
            .status,
            401,
            "{path} forged cookie"
        );
        for (user, (cookie, _)) in &sessions {
            let expected = if rank(user) >= needed { 200 } else { 403 };
            let a = call(port, method, path, &[("Cookie", cookie)], "");
            assert_eq!(a.status, expected, "{path} as {user}: {}", a.body);
        }
    }
    // A session's POST needs its CSRF token.
    let (cookie, csrf) = &sessions[1].1;
    let change = r#"{"current": "a long enough passphrase", "new": "another long passphrase"}"#;
    assert_eq!(
        call(port, "POST", "/api/password", &[("Cookie", cookie)], change).status,
        403
    );
    let a = call(
        port,
        "POST",
        "/api/password",
        &[("Cookie", cookie), ("X-CSRF-Token", csrf)],
        change,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let a = call(
        port,
        "POST",
        "/api/logout",
        &[("Cookie", cookie), ("X-CSRF-Token", csrf)],
        "",
    );
    assert_eq!(a.status, 200);
    assert_eq!(
        call(port, "GET", "/api/me", &[("Cookie", cookie)], "").status,
        401
    );

    // API tokens: the role given, revocable.
    let out = ok(
        &dir,
        &[
            "tokens", "create", "script", "--user", "eddy", "--role", "analyst",
        ],
    );
    let token = out
        .lines()
        .find(|l| l.starts_with("socle_"))
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    assert_eq!(call(port, "GET", "/api/runs", &auth, "").status, 200);
    assert_eq!(call(port, "GET", "/api/users", &auth, "").status, 403);
    let id = token.split('_').nth(1).unwrap();
    ok(&dir, &["tokens", "revoke", id]);
    assert_eq!(call(port, "GET", "/api/runs", &auth, "").status, 401);

    // The audit log (admins) and the metrics.
    let admin_cookie = &sessions[0].1.0;
    let log = call(port, "GET", "/api/audit", &[("Cookie", admin_cookie)], "").json();
    let actions: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap()
            )
        })
        .collect();
    for needed in [
        "ana login.failed",
        "nobody login.failed",
        "vic login",
        "vic user.passwd",
        "vic logout",
    ] {
        assert!(
            actions.iter().any(|a| a == needed),
            "no `{needed}` in {actions:?}"
        );
    }
    let m = call(port, "GET", "/metrics", &[("Cookie", admin_cookie)], "");
    assert!(
        m.body.contains(
            "socle_http_requests_total{route=\"/api/runs\",method=\"GET\",status=\"403\"}"
        ),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("socle_http_request_duration_seconds_bucket{route=\"/api/me\"")
    );
    assert!(!m.body.contains(&server.admin_password));
}

/// HTTPS with a certificate from `server.tls`: a verified client is served (and the
/// session cookie is `Secure`); a plain-HTTP client or a failed handshake does not stop
/// the server.
#[test]
fn https_with_a_certificate_and_key() {
    let (_tmp, dir) = project();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    let made = std::process::Command::new("openssl")
        .current_dir(dir.join("certs"))
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let yml = std::fs::read_to_string(dir.join("socle.yml")).unwrap();
    write(
        &dir,
        "socle.yml",
        &format!("{yml}\nserver:\n  tls:\n    cert: certs/server.pem\n    key: certs/server.key\n"),
    );
    let server = start(&dir);
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = call(server.port, "GET", "/healthz", &[], "");
    assert_eq!(plain.status, 0, "{}", plain.headers);
    let client = format!(
        r#"
import json, ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile="certs/server.pem")
base = "https://127.0.0.1:{port}"
print(urllib.request.urlopen(base + "/healthz", context=ctx).read().decode().strip())
req = urllib.request.Request(base + "/api/login", data=json.dumps({{"username": "admin", "password": sys.argv[1]}}).encode(), headers={{"Content-Type": "application/json"}})
resp = urllib.request.urlopen(req, context=ctx)
print(resp.headers["Set-Cookie"])
try:
    urllib.request.urlopen(base + "/healthz", context=ssl.create_default_context())
    print("unverified certificate accepted")
except Exception as e:
    print("refused:", type(e).__name__)
"#,
        port = server.port
    );
    let out = std::process::Command::new("python3")
        .current_dir(&dir)
        .args(["-c", &client, &server.admin_password])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "ok");
    assert!(
        lines[1].contains("HttpOnly") && lines[1].contains("Secure"),
        "{text}"
    );
    assert!(lines[2].starts_with("refused"), "{text}");
    // A bad key is a clear error at start.
    write(&dir, "certs/server.key", "not a key");
    let (okay, out, err) = run(&dir, &["serve", "--port", "0"]);
    assert!(!okay);
    assert!(format!("{out}{err}").contains("server.key"), "{out}{err}");
}

/// A run started through the API when the server is told to stop: it gets the grace
/// period, then its task's processes are killed and the run is marked failed (never left
/// `running`).
#[test]
fn runs_started_over_http_are_stopped_cleanly_at_shutdown() {
    let (_tmp, dir) = project();
    write(
        &dir,
        "pipelines/slow.yml",
        "tasks:\n  wait:\n    kind: command\n    command: [\"sh\", \"-c\", \"echo $$ > wait.pid; sleep 60\"]\n",
    );
    let mut server = start_with(&dir, &["--grace", "1s"]);
    let token = admin_token(&dir);
    let a = call(
        server.port,
        "POST",
        "/api/pipelines/slow/trigger",
        &[("Authorization", &token)],
        "{}",
    );
    assert_eq!(a.status, 202, "{}", a.body);
    let run_id = a.json()["run_id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !dir.join("wait.pid").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the task never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = std::fs::read_to_string(dir.join("wait.pid"))
        .unwrap()
        .trim()
        .to_string();
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while server.child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!alive(&pid), "the task's process outlived the server");
    let runs: serde_json::Value =
        serde_json::from_str(&ok(&dir, &["runs", "--format", "json"])).unwrap();
    let run = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == run_id.as_str())
        .unwrap();
    assert_eq!(run["state"], "failed", "{run}");
    assert!(
        run["attempts"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("server stopped"),
        "{run}"
    );
}
