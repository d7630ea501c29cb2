//! Writers racing on one table: first loads of a table that does not exist yet (two and
//! three `socle load` started at once, in every mode), merges racing on an existing table,
//! first extractions of a merge stream, and whole `socle build`s of a new project. Each race must end as if the writers had run
//! one after the other: append holds every batch, overwrite exactly one writer's rows,
//! merge one row per key; and no writer answers with delta-rs's wording.
//!
//! The trial count is `SOCLE_CONCURRENT_TRIALS` (default 2, to keep the suite short); the
//! issue's probe is `SOCLE_CONCURRENT_TRIALS=20 cargo nextest run --workspace -E
//! 'test(/concurrent::/)'`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Rows of each writer's batch (ids 1..=ROWS, the same in every batch).
const ROWS: u64 = 20_000;

fn trials() -> usize {
    std::env::var("SOCLE_CONCURRENT_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

/// Writes `batch_<w>.csv`: ids 1..=ROWS, writer number `w`, a value.
fn batch(dir: &Path, w: usize) -> String {
    let mut text = String::from("id,w,v\n");
    for id in 1..=ROWS {
        writeln!(text, "{id},{w},{}", id * 7 + w as u64).unwrap();
    }
    let rel = format!("batch_{w}.csv");
    write(dir, &rel, &text);
    rel
}

/// Starts every command at once and waits for all of them.
fn all_at_once(dir: &Path, commands: &[Vec<String>]) -> Vec<Output> {
    let children: Vec<_> = commands
        .iter()
        .map(|args| {
            socle()
                .current_dir(dir)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("socle runs")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// Every writer succeeded, and none spoke of isolation levels.
fn all_succeeded(what: &str, outputs: &[Output]) {
    for o in outputs {
        let out = String::from_utf8_lossy(&o.stdout);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success(),
            "{what}: a concurrent writer failed:\n{out}\n{err}"
        );
        assert!(!err.to_lowercase().contains("isolation"), "{what}: {err}");
    }
}

/// (rows, distinct ids, distinct writers) of each table, in one query.
fn shapes(dir: &Path, tables: &[String]) -> Vec<(u64, u64, u64)> {
    let sql = tables
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!(
                "SELECT {i} AS i, count(*) AS n, count(DISTINCT id) AS ids, count(DISTINCT w) AS ws FROM {t}"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let mut rows = query(dir, &format!("SELECT * FROM ({sql}) ORDER BY i"));
    rows.sort_by_key(|r| r["i"].as_u64());
    rows.iter()
        .map(|r| {
            (
                r["n"].as_u64().unwrap(),
                r["ids"].as_u64().unwrap(),
                r["ws"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn concurrent_first_loads_end_as_if_run_one_after_the_other() {
    let started = Instant::now();
    let (_tmp, dir) = project();
    let files: Vec<String> = (0..3).map(|w| batch(&dir, w)).collect();
    let mut cases = Vec::new();
    for trial in 0..trials() {
        for writers in [2usize, 3] {
            for mode in ["append", "overwrite", "merge"] {
                assert!(
                    started.elapsed() < Duration::from_secs(600),
                    "test ran too long"
                );
                let table = format!("raw.first_{mode}_{writers}_{trial}");
                let commands: Vec<Vec<String>> = files[..writers]
                    .iter()
                    .map(|f| {
                        let mut args = vec![
                            "load",
                            f.as_str(),
                            "--table",
                            table.as_str(),
                            "--mode",
                            mode,
                        ];
                        if mode == "merge" {
                            args.extend(["--key", "id"]);
                        }
                        args.into_iter().map(String::from).collect()
                    })
                    .collect();
                all_succeeded(&table, &all_at_once(&dir, &commands));
                cases.push((table, mode, writers));
            }
        }
    }
    let tables: Vec<String> = cases.iter().map(|c| c.0.clone()).collect();
    let mut wrong = Vec::new();
    for ((table, mode, writers), (n, ids, ws)) in cases.iter().zip(shapes(&dir, &tables)) {
        let expected = match *mode {
            "append" => (ROWS * *writers as u64, ROWS, *writers as u64),
            "overwrite" => (ROWS, ROWS, 1),
            _ => (ROWS, ROWS, ws),
        };
        if (n, ids, ws) != expected {
            wrong.push(format!(
                "{table}: {n} rows, {ids} ids, {ws} writers' rows (expected {expected:?})"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} races ended wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[test]
fn concurrent_merges_into_an_existing_table_do_not_duplicate() {
    let (_tmp, dir) = project();
    write(&dir, "seed.csv", "id,w,v\n1,9,0\n2,9,0\n");
    let files: Vec<String> = (0..3).map(|w| batch(&dir, w)).collect();
    let mut tables = Vec::new();
    for trial in 0..trials() {
        let table = format!("raw.existing_{trial}");
        ok(&dir, &["load", "seed.csv", "--table", &table]);
        let commands: Vec<Vec<String>> = files
            .iter()
            .map(|f| {
                [
                    "load",
                    f.as_str(),
                    "--table",
                    table.as_str(),
                    "--mode",
                    "merge",
                    "--key",
                    "id",
                ]
                .into_iter()
                .map(String::from)
                .collect()
            })
            .collect();
        all_succeeded(&table, &all_at_once(&dir, &commands));
        tables.push(table);
    }
    for (table, (n, ids, _)) in tables.iter().zip(shapes(&dir, &tables)) {
        assert_eq!((n, ids), (ROWS, ROWS), "{table}: rows and distinct ids");
    }
}

#[test]
fn concurrent_first_extractions_of_a_merge_stream_do_not_duplicate() {
    let (_tmp, dir) = project();
    let file = batch(&dir, 0);
    let streams: Vec<(String, usize)> = (0..trials())
        .flat_map(|t| [2usize, 3].map(|w| (format!("s{t}_{w}"), w)))
        .collect();
    let mut source = String::from("type: files\nstreams:\n");
    for (stream, _) in &streams {
        writeln!(
            source,
            "  {stream}:\n    path: {file}\n    write: merge\n    primary_key: id"
        )
        .unwrap();
    }
    write(&dir, "sources/race.yml", &source);
    for (stream, writers) in &streams {
        let commands: Vec<Vec<String>> = (0..*writers)
            .map(|_| vec!["extract".to_string(), format!("race.{stream}")])
            .collect();
        all_succeeded(stream, &all_at_once(&dir, &commands));
    }
    let tables: Vec<String> = streams
        .iter()
        .map(|(s, _)| format!("raw.race__{s}"))
        .collect();
    for (table, (rows, ids, _)) in tables.iter().zip(shapes(&dir, &tables)) {
        assert_eq!((rows, ids), (ROWS, ROWS), "{table}: rows and distinct ids");
    }
    // Every stream's state moved: a later extraction reads nothing new.
    for r in extract_json(&dir, &["race"]) {
        assert_eq!(r["files"], 0, "{r}");
    }
}

/// Two and three `socle build` of a new project at once (a new metadata database too):
/// every one commits every model and says so, and each table holds its model's rows once.
#[test]
fn concurrent_builds_all_commit_and_say_so() {
    for t in 0..trials() {
        for writers in [2usize, 3] {
            let (_tmp, dir) = project();
            for m in 1..=4 {
                write(
                    &dir,
                    &format!("models/m{m}.sql"),
                    &format!(
                        "{{{{ config(materialized='table') }}}}\nselect {m} as id, 'x' as v union all select {m} + 10, 'y'\n"
                    ),
                );
            }
            write(
                &dir,
                "models/v1.sql",
                "{{ config(materialized='view') }}\nselect * from {{ ref('m1') }}\n",
            );
            let commands: Vec<Vec<String>> =
                (0..writers).map(|_| vec!["build".to_string()]).collect();
            let what = format!("trial {t}, {writers} builds");
            let outputs = all_at_once(&dir, &commands);
            all_succeeded(&what, &outputs);
            for o in &outputs {
                let out = String::from_utf8_lossy(&o.stdout);
                assert!(out.contains("PASS=5 WARN=0 ERROR=0"), "{what}:\n{out}");
            }
            let rows = query(
                &dir,
                "SELECT (SELECT count(*) FROM m1) + (SELECT count(*) FROM m2) + (SELECT count(*) FROM m3) + (SELECT count(*) FROM m4) AS n, (SELECT count(*) FROM v1) AS v",
            );
            assert_eq!(
                (rows[0]["n"].as_u64(), rows[0]["v"].as_u64()),
                (Some(8), Some(2)),
                "{what}"
            );
        }
    }
}
