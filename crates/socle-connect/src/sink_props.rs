//! Property and fuzz tests of JSON records into batches ([`flatten`], [`json_batch`]):
//! - flattening keeps every leaf of a record under the path of its keys joined by `__`
//!   (an empty object is a NULL leaf), adds nothing, and leaves no object;
//! - the batch of flattened records has one column per key and one row per record; with
//!   no declared types none is rejected (with `on_type_conflict: fail` it is that, or an
//!   error naming the policy); with declared types each record is in the batch or rejected
//!   once;
//! - any bytes read as JSON go through without a panic (fuzz).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{flatten, json_batch};
use crate::config::TypeConflict;
use crate::infer::Kind;

/// How long each fuzz target runs within `cargo test` (`BOLERO_RANDOM_TEST_TIME_MS`
/// overrides it).
const FUZZ_TIME: Duration = Duration::from_secs(2);

const KINDS: [Kind; 6] = [
    Kind::Bool,
    Kind::Int,
    Kind::Float,
    Kind::Date,
    Kind::Timestamp,
    Kind::String,
];

/// JSON values nested up to three levels. Keys are letters and digits, so that paths
/// joined by `__` cannot meet.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z0-9 ]{0,8}".prop_map(Value::String),
        "20[0-9]{2}-0[1-9]-[0-2][1-9]( 10:00:00)?".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z0-9]{1,3}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn record() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z0-9]{1,3}", json_value(), 0..5)
        .prop_map(|m| m.into_iter().collect())
}

/// The leaves of `m` with the path of keys that leads to each.
fn leaves(path: &[String], m: &Map<String, Value>, out: &mut Vec<(Vec<String>, Value)>) {
    for (k, v) in m {
        let mut p = path.to_vec();
        p.push(k.clone());
        match v {
            Value::Object(inner) if !inner.is_empty() => leaves(&p, inner, out),
            Value::Object(_) => out.push((p, Value::Null)),
            other => out.push((p, other.clone())),
        }
    }
}

fn flat(record: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    flatten("", record.clone(), &mut out);
    out
}

/// The rows of a batch and its rejects add up to the records, each rejected at most once.
fn check_batch(
    rows: &[Map<String, Value>],
    declared: &BTreeMap<String, Kind>,
    policy: TypeConflict,
) -> Result<(), TestCaseError> {
    match json_batch(rows, declared, policy) {
        Ok((batch, bad)) => {
            prop_assert_eq!(batch.num_rows() + bad.len(), rows.len());
            let rejected: BTreeSet<usize> = bad.iter().map(|(i, _)| *i).collect();
            prop_assert_eq!(rejected.len(), bad.len());
            prop_assert!(rejected.iter().all(|i| *i < rows.len()));
            let keys: BTreeSet<&str> = rows
                .iter()
                .flat_map(|r| r.keys())
                .map(String::as_str)
                .collect();
            let columns: BTreeSet<&str> = batch
                .schema_ref()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            prop_assert_eq!(columns, keys);
            if declared.is_empty() {
                prop_assert!(bad.is_empty(), "{:?}", bad);
            }
        }
        Err(message) => {
            prop_assert_eq!(policy, TypeConflict::Fail, "{}", message);
            prop_assert!(message.contains("on_type_conflict: fail"), "{}", message);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn flattening_keeps_every_leaf_under_its_path(r in record()) {
        let flat = flat(&r);
        let mut expected = Vec::new();
        leaves(&[], &r, &mut expected);
        prop_assert_eq!(flat.len(), expected.len());
        for (path, v) in &expected {
            prop_assert_eq!(flat.get(&path.join("__")), Some(v));
        }
        prop_assert!(flat.values().all(|v| !v.is_object()));
    }

    #[test]
    fn flattened_records_make_one_batch(
        records in prop::collection::vec(record(), 1..6),
        fail in any::<bool>(),
        declare in prop::collection::vec((any::<usize>(), 0..KINDS.len()), 0..3),
    ) {
        let rows: Vec<Map<String, Value>> = records.iter().map(flat).collect();
        let policy = if fail { TypeConflict::Fail } else { TypeConflict::String };
        check_batch(&rows, &BTreeMap::new(), policy)?;
        let keys: Vec<&String> = rows.iter().flat_map(|r| r.keys()).collect();
        if !keys.is_empty() {
            let declared: BTreeMap<String, Kind> = declare
                .iter()
                .map(|(i, k)| (keys[i % keys.len()].clone(), KINDS[*k]))
                .collect();
            check_batch(&rows, &declared, policy)?;
        }
    }
}

/// Fuzz target: any bytes that read as JSON, as a document of records (flattened, then
/// batched with either policy, with and without declared types).
#[test]
fn fuzz_json_records() {
    bolero::check!()
        .with_test_time(FUZZ_TIME)
        .for_each(|bytes: &[u8]| {
            let Some((first, rest)) = bytes.split_first() else {
                return;
            };
            let Ok(doc) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            let records = match doc {
                Value::Array(items) => items,
                other => vec![other],
            };
            let rows: Vec<Map<String, Value>> = records
                .into_iter()
                .filter_map(|r| match r {
                    Value::Object(m) => Some(flat(&m)),
                    _ => None,
                })
                .collect();
            if rows.is_empty() {
                return;
            }
            let declared: BTreeMap<String, Kind> = rows
                .iter()
                .flat_map(|r| r.keys())
                .enumerate()
                .filter(|(i, _)| first & (1u8 << (i % 8)) != 0)
                .map(|(i, k)| (k.clone(), KINDS[i % KINDS.len()]))
                .collect();
            for policy in [TypeConflict::String, TypeConflict::Fail] {
                for d in [&BTreeMap::new(), &declared] {
                    if let Err(e) = check_batch(&rows, d, policy) {
                        panic!("{e}");
                    }
                }
            }
        });
}
