//! Running the binary, and the services tests talk to.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

pub fn socle() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_socle"));
    c.env_remove("SOCLE_PROJECT").env("NO_COLOR", "1");
    c
}

/// Runs socle with `args` in `dir`; returns (success, stdout, stderr).
pub fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out: Output = socle()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("socle runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs socle with `envs` set and `stdin` piped in; returns (success, stdout, stderr).
pub fn run_with(
    dir: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
    stdin: &str,
) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = socle()
        .current_dir(dir)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("socle runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs socle and fails the test with its output if it fails.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let (success, stdout, stderr) = run(dir, args);
    assert!(success, "socle {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Copies a folder (without `.socle`, a project's local state).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".socle" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A copy of `examples/shop` in a temporary folder (at `<tmp>/shop`).
pub fn shop() -> (tempfile::TempDir, std::path::PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop");
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("shop");
    copy_dir(&src, &dst);
    (tmp, dst)
}

/// A fresh project made by `socle init`.
pub fn project() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    ok(tmp.path(), &["init", "proj"]);
    let dir = tmp.path().join("proj");
    (tmp, dir)
}

/// Whether process `pid` runs (a killed process may linger as a zombie when nothing reaps
/// orphans: that counts as dead).
pub fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/status", pid.trim())) {
        Ok(status) => !status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z')),
        Err(_) => false,
    }
}

/// Writes `text` to `dir/rel`, creating folders.
pub fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Runs `socle extract --format json ARGS`, asserting success; the per-stream reports.
pub fn extract_json(dir: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["extract", "--format", "json"];
    all.extend_from_slice(args);
    let (ok, out, err) = run(dir, &all);
    let reports: Vec<serde_json::Value> =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}\n{err}"));
    assert!(
        ok,
        "extract failed:\n{}\n{err}",
        serde_json::to_string_pretty(&reports).unwrap()
    );
    reports
}

/// The report of `stream` among `socle extract --format json`'s.
pub fn report<'a>(reports: &'a [serde_json::Value], stream: &str) -> &'a serde_json::Value {
    reports
        .iter()
        .find(|r| r["stream"] == stream)
        .unwrap_or_else(|| panic!("no report for {stream}"))
}

/// Rows of a query, as JSON objects.
pub fn query(dir: &Path, sql: &str) -> Vec<serde_json::Value> {
    let out = ok(dir, &["sql", "--format", "json", sql]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The loopback HTTP fixture (`fixtures/http_fixture.py`), stopped when dropped.
pub struct HttpFixture {
    child: Child,
    pub port: u16,
}

impl HttpFixture {
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/http_fixture.py"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("fixture said {line:?}"));
        Self { child, port }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> serde_json::Value {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let body = body.unwrap_or("");
        write!(
            conn,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer);
        let (_, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    }

    /// `GET /_stats`.
    pub fn stats(&self) -> serde_json::Value {
        self.call("GET", "/_stats", None)
    }

    /// `POST /_admin/reset`.
    pub fn reset(&self) {
        self.call("POST", "/_admin/reset", None);
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &str) -> serde_json::Value {
        self.call("POST", path, Some(body))
    }
}

impl Drop for HttpFixture {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `sql` with psql against `url`, failing the test on error.
pub fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh database on the test PostgreSQL server (`SOCLE_TEST_POSTGRES_URL`); its URL.
pub fn pg_database(name: &str) -> String {
    let base = std::env::var("SOCLE_TEST_POSTGRES_URL")
        .expect("SOCLE_TEST_POSTGRES_URL (scripts/test-services.sh starts PostgreSQL)");
    psql(
        &base,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
    psql(&base, &format!("CREATE DATABASE {name}"));
    format!("{}/{name}", &base[..base.rfind('/').unwrap()])
}
