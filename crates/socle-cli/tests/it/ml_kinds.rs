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
        "SELECT count(DISTINCT cluster_id) AS n FROM ml.groups GROUP BY id % 3 ORDER BY 1",
    );
    assert!(purity.iter().all(|r| r["n"] == 1), "{purity:?}");
    let centers = query(
        &dir,
        "SELECT cluster_id, size, x, y FROM ml.groups_centers ORDER BY x",
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

/// 400 rows: y = 3·x + the category's effect + small noise; some x are NULL.
const POSTS: &str = "CREATE TABLE main.posts AS
    SELECT value AS id,
           CASE WHEN value % 17 = 0 THEN NULL ELSE (value % 50) * 0.1 END AS x,
           CASE value % 3 WHEN 0 THEN 'music' WHEN 1 THEN 'news' ELSE 'games' END AS channel,
           3 * ((value % 50) * 0.1) + CASE value % 3 WHEN 0 THEN 10 WHEN 1 THEN 0 ELSE -5 END
               + ((value * 13) % 7 - 3) * 0.05 AS views,
           CASE WHEN (value % 50) * 0.1 > 2.5 THEN 'high' ELSE 'low' END AS level
    FROM range(400)";

#[test]
fn regression_and_classification_learn_numbers_categories_and_missing_values() {
    let (_tmp, dir) = project();
    ok(&dir, &["sql", POSTS]);
    write(
        &dir,
        "ml/views.yml",
        "kind: regression
input: { table: main.posts }
columns: { target: views, features: [x], categorical: [channel], id: id }
params: { learner: boosted, min_samples_leaf: 5 }
validation: { method: kfold, folds: 4, metric: rmse, grid: { learning_rate: [0.05, 0.3] } }
",
    );
    let report = json(&dir, &["ml", "train", "views", "--format", "json"]);
    let m = &report["metrics"];
    assert!(m["rmse"].as_f64().unwrap() < 1.0, "{report}");
    assert!(
        m["rmse.fold4"].is_f64() && m["grid.candidates"] == 2.0,
        "{report}"
    );
    let importance = query(
        &dir,
        "SELECT feature, importance FROM ml.views_importance ORDER BY feature",
    );
    assert_eq!(importance.len(), 2, "{importance:?}");
    assert!(
        importance
            .iter()
            .all(|r| r["importance"].as_f64().unwrap() > 0.05),
        "{importance:?}"
    );
    // New rows: an unseen category and a missing x still get a prediction.
    ok(
        &dir,
        &[
            "sql",
            "CREATE TABLE main.new_posts AS SELECT * FROM (VALUES (1, 2.0, 'music'), (2, NULL, 'news'), (3, 1.0, 'cooking')) AS t(id, x, channel)",
        ],
    );
    ok(
        &dir,
        &[
            "ml",
            "predict",
            "views",
            "--input",
            "main.new_posts",
            "--output",
            "ml.views_new",
        ],
    );
    let p = query(&dir, "SELECT id, prediction FROM ml.views_new ORDER BY id");
    assert_eq!(p.len(), 3);
    assert!(
        (p[0]["prediction"].as_f64().unwrap() - 16.0).abs() < 1.5,
        "{p:?}"
    );
    assert!(p.iter().all(|r| r["prediction"].is_f64()), "{p:?}");

    // A linear learner: categories become 0/1 columns; rows with a NULL are left out.
    write(
        &dir,
        "ml/views_lin.yml",
        "kind: regression\ninput: { table: main.posts }\ncolumns: { target: views, features: [x], categorical: [channel] }\nparams: { learner: ridge, alpha: 0.001 }\nvalidation: { method: holdout }\n",
    );
    let lin = json(&dir, &["ml", "train", "views_lin", "--format", "json"]);
    assert!(lin["metrics"]["rmse"].as_f64().unwrap() < 0.2, "{lin}");
    let features = query(
        &dir,
        "SELECT feature FROM ml.views_lin_importance ORDER BY feature",
    );
    assert_eq!(features.len(), 3, "{features:?}"); // x, channel=music, channel=news

    // Classification: the level follows x.
    write(
        &dir,
        "ml/level.yml",
        "kind: classification\ninput: { table: main.posts }\ncolumns: { target: level, features: [x] }\nvalidation: { method: kfold, folds: 3, metric: accuracy }\n",
    );
    let c = json(&dir, &["ml", "train", "level", "--format", "json"]);
    assert!(c["metrics"]["accuracy"].as_f64().unwrap() > 0.95, "{c}");
    ok(
        &dir,
        &[
            "ml",
            "predict",
            "level",
            "--input",
            "SELECT 4.0 AS x UNION ALL SELECT 0.5",
        ],
    );
    let p = query(
        &dir,
        "SELECT x, prediction, probability, probability_high + probability_low AS total FROM ml.level_predictions ORDER BY x",
    );
    assert_eq!(p[0]["prediction"], "low", "{p:?}");
    assert_eq!(p[1]["prediction"], "high", "{p:?}");
    assert!((p[0]["total"].as_f64().unwrap() - 1.0).abs() < 1e-9);
}

#[test]
fn bad_inputs_are_named_with_the_model_and_column() {
    let (_tmp, dir) = project();
    ok(&dir, &["sql", POSTS]);
    let train = |spec: &str| {
        write(&dir, "ml/m.yml", spec);
        let (okay, _, err) = run(&dir, &["ml", "train", "m"]);
        assert!(!okay, "{spec}");
        err
    };
    // Text where numbers are needed.
    let err = train(
        "kind: regression\ninput: { table: main.posts }\ncolumns: { target: channel, features: [x] }\n",
    );
    assert!(
        err.contains("model `m`")
            && err.contains("column `channel`")
            && err.contains("not numbers"),
        "{err}"
    );
    // A single class.
    let err = train(
        "kind: classification\ninput: { sql: \"SELECT x, 'a' AS k FROM main.posts\" }\ncolumns: { target: k, features: [x] }\n",
    );
    assert!(err.contains("column `k` has 1 class(es)"), "{err}");
    // An empty input.
    let err = train(
        "kind: regression\ninput: { sql: \"SELECT * FROM main.posts WHERE id < 0\" }\ncolumns: { target: views, features: [x] }\n",
    );
    assert!(err.contains("the input has no rows"), "{err}");
    // log(1 + y) of a value at or below -1.
    let err = train(
        "kind: regression\ninput: { sql: \"SELECT x, views - 100 AS v FROM main.posts\" }\ncolumns: { target: v, features: [x] }\nparams: { log_target: true }\n",
    );
    assert!(
        err.contains("`log_target`") && err.contains("column `v`"),
        "{err}"
    );
    // Infinite values.
    let err = train(
        "kind: clustering\ninput: { sql: \"SELECT CASE WHEN id = 3 THEN 1.0 / 0.0 ELSE x END AS x FROM main.posts\" }\ncolumns: { features: [x] }\nparams: { k: 2 }\n",
    );
    assert!(err.contains("column `x` has 1 infinite values"), "{err}");
    // A series too short to fit.
    let err = train(
        "kind: forecast\ninput: { sql: \"SELECT to_timestamp(0) AS ds, 1.0 AS y\" }\ncolumns: { time: ds, target: y }\n",
    );
    assert!(
        err.contains("model `m`") && err.contains("at least 2"),
        "{err}"
    );
    // A basket table with NULL items: they are skipped, counted as nothing.
    write(
        &dir,
        "ml/b.yml",
        "kind: association_rules\ninput: { sql: \"SELECT id % 10 AS b, CASE WHEN id % 4 = 0 THEN NULL ELSE channel END AS i FROM main.posts\" }\ncolumns: { basket: b, item: i }\nparams: { min_support: 0.5, min_confidence: 0.5 }\n",
    );
    let r = json(&dir, &["ml", "train", "b", "--format", "json"]);
    assert_eq!(r["metrics"]["baskets"], 10.0, "{r}");
}
