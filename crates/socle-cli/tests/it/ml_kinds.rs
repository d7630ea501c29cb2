//! Each model kind trained and applied through `socle ml` on small real warehouse tables
//! with planted structure: a forecast with trend and weekly seasonality, clusters, and
//! recommendations for two groups of users (a new user folded in).

use serde_json::Value;

use crate::common::*;

fn json(dir: &std::path::Path, args: &[&str]) -> Value {
    let out = ok(dir, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn a_forecast_follows_trend_and_season_with_honest_intervals() {
    let (_tmp, dir) = project();
    // 140 days: a trend, a weekly pattern and small deterministic noise.
    ok(
        &dir,
        &[
            "sql",
            "CREATE TABLE main.sales AS
             SELECT to_timestamp(1704067200 + value * 86400) AS day,
                    100 + 0.5 * value + 10 * sin(2 * pi() * (value % 7) / 7)
                        + ((value * 37) % 11 - 5) * 0.3 AS amount
             FROM range(140)",
        ],
    );
    write(
        &dir,
        "ml/sales.yml",
        "kind: forecast
input: { table: main.sales }
columns: { time: day, target: amount }
params: { horizon: 14, shocks: [{ name: promo, start: 2024-02-01, end: 2024-02-02 }] }
validation: { method: holdout, test_fraction: 0.2 }
",
    );
    // Evaluating measures the same way and keeps nothing.
    let evaluated = json(&dir, &["ml", "evaluate", "sales", "--format", "json"]);
    assert!(
        evaluated["metrics"]["mape"].as_f64().unwrap() < 0.03,
        "{evaluated}"
    );
    assert_eq!(
        json(&dir, &["ml", "versions", "sales", "--format", "json"]),
        serde_json::json!([])
    );
    let report = json(&dir, &["ml", "train", "sales", "--format", "json"]);
    assert_eq!(report["metrics"]["mape"], evaluated["metrics"]["mape"]);
    let m = &report["metrics"];
    assert!(m["mape"].as_f64().unwrap() < 0.03, "{report}");
    let coverage = m["coverage"].as_f64().unwrap();
    assert!((0.6..=1.0).contains(&coverage), "{report}");
    let rows = query(
        &dir,
        "SELECT count(*) AS n, sum(CASE WHEN is_forecast THEN 1 ELSE 0 END) AS ahead,
                sum(CASE WHEN yhat_lower <= yhat AND yhat <= yhat_upper THEN 1 ELSE 0 END) AS ordered,
                max(CASE WHEN is_forecast THEN y END) AS future_y
         FROM ml.sales",
    );
    assert_eq!(rows[0]["n"], 154, "{rows:?}");
    assert_eq!(rows[0]["ahead"], 14);
    assert_eq!(rows[0]["ordered"], 154);
    assert!(rows[0]["future_y"].is_null());
    // The weekly component is there and the forecast keeps rising with the trend.
    let avg = |filter: &str| {
        query(
            &dir,
            &format!("SELECT avg(yhat) AS a FROM ml.sales WHERE {filter}"),
        )[0]["a"]
            .as_f64()
            .unwrap()
    };
    let (future, past) = (avg("is_forecast"), avg("NOT is_forecast"));
    assert!(future > past + 20.0, "{future} {past}");
    let weekly = query(
        &dir,
        "SELECT max(weekly) - min(weekly) AS amp FROM ml.sales",
    );
    assert!(weekly[0]["amp"].as_f64().unwrap() > 10.0, "{weekly:?}");
    // Two trainings give the same forecast (seeded intervals).
    json(&dir, &["ml", "train", "sales", "--format", "json"]);
    let again = query(&dir, "SELECT sum(yhat_upper) AS s FROM ml.sales");
    let first = json(
        &dir,
        &[
            "ml",
            "predict",
            "sales",
            "--version",
            "1",
            "--input",
            "SELECT day FROM main.sales WHERE day > to_timestamp(1714000000)",
            "--format",
            "json",
        ],
    );
    assert_eq!(first["version"], 1);
    let p = query(&dir, "SELECT count(*) AS n FROM ml.sales_predictions");
    assert!(p[0]["n"].as_i64().unwrap() > 0);
    let twice = query(&dir, "SELECT sum(yhat_upper) AS s FROM ml.sales");
    assert_eq!(again, twice);
}

#[test]
fn clusters_are_found_and_k_is_chosen() {
    let (_tmp, dir) = project();
    ok(
        &dir,
        &[
            "sql",
            "CREATE TABLE main.points AS
             SELECT value AS id,
                    (value % 3) * 10 + ((value * 7) % 5) * 0.1 AS x,
                    CASE WHEN value % 3 = 1 THEN 10 ELSE 0 END + ((value * 11) % 5) * 0.1 AS y
             FROM range(90)",
        ],
    );
    write(
        &dir,
        "ml/groups.yml",
        "kind: clustering\ninput: { table: main.points }\ncolumns: { features: [x, y] }\nparams: { k_min: 2, k_max: 5 }\n",
    );
    let report = json(&dir, &["ml", "train", "groups", "--format", "json"]);
    assert_eq!(report["metrics"]["k"], 3.0, "{report}");
    assert!(
        report["metrics"]["silhouette"].as_f64().unwrap() > 0.9,
        "{report}"
    );
    // Each planted group is one cluster.
    let purity = query(
        &dir,
        "SELECT count(DISTINCT cluster) AS n FROM ml.groups GROUP BY id % 3 ORDER BY 1",
    );
    assert!(purity.iter().all(|r| r["n"] == 1), "{purity:?}");
    let centers = query(
        &dir,
        "SELECT cluster, size, x, y FROM ml.groups_centers ORDER BY x",
    );
    assert_eq!(centers.len(), 3);
    assert!(
        (centers[2]["x"].as_f64().unwrap() - 20.2).abs() < 0.5,
        "{centers:?}"
    );
    assert_eq!(centers[0]["size"], 30);
}

#[test]
fn recommendations_come_from_the_users_group_and_new_users_are_folded_in() {
    let (_tmp, dir) = project();
    // Users 0–19 like items 0–9, users 20–39 items 10–19; each user a different subset.
    ok(
        &dir,
        &[
            "sql",
            "CREATE TABLE main.likes AS
             SELECT u.value AS user_id,
                    CASE WHEN u.value < 20 THEN i.value ELSE i.value + 10 END AS item_id,
                    1.0 AS weight
             FROM range(40) u CROSS JOIN range(10) i
             WHERE (u.value + i.value) % 3 <> 0",
        ],
    );
    for method in ["knn", "als"] {
        write(
            &dir,
            &format!("ml/{method}.yml"),
            &format!(
                "kind: recommend\ninput: {{ table: main.likes }}\ncolumns: {{ user: user_id, item: item_id, weight: weight }}\nparams: {{ method: {method}, n: 3, factors: 2, iterations: 15 }}\n"
            ),
        );
        let report = json(&dir, &["ml", "train", method, "--format", "json"]);
        assert_eq!(report["metrics"]["users"], 40.0, "{report}");
        let wrong = query(
            &dir,
            &format!(
                "SELECT count(*) AS n FROM ml.{method}
                 WHERE (\"user\" < 20 AND item >= 10) OR (\"user\" >= 20 AND item < 10)"
            ),
        );
        assert_eq!(wrong[0]["n"], 0, "{method}: recommendations across groups");
        let liked = query(
            &dir,
            &format!(
                "SELECT count(*) AS n FROM ml.{method} r JOIN main.likes l
                 ON r.\"user\" = l.user_id AND r.item = l.item_id"
            ),
        );
        assert_eq!(liked[0]["n"], 0, "{method}: an item the user has");
        // A new user who likes items 11 and 12 gets items of the second group.
        ok(
            &dir,
            &[
                "sql",
                "CREATE OR REPLACE TABLE main.newcomer AS SELECT * FROM (VALUES (1000, 11, 1.0), (1000, 12, 1.0)) AS t(user_id, item_id, weight)",
            ],
        );
        let p = json(
            &dir,
            &[
                "ml",
                "predict",
                method,
                "--input",
                "main.newcomer",
                "--format",
                "json",
            ],
        );
        let table = p["outputs"][0]["table"].as_str().unwrap().to_string();
        let got = query(&dir, &format!("SELECT item FROM {table} ORDER BY rank"));
        assert_eq!(got.len(), 3, "{method}: {got:?}");
        assert!(
            got.iter().all(|r| {
                let item = r["item"].as_i64().unwrap();
                (10..20).contains(&item) && item != 11 && item != 12
            }),
            "{method}: {got:?}"
        );
    }
}
