//! `socle build` and friends on a dbt project with macros, `adapter.dispatch`, an
//! ephemeral model, seeds with column types, vars, and generic and singular tests.

use std::path::{Path, PathBuf};

use crate::common::*;

/// A copy of a test project in a temporary folder.
pub fn copy_project(name: &str) -> (tempfile::TempDir, PathBuf) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/projects")
        .join(name);
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    copy_dir(&src, &dst);
    (tmp, dst)
}

const TOTALS: &str = "select customer_id, name, placed_cents, shipped_cents, returned_cents from main.customer_totals order by 1";

#[test]
fn build_runs_seeds_models_and_tests_in_order() {
    let (_tmp, dir) = copy_project("macros_dispatch");
    let out = ok(&dir, &["build"]);
    assert!(
        out.contains("Done. PASS=18 WARN=1 ERROR=0 SKIP=0 TOTAL=19"),
        "{out}"
    );
    // A custom generic test from a `{% test %}` block.
    assert!(
        out.contains("PASS test is_positive_stg_orders_amount_cents"),
        "{out}"
    );
    // store_failures keeps the failing rows (none here) in the audit schema.
    let stored = ok(
        &dir,
        &[
            "sql",
            "select count(*) as n from main_dbt_test__audit.amount_cents_is_not_negative",
            "--format",
            "csv",
        ],
    );
    assert_eq!(stored, "n\n0\n");
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
    // dbt's artifacts, readable by tools that read dbt's.
    let read_json = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("target").join(name)).unwrap())
            .unwrap()
    };
    let results = read_json("run_results.json");
    assert_eq!(results["results"].as_array().unwrap().len(), 19);
    let manifest = read_json("manifest.json");
    let totals = &manifest["nodes"]["model.macros_dispatch.customer_totals"];
    assert_eq!(
        totals["depends_on"]["nodes"],
        serde_json::json!([
            "model.macros_dispatch.stg_customers",
            "model.macros_dispatch.stg_orders"
        ])
    );
    assert_eq!(
        manifest["child_map"]["seed.macros_dispatch.raw_orders"],
        serde_json::json!([
            "model.macros_dispatch.order_labels",
            "model.macros_dispatch.stg_orders"
        ])
    );
    // on-run-start / on-run-end hooks ran.
    let audit = ok(
        &dir,
        &[
            "sql",
            "select target_name, min_amount from audit.last_run",
            "--format",
            "csv",
        ],
    );
    assert_eq!(audit, "target_name,min_amount\ndev,0\n");
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
        "customer_money\ncustomer_totals\norder_keys\nstg_orders\n"
    );
    // `run` builds models only; a model whose parent is missing fails, its child is skipped.
    let (success, out, _) = run(&dir, &["run", "--select", "customer_totals+"]);
    assert!(!success);
    assert!(out.contains("ERROR=1 SKIP=1"), "{out}");
    ok(&dir, &["seed"]);
    let out = ok(&dir, &["run"]);
    assert!(
        out.contains("PASS=5 WARN=0 ERROR=0 SKIP=0 TOTAL=5"),
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

#[test]
fn incremental_models_and_snapshots_keep_history() {
    let (_tmp, dir) = copy_project("incremental_snapshots");
    let out = ok(&dir, &["build"]);
    assert!(out.contains("ERROR=0 SKIP=0"), "{out}");
    // New data arrives: event 2 is corrected, event 3 is new; user 2 is renamed, user 3 appears.
    std::fs::write(
        dir.join("seeds/raw_events.csv"),
        "id,user_id,amount,updated_at\n1,1,10,2024-01-01 10:00:00\n2,2,25,2024-01-02 09:00:00\n3,3,30,2024-01-02 10:00:00\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("seeds/raw_users.csv"),
        "id,name,updated_at\n1,Ana,2024-01-01 00:00:00\n2,Bea,2024-01-05 00:00:00\n3,Cy,2024-01-05 00:00:00\n",
    )
    .unwrap();
    ok(&dir, &["build"]);
    let events = ok(
        &dir,
        &[
            "sql",
            "select id, amount from main.events order by id",
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        events, "id,amount\n1,10\n2,25\n3,30\n",
        "merged on unique_key"
    );
    let log = ok(
        &dir,
        &[
            "sql",
            "select id, amount from main.events_log order by id",
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        log, "id,amount\n1,10\n2,20\n3,30\n",
        "appended only new ids"
    );
    let days = ok(
        &dir,
        &[
            "sql",
            "select cast(day as varchar) as day, id, amount from main.events_by_day order by id",
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        days, "day,id,amount\n2024-01-01,1,10\n2024-01-02,2,25\n2024-01-02,3,30\n",
        "delete+insert replaced every row of the days in the batch"
    );
    let history = ok(
        &dir,
        &[
            "sql",
            "select id, name, cast(dbt_valid_from as varchar) as f, cast(dbt_valid_to as varchar) as t \
                  from snapshots.users_history order by id, dbt_valid_from",
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        history,
        "id,name,f,t\n1,Ana,2024-01-01T00:00:00,\n2,Bo,2024-01-01T00:00:00,2024-01-05T00:00:00\n2,Bea,2024-01-05T00:00:00,\n3,Cy,2024-01-05T00:00:00,\n"
    );
    let names = ok(
        &dir,
        &[
            "sql",
            "select id, name, dbt_valid_to is null as current from snapshots.users_names order by id, dbt_valid_from",
            "--format",
            "csv",
        ],
    );
    assert_eq!(
        names,
        "id,name,current\n1,Ana,true\n2,Bo,false\n2,Bea,true\n3,Cy,true\n"
    );
    // Nothing changed: another build adds no versions and no rows.
    ok(&dir, &["build"]);
    let count = ok(
        &dir,
        &[
            "sql",
            "select count(*) as n from snapshots.users_history",
            "--format",
            "csv",
        ],
    );
    assert_eq!(count, "n\n4\n");
    // A user is deleted at the source, then comes back: `hard_deletes`.
    std::fs::write(
        dir.join("seeds/raw_users.csv"),
        "id,name,updated_at\n2,Bea,2024-01-05 00:00:00\n3,Cy,2024-01-05 00:00:00\n",
    )
    .unwrap();
    ok(&dir, &["build"]);
    let q = |sql: &str| ok(&dir, &["sql", sql, "--format", "csv"]);
    assert_eq!(
        q(
            "select id, name, dbt_valid_to is null as current from snapshots.users_invalidated order by id, dbt_valid_from"
        ),
        "id,name,current\n1,Ana,false\n2,Bo,false\n2,Bea,true\n3,Cy,true\n",
        "invalidate closes the deleted key"
    );
    assert_eq!(
        q(
            "select id, name, dbt_is_deleted, dbt_valid_to is null as current from snapshots.users_deleted where id = 1 order by dbt_valid_from"
        ),
        "id,name,dbt_is_deleted,current\n1,Ana,False,false\n1,Ana,True,true\n",
        "new_record closes the key and adds a deletion record"
    );
    assert_eq!(
        q("select count(*) as n from snapshots.users_history where dbt_valid_to is null"),
        "n\n3\n",
        "ignore (the default) keeps the deleted key current"
    );
    // Nothing changed again: no new deletion record.
    ok(&dir, &["build"]);
    assert_eq!(
        q("select count(*) as n from snapshots.users_deleted where id = 1"),
        "n\n2\n"
    );
    std::fs::write(
        dir.join("seeds/raw_users.csv"),
        "id,name,updated_at\n1,Ana,2024-02-01 00:00:00\n2,Bea,2024-01-05 00:00:00\n3,Cy,2024-01-05 00:00:00\n",
    )
    .unwrap();
    ok(&dir, &["build"]);
    assert_eq!(
        q(
            "select id, name, dbt_is_deleted, dbt_valid_to is null as current from snapshots.users_deleted where id = 1 order by dbt_valid_from"
        ),
        "id,name,dbt_is_deleted,current\n1,Ana,False,false\n1,Ana,True,false\n1,Ana,False,true\n",
        "a key that comes back closes its deletion record"
    );
    assert_eq!(
        q(
            "select id, name, dbt_valid_to is null as current from snapshots.users_invalidated where id = 1 order by dbt_valid_from"
        ),
        "id,name,current\n1,Ana,false\n1,Ana,true\n"
    );
    assert_eq!(
        ok(
            &dir,
            &[
                "sql",
                "select count(*) as n from main.events_log",
                "--format",
                "csv"
            ]
        ),
        "n\n3\n"
    );
    // --full-refresh rebuilds incremental models from scratch.
    ok(&dir, &["build", "--full-refresh", "--select", "events_log"]);
    assert_eq!(
        ok(
            &dir,
            &[
                "sql",
                "select count(*) as n from main.events_log",
                "--format",
                "csv"
            ]
        ),
        "n\n3\n"
    );
}
