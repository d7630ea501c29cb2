//! Runs started over HTTP survive a SIGKILL of the server: the next server takes them over
//! (kills the orphaned task, resumes the run within its retry budget), or an editor's
//! `POST /api/runs/{id}/rerun` does before the lease of the dead server expires.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;
use crate::server::{admin_token, call};

/// One attempt records its pid and sleeps a few seconds; one retry.
const SLOW: &str = "tasks:\n  wait:\n    kind: command\n    command: [\"sh\", \"-c\", \"echo $$ >> pids.log; sleep 4\"]\n    retries: 1\n    retry_delay: 0\n";

struct Serve(Child, u16);

impl Drop for Serve {
    fn drop(&mut self) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// `socle serve --port 0 --lease LEASE`; returns once it listens.
fn serve(dir: &Path, lease: &str) -> Serve {
    let mut child = socle()
        .current_dir(dir)
        .args(["serve", "--port", "0", "--lease", lease, "--grace", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The daemon's log (stderr) says where it listens.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = lines
        .by_ref()
        .take(20)
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("listening on http://")
                .nth(1)
                .map(|a| a.rsplit(':').next().unwrap().trim().parse::<u16>().unwrap())
        })
        .expect("the server listens");
    std::thread::spawn(move || for _ in lines {});
    Serve(child, port)
}

fn run_of(dir: &Path, run_id: &str) -> Value {
    let all: Value = serde_json::from_str(&ok(dir, &["runs", "--format", "json"])).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == run_id)
        .cloned()
        .unwrap_or(Value::Null)
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Triggers `slow` over HTTP on a server with `lease`, waits for its task to start and
/// kills the server with SIGKILL. Returns (project dir guard, dir, token, run id, orphan pid).
fn killed_mid_run(
    lease: &str,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    String,
    String,
    String,
) {
    let (tmp, dir) = project();
    write(&dir, "pipelines/slow.yml", SLOW);
    let mut first = serve(&dir, lease);
    let token = admin_token(&dir);
    let a = call(
        first.1,
        "POST",
        "/api/pipelines/slow/trigger",
        &[("Authorization", &token)],
        "{}",
    );
    assert_eq!(a.status, 202, "{}", a.body);
    let run_id = a.json()["run_id"].as_str().unwrap().to_string();
    wait_for("the task to start", Duration::from_secs(20), || {
        std::fs::read_to_string(dir.join("pids.log")).is_ok_and(|t| t.ends_with('\n'))
    });
    first.0.kill().unwrap(); // SIGKILL, mid-task
    first.0.wait().unwrap();
    let orphan = std::fs::read_to_string(dir.join("pids.log")).unwrap();
    let orphan = orphan.lines().next().unwrap().to_string();
    assert!(alive(&orphan), "the task should outlive a SIGKILLed server");
    assert_eq!(run_of(&dir, &run_id)["state"], "running");
    (tmp, dir, token, run_id, orphan)
}

/// The dead server's task is killed, its attempt failed ("crash"), and the retry ran.
fn assert_recovered(dir: &Path, run_id: &str, orphan: &str) {
    wait_for("the run to end", Duration::from_secs(20), || {
        run_of(dir, run_id)["state"] != "running"
    });
    assert!(!alive(orphan), "the dead server's task {orphan} still runs");
    let run = run_of(dir, run_id);
    assert_eq!(run["state"], "success", "{run:#}");
    let attempts = run["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{run:#}");
    assert_eq!(attempts[0]["state"], "failed", "{run:#}");
    assert!(
        attempts[0]["error"].as_str().unwrap().contains("crash"),
        "{run:#}"
    );
}

#[test]
fn a_run_triggered_over_http_is_taken_over_after_the_server_is_killed() {
    let (_tmp, dir, _token, run_id, orphan) = killed_mid_run("2s");
    let _second = serve(&dir, "2s");
    assert_recovered(&dir, &run_id, &orphan);
}

#[test]
fn a_run_left_by_a_killed_server_can_be_rerun_over_http() {
    // A long lease: the new server does not take the run over by itself in this test's time.
    let (_tmp, dir, token, run_id, orphan) = killed_mid_run("120s");
    let second = serve(&dir, "120s");
    let a = call(
        second.1,
        "POST",
        &format!("/api/runs/{run_id}/rerun"),
        &[("Authorization", &token)],
        "",
    );
    assert_eq!(a.status, 202, "{}", a.body);
    assert_recovered(&dir, &run_id, &orphan);
    // A run whose server is alive is still refused while it runs.
    let b = call(
        second.1,
        "POST",
        "/api/pipelines/slow/trigger",
        &[("Authorization", &token)],
        "{}",
    );
    assert_eq!(b.status, 202, "{}", b.body);
    let live = b.json()["run_id"].as_str().unwrap().to_string();
    let c = call(
        second.1,
        "POST",
        &format!("/api/runs/{live}/rerun"),
        &[("Authorization", &token)],
        "",
    );
    assert_eq!(c.status, 409, "{}", c.body);
}
