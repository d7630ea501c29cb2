//! SQL statements: tables, views, schemas, inserts, drops, time travel and errors.

use crate::common::*;
use socle_warehouse::WarehouseError;

#[tokio::test]
async fn create_table_as_insert_and_query() {
    let t = warehouse().await;
    exec(&t.wh, "CREATE TABLE orders AS SELECT * FROM (VALUES (1, 'fr', 10.5), (2, 'de', 20.0)) AS v(id, country, amount)").await;
    exec(&t.wh, "INSERT INTO orders VALUES (3, 'fr', 5.0)").await;
    assert_eq!(
        query(
            &t.wh,
            "SELECT country, sum(amount) FROM orders GROUP BY country"
        )
        .await,
        vec!["de|20.0", "fr|15.5"]
    );
    // A NULL can be inserted although the first write had none: columns are nullable.
    exec(&t.wh, "INSERT INTO main.orders (id) VALUES (4)").await;
    assert_eq!(
        query(&t.wh, "SELECT id, country FROM orders WHERE id = 4").await,
        vec!["4|NULL"]
    );
    assert_eq!(version(&t.wh, "orders").await, Some(2));
}

#[tokio::test]
async fn tables_persist_and_views_are_saved() {
    let t = warehouse().await;
    exec(&t.wh, "CREATE SCHEMA marts").await;
    exec(
        &t.wh,
        "CREATE TABLE raw_events AS SELECT 1 AS id, 'click' AS kind UNION ALL SELECT 2, 'view'",
    )
    .await;
    exec(
        &t.wh,
        "CREATE VIEW marts.clicks AS SELECT id FROM raw_events WHERE kind = 'click'",
    )
    .await;
    // A new session over the same folder sees the table and the view.
    let again = open_at(t.dir.path()).await;
    assert_eq!(query(&again, "SELECT * FROM marts.clicks").await, vec!["1"]);
    let kinds: Vec<String> = again
        .list_relations(None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| format!("{}.{}:{}", r.schema, r.name, r.kind))
        .collect();
    assert_eq!(kinds, vec!["main.raw_events:table", "marts.clicks:view"]);
    // The view follows the table.
    exec(&again, "INSERT INTO raw_events VALUES (3, 'click')").await;
    assert_eq!(
        query(&again, "SELECT * FROM marts.clicks").await,
        vec!["1", "3"]
    );
    // information_schema lists them too.
    assert_eq!(
        query(&again, "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = 'socle' AND table_schema <> 'information_schema'").await,
        vec!["main|raw_events", "marts|clicks"]
    );
}

#[tokio::test]
async fn replace_drop_and_errors_on_existing() {
    let t = warehouse().await;
    exec(&t.wh, "CREATE TABLE t AS SELECT 1 AS a").await;
    let err =
        t.wh.execute("CREATE TABLE t AS SELECT 2 AS a")
            .await
            .unwrap_err();
    assert!(matches!(err, WarehouseError::Exists { .. }), "{err}");
    exec(&t.wh, "CREATE TABLE IF NOT EXISTS t AS SELECT 2 AS a").await;
    assert_eq!(query(&t.wh, "SELECT a FROM t").await, vec!["1"]);
    exec(&t.wh, "CREATE OR REPLACE TABLE t AS SELECT 'x' AS b").await;
    assert_eq!(query(&t.wh, "SELECT * FROM t").await, vec!["x"]);
    // The replaced version is still reachable by time travel.
    assert_eq!(
        query(&t.wh, "SELECT * FROM t VERSION AS OF 0").await,
        vec!["1"]
    );
    exec(&t.wh, "CREATE VIEW v AS SELECT b FROM t").await;
    let err = t.wh.execute("DROP TABLE v").await.unwrap_err().to_string();
    assert!(err.contains("use DROP VIEW"), "{err}");
    exec(&t.wh, "DROP VIEW v").await;
    exec(&t.wh, "DROP TABLE t").await;
    assert!(t.wh.list_relations(None).await.unwrap().is_empty());
    exec(&t.wh, "DROP TABLE IF EXISTS t").await;
    let err = t.wh.execute("DROP TABLE t").await.unwrap_err();
    assert!(matches!(err, WarehouseError::NotFound { .. }), "{err}");
    // A table can be created again under a dropped name.
    exec(&t.wh, "CREATE TABLE t AS SELECT 5 AS c").await;
    assert_eq!(query(&t.wh, "SELECT * FROM t").await, vec!["5"]);
}

#[tokio::test]
async fn create_table_with_columns_then_insert() {
    let t = warehouse().await;
    exec(
        &t.wh,
        "CREATE TABLE customers (id BIGINT NOT NULL, name VARCHAR, signup DATE)",
    )
    .await;
    assert_eq!(version(&t.wh, "customers").await, Some(0));
    let d = t.wh.describe("customers").await.unwrap();
    let cols: Vec<String> = d
        .columns
        .iter()
        .map(|c| format!("{}:{}:{}", c.name, c.data_type, c.nullable))
        .collect();
    assert_eq!(
        cols,
        vec!["id:Int64:false", "name:Utf8:true", "signup:Date32:true"]
    );
    exec(
        &t.wh,
        "INSERT INTO customers VALUES (1, 'Ana', DATE '2024-01-02'), (2, NULL, NULL)",
    )
    .await;
    assert_eq!(
        query(&t.wh, "SELECT count(*) FROM customers").await,
        vec!["2"]
    );
    // NOT NULL is enforced: the insert fails and the table keeps its version.
    let err =
        t.wh.execute("INSERT INTO customers VALUES (NULL, 'x', NULL)")
            .await;
    assert!(err.is_err());
    assert_eq!(version(&t.wh, "customers").await, Some(1));
}

#[tokio::test]
async fn time_travel_by_version_and_timestamp() {
    let t = warehouse().await;
    exec(
        &t.wh,
        "CREATE TABLE stock AS SELECT 'apple' AS item, 5 AS qty",
    )
    .await;
    let between = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    exec(&t.wh, "INSERT INTO stock VALUES ('pear', 7)").await;
    assert_eq!(query(&t.wh, "SELECT count(*) FROM stock").await, vec!["2"]);
    assert_eq!(
        query(&t.wh, "SELECT count(*) FROM stock VERSION AS OF 0").await,
        vec!["1"]
    );
    let ts = between.format("%Y-%m-%d %H:%M:%S%.3f").to_string();
    assert_eq!(
        query(
            &t.wh,
            &format!("SELECT item FROM stock TIMESTAMP AS OF '{ts}'")
        )
        .await,
        vec!["apple"]
    );
    // Both versions in one query.
    assert_eq!(
        query(&t.wh, "SELECT n.item FROM stock n LEFT JOIN stock VERSION AS OF 0 o ON n.item = o.item WHERE o.item IS NULL").await,
        vec!["pear"]
    );
    let err =
        t.wh.execute("SELECT * FROM stock VERSION AS OF 9")
            .await
            .unwrap_err()
            .to_string();
    assert!(err.contains("VERSION AS OF 9"), "{err}");
    let history = t.wh.history("stock", 10).await.unwrap();
    assert_eq!(
        history.iter().map(|h| h.version).collect::<Vec<_>>(),
        vec![1, 0]
    );
}

#[tokio::test]
async fn sql_errors_point_at_the_problem() {
    let t = warehouse().await;
    exec(&t.wh, "CREATE TABLE t AS SELECT 1 AS a").await;
    let WarehouseError::Sql(e) = t.wh.execute("SELECT a,\n  FROM t WHERE").await.unwrap_err()
    else {
        panic!()
    };
    assert!(e.position.is_some(), "{e}");
    let WarehouseError::Sql(e) = t.wh.execute("SELECT a, nope FROM t").await.unwrap_err() else {
        panic!()
    };
    assert_eq!(e.position, Some((1, 11)), "{e}");
    assert!(e.to_string().contains("^"), "{e}");
    let err =
        t.wh.execute("SELECT * FROM missing_table")
            .await
            .unwrap_err()
            .to_string();
    assert!(err.contains("missing_table"), "{err}");
    // A failed CREATE TABLE AS leaves nothing behind; a failed INSERT leaves the version.
    assert!(
        t.wh.execute("CREATE TABLE bad AS SELECT CAST('x' AS INT) AS v")
            .await
            .is_err()
    );
    assert!(
        t.wh.list_relations(None)
            .await
            .unwrap()
            .iter()
            .all(|r| r.name != "bad")
    );
    assert!(
        t.wh.execute("INSERT INTO t SELECT CAST('x' AS INT)")
            .await
            .is_err()
    );
    assert_eq!(version(&t.wh, "t").await, Some(0));
}

#[tokio::test]
async fn views_are_checked_when_created() {
    let t = warehouse().await;
    exec(&t.wh, "CREATE TABLE t AS SELECT 1 AS a").await;
    assert!(
        t.wh.execute("CREATE VIEW v AS SELECT nope FROM t")
            .await
            .is_err()
    );
    exec(&t.wh, "CREATE VIEW v AS SELECT a FROM t").await;
    exec(&t.wh, "CREATE VIEW w AS SELECT a FROM v").await;
    let err =
        t.wh.execute("CREATE OR REPLACE VIEW v AS SELECT a FROM w")
            .await
            .unwrap_err()
            .to_string();
    assert!(err.contains("depend on itself"), "{err}");
    assert_eq!(query(&t.wh, "SELECT * FROM w").await, vec!["1"]);
}

#[tokio::test]
async fn compatibility_functions_work_on_tables() {
    let t = warehouse().await;
    exec(&t.wh, "CREATE TABLE c AS SELECT * FROM (VALUES ('a@b.io', DATE '2024-01-05'), ('bad', DATE '2024-02-10')) AS v(email, d)").await;
    assert_eq!(
        query(
            &t.wh,
            "SELECT email, DATE_DIFF(d, DATE '2024-01-01', DAY), REGEXP_CONTAINS(email, '@') FROM c"
        )
        .await,
        vec!["a@b.io|4|true", "bad|40|false"]
    );
}

#[tokio::test]
async fn optimize_and_vacuum_keep_rows() {
    let t = warehouse().await;
    exec(&t.wh, "CREATE TABLE f AS SELECT 1 AS a").await;
    for i in 2..=5 {
        exec(&t.wh, &format!("INSERT INTO f VALUES ({i})")).await;
    }
    assert_eq!(t.wh.describe("f").await.unwrap().files, Some(5));
    let r = t.wh.optimize("f", None).await.unwrap();
    assert_eq!((r.files_removed, r.files_added), (5, 1));
    assert_eq!(t.wh.describe("f").await.unwrap().files, Some(1));
    assert_eq!(query(&t.wh, "SELECT sum(a) FROM f").await, vec!["15"]);
    let dry = t.wh.vacuum("f", 0, true).await.unwrap();
    assert_eq!(dry.files.len(), 5);
    let done = t.wh.vacuum("f", 0, false).await.unwrap();
    assert_eq!(done.files.len(), 5);
    assert_eq!(query(&t.wh, "SELECT sum(a) FROM f").await, vec!["15"]);
}
