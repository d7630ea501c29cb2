//! Snapshots (type-2 slowly changing dimensions), as dbt builds them: each row gets
//! `dbt_scd_id`, `dbt_updated_at`, `dbt_valid_from` and `dbt_valid_to` (null while
//! current). A run closes the current version of every changed key and inserts the new
//! versions, in one merge commit on `dbt_scd_id`.
//!
//! Strategies: `timestamp` (a row changed when its `updated_at` is newer) and `check`
//! (a row changed when one of `check_cols`, or all columns, differs). Rows deleted from
//! the source are ignored, closed (`hard_deletes: invalidate`) or closed and followed by a
//! deletion record with `dbt_is_deleted = 'True'` (`hard_deletes: new_record`), as dbt 1.9.

use socle_warehouse::{Outcome as WhOutcome, Warehouse, WriteMode};

use crate::error::{Result, TransformError};
use crate::jinja::Relation;
use crate::nodes::{Node, quote};
use crate::run::{Outcome, Status};

const META: [&str; 4] = [
    "dbt_scd_id",
    "dbt_updated_at",
    "dbt_valid_from",
    "dbt_valid_to",
];

fn err(node: &Node, msg: impl std::fmt::Display) -> TransformError {
    TransformError::Other(format!("{}: snapshot `{}`: {msg}", node.path, node.name))
}

/// `hard_deletes` (dbt 1.9: `ignore`, `invalidate`, `new_record`), or the older
/// `invalidate_hard_deletes: true`.
fn hard_deletes(node: &Node) -> Result<&'static str> {
    match node.config.get("hard_deletes") {
        None | Some(serde_json::Value::Null) => Ok(
            if node
                .config
                .get("invalidate_hard_deletes")
                .is_some_and(|v| v == &serde_json::Value::Bool(true))
            {
                "invalidate"
            } else {
                "ignore"
            },
        ),
        Some(serde_json::Value::String(s)) => match s.as_str() {
            "ignore" => Ok("ignore"),
            "invalidate" => Ok("invalidate"),
            "new_record" => Ok("new_record"),
            other => Err(err(
                node,
                format!("hard_deletes `{other}` is not one of ignore, invalidate, new_record"),
            )),
        },
        Some(other) => Err(err(
            node,
            format!("hard_deletes must be ignore, invalidate or new_record, not {other}"),
        )),
    }
}

pub async fn run(wh: &Warehouse, node: &Node, rel: &Relation, sql: &str) -> Result<Outcome> {
    let keys = node.config.unique_key();
    if keys.is_empty() {
        return Err(err(node, "set `unique_key` in its config"));
    }
    let strategy = node.config.str("strategy").unwrap_or("timestamp");
    let hard_deletes = hard_deletes(node)?;
    let new_record = hard_deletes == "new_record";
    wh.execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quote(&rel.schema)
    ))
    .await?;
    // The columns of the snapshot query.
    let mut prepared = wh.parse(sql)?;
    if prepared.len() != 1 {
        return Err(err(node, "the snapshot body must be one SELECT"));
    }
    let WhOutcome::Query(df) = wh.run(prepared.remove(0)).await? else {
        return Err(err(node, "the snapshot body must be a SELECT"));
    };
    let cols: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let now = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string();
    let now_ts = format!("TIMESTAMP '{now}'");
    let updated = match strategy {
        "timestamp" => {
            let col = node
                .config
                .str("updated_at")
                .ok_or_else(|| err(node, "the timestamp strategy needs `updated_at`"))?;
            format!("CAST(src.{} AS TIMESTAMP)", quote(col))
        }
        "check" => now_ts.clone(),
        other => {
            return Err(err(
                node,
                format!("strategy `{other}` is not supported (timestamp, check)"),
            ));
        }
    };
    let key_cast = |alias: &str| {
        keys.iter()
            .map(|k| format!("CAST({alias}.{} AS VARCHAR)", quote(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let scd_id = format!(
        "md5(concat_ws('|', {}, CAST({updated} AS VARCHAR)))",
        key_cast("src")
    );
    let src_cols = cols
        .iter()
        .map(|c| format!("src.{}", quote(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let target = format!("{}.{}", quote(&rel.schema), quote(&rel.identifier));
    let exists = crate::materialize::exists(wh, &rel.schema, &rel.identifier).await?;
    if !exists {
        let deleted = if new_record {
            ", 'False' AS dbt_is_deleted"
        } else {
            ""
        };
        let create = format!(
            "CREATE TABLE {target} AS SELECT {src_cols}, {scd_id} AS dbt_scd_id, {updated} AS dbt_updated_at, \
             {updated} AS dbt_valid_from, CAST(NULL AS TIMESTAMP) AS dbt_valid_to{deleted} FROM ({sql}) src"
        );
        wh.execute(&create).await?;
        return Ok(Outcome {
            status: Status::Success,
            message: format!("CREATE SNAPSHOT {target}"),
            compiled_sql: None,
            failures: None,
        });
    }
    let join = keys
        .iter()
        .map(|k| format!("src.{q} = cur.{q}", q = quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let changed = match strategy {
        "timestamp" => format!("{updated} > cur.dbt_updated_at"),
        _ => {
            let check: Vec<String> = match node.config.get("check_cols") {
                Some(serde_json::Value::String(s)) if s == "all" => {
                    cols.iter().filter(|c| !keys.contains(c)).cloned().collect()
                }
                other => crate::config::list_of_strings(other),
            };
            if check.is_empty() {
                return Err(err(
                    node,
                    "the check strategy needs `check_cols` (a list, or 'all')",
                ));
            }
            check
                .iter()
                .map(|c| format!("(src.{q} IS DISTINCT FROM cur.{q})", q = quote(c)))
                .collect::<Vec<_>>()
                .join(" OR ")
        }
    };
    let cur_cols = cols
        .iter()
        .map(|c| format!("cur.{}", quote(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let first_key = quote(&keys[0]);
    // With `new_record`, a key whose current version is a deletion record counts as changed
    // when it comes back (dbt's rule). A snapshot made before the setting lacks the column.
    let has_deleted_col = new_record
        && wh
            .describe(&format!("{}.{}", rel.schema, rel.identifier))
            .await?
            .columns
            .iter()
            .any(|c| c.name == "dbt_is_deleted");
    let cur_deleted = if has_deleted_col {
        "COALESCE(cur.dbt_is_deleted, 'False')"
    } else {
        "'False'"
    };
    let changed = if new_record {
        format!("({changed}) OR {cur_deleted} = 'True'")
    } else {
        changed
    };
    let (keep_deleted, new_deleted) = if new_record {
        (
            format!(", {cur_deleted} AS dbt_is_deleted"),
            ", 'False' AS dbt_is_deleted",
        )
    } else {
        (String::new(), "")
    };
    let mut staging = format!(
        "WITH src AS ({sql}), cur AS (SELECT * FROM {target} WHERE dbt_valid_to IS NULL) \
         SELECT {cur_cols}, cur.dbt_scd_id, cur.dbt_updated_at, cur.dbt_valid_from, {updated} AS dbt_valid_to{keep_deleted} \
         FROM src JOIN cur ON {join} WHERE {changed} \
         UNION ALL \
         SELECT {src_cols}, {scd_id} AS dbt_scd_id, {updated} AS dbt_updated_at, {updated} AS dbt_valid_from, \
                CAST(NULL AS TIMESTAMP) AS dbt_valid_to{new_deleted} \
         FROM src LEFT JOIN cur ON {join} WHERE cur.{first_key} IS NULL OR ({changed})"
    );
    if hard_deletes != "ignore" {
        // Keys gone from the source: close their current version (unless it already is a
        // deletion record) and, with `new_record`, insert a deletion record.
        let gone = format!(
            "FROM cur LEFT JOIN src ON {join} WHERE src.{first_key} IS NULL AND NOT ({cur_deleted} = 'True')"
        );
        staging.push_str(&format!(
            " UNION ALL SELECT {cur_cols}, cur.dbt_scd_id, cur.dbt_updated_at, cur.dbt_valid_from, \
             {now_ts} AS dbt_valid_to{keep_deleted} {gone}"
        ));
        if new_record {
            let deletion_id = format!(
                "md5(concat_ws('|', {}, CAST({now_ts} AS VARCHAR)))",
                key_cast("cur")
            );
            staging.push_str(&format!(
                " UNION ALL SELECT {cur_cols}, {deletion_id} AS dbt_scd_id, {now_ts} AS dbt_updated_at, \
                 {now_ts} AS dbt_valid_from, CAST(NULL AS TIMESTAMP) AS dbt_valid_to, 'True' AS dbt_is_deleted {gone}"
            ));
        }
    }
    let mut prepared = wh.parse(&staging)?;
    let WhOutcome::Query(df) = wh.run(prepared.remove(0)).await? else {
        return Err(err(node, "internal: staging query"));
    };
    let name = format!("{}.{}", rel.schema, rel.identifier);
    let report = wh
        .load(
            &name,
            df,
            WriteMode::Merge {
                keys: vec![META[0].to_string()],
            },
        )
        .await?;
    Ok(Outcome {
        status: Status::Success,
        message: format!(
            "SNAPSHOT {name}: {} new versions, {} closed",
            report.rows_inserted, report.rows_updated
        ),
        compiled_sql: None,
        failures: None,
    })
}
