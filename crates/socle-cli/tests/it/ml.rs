//! `socle ml` on real warehouse tables: specs read strictly, training leaves a version
//! (numbers unique under concurrent trainings), output tables, predictions with the newest
//! or a chosen version, failures that leave no usable version, and the `ml` task kind.

use serde_json::Value;

use crate::common::*;

/// Baskets where bread and butter go together.
const LINES: &str = "CREATE TABLE main.lines AS SELECT * FROM (VALUES
    (1, 'bread'), (1, 'butter'), (1, 'milk'),
    (2, 'bread'), (2, 'butter'),
    (3, 'bread'), (3, 'butter'), (3, 'jam'),
    (4, 'milk'), (4, 'jam'),
    (5, 'bread'), (5, 'butter'), (5, 'milk'),
    (6, 'bread')
) AS t(basket, item)";

const RULES: &str = "kind: association_rules
description: What goes with what.
input: { table: main.lines }
columns: { basket: basket, item: item }
params: { min_support: 0.3, min_confidence: 0.6 }
";

fn json(dir: &std::path::Path, args: &[&str]) -> Value {
    let out = ok(dir, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn rules_train_predict_and_keep_versions() {
    let (_tmp, dir) = project();
    ok(&dir, &["sql", LINES]);
    write(&dir, "ml/basket.yml", RULES);
    let models = json(&dir, &["ml", "models", "--format", "json"]);
    assert_eq!(models[0]["name"], "basket");
    assert_eq!(models[0]["kind"], "association_rules");
    assert!(models[0]["latest"].is_null());

    let report = json(&dir, &["ml", "train", "basket", "--format", "json"]);
    assert_eq!(report["version"], 1);
    assert_eq!(report["rows"], 14);
    assert_eq!(report["metrics"]["baskets"], 6.0);
    // bread → butter: support 4/6, confidence 4/5, lift (4/5)/(4/6) = 1.2.
    let rules = query(
        &dir,
        "SELECT antecedents, consequents, support, confidence, lift
         FROM ml.basket_rules ORDER BY confidence DESC, lift DESC",
    );
    let bread_butter = rules
        .iter()
        .find(|r| {
            r["antecedents"] == serde_json::json!(["bread"])
                && r["consequents"] == serde_json::json!(["butter"])
        })
        .unwrap_or_else(|| panic!("{rules:?}"));
    assert!((bread_butter["confidence"].as_f64().unwrap() - 0.8).abs() < 1e-12);
    assert!((bread_butter["lift"].as_f64().unwrap() - 1.2).abs() < 1e-12);
    let itemsets = query(&dir, "SELECT count(*) AS n FROM ml.basket_itemsets");
    assert!(itemsets[0]["n"].as_i64().unwrap() >= 3, "{itemsets:?}");

    // Predicting: a basket with bread gets butter suggested.
    ok(
        &dir,
        &[
            "sql",
            "CREATE TABLE main.carts AS SELECT * FROM (VALUES (10, 'bread'), (11, 'milk')) AS t(basket, item)",
        ],
    );
    let p = json(
        &dir,
        &[
            "ml",
            "predict",
            "basket",
            "--input",
            "main.carts",
            "--format",
            "json",
        ],
    );
    assert_eq!(p["version"], 1);
    let table = p["outputs"][0]["table"].as_str().unwrap().to_string();
    assert_eq!(table, "ml.basket_predictions");
    let suggested = query(
        &dir,
        &format!("SELECT basket, item, rank FROM {table} ORDER BY basket, rank"),
    );
    assert!(
        suggested
            .iter()
            .any(|r| r["basket"] == "10" && r["item"] == "butter" && r["rank"] == 1),
        "{suggested:?}"
    );

    // The version's files are in the lake, with what it read.
    let info: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(".socle/lake/models/basket/1/version.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(info["kind"], "association_rules");
    assert_eq!(info["inputs"][0]["table"], "main.lines");
    assert!(info["inputs"][0]["version"].is_i64(), "{info}");
    assert_eq!(info["spec_hash"].as_str().unwrap().len(), 64);
    let model: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(".socle/lake/models/basket/1/model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(model["kind"], "association_rules");
    let fitted: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(".socle/lake/models/basket/1/fitted.json")).unwrap(),
    )
    .unwrap();
    assert!(!fitted["rules"].as_array().unwrap().is_empty(), "{fitted}");

    // A second training is version 2; predict can still use version 1.
    let second = json(&dir, &["ml", "train", "basket", "--format", "json"]);
    assert_eq!(second["version"], 2);
    let p = json(
        &dir,
        &[
            "ml",
            "predict",
            "basket",
            "--version",
            "1",
            "--format",
            "json",
        ],
    );
    assert_eq!(p["version"], 1);
    let versions = json(&dir, &["ml", "versions", "basket", "--format", "json"]);
    let numbers: Vec<i64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![2, 1]);
    assert!(versions[0]["metrics"]["rules"].as_f64().unwrap() > 0.0);
}

#[test]
fn specs_are_read_strictly() {
    let (_tmp, dir) = project();
    write(
        &dir,
        "ml/basket.yml",
        "kind: association_rules\ninput: { table: main.lines }\ncolumns: { basket: b, item: i }\nparams: { min_suport: 0.3 }\n",
    );
    let (okay, _, err) = run(&dir, &["ml", "train", "basket"]);
    assert!(!okay);
    assert!(err.contains("ml/basket.yml:4:"), "{err}");
    assert!(err.contains("did you mean `min_support`?"), "{err}");
    write(
        &dir,
        "ml/basket.yml",
        "kind: association_rule\ninput: { table: main.lines }\n",
    );
    let (_, _, err) = run(&dir, &["ml", "train", "basket"]);
    assert!(
        err.contains("ml/basket.yml:1:") && err.contains("did you mean `association_rules`?"),
        "{err}"
    );
    let (_, _, err) = run(&dir, &["ml", "train", "baskt"]);
    assert!(err.contains("did you mean `basket`?"), "{err}");
}

#[test]
fn a_failed_training_leaves_no_version_and_the_outputs_as_they_were() {
    let (_tmp, dir) = project();
    ok(&dir, &["sql", LINES]);
    write(&dir, "ml/basket.yml", RULES);
    ok(&dir, &["ml", "train", "basket"]);
    let before = query(&dir, "SELECT count(*) AS n FROM ml.basket_rules");
    // A column that is not there: the data's fault, said with the column's name.
    write(
        &dir,
        "ml/basket.yml",
        &RULES.replace("item: item", "item: product"),
    );
    let (okay, _, err) = run(&dir, &["ml", "train", "basket"]);
    assert!(!okay);
    assert!(
        err.contains("no column `product`") && err.contains("the input's columns: basket, item"),
        "{err}"
    );
    let versions = json(&dir, &["ml", "versions", "basket", "--format", "json"]);
    let states: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["state"].as_str().unwrap())
        .collect();
    // The failed training is recorded with why; it is never used.
    assert_eq!(states, vec!["failed", "ready"], "{versions}");
    assert!(versions[0]["error"].as_str().unwrap().contains("`product`"));
    assert_eq!(
        query(&dir, "SELECT count(*) AS n FROM ml.basket_rules"),
        before
    );
    // Predict still uses version 1.
    write(&dir, "ml/basket.yml", RULES);
    let p = json(&dir, &["ml", "predict", "basket", "--format", "json"]);
    assert_eq!(p["version"], 1);
}

#[test]
fn two_trainings_at_once_get_two_versions() {
    let (_tmp, dir) = project();
    ok(&dir, &["sql", LINES]);
    write(&dir, "ml/basket.yml", RULES);
    let spawn = || {
        socle()
            .current_dir(&dir)
            .args(["ml", "train", "basket", "--format", "json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let mut numbers = Vec::new();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        numbers.push(v["version"].as_i64().unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, vec![1, 2]);
}

#[test]
fn anomalies_are_flagged_per_group_in_time_order() {
    let (_tmp, dir) = project();
    // Two channels; channel b has one spike on day 9. Rows are inserted out of order.
    let mut rows = Vec::new();
    for day in (1..=12).rev() {
        let a = 100 + (day % 3);
        let b = if day == 9 { 900 } else { 50 + (day % 2) };
        rows.push(format!("('a', DATE '2024-01-{day:02}', {a})"));
        rows.push(format!("('b', DATE '2024-01-{day:02}', {b})"));
    }
    ok(
        &dir,
        &[
            "sql",
            &format!(
                "CREATE TABLE main.views AS SELECT * FROM (VALUES {}) AS t(channel, day, views)",
                rows.join(", ")
            ),
        ],
    );
    write(
        &dir,
        "ml/spikes.yml",
        "kind: anomaly\ninput: { table: main.views }\ncolumns: { value: views, group: channel, time: day }\nparams: { rule: zscore, window: 5, threshold: 3 }\n",
    );
    let report = json(&dir, &["ml", "train", "spikes", "--format", "json"]);
    assert_eq!(report["metrics"]["flagged"], 1.0, "{report}");
    let flagged = query(
        &dir,
        "SELECT channel, CAST(day AS VARCHAR) AS day, anomaly_rule FROM ml.spikes WHERE is_anomaly",
    );
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!(flagged[0]["channel"], "b");
    assert_eq!(flagged[0]["day"], "2024-01-09");
    assert_eq!(flagged[0]["anomaly_rule"], "zscore");
    // Every input row is in the output, with its columns.
    let n = query(
        &dir,
        "SELECT count(*) AS n, count(anomaly_score) AS scored FROM ml.spikes",
    );
    assert_eq!(n[0]["n"], 24);
    // A parameter of another rule is refused where it is written.
    write(
        &dir,
        "ml/spikes.yml",
        "kind: anomaly\ninput: { table: main.views }\ncolumns: { value: views }\nparams: { rule: iqr, window: 5 }\n",
    );
    let (okay, _, err) = run(&dir, &["ml", "train", "spikes"]);
    assert!(!okay);
    assert!(
        err.contains("ml/spikes.yml:4:") && err.contains("`window` does not apply to rule `iqr`"),
        "{err}"
    );
}

#[test]
fn a_pipeline_retrains_and_predicts_with_the_ml_task() {
    let (_tmp, dir) = project();
    ok(&dir, &["sql", LINES]);
    write(&dir, "ml/basket.yml", RULES);
    write(
        &dir,
        "pipelines/daily.yml",
        "tasks:\n  rules:\n    kind: ml\n    model: basket\n    output: ml.basket_today\n",
    );
    let out = ok(&dir, &["run", "daily"]);
    assert!(out.contains("rules succeeded"), "{out}");
    let rows = query(&dir, "SELECT count(*) AS n FROM ml.basket_today");
    assert!(rows[0]["n"].as_i64().unwrap() > 0, "{rows:?}");
    let versions = json(&dir, &["ml", "versions", "basket", "--format", "json"]);
    assert_eq!(versions[0]["version"], 1);
    assert!(
        versions[0]["created_by"]
            .as_str()
            .unwrap()
            .starts_with("pipeline daily"),
        "{versions}"
    );
    // A task naming no model is refused when the pipeline loads, with its place.
    write(
        &dir,
        "pipelines/daily.yml",
        "tasks:\n  rules:\n    kind: ml\n    action: retrain\n    model: basket\n",
    );
    let (okay, _, err) = run(&dir, &["run", "daily"]);
    assert!(!okay);
    assert!(
        err.contains("pipelines/daily.yml:") && err.contains("`action: retrain`"),
        "{err}"
    );
}

#[test]
fn check_plans_each_models_input() {
    let (_tmp, dir) = project();
    ok(&dir, &["sql", LINES]);
    write(&dir, "ml/basket.yml", RULES);
    let out = ok(&dir, &["check"]);
    assert!(out.contains("1 valid: basket (association_rules)"), "{out}");
    assert!(
        out.contains("the columns of 1 of 1 models are there"),
        "{out}"
    );
    // A table not loaded yet is no failure: checked once it exists.
    write(
        &dir,
        "ml/later.yml",
        &RULES.replace("main.lines", "main.lines_next_week"),
    );
    let out = ok(&dir, &["check"]);
    assert!(
        out.contains("the columns of 1 of 2 models are there; not checked yet: `later` (main.lines_next_week does not exist yet)"),
        "{out}"
    );
    std::fs::remove_file(dir.join("ml/later.yml")).unwrap();
    write(
        &dir,
        "ml/basket.yml",
        &RULES.replace("item: item", "item: itme"),
    );
    let (okay, out, _) = run(&dir, &["check"]);
    assert!(!okay);
    assert!(
        out.contains(
            "ml/basket.yml: model `basket`: the input has no column `itme` (did you mean `item`?)"
        ),
        "{out}"
    );
    // An `ml` task naming a model with no file is found by check, at its task.
    write(&dir, "ml/basket.yml", RULES);
    write(
        &dir,
        "pipelines/daily.yml",
        "tasks:\n  rules:\n    kind: ml\n    model: baskit\n",
    );
    let (okay, out, _) = run(&dir, &["check"]);
    assert!(!okay);
    assert!(
        out.contains("pipelines/daily.yml:3:5: task `rules`: no model `baskit`")
            && out.contains("did you mean `basket`?"),
        "{out}"
    );
    std::fs::remove_file(dir.join("pipelines/daily.yml")).unwrap();
    // A spec that does not load is a failed check with its place.
    write(
        &dir,
        "ml/basket.yml",
        "kind: association_rules\ninput: { table: main.lines }\nbogus: 1\n",
    );
    let (okay, out, _) = run(&dir, &["check"]);
    assert!(!okay);
    assert!(out.contains("ml/basket.yml:3:1"), "{out}");
}

#[test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features socle-cli/failpoints"
)]
fn a_training_killed_at_any_point_registers_nothing_half_done() {
    let (_tmp, dir) = project();
    ok(&dir, &["sql", LINES]);
    write(&dir, "ml/basket.yml", RULES);
    ok(&dir, &["ml", "train", "basket"]);
    let itemsets = "SELECT itemsets, support FROM ml.basket_itemsets ORDER BY support, itemsets";
    let rules = "SELECT antecedents, consequents, confidence FROM ml.basket_rules ORDER BY confidence, antecedents";
    let v1 = (query(&dir, itemsets), query(&dir, rules));
    // New baskets: a training on them would change both tables (tea with jam).
    ok(
        &dir,
        &[
            "sql",
            "CREATE OR REPLACE TABLE main.lines AS SELECT * FROM main.lines UNION ALL SELECT * FROM (VALUES
                (7, 'tea'), (7, 'jam'), (8, 'tea'), (8, 'jam'), (9, 'tea'), (9, 'jam'),
                (10, 'tea'), (10, 'jam')) AS t(basket, item)",
        ],
    );
    for (n, failpoint, state) in [
        (2, "ml-after-claim", "training"),
        (3, "ml-between-outputs", "failed"),
        (4, "ml-after-outputs", "failed"),
        (5, "ml-before-ready", "failed"),
    ] {
        let out = socle()
            .current_dir(&dir)
            .env("SOCLE_FAILPOINT", failpoint)
            .args(["ml", "train", "basket"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(&format!("failpoint {failpoint}")),
            "not stopped at {failpoint}: {err}"
        );
        // Listing finds the writer gone: the tables go back to version 1's, the version
        // is failed with why. One stopped while fitting stays `training`, never used.
        let versions = json(&dir, &["ml", "versions", "basket", "--format", "json"]);
        assert_eq!(versions[0]["version"], n, "{versions}");
        assert_eq!(versions[0]["state"], state, "{failpoint}: {versions}");
        if state == "failed" {
            let why = versions[0]["error"].as_str().unwrap_or_default();
            assert!(why.contains("stopped while writing"), "{versions}");
        }
        assert_eq!(
            (query(&dir, itemsets), query(&dir, rules)),
            v1,
            "{failpoint}: the output tables are version 1's"
        );
        // The killed number is never used: predict takes the last ready version.
        let p = json(&dir, &["ml", "predict", "basket", "--format", "json"]);
        assert_eq!(p["version"], 1, "{failpoint}");
    }
    // Killed while writing, then trained again straight away: the training undoes the
    // dead one itself, then writes.
    let out = socle()
        .current_dir(&dir)
        .env("SOCLE_FAILPOINT", "ml-between-outputs")
        .args(["ml", "train", "basket"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let report = json(&dir, &["ml", "train", "basket", "--format", "json"]);
    assert_eq!(report["version"], 7);
    let versions = json(&dir, &["ml", "versions", "basket", "--format", "json"]);
    assert_eq!(versions[1]["version"], 6);
    assert_eq!(versions[1]["state"], "failed", "{versions}");
    let p = json(&dir, &["ml", "predict", "basket", "--format", "json"]);
    assert_eq!(p["version"], 7);
    let v7 = (query(&dir, itemsets), query(&dir, rules));
    assert_ne!(v7, v1, "the new baskets change the tables");
    assert!(
        format!("{v7:?}").contains("tea"),
        "the new rules are written: {v7:?}"
    );
}

#[test]
fn a_model_reads_a_dbt_model_by_name_and_check_plans_it() {
    let (_tmp, dir) = project();
    ok(&dir, &["sql", LINES]);
    write(
        &dir,
        "dbt_project.yml",
        "name: proj\nversion: '1.0.0'\nprofile: proj\n",
    );
    write(
        &dir,
        "models/clean_lines.sql",
        "SELECT basket, lower(item) AS item FROM main.lines",
    );
    let spec = RULES.replace("{ table: main.lines }", "{ model: clean_lines }");
    write(&dir, "ml/basket.yml", &spec);
    // Not built yet: no failure, checked once it exists.
    let out = ok(&dir, &["check"]);
    assert!(
        out.contains("not checked yet: `basket` (main.clean_lines does not exist yet)"),
        "{out}"
    );
    ok(&dir, &["build"]);
    let out = ok(&dir, &["check"]);
    assert!(
        out.contains("the columns of 1 of 1 models are there"),
        "{out}"
    );
    // A column the model does not have, then a model the dbt project does not have.
    write(
        &dir,
        "ml/basket.yml",
        &spec.replace("item: item", "item: items"),
    );
    let (okay, out, _) = run(&dir, &["check"]);
    assert!(!okay);
    assert!(
        out.contains("model `basket`: the input has no column `items` (did you mean `item`?)"),
        "{out}"
    );
    write(
        &dir,
        "ml/basket.yml",
        &spec.replace("clean_lines", "clean_line"),
    );
    let (okay, out, _) = run(&dir, &["check"]);
    assert!(!okay);
    assert!(
        out.contains(
            "model `basket`: `input.model`: the dbt project has no model `clean_line` (did you mean `clean_lines`?)"
        ),
        "{out}"
    );
    // Trained on the model's relation (a view), recorded with the table it reads.
    write(&dir, "ml/basket.yml", &spec);
    let report = json(&dir, &["ml", "train", "basket", "--format", "json"]);
    assert_eq!(report["version"], 1, "{report}");
    let rules = query(&dir, "SELECT count(*) AS n FROM ml.basket_rules");
    assert!(rules[0]["n"].as_i64().unwrap() > 0, "{rules:?}");
    let info =
        std::fs::read_to_string(dir.join(".socle/lake/models/basket/1/version.json")).unwrap();
    assert!(info.contains(r#""table": "main.lines""#), "{info}");
}
