//! The same dbt project built by socle and by dbt-core with dbt-duckdb (installed by
//! scripts/test-services.sh) gives the same table contents.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::common::*;
use crate::dbt::copy_project;

/// Reads every relation dbt-duckdb built, as sorted rows of JSON values.
const DUMP: &str = r#"
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
out = {}
for schema, name in con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema not like '%dbt_test__audit' order by 1, 2").fetchall():
    cur = con.execute(f'select * from "{schema}"."{name}"')
    cols = [d[0] for d in cur.description]
    out[f"{schema}.{name}"] = {"columns": cols, "rows": [[str(v) if v is not None else None for v in r] for r in cur.fetchall()]}
print(json.dumps(out))
sys.stdout.flush()
"#;

/// A value as text both engines agree on: numbers by value, the rest as written.
fn norm(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Number(n) => format!("{:.6}", n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => match s.parse::<f64>() {
            Ok(f) if !s.is_empty() => format!("{f:.6}"),
            _ => s.replace('T', " "),
        },
        other => other.to_string(),
    }
}

fn dbt_tables(dir: &Path) -> BTreeMap<String, (Vec<String>, Vec<Vec<String>>)> {
    std::fs::write(
        dir.join("profiles.yml"),
        format!(
            "{name}:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {db}\n      schema: main\n      threads: 4\n",
            name = dir.file_name().unwrap().to_str().unwrap(),
            db = dir.join("dbt.duckdb").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new("dbt")
        .args([
            "build",
            "--profiles-dir",
            ".",
            "--target-path",
            "dbt_target",
        ])
        .current_dir(dir)
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .output()
        .expect("dbt runs (scripts/test-services.sh installs dbt-core and dbt-duckdb)");
    assert!(
        out.status.success(),
        "dbt build failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let dump = std::process::Command::new("python3")
        .args(["-c", DUMP, dir.join("dbt.duckdb").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let json: BTreeMap<String, Value> = serde_json::from_slice(&dump.stdout).unwrap();
    json.into_iter()
        .map(|(k, v)| {
            let cols: Vec<String> = v["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            let rows = v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_array().unwrap().iter().map(norm).collect())
                .collect();
            (k, (cols, rows))
        })
        .collect()
}

fn socle_rows(dir: &Path, table: &str, cols: &[String]) -> Vec<Vec<String>> {
    let list = cols
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let out = ok(
        dir,
        &[
            "sql",
            &format!("select {list} from {table}"),
            "--format",
            "json",
        ],
    );
    let rows: Vec<serde_json::Map<String, Value>> = serde_json::from_str(&out).unwrap();
    rows.iter()
        .map(|r| {
            cols.iter()
                .map(|c| norm(r.get(c).unwrap_or(&Value::Null)))
                .collect()
        })
        .collect()
}

fn compare(project: &str, skip_columns: &[&str], tables: usize) {
    let (_tmp, dir) = copy_project(project);
    let reference = dbt_tables(&dir);
    assert_eq!(
        reference.len(),
        tables,
        "{:?}",
        reference.keys().collect::<Vec<_>>()
    );
    ok(&dir, &["build"]);
    for (table, (cols, mut expected)) in reference {
        let keep: Vec<usize> = (0..cols.len())
            .filter(|i| !skip_columns.contains(&cols[*i].as_str()))
            .collect();
        let cols: Vec<String> = keep.iter().map(|i| cols[*i].clone()).collect();
        expected = expected
            .into_iter()
            .map(|r| keep.iter().map(|i| r[*i].clone()).collect())
            .collect();
        let mut got = socle_rows(&dir, &table, &cols);
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "{project}: {table} differs from dbt-duckdb");
    }
}

#[test]
fn macros_and_dispatch_match_dbt_duckdb() {
    compare("macros_dispatch", &[], 9);
}

#[test]
fn incremental_and_snapshots_match_dbt_duckdb() {
    // Snapshot bookkeeping columns hold hashes and run times that differ by design.
    compare(
        "incremental_snapshots",
        &[
            "dbt_scd_id",
            "dbt_updated_at",
            "dbt_valid_from",
            "dbt_valid_to",
        ],
        9,
    );
}

#[test]
fn classic_project_with_views_loops_and_docs_matches_dbt_duckdb() {
    // Seeds, staging views, an ephemeral model, marts tables, a Jinja loop building a
    // UNION ALL, `* EXCEPT`, window functions, relationship tests and a docs block.
    compare("lineage", &[], 5);
}
