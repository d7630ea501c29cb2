//! Kill the process during a write: the table reads back at its last committed version and
//! the next write succeeds, with no duplicated rows.

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
