//! Pipelines: validation with file and line, and runs of real subprocesses with retries,
//! a timeout that kills the whole process group, trigger rules, templated fields, secrets
//! from the environment, SQL tasks, run history and logs.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn check_reports_pipeline_mistakes_with_file_and_line() {
    let (_tmp, dir) = project();
    write(
        &dir,
        "pipelines/bad.yml",
        r#"schedule: "0 25 * * *"
tasks:
  load:
    kind: comand
    command: "echo hi"
  transform:
    kind: build
    depends_on: [lod]
  report:
    kind: command
    command: "echo {{ ds "
    sql: "select 1"
"#,
    );
    write(
        &dir,
        "pipelines/loop.yml",
        "tasks:\n  a:\n    kind: command\n    command: 'true'\n    depends_on: [b]\n  b:\n    kind: command\n    command: 'true'\n    depends_on: [a]\n",
    );
    let (success, out, _) = run(&dir, &["check"]);
    assert!(!success, "{out}");
    for expected in [
        "pipelines/bad.yml:1:11: `schedule`:",
        "pipelines/bad.yml:4:11: task `load`: unknown kind `comand`",
        "did you mean `command`?",
        "pipelines/bad.yml:8:18: task `transform` depends on `lod`, which is not a task of this pipeline",
        "did you mean `load`?",
        "pipelines/bad.yml:12:10: task `report`: `sql` does not apply to a `command` task",
        "a `command` task takes: command, env, cwd",
        "pipelines/loop.yml:3:5: tasks depend on each other in a cycle: a -> b -> a",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // Fixing the other mistakes leaves the template error, reported for its task.
    write(
        &dir,
        "pipelines/bad.yml",
        "tasks:\n  report:\n    kind: command\n    command: \"echo {{ ds \"\n",
    );
    std::fs::remove_file(dir.join("pipelines/loop.yml")).unwrap();
    let (success, out, _) = run(&dir, &["check"]);
    assert!(!success);
    assert!(
        out.contains("pipelines/bad.yml:3:5: task `report`: template error"),
        "{out}"
    );
}

const PIPELINE: &str = r#"
description: Exercise every rule.
schedule: "@daily"
params: { who: world }
tasks:
  flaky:
    kind: command
    command: "n=$(cat tries 2>/dev/null || echo 0); n=$((n+1)); echo $n > tries; echo attempt $n for {{ ds }}; [ $n -ge 2 ]"
    retries: 2
    retry_delay: 0
  greet:
    kind: command
    command: ["sh", "-c", "echo hello {{ params.who }} $GREETING $SOCLE_DS > greeting.txt"]
    env: { GREETING: "${env:SOCLE_TEST_GREETING}" }
    depends_on: [flaky]
  days:
    kind: sql
    sql: "CREATE OR REPLACE TABLE main.days AS SELECT DATE '{{ ds }}' AS day, '{{ macros.ds_add(ds, 1) }}' AS next_day"
    depends_on: [greet]
  slow:
    kind: command
    command: "sleep 30 & echo $! > bg.pid; sleep 30"
    timeout: 1s
  after_slow:
    kind: command
    command: "echo should not run > after.txt"
    depends_on: [slow]
  cleanup:
    kind: command
    command: "echo cleaning > cleanup.txt"
    depends_on: [slow]
    trigger_rule: one_failed
"#;

#[test]
fn a_run_retries_times_out_follows_trigger_rules_and_is_recorded() {
    let (_tmp, dir) = project();
    write(&dir, "pipelines/rules.yml", PIPELINE);
    let started = Instant::now();
    let out = socle()
        .current_dir(&dir)
        .env("SOCLE_TEST_GREETING", "hi")
        .args(["run", "rules", "--date", "2024-02-28"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !out.status.success(),
        "the timed-out task fails the run:\n{stdout}"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "{stdout}");
    // Retried once, then succeeded.
    assert_eq!(
        std::fs::read_to_string(dir.join("tries")).unwrap().trim(),
        "2"
    );
    assert!(stdout.contains("flaky failed on try 1"), "{stdout}");
    // Templates, params, the environment and secrets references.
    assert_eq!(
        std::fs::read_to_string(dir.join("greeting.txt")).unwrap(),
        "hello world hi 2024-02-28\n"
    );
    // The timeout killed the whole process group, background child included.
    let pid = std::fs::read_to_string(dir.join("bg.pid")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(&pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(&pid), "background sleep {pid} survived the timeout");
    assert!(stdout.contains("slow FAILED"), "{stdout}");
    assert!(stdout.contains("timed out after 1.0s"), "{stdout}");
    // Trigger rules: downstream of the failure is upstream_failed; one_failed runs.
    assert!(!dir.join("after.txt").exists());
    assert!(dir.join("cleanup.txt").exists());
    // SQL task with macros.
    assert_eq!(
        ok(
            &dir,
            &[
                "sql",
                "select cast(day as varchar) as d, next_day from main.days",
                "--format",
                "csv"
            ]
        ),
        "d,next_day\n2024-02-28,2024-02-29\n"
    );
    // History.
    let runs: serde_json::Value =
        serde_json::from_str(&ok(&dir, &["runs", "--format", "json"])).unwrap();
    let first = &runs[0];
    assert_eq!(first["run_id"], "rules.20240228.1");
    assert_eq!(first["state"], "failed");
    assert_eq!(first["trigger"], "manual");
    let state = |task: &str| {
        first["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task"] == task)
            .map(|t| {
                (
                    t["state"].as_str().unwrap().to_string(),
                    t["try_number"].as_i64().unwrap(),
                )
            })
            .unwrap()
    };
    assert_eq!(state("flaky"), ("success".into(), 2));
    assert_eq!(state("greet"), ("success".into(), 1));
    assert_eq!(state("days"), ("success".into(), 1));
    assert_eq!(state("slow"), ("failed".into(), 1));
    assert_eq!(state("after_slow"), ("upstream_failed".into(), 0));
    assert_eq!(state("cleanup"), ("success".into(), 1));
    let logs = ok(&dir, &["logs", "rules.20240228.1", "flaky"]);
    assert!(logs.contains("==> flaky try 1 · failed"), "{logs}");
    assert!(logs.contains("attempt 1 for 2024-02-28"), "{logs}");
    assert!(logs.contains("attempt 2 for 2024-02-28"), "{logs}");
    // Only some tasks: a second run of that date, numbered.
    let out = ok(
        &dir,
        &["run", "rules", "--date", "2024-02-28", "--task", "days"],
    );
    assert!(out.contains("Run rules.20240228.2 succeeded"), "{out}");
    let (success, _, err) = run(&dir, &["run", "rules", "--task", "nope"]);
    assert!(!success);
    assert!(err.contains("pipeline `rules` has no task `nope`"), "{err}");
    let (success, _, err) = run(&dir, &["run", "rulez"]);
    assert!(!success);
    assert!(err.contains("did you mean `rules`?"), "{err}");
}

#[test]
fn backfill_runs_each_date_once_and_reruns_only_failed_tasks() {
    let (_tmp, dir) = project();
    write(
        &dir,
        "pipelines/gated.yml",
        r#"schedule: "@daily"
tasks:
  first:
    kind: command
    command: "echo {{ ds }} >> first.log"
  gate:
    kind: command
    command: "[ -f open ] && echo {{ ds }} >> gate.log"
    depends_on: [first]
  last:
    kind: command
    command: "echo {{ ds }} >> last.log"
    depends_on: [gate]
"#,
    );
    let lines = |f: &str| -> usize {
        std::fs::read_to_string(dir.join(f))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let args = [
        "backfill",
        "gated",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-03",
        "--parallel",
        "2",
    ];
    let (success, out, _) = run(&dir, &args);
    assert!(!success, "{out}");
    assert!(out.contains("3 intervals, 3 failed"), "{out}");
    assert_eq!((lines("first.log"), lines("gate.log")), (3, 0));
    // Again: every date has its run; nothing runs twice.
    let (_, out, _) = run(&dir, &args);
    assert!(out.contains("already run; left alone"), "{out}");
    assert_eq!(lines("first.log"), 3);
    // The gate opens: rerun one run's failed tasks; the task that succeeded is kept.
    std::fs::write(dir.join("open"), "").unwrap();
    let out = ok(&dir, &["rerun", "gated.20240301.1"]);
    assert!(out.contains("Run gated.20240301.1 succeeded"), "{out}");
    assert!(out.contains("kept from the earlier attempt"), "{out}");
    assert_eq!(
        (lines("first.log"), lines("gate.log"), lines("last.log")),
        (3, 1, 1)
    );
    // The other failed dates, from the backfill.
    let mut with_rerun = args.to_vec();
    with_rerun.push("--rerun-failed");
    let out = ok(&dir, &with_rerun);
    assert!(out.contains("3 intervals, 0 failed"), "{out}");
    assert_eq!(
        (lines("first.log"), lines("gate.log"), lines("last.log")),
        (3, 3, 3)
    );
    let runs: serde_json::Value =
        serde_json::from_str(&ok(&dir, &["runs", "gated", "--format", "json"])).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert!(
        runs.iter()
            .all(|r| r["state"] == "success" && r["trigger"] == "backfill")
    );
    let gate = runs[0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == "gate")
        .unwrap()
        .clone();
    assert_eq!(gate["try_number"], 2, "{gate}");
    // Retention: logs first, then whole runs.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = ok(&dir, &["runs", "--prune-logs", "0s"]);
    assert!(
        out.starts_with("Emptied ") && !out.starts_with("Emptied 0"),
        "{out}"
    );
    let logs = ok(&dir, &["logs", "gated.20240301.1", "first"]);
    assert!(logs.contains("[log removed by retention]"), "{logs}");
    let out = ok(&dir, &["runs", "--prune-logs", "0s", "--prune-runs", "0s"]);
    assert!(out.contains("deleted 3 runs"), "{out}");
    assert!(ok(&dir, &["runs"]).contains("No runs yet"));
}

#[test]
fn a_pool_bounds_parallel_tasks_and_priority_picks_who_goes_first() {
    let (_tmp, dir) = project();
    let config = std::fs::read_to_string(dir.join("socle.yml")).unwrap();
    std::fs::write(
        dir.join("socle.yml"),
        format!("{config}\npools:\n  one: 1\n"),
    )
    .unwrap();
    // `gate` takes the only slot at once; while it holds it, `kick` finishes and the three
    // others queue for the slot.
    let mut yaml = String::from(
        "tasks:\n  gate:\n    kind: command\n    command: \"sleep 0.5\"\n    pool: one\n  kick:\n    kind: command\n    command: 'true'\n",
    );
    for (name, priority) in [("low", 1), ("high", 9), ("mid", 5)] {
        yaml.push_str(&format!(
            "  {name}:\n    kind: command\n    command: \"echo start {name} >> order.log; sleep 0.2; echo end {name} >> order.log\"\n    pool: one\n    priority: {priority}\n    depends_on: [kick]\n"
        ));
    }
    write(&dir, "pipelines/pooled.yml", &yaml);
    ok(&dir, &["run", "pooled", "--date", "2024-01-01"]);
    let log = std::fs::read_to_string(dir.join("order.log")).unwrap();
    // One at a time (each ends before the next starts), highest priority first.
    assert_eq!(
        log,
        "start high\nend high\nstart mid\nend mid\nstart low\nend low\n"
    );
    write(
        &dir,
        "pipelines/pooled.yml",
        "tasks:\n  t:\n    kind: command\n    command: 'true'\n    pool: onee\n",
    );
    let (success, out, _) = run(&dir, &["check"]);
    assert!(!success);
    assert!(
        out.contains("pipelines/pooled.yml:5:11: task `t`: no pool `onee` in socle.yml"),
        "{out}"
    );
    assert!(out.contains("did you mean `one`?"), "{out}");
}
