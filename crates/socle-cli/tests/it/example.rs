//! The README's main job: the shop example, end to end, on a copy of the project.

use crate::common::*;

#[test]
fn shop_main_job_runs_twice_without_duplicates() {
    let (tmp, shop) = shop();
    // Run from elsewhere with --project, as the README does: the daily pipeline.
    let first = ok(
        tmp.path(),
        &["--project", "shop", "run", "daily", "--date", "2024-06-30"],
    );
    // The exports (CSV, Excel, JSON, JSON Lines) are extracted first, then built on.
    assert!(
        first.contains("extract succeeded")
            && first.contains("7 streams, 4525 rows loaded, 0 rejected"),
        "{first}"
    );
    assert!(
        first.contains("build succeeded")
            && first.contains("PASS=15 WARN=0 ERROR=0 SKIP=0 TOTAL=15"),
        "{first}"
    );
    assert!(
        first.contains("Run daily.20240630T060000.1 succeeded"),
        "{first}"
    );
    let export = std::fs::read_to_string(shop.join("target/exports/report_20240630.csv")).unwrap();
    assert!(
        export.starts_with(
            "month,orders,revenue,store_revenue,store_forecast,forecast_days\n2024-01,"
        ),
        "{export}"
    );
    // The month ahead: the store's forecast (from ml.revenue_forecast), close to the
    // store's last months (about 1,300 to 1,700 a day).
    let ahead = export
        .lines()
        .find(|l| l.starts_with("2025-01,"))
        .unwrap_or_else(|| panic!("no forecast month: {export}"));
    let cells: Vec<&str> = ahead.split(',').collect();
    assert_eq!(
        (cells[1], cells[2], cells[3], cells[5]),
        ("", "", "", "30"),
        "{ahead}"
    );
    let forecast: f64 = cells[4].parse().unwrap();
    assert!((30_000.0..60_000.0).contains(&forecast), "{ahead}");
    let report = |s: &str| {
        s.lines()
            .filter(|l| l.starts_with("| 2024-"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let job = shop.join("jobs/report.sql");
    let before = ok(
        tmp.path(),
        &["--project", "shop", "sql", "-f", job.to_str().unwrap()],
    );
    assert_eq!(report(&before).len(), 12, "{before}");
    // The whole pipeline again (a manual run of the same date): nothing is duplicated.
    let second = ok(
        tmp.path(),
        &["--project", "shop", "run", "daily", "--date", "2024-06-30"],
    );
    assert!(second.contains("succeeded"), "{second}");
    let after = ok(
        tmp.path(),
        &["--project", "shop", "sql", "-f", job.to_str().unwrap()],
    );
    assert_eq!(report(&before), report(&after));
    let q = |sql: &str| ok(&shop, &["sql", sql, "--format", "csv"]);
    assert_eq!(
        q("SELECT count(*) AS n FROM marts.daily_revenue"),
        "n\n366\n"
    );
    // Raw tables loaded from each format, with their types and socle's metadata columns.
    assert_eq!(
        q(
            "SELECT count(*) AS n, count(DISTINCT order_id) AS ids, arrow_typeof(min(ordered_at)) AS t \
           FROM raw.shop_exports__orders"
        ),
        "n,ids,t\n600,600,\"Timestamp(µs, \"\"UTC\"\")\"\n"
    );
    assert_eq!(
        q(
            "SELECT count(*) AS n, min(signup_date) AS first, arrow_typeof(min(signup_date)) AS t, \
           count(email) AS emails FROM raw.shop_exports__customers"
        ),
        "n,first,t,emails\n120,2023-01-08,Date32,115\n"
    );
    assert_eq!(
        q("SELECT count(*) AS n, max(unit_price) AS top FROM raw.shop_exports__products"),
        "n,top\n12,101.02\n"
    );
    assert_eq!(
        q(
            "SELECT count(*) AS n, count(comment) AS texts, min(_file) AS f FROM raw.shop_exports__comments"
        ),
        "n,texts,f\n197,177,exports/comments.jsonl\n"
    );
    let raw = shop.join(".socle/lake/raw/shop_exports/orders/dt=2024-06-30");
    assert!(
        std::fs::read_dir(&raw).unwrap().any(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "parquet")),
        "no raw Parquet part in {}",
        raw.display()
    );
    // Validation flags some of the deliberately broken contact details.
    let bad = q("SELECT count(*) AS n FROM staging.stg_customers WHERE NOT email_is_valid");
    assert_ne!(bad, "n\n0\n", "{bad}");
    let check = ok(&shop, &["check"]);
    assert!(check.contains("All checks passed"), "{check}");
    assert!(check.contains("3 valid: basket_rules (association_rules), revenue_forecast (forecast), roaster_downtime (regression)"), "{check}");

    // The models found what the data generator planted.
    // The forecast: 30 days ahead; the outage and the sale as one-off effects of their sign.
    let forecast = q(
        "SELECT sum(CASE WHEN is_forecast THEN 1 ELSE 0 END) AS ahead, \
                min(roaster_outage) < -500 AS outage, max(summer_sale) > 500 AS sale \
         FROM ml.revenue_forecast",
    );
    assert_eq!(forecast, "ahead,outage,sale\n30,true,true\n");
    // ... and the outlook mart the report can use: 30 days after the history, with bounds.
    let outlook = q(
        "SELECT count(*) AS n, min(day) AS first, bool_and(revenue_low <= revenue AND revenue <= revenue_high) AS ordered \
         FROM marts.revenue_outlook",
    );
    assert_eq!(outlook, "n,first,ordered\n30,2025-01-01,true\n");
    // Rules: coffee carts get equipment, tea carts bakery, above chance.
    let rules = q(
        "SELECT array_to_string(antecedents, ',') AS a, array_to_string(consequents, ',') AS c, \
                lift > 1.3 AND confidence > 0.7 AS strong \
         FROM ml.basket_rules_rules \
         WHERE (antecedents = ['Coffee'] AND consequents = ['Equipment']) \
            OR (antecedents = ['Tea'] AND consequents = ['Bakery']) ORDER BY a",
    );
    assert_eq!(
        rules,
        "a,c,strong\nCoffee,Equipment,true\nTea,Bakery,true\n"
    );
    // Downtime: the temperature explains it, and hot days are predicted to cost more.
    let top =
        q("SELECT feature FROM ml.roaster_downtime_importance ORDER BY importance DESC LIMIT 1");
    assert_eq!(top, "feature\ntemperature_c\n");
    let hot = q(
        "SELECT avg(CASE WHEN temperature_c > 30 THEN prediction END) \
                > avg(CASE WHEN temperature_c < 20 THEN prediction END) + 20 AS hotter \
         FROM ml.roaster_downtime_predictions",
    );
    assert_eq!(hot, "hotter\ntrue\n");
    // The second run retrained: each model has two versions.
    let versions = ok(
        &shop,
        &["ml", "versions", "roaster_downtime", "--format", "json"],
    );
    let versions: serde_json::Value = serde_json::from_str(&versions).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 2, "{versions}");
    // The docs site traces the word-frequency mart back through UNNEST(SPLIT(...)).
    ok(&shop, &["docs"]);
    let docs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(shop.join("target/docs/docs.json")).unwrap())
            .unwrap();
    let words = docs["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "model.shop.comment_words")
        .unwrap();
    assert_eq!(
        words["columns"][0]["lineage"],
        serde_json::json!({"transform": "derived", "sources": [
            {"node": "source.shop.shop_exports.comments", "relation": "raw.shop_exports__comments", "column": "comment"}
        ]})
    );
}
