//! The load API: append, overwrite, merge-upsert, schema evolution and refusals.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use socle_warehouse::{WarehouseError, WriteMode};

use crate::common::*;

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let schema = Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

fn orders(ids: &[i64], amounts: &[f64]) -> RecordBatch {
    batch(vec![
        ("order_id", Arc::new(Int64Array::from(ids.to_vec()))),
        ("amount", Arc::new(Float64Array::from(amounts.to_vec()))),
    ])
}

fn merge() -> WriteMode {
    WriteMode::Merge {
        keys: vec!["order_id".into()],
    }
}

#[tokio::test]
async fn merge_twice_gives_the_same_rows() {
    let t = warehouse().await;
    let b = orders(&[1, 2, 3], &[10.0, 20.0, 30.0]);
    let r1 =
        t.wh.load_batches("raw.orders", vec![b.clone()], merge())
            .await
            .unwrap();
    assert_eq!((r1.rows_inserted, r1.version), (3, 0));
    let r2 =
        t.wh.load_batches("raw.orders", vec![b], merge())
            .await
            .unwrap();
    assert_eq!((r2.rows_in, r2.rows_inserted, r2.rows_updated), (3, 0, 3));
    assert_eq!(
        query(&t.wh, "SELECT * FROM raw.orders").await,
        vec!["1|10.0", "2|20.0", "3|30.0"]
    );
    // Upsert: one update, one insert.
    let r3 =
        t.wh.load_batches("raw.orders", vec![orders(&[2, 4], &[25.0, 40.0])], merge())
            .await
            .unwrap();
    assert_eq!((r3.rows_inserted, r3.rows_updated), (1, 1));
    assert_eq!(
        query(&t.wh, "SELECT * FROM raw.orders").await,
        vec!["1|10.0", "2|25.0", "3|30.0", "4|40.0"]
    );
}

#[tokio::test]
async fn a_new_column_widens_the_table() {
    let t = warehouse().await;
    t.wh.load_batches("orders", vec![orders(&[1, 2], &[10.0, 20.0])], merge())
        .await
        .unwrap();
    let wider = batch(vec![
        ("order_id", Arc::new(Int64Array::from(vec![2, 3]))),
        ("amount", Arc::new(Float64Array::from(vec![21.0, 30.0]))),
        ("channel", Arc::new(StringArray::from(vec!["web", "shop"]))),
    ]);
    let r =
        t.wh.load_batches("orders", vec![wider], merge())
            .await
            .unwrap();
    assert_eq!(r.new_columns, vec!["channel"]);
    assert_eq!(
        query(&t.wh, "SELECT * FROM orders").await,
        vec!["1|10.0|NULL", "2|21.0|web", "3|30.0|shop"]
    );
    // Append with yet another column, and without one of the existing ones.
    let other = batch(vec![
        ("order_id", Arc::new(Int64Array::from(vec![9]))),
        ("coupon", Arc::new(StringArray::from(vec!["XMAS"]))),
    ]);
    let r =
        t.wh.load_batches("orders", vec![other], WriteMode::Append)
            .await
            .unwrap();
    assert_eq!(r.new_columns, vec!["coupon"]);
    assert_eq!(
        query(
            &t.wh,
            "SELECT order_id, amount, coupon FROM orders WHERE order_id = 9"
        )
        .await,
        vec!["9|NULL|XMAS"]
    );
}

#[tokio::test]
async fn safe_widening_is_cast() {
    let t = warehouse().await;
    t.wh.load_batches("w", vec![orders(&[1], &[1.0])], WriteMode::Append)
        .await
        .unwrap();
    let narrow = batch(vec![(
        "order_id",
        Arc::new(Int32Array::from(vec![2])) as ArrayRef,
    )]);
    t.wh.load_batches("w", vec![narrow], WriteMode::Append)
        .await
        .unwrap();
    let d = t.wh.describe("w").await.unwrap();
    assert_eq!(d.columns[0].data_type, DataType::Int64.to_string());
    assert_eq!(query(&t.wh, "SELECT order_id FROM w").await, vec!["1", "2"]);
}

#[tokio::test]
async fn failing_batches_leave_the_previous_version() {
    let t = warehouse().await;
    t.wh.load_batches("o", vec![orders(&[1, 2], &[10.0, 20.0])], merge())
        .await
        .unwrap();
    // A type that does not fit.
    let wrong = batch(vec![
        ("order_id", Arc::new(Int64Array::from(vec![3]))),
        ("amount", Arc::new(StringArray::from(vec!["thirty"]))),
    ]);
    let err =
        t.wh.load_batches("o", vec![wrong], merge())
            .await
            .unwrap_err();
    assert!(matches!(err, WarehouseError::Load { .. }), "{err}");
    assert!(err.to_string().contains("`amount`"), "{err}");
    // Duplicate keys inside the batch.
    let err =
        t.wh.load_batches("o", vec![orders(&[5, 5, 6], &[1.0, 2.0, 3.0])], merge())
            .await
            .unwrap_err();
    assert!(err.to_string().contains("more than once"), "{err}");
    // NULL keys.
    let nulls = batch(vec![(
        "order_id",
        Arc::new(Int64Array::from(vec![Some(7), None])) as ArrayRef,
    )]);
    let err =
        t.wh.load_batches("o", vec![nulls], merge())
            .await
            .unwrap_err();
    assert!(err.to_string().contains("NULL in the key"), "{err}");
    // A key column missing from the data.
    let err =
        t.wh.load_batches(
            "o",
            vec![orders(&[8], &[1.0])],
            WriteMode::Merge {
                keys: vec!["id".into()],
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("key column `id`"), "{err}");
    assert_eq!(version(&t.wh, "o").await, Some(0));
    assert_eq!(
        query(&t.wh, "SELECT * FROM o").await,
        vec!["1|10.0", "2|20.0"]
    );
}

#[tokio::test]
async fn overwrite_replaces_rows_and_schema() {
    let t = warehouse().await;
    t.wh.load_batches("x", vec![orders(&[1, 2], &[1.0, 2.0])], WriteMode::Append)
        .await
        .unwrap();
    let replacement = batch(vec![(
        "label",
        Arc::new(StringArray::from(vec!["only"])) as ArrayRef,
    )]);
    let r =
        t.wh.load_batches("x", vec![replacement], WriteMode::Overwrite)
            .await
            .unwrap();
    assert_eq!(r.version, 1);
    assert_eq!(query(&t.wh, "SELECT * FROM x").await, vec!["only"]);
    assert_eq!(
        query(&t.wh, "SELECT count(*) FROM x VERSION AS OF 0").await,
        vec!["2"]
    );
}

#[tokio::test]
async fn loading_into_a_view_is_refused() {
    let t = warehouse().await;
    exec(&t.wh, "CREATE VIEW v AS SELECT 1 AS order_id").await;
    let err =
        t.wh.load_batches("v", vec![orders(&[1], &[1.0])], WriteMode::Append)
            .await
            .unwrap_err();
    assert!(err.to_string().contains("view"), "{err}");
}
