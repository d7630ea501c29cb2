//! `socle build` and friends on a dbt project with macros, `adapter.dispatch`, an
//! ephemeral model, seeds with column types, vars, and generic and singular tests.

use std::path::{Path, PathBuf};

use crate::common::*;

/// A copy of a test project in a temporary folder.
fn copy_project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/projects")
        .join(name);
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    copy_dir(&src, &dst);
    (tmp, dst)
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

const TOTALS: &str = "select customer_id, name, placed_cents, shipped_cents, returned_cents from main.customer_totals order by 1";

#[test]
fn build_runs_seeds_models_and_tests_in_order() {
    let (_tmp, dir) = copy_project("macros_dispatch");
    let out = ok(&dir, &["build"]);
    assert!(
        out.contains("Done. PASS=10 WARN=1 ERROR=0 SKIP=0 TOTAL=11"),
        "{out}"
    );
    assert!(
        out.contains("WARN test accepted_values_stg_orders_status__placed__shipped"),
        "{out}"
    );
    let rows = ok(&dir, &["sql", TOTALS, "--format", "csv"]);
    let expected = "customer_id,name,placed_cents,shipped_cents,returned_cents\n1,Ana,1050,2000,0\n2,Bo,0,0,500\n3,Cy,725,0,0\n";
    assert_eq!(rows, expected);
    // adapter.dispatch picked duckdb__money.
    let money = ok(
        &dir,
        &[
            "sql",
            "select kept_amount from main.customer_money order by customer_id",
            "--format",
            "csv",
        ],
    );
    assert_eq!(money, "kept_amount\n30.5\n0.0\n7.25\n");
    // The ephemeral model is inlined, never created.
    let rels = ok(
        &dir,
        &[
            "sql",
            "select table_name from information_schema.tables where table_schema = 'main' order by 1",
            "--format",
            "csv",
        ],
    );
    assert!(!rels.contains("stg_customers"), "{rels}");
    assert!(
        dir.join("target/compiled/macros_dispatch/models/marts/customer_totals.sql")
            .exists()
    );
    // A second build gives the same rows.
    ok(&dir, &["build"]);
    assert_eq!(ok(&dir, &["sql", TOTALS, "--format", "csv"]), expected);
}

#[test]
fn selection_and_ls() {
    let (_tmp, dir) = copy_project("macros_dispatch");
    assert_eq!(
        ok(
            &dir,
            &[
                "ls",
                "--select",
                "tag:daily",
                "--resource-type",
                "model",
                "--output",
                "name"
            ]
        ),
        "customer_money\ncustomer_totals\n"
    );
    assert_eq!(
        ok(
            &dir,
            &[
                "ls",
                "--select",
                "+customer_totals",
                "--resource-type",
                "model",
                "--output",
                "name"
            ]
        ),
        "customer_totals\nstg_customers\nstg_orders\n"
    );
    assert_eq!(
        ok(
            &dir,
            &[
                "ls",
                "--select",
                "stg_orders+",
                "--exclude",
                "resource_type:test",
                "--output",
                "name"
            ]
        ),
        "customer_money\ncustomer_totals\nstg_orders\n"
    );
    // `run` builds models only; a model whose parent is missing fails, its child is skipped.
    let (success, out, _) = run(&dir, &["run", "--select", "customer_totals+"]);
    assert!(!success);
    assert!(out.contains("ERROR=1 SKIP=1"), "{out}");
    ok(&dir, &["seed"]);
    let out = ok(&dir, &["run"]);
    assert!(
        out.contains("PASS=3 WARN=0 ERROR=0 SKIP=0 TOTAL=3"),
        "{out}"
    );
    let out = ok(&dir, &["test", "--select", "customer_totals"]);
    assert!(
        out.contains("PASS=3 WARN=0 ERROR=0 SKIP=0 TOTAL=3"),
        "{out}"
    );
}

#[test]
fn errors_name_the_file_and_line() {
    let (_tmp, dir) = copy_project("macros_dispatch");
    // An unknown ref.
    std::fs::write(
        dir.join("models/marts/broken.sql"),
        "select 1 as a\nfrom {{ ref('customer_total') }}\n",
    )
    .unwrap();
    let (success, _, err) = run(&dir, &["build"]);
    assert!(!success);
    assert!(err.contains("broken.sql:2"), "{err}");
    assert!(err.contains("did you mean `customer_totals`?"), "{err}");
    // A Jinja error.
    std::fs::write(
        dir.join("models/marts/broken.sql"),
        "select 1 as a\n{% if %}\n",
    )
    .unwrap();
    let (success, _, err) = run(&dir, &["build"]);
    assert!(!success);
    assert!(err.contains("broken.sql:2"), "{err}");
    // A cycle.
    std::fs::write(
        dir.join("models/marts/broken.sql"),
        "select * from {{ ref('broken2') }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("models/marts/broken2.sql"),
        "select * from {{ ref('broken') }}\n",
    )
    .unwrap();
    let (success, _, err) = run(&dir, &["build"]);
    assert!(!success);
    assert!(
        err.contains("dependency cycle") && err.contains("model.macros_dispatch.broken"),
        "{err}"
    );
    std::fs::remove_file(dir.join("models/marts/broken2.sql")).unwrap();
    // An SQL error: the model fails with an excerpt, its previous table stays.
    std::fs::write(dir.join("models/marts/broken.sql"), "select 1 as a").unwrap();
    ok(&dir, &["build"]);
    std::fs::write(
        dir.join("models/marts/broken.sql"),
        "{{ config(materialized='table') }}\nselect\n  nope\nfrom {{ ref('stg_orders') }}\n",
    )
    .unwrap();
    let (success, out, _) = run(&dir, &["build", "--select", "broken"]);
    assert!(!success);
    assert!(out.contains("broken.sql") && out.contains("nope"), "{out}");
}
