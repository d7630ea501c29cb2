//! `socle docs`: the static site's data (column lineage through CTEs, an ephemeral model,
//! joins, aggregates, windows, `* EXCEPT`, unions and sub-queries; docs blocks; test
//! results) and the page itself, rendered by a real headless Chromium.

use std::path::Path;

use serde_json::Value;

use crate::common::*;
use crate::dbt::copy_project;

fn node<'a>(docs: &'a Value, id: &str) -> &'a Value {
    docs["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("no node {id}"))
}

fn column<'a>(node: &'a Value, name: &str) -> &'a Value {
    node["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no column {name} in {}", node["id"]))
}

/// `(transform, ["node-or-relation.column", ...])` of a column.
fn lineage(node: &Value, name: &str) -> (String, Vec<String>) {
    let lin = &column(node, name)["lineage"];
    assert!(lin.is_object(), "no lineage for {name}: {node}");
    let mut sources: Vec<String> = lin["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let at = s["node"]
                .as_str()
                .unwrap_or(s["relation"].as_str().unwrap());
            format!("{at}.{}", s["column"].as_str().unwrap())
        })
        .collect();
    sources.sort();
    (lin["transform"].as_str().unwrap().to_string(), sources)
}

fn read_docs(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("target/docs/docs.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn docs_trace_columns_through_ctes_joins_aggregates_and_star_except() {
    let (_tmp, dir) = copy_project("lineage");
    let built = ok(&dir, &["build"]);
    assert!(built.contains("ERROR=0 SKIP=0"), "{built}");
    let out = ok(&dir, &["docs"]);
    assert!(out.contains("target/docs/index.html"), "{out}");
    let docs = read_docs(&dir);

    let stg = node(&docs, "model.lineage.stg_customers");
    let names: Vec<&str> = stg["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id", "name", "country", "email_lower"]);
    assert_eq!(
        lineage(stg, "id"),
        ("direct".into(), vec!["seed.lineage.customers.id".into()])
    );
    assert_eq!(
        lineage(stg, "email_lower"),
        (
            "derived".into(),
            vec!["seed.lineage.customers.email".into()]
        )
    );

    let co = node(&docs, "model.lineage.customer_orders");
    // Renamed through a join: still a copy.
    assert_eq!(
        lineage(co, "customer_id"),
        (
            "direct".into(),
            vec!["model.lineage.stg_customers.id".into()]
        )
    );
    // Through two CTEs to the inlined ephemeral model (a node of its own).
    assert_eq!(
        lineage(co, "total"),
        (
            "derived".into(),
            vec!["model.lineage.stg_orders.amount".into()]
        )
    );
    assert_eq!(lineage(co, "n_orders"), ("derived".into(), vec![]));
    assert_eq!(
        lineage(co, "country_rank"),
        (
            "derived".into(),
            vec![
                "model.lineage.stg_customers.country".into(),
                "model.lineage.stg_orders.amount".into()
            ]
        )
    );
    assert_eq!(
        lineage(co, "biggest_order"),
        ("derived".into(), vec!["seed.lineage.orders.amount".into()])
    );
    // The docs block is rendered into the description.
    assert!(
        co["description"]
            .as_str()
            .unwrap()
            .starts_with("One row per customer with their **paid** orders"),
        "{}",
        co["description"]
    );
    // ... and in dbt's manifest, as dbt renders it.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("target/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["nodes"]["model.lineage.customer_orders"]["description"],
        co["description"]
    );
    let tests = column(co, "customer_id")["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 2, "{tests:?}");
    assert!(tests.iter().all(|t| t["status"] == "pass"), "{tests:?}");
    assert_eq!(column(co, "total")["type"], "Float64");

    // A Jinja loop building a UNION ALL: both branches feed the column.
    let all = node(&docs, "model.lineage.all_names");
    assert_eq!(
        lineage(all, "name"),
        (
            "direct".into(),
            vec![
                "model.lineage.stg_customers.name".into(),
                "model.lineage.stg_orders.status".into()
            ]
        )
    );
    // The ephemeral model is documented too, with its own lineage.
    let eph = node(&docs, "model.lineage.stg_orders");
    assert_eq!(eph["relation"], Value::Null);
    assert_eq!(
        lineage(eph, "order_id"),
        ("direct".into(), vec!["seed.lineage.orders.id".into()])
    );
}

#[test]
fn docs_before_a_build_still_document_the_project() {
    let (_tmp, dir) = copy_project("lineage");
    let out = ok(&dir, &["docs"]);
    assert!(out.contains("index.html"), "{out}");
    let docs = read_docs(&dir);
    let co = node(&docs, "model.lineage.customer_orders");
    assert_eq!(co["built"], false);
    // Documented columns are listed; lineage needs the upstream relations.
    assert_eq!(column(co, "total")["description"], "Sum of paid orders.");
    assert!(co["lineage_error"].is_string(), "{co}");
    let tests = column(co, "customer_id")["tests"].as_array().unwrap();
    assert!(tests.iter().all(|t| t["status"] == "not run"), "{tests:?}");
}

/// The page works from the file, with no network: Chromium runs its script and the DOM
/// shows the column table and the column-level lineage graph.
#[test]
fn docs_site_renders_in_headless_chromium() {
    let Some(chromium) = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        panic!("Chromium is needed for this test (scripts/test.sh installs it)");
    };
    let (_tmp, dir) = copy_project("lineage");
    ok(&dir, &["build"]);
    ok(&dir, &["docs"]);
    let page = dir.join("target/docs/index.html");
    let url = format!(
        "file://{}#node=model.lineage.customer_orders&col=total",
        page.display()
    );
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.path().display()),
            "--virtual-time-budget=5000",
            "--dump-dom",
            &url,
        ])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dom.contains("<h1>customer_orders</h1>"), "{dom}");
    assert!(dom.contains("id=\"columns\""), "{dom}");
    assert!(dom.contains("id=\"column-graph\""), "{dom}");
    // The selected column's graph reaches the seed column through the ephemeral model.
    for col in [
        "customer_orders.total",
        "stg_orders.amount",
        "orders.amount",
    ] {
        assert!(dom.contains(&format!("data-col=\"{col}\"")), "{col}: {dom}");
    }
}
