//! The scheduler daemon as a real process: scheduled runs, SIGKILL in the middle of a
//! task and a restart that takes the run over without running any date twice, and two
//! daemons on one PostgreSQL metadata database of which only one schedules.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

fn daemon(dir: &Path) -> Child {
    socle()
        .current_dir(dir)
        .args(["serve", "--no-http", "--lease", "2s", "--grace", "10s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn runs(dir: &Path) -> Vec<Value> {
    let out = ok(dir, &["runs", "--format", "json", "--limit", "1000"]);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Waits (bounded) until `check` holds.
fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(mut child: Child) {
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "daemon did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_each_date_once(runs: &[Value]) {
    let mut dates: Vec<&str> = runs
        .iter()
        .map(|r| r["logical_date"].as_str().unwrap())
        .collect();
    let n = dates.len();
    dates.sort();
    dates.dedup();
    assert_eq!(dates.len(), n, "a logical date ran twice: {runs:#?}");
}

const TICKING: &str = r#"schedule: "*/2 * * * * *"
tasks:
  work:
    kind: command
    command: "echo $$ >> pids.log; echo start {{ ts }} >> work.log; sleep 6; echo end {{ ts }} >> work.log"
    retries: 1
    retry_delay: 0
"#;

#[test]
fn a_killed_daemon_is_taken_over_without_running_a_date_twice() {
    let (_tmp, dir) = project();
    std::fs::write(dir.join("pipelines/tick.yml"), TICKING).unwrap();
    let mut first = daemon(&dir);
    wait_for("a task to start", Duration::from_secs(15), || {
        std::fs::read_to_string(dir.join("work.log")).is_ok_and(|t| t.contains("start"))
    });
    first.kill().unwrap(); // SIGKILL, mid-task
    first.wait().unwrap();
    let interrupted: Vec<String> = runs(&dir)
        .iter()
        .filter(|r| r["state"] == "running")
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(interrupted.len(), 1, "{:#?}", runs(&dir));
    // The task the dead daemon started is still running; the next daemon stops it.
    let orphan = std::fs::read_to_string(dir.join("pids.log")).unwrap();
    let orphan = orphan.lines().last().unwrap().to_string();
    let second = daemon(&dir);
    wait_for("the takeover", Duration::from_secs(20), || {
        runs(&dir).iter().any(|r| {
            r["run_id"] == interrupted[0].as_str()
                && r["attempts"].as_array().is_some_and(|a| a.len() == 2)
        })
    });
    let deadline = Instant::now() + Duration::from_secs(2);
    while alive(&orphan) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !alive(&orphan),
        "the dead daemon's task {orphan} still runs"
    );
    wait_for(
        "the interrupted run to be taken over",
        Duration::from_secs(30),
        || {
            runs(&dir)
                .iter()
                .any(|r| r["run_id"] == interrupted[0].as_str() && r["state"] == "success")
        },
    );
    stop(second);
    let all = runs(&dir);
    assert_each_date_once(&all);
    assert!(all.iter().all(|r| r["state"] != "running"), "{all:#?}");
    let recovered = all
        .iter()
        .find(|r| r["run_id"] == interrupted[0].as_str())
        .unwrap();
    let attempts = recovered["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{recovered:#}");
    assert_eq!(attempts[0]["state"], "failed");
    assert!(
        attempts[0]["error"].as_str().unwrap().contains("crash"),
        "{recovered:#}"
    );
    assert_eq!(attempts[1]["state"], "success");
    // The new daemon scheduled on after the takeover.
    assert!(all.len() >= 2, "{all:#?}");
}

#[test]
fn two_daemons_on_postgres_schedule_each_date_once() {
    let db = format!("socle_sched_{}", std::process::id());
    let url = pg_database(&db);
    let (_tmp, dir) = project();
    std::fs::write(
        dir.join("socle.yml"),
        format!("name: proj\nmetadata:\n  url: {url}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines/tick.yml"),
        "schedule: \"*/1 * * * * *\"\nmax_active_runs: 4\ntasks:\n  t:\n    kind: command\n    command: \"echo {{ ts }} >> ticks.log\"\n",
    )
    .unwrap();
    let a = daemon(&dir);
    let b = daemon(&dir);
    wait_for("a few scheduled runs", Duration::from_secs(30), || {
        runs(&dir).len() >= 4
    });
    std::thread::sleep(Duration::from_secs(2));
    stop(a);
    stop(b);
    let all = runs(&dir);
    assert_each_date_once(&all);
    let runners: std::collections::BTreeSet<&str> =
        all.iter().map(|r| r["runner"].as_str().unwrap()).collect();
    assert_eq!(runners.len(), 1, "two daemons scheduled: {runners:?}");
    let lines = std::fs::read_to_string(dir.join("ticks.log")).unwrap();
    assert_eq!(lines.lines().count(), all.len(), "{lines}");
    let base = std::env::var("SOCLE_TEST_POSTGRES_URL").unwrap();
    psql(&base, &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
}
