//! Kill the process during a write: the table reads back at its last committed version and
//! the next write succeeds, with no duplicated rows. Kill an extraction before its load
//! (the discarded run leaves no raw file in the lake), and kill an extraction or a load
//! right after its commit (the rerun neither loses nor repeats rows; the state advanced).

use std::time::{Duration, Instant};

use crate::common::*;

fn count(dir: &std::path::Path) -> u64 {
    let out = ok(
        dir,
        &["sql", "SELECT count(*) AS n FROM big", "--format", "csv"],
    );
    out.lines().nth(1).unwrap().parse().unwrap()
}

#[test]
fn killed_writes_leave_the_last_committed_version() {
    let (_tmp, dir) = project();
    const BATCH: u64 = 2_000_000;
    ok(
        &dir,
        &[
            "sql",
            "CREATE TABLE big AS SELECT value AS id, value * 2 AS twice FROM generate_series(1, 1000) AS t(value)",
        ],
    );
    let mut expected = 1000u64;
    let insert = format!(
        "INSERT INTO big SELECT value AS id, value * 2 AS twice FROM generate_series(1, {BATCH}) AS t(value)"
    );
    // Kill at increasing delays; some kills land mid-write, the last ones may let it finish.
    let started = Instant::now();
    let mut killed_mid_write = 0;
    for delay_ms in [50u64, 150, 300, 600, 1000, 1600] {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "test ran too long"
        );
        let mut child = socle()
            .current_dir(&dir)
            .args(["sql", &insert])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some_and(|s| s.success());
        if !finished {
            // SIGKILL: no chance to clean up.
            child.kill().unwrap();
        }
        let status = child.wait().unwrap();
        let n = count(&dir);
        if n == expected + BATCH {
            expected = n; // the write committed before the kill
        } else {
            assert_eq!(
                n, expected,
                "after a kill at {delay_ms} ms (status {status:?}) the table must be at its last version"
            );
            killed_mid_write += 1;
        }
    }
    assert!(
        killed_mid_write > 0,
        "no kill landed during a write; the test proved nothing"
    );
    // The next write succeeds and adds exactly its rows.
    ok(&dir, &["sql", "INSERT INTO big VALUES (-1, -2)"]);
    assert_eq!(count(&dir), expected + 1);
}

/// Raw data files under the lake's `raw/` (rejects aside), relative to it.
fn raw_files(dir: &std::path::Path) -> Vec<String> {
    fn walk(base: &std::path::Path, at: &std::path::Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(at) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                if !rel.contains("-rejected-") {
                    out.push(rel);
                }
            }
        }
    }
    let base = dir.join(".socle/lake/raw");
    let mut out = Vec::new();
    walk(&base, &base, &mut out);
    out.sort();
    out
}

/// Records in the raw zone (JSON Lines parts: one record a line).
fn raw_records(dir: &std::path::Path) -> usize {
    raw_files(dir)
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.join(".socle/lake/raw").join(f))
                .unwrap()
                .lines()
                .count()
        })
        .sum()
}

fn table_count(dir: &std::path::Path, table: &str) -> u64 {
    query(dir, &format!("select count(*) as n from {table}"))[0]["n"]
        .as_u64()
        .unwrap()
}

/// Runs `socle ARGS` with `SOCLE_FAILPOINT=failpoint`; asserts it was stopped there.
fn stopped_at(dir: &std::path::Path, failpoint: &str, args: &[&str]) {
    let out = socle()
        .current_dir(dir)
        .env("SOCLE_FAILPOINT", failpoint)
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(&format!("failpoint {failpoint}")),
        "socle {args:?} was not stopped at {failpoint}:\n{err}"
    );
}

const DROPS: &str = "type: files\nlanding: jsonl\nstreams:\n  sales:\n    path: drops/*.csv\n";

#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features socle-cli/failpoints"
)]
fn a_discarded_extraction_removes_its_raw_files() {
    let (_tmp, dir) = project();
    write(&dir, "sources/drops.yml", DROPS);
    write(&dir, "drops/a.csv", "id,amount\n1,10\n2,20\n");
    extract_json(&dir, &[]);
    let before = raw_files(&dir);
    write(&dir, "drops/b.csv", "id,amount\n3,30\n4,40\n");

    // Killed after its raw part landed and its load was recorded as pending.
    stopped_at(&dir, "extract-before-load", &["extract"]);
    let killed: Vec<String> = raw_files(&dir)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    assert!(!killed.is_empty(), "the killed run landed no raw part");

    let (success, _out, err) = run(&dir, &["extract"]);
    assert!(success, "{err}");
    assert!(err.contains("discarded the unfinished load"), "{err}");
    let after = raw_files(&dir);
    for f in &killed {
        assert!(
            !after.contains(f),
            "the discarded run's raw part {f} is still in the lake: {after:?}"
        );
    }
    // The raw zone holds each record once, as the table does.
    assert_eq!(table_count(&dir, "raw.drops__sales"), 4);
    assert_eq!(raw_records(&dir), 4, "raw files: {after:?}");
}

#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features socle-cli/failpoints"
)]
fn a_kill_right_after_an_extraction_committed_loses_and_repeats_nothing() {
    let (_tmp, dir) = project();
    write(&dir, "sources/drops.yml", DROPS);
    write(&dir, "drops/a.csv", "id,amount\n1,10\n2,20\n");
    extract_json(&dir, &[]);
    write(&dir, "drops/b.csv", "id,amount\n3,30\n");

    // Killed once data and state are committed, before the process ends.
    stopped_at(&dir, "extract-after-commit", &["extract"]);
    assert_eq!(
        table_count(&dir, "raw.drops__sales"),
        3,
        "the load was lost"
    );

    // The state advanced with the data: the rerun reads nothing again.
    let (success, _out, err) = run(&dir, &["extract"]);
    assert!(success, "{err}");
    assert!(!err.contains("discarded"), "{err}");
    let again = extract_json(&dir, &[]);
    assert_eq!(
        (
            again[0]["files"].as_u64(),
            again[0]["rows_inserted"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(
        table_count(&dir, "raw.drops__sales"),
        3,
        "rows were loaded twice"
    );

    // And the next file is loaded once.
    write(&dir, "drops/c.csv", "id,amount\n4,40\n");
    extract_json(&dir, &[]);
    let rows = query(
        &dir,
        "select count(*) as n, count(distinct id) as ids, sum(amount) as s from raw.drops__sales",
    );
    assert_eq!(
        (
            rows[0]["n"].as_u64(),
            rows[0]["ids"].as_u64(),
            rows[0]["s"].as_u64()
        ),
        (Some(4), Some(4), Some(100))
    );
    assert_eq!(raw_records(&dir), 4);
}

#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features socle-cli/failpoints"
)]
fn a_kill_right_after_a_load_committed_keeps_it_and_a_merge_rerun_repeats_nothing() {
    let (_tmp, dir) = project();
    write(&dir, "batch.csv", "id,amount\n1,10\n2,20\n3,30\n");
    let load = [
        "load",
        "batch.csv",
        "--table",
        "raw.t",
        "--mode",
        "merge",
        "--key",
        "id",
    ];
    stopped_at(&dir, "load-after-commit", &load);
    // The commit made it: nothing was lost.
    assert_eq!(table_count(&dir, "raw.t"), 3);
    // Run again (the user cannot tell whether it committed): a merge repeats nothing.
    let out = ok(&dir, &load);
    assert!(
        out.contains("3 rows in, 0 inserted, 3 updated, version 1"),
        "{out}"
    );
    let rows = query(
        &dir,
        "select count(*) as n, count(distinct id) as ids, sum(amount) as s from raw.t",
    );
    assert_eq!(
        (
            rows[0]["n"].as_u64(),
            rows[0]["ids"].as_u64(),
            rows[0]["s"].as_u64()
        ),
        (Some(3), Some(3), Some(60))
    );
}
