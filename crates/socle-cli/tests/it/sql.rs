//! `socle sql`, `socle load` and `socle table` as a user runs them.

use crate::common::*;

#[test]
fn output_formats() {
    let (_tmp, dir) = project();
    ok(
        &dir,
        &[
            "sql",
            "CREATE TABLE t AS SELECT * FROM (VALUES (1, 'a'), (2, NULL)) AS v(id, name)",
        ],
    );
    let q = "SELECT id, name FROM t ORDER BY id";
    assert_eq!(
        ok(&dir, &["sql", q, "--format", "csv"]),
        "id,name\n1,a\n2,\n"
    );
    assert_eq!(
        ok(&dir, &["sql", q, "--format", "ndjson"]),
        "{\"id\":1,\"name\":\"a\"}\n{\"id\":2}\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&dir, &["sql", q, "--format", "json"])).unwrap();
    assert_eq!(json[0]["name"], "a");
    let table = ok(&dir, &["sql", q]);
    assert!(table.contains("| id | name |"), "{table}");
    // Parquet goes to a file, which socle (or anything else) can read back.
    ok(
        &dir,
        &["sql", q, "--format", "parquet", "-o", "out.parquet"],
    );
    assert_eq!(
        ok(
            &dir,
            &[
                "sql",
                "SELECT count(*) AS n FROM 'out.parquet'",
                "--format",
                "csv"
            ]
        ),
        "n\n2\n"
    );
    let (success, _, err) = run(&dir, &["sql", q, "--format", "parquet"]);
    assert!(!success && err.contains("-o FILE"), "{err}");
    // Empty results still print their header.
    assert_eq!(
        ok(
            &dir,
            &["sql", "SELECT id FROM t WHERE id > 5", "--format", "csv"]
        ),
        "id\n"
    );
}

#[test]
fn sql_errors_exit_non_zero_with_position() {
    let (_tmp, dir) = project();
    let (success, _, err) = run(&dir, &["sql", "SELECT 1 +* 2"]);
    assert!(!success);
    assert!(err.contains("line 1, column"), "{err}");
    assert!(err.contains('^'), "{err}");
    std::fs::write(
        dir.join("q.sql"),
        "SELECT 1 AS a;\nSELECT nope FROM (SELECT 1 AS a);\n",
    )
    .unwrap();
    let (success, out, err) = run(&dir, &["sql", "-f", "q.sql", "--format", "csv"]);
    assert!(!success);
    assert_eq!(out, "a\n1\n", "statements before the error ran");
    assert!(err.contains("q.sql:2:8:"), "{err}");
}

#[test]
fn stdin_scripts_run_in_order() {
    use std::io::Write;
    let (_tmp, dir) = project();
    let mut child = socle()
        .current_dir(&dir)
        .args(["sql", "--format", "csv"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"CREATE TABLE n AS SELECT 1 AS x;\nINSERT INTO n VALUES (2);\nSELECT sum(x) AS s FROM n;\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "s\n3\n");
}

#[test]
fn load_merge_and_table_commands() {
    let (_tmp, dir) = project();
    std::fs::write(
        dir.join("orders.csv"),
        "order_id,amount,status\n1,10.5,new\n2,20,new\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("update.csv"),
        "order_id,amount,status\n2,25,paid\n3,5,new\n",
    )
    .unwrap();
    let merge = [
        "--table",
        "raw.orders",
        "--mode",
        "merge",
        "--key",
        "order_id",
    ];
    let out = ok(&dir, &[&["load", "orders.csv"][..], &merge].concat());
    assert!(out.contains("2 rows in, 2 inserted"), "{out}");
    ok(&dir, &[&["load", "orders.csv"][..], &merge].concat());
    let out = ok(
        &dir,
        &[&["load", "update.csv"][..], &merge, &["--output", "json"]].concat(),
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            report["rows_inserted"].as_u64(),
            report["rows_updated"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(
        ok(
            &dir,
            &[
                "sql",
                "SELECT order_id, amount, status FROM raw.orders ORDER BY 1",
                "--format",
                "csv"
            ]
        ),
        "order_id,amount,status\n1,10.5,new\n2,25.0,paid\n3,5.0,new\n"
    );
    let history = ok(&dir, &["table", "history", "raw.orders"]);
    assert_eq!(history.lines().count(), 4, "{history}");
    let list = ok(&dir, &["table", "list"]);
    assert!(list.contains("raw.orders"), "{list}");
    let describe = ok(&dir, &["table", "describe", "raw.orders"]);
    assert!(
        describe.contains("version 2") && describe.contains("3 rows"),
        "{describe}"
    );
    let (success, _, err) = run(&dir, &["table", "describe", "raw.ordres"]);
    assert!(
        !success && err.contains("did you mean `raw.orders`"),
        "{err}"
    );
    ok(&dir, &["table", "optimize", "raw.orders"]);
    ok(&dir, &["table", "drop", "raw.orders"]);
    assert!(ok(&dir, &["table", "list"]).contains("no tables yet"));
}
