//! Materializations: compiled SQL becomes a view, a table (replaced in one commit), an
//! incremental merge or append, a seed load, or a test verdict.

use datafusion::prelude::CsvReadOptions;
use socle_warehouse::{Outcome as WhOutcome, Warehouse, WriteMode};

use crate::error::{Result, TransformError};
use crate::jinja::Relation;
use crate::nodes::{Node, quote};
use crate::run::{Outcome, Status};

/// Does `schema.name` exist, and is it a table?
pub async fn exists(wh: &Warehouse, schema: &str, name: &str) -> Result<bool> {
    Ok(kind_of(wh, schema, name).await? == Some("table"))
}

async fn kind_of(wh: &Warehouse, schema: &str, name: &str) -> Result<Option<&'static str>> {
    Ok(wh.relation_kind(&format!("{schema}.{name}")).await?)
}

fn done(message: String) -> Outcome {
    Outcome {
        status: Status::Success,
        message,
        compiled_sql: None,
        failures: None,
    }
}

async fn ensure_schema(wh: &Warehouse, schema: &str) -> Result<()> {
    wh.execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema)))
        .await?;
    Ok(())
}

pub async fn model(
    wh: &Warehouse,
    node: &Node,
    rel: &Relation,
    sql: &str,
    incremental: bool,
) -> Result<Outcome> {
    ensure_schema(wh, &rel.schema).await?;
    let target = format!("{}.{}", quote(&rel.schema), quote(&rel.identifier));
    let existing = kind_of(wh, &rel.schema, &rel.identifier).await?;
    match node.config.materialized() {
        "view" => {
            if existing == Some("table") {
                wh.drop_relation(&format!("{}.{}", rel.schema, rel.identifier), true)
                    .await?;
            }
            wh.execute(&format!("CREATE OR REPLACE VIEW {target} AS\n{sql}"))
                .await?;
            Ok(done(format!("CREATE VIEW {target}")))
        }
        "incremental" if incremental => incremental_load(wh, node, rel, sql).await,
        // A table, or an incremental model's first (or full-refresh) build.
        "table" | "incremental" => {
            if existing == Some("view") {
                wh.execute(&format!("DROP VIEW {target}")).await?;
            }
            let out = wh
                .execute(&format!("CREATE OR REPLACE TABLE {target} AS\n{sql}"))
                .await?;
            Ok(done(summary(out, &target)))
        }
        other => Err(TransformError::Other(format!(
            "{}: materialization `{other}` is not supported (use view, table, incremental or ephemeral)",
            node.path
        ))),
    }
}

fn summary(out: Vec<socle_warehouse::Executed>, target: &str) -> String {
    match out.into_iter().last() {
        Some(socle_warehouse::Executed::Done(m)) => m,
        _ => format!("CREATE TABLE {target}"),
    }
}

async fn incremental_load(
    wh: &Warehouse,
    node: &Node,
    rel: &Relation,
    sql: &str,
) -> Result<Outcome> {
    let name = format!("{}.{}", rel.schema, rel.identifier);
    let mut prepared = wh.parse(sql)?;
    if prepared.len() != 1 {
        return Err(TransformError::Other(format!(
            "{}: an incremental model must be one SELECT",
            node.path
        )));
    }
    let WhOutcome::Query(mut df) = wh.run(prepared.remove(0)).await? else {
        return Err(TransformError::Other(format!(
            "{}: an incremental model must be a SELECT",
            node.path
        )));
    };
    let on_change = node.config.str("on_schema_change").unwrap_or("ignore");
    let existing = wh.describe(&name).await?;
    let existing_cols: Vec<String> = existing.columns.iter().map(|c| c.name.clone()).collect();
    let new_cols: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|c| !existing_cols.contains(c))
        .collect();
    if !new_cols.is_empty() {
        match on_change {
            "fail" => {
                return Err(TransformError::Other(format!(
                    "{}: on_schema_change is `fail` and the model now has new columns: {}",
                    node.path,
                    new_cols.join(", ")
                )));
            }
            "append_new_columns" | "sync_all_columns" => {}
            _ => {
                let keep: Vec<String> = df
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .filter(|c| existing_cols.contains(c))
                    .collect();
                let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
                df = df
                    .select_columns(&keep)
                    .map_err(|e| TransformError::Other(e.to_string()))?;
            }
        }
    }
    let strategy = node.config.str("incremental_strategy").unwrap_or("default");
    let keys = node.config.unique_key();
    if strategy == "delete+insert" && !keys.is_empty() {
        let batch_cols: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        return delete_insert(wh, &name, sql, &keys, &existing_cols, &batch_cols).await;
    }
    let mode = match (strategy, keys.is_empty()) {
        ("append", _) | (_, true) => WriteMode::Append,
        ("merge" | "default", false) => WriteMode::Merge { keys },
        (other, _) => {
            return Err(TransformError::Other(format!(
                "{}: incremental_strategy `{other}` is not supported (merge, append, delete+insert)",
                node.path
            )));
        }
    };
    let report = wh.load(&name, df, mode).await?;
    Ok(done(format!(
        "{} {}: {} inserted, {} updated, version {}",
        report.mode, name, report.rows_inserted, report.rows_updated, report.version
    )))
}

/// dbt's `delete+insert`: every row of the table whose key is in the new batch goes, and
/// all of the batch's rows come in (several per key allowed, unlike `merge`). The new
/// contents are written as one overwrite commit, so a failure leaves the previous version.
async fn delete_insert(
    wh: &Warehouse,
    name: &str,
    sql: &str,
    keys: &[String],
    existing_cols: &[String],
    batch_cols: &[String],
) -> Result<Outcome> {
    let mut cols: Vec<String> = existing_cols.to_vec();
    cols.extend(
        batch_cols
            .iter()
            .filter(|c| !existing_cols.contains(c))
            .cloned(),
    );
    let side = |have: &[String], alias: &str| {
        cols.iter()
            .map(|c| {
                if have.contains(c) {
                    format!("{alias}.{}", quote(c))
                } else {
                    format!("NULL AS {}", quote(c))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let matches = keys
        .iter()
        .map(|k| format!("n.{q} = t.{q}", q = quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let (schema, table) = name.split_once('.').unwrap_or(("main", name));
    let target = format!("{}.{}", quote(schema), quote(table));
    let combined = format!(
        "WITH __socle_new AS (\n{sql}\n)\n\
         SELECT {} FROM {target} t WHERE NOT EXISTS (SELECT 1 FROM __socle_new n WHERE {matches})\n\
         UNION ALL\n\
         SELECT {} FROM __socle_new n",
        side(existing_cols, "t"),
        side(batch_cols, "n"),
    );
    let mut prepared = wh.parse(&combined)?;
    let WhOutcome::Query(df) = wh.run(prepared.remove(0)).await? else {
        return Err(TransformError::Other(
            "internal: delete+insert query".into(),
        ));
    };
    let report = wh.load(name, df, WriteMode::Overwrite).await?;
    Ok(done(format!(
        "delete+insert {name}: {} rows now, version {}",
        report.rows_inserted, report.version
    )))
}

pub async fn seed(wh: &Warehouse, node: &Node, _full_refresh: bool) -> Result<Outcome> {
    ensure_schema(wh, &node.schema).await?;
    let path = node.file.to_string_lossy().to_string();
    let delimiter = node
        .config
        .str("delimiter")
        .and_then(|d| d.bytes().next())
        .unwrap_or(b',');
    let options = CsvReadOptions::new()
        .has_header(true)
        .delimiter(delimiter)
        .file_extension("csv");
    let mut df = wh
        .session()
        .read_csv(path.as_str(), options)
        .await
        .map_err(|e| TransformError::Other(format!("{}: {e}", node.path)))?;
    if let Some(serde_json::Value::Object(types)) = node.config.get("column_types") {
        let mut exprs = Vec::new();
        for f in df.schema().fields() {
            let col = datafusion::prelude::ident(f.name());
            match types.get(f.name()).and_then(|t| t.as_str()) {
                Some(t) => {
                    let dt = sql_type(t).ok_or_else(|| {
                        TransformError::Other(format!(
                            "{}: column_types: cannot read the type `{t}` of `{}`",
                            node.path,
                            f.name()
                        ))
                    })?;
                    exprs.push(datafusion::prelude::cast(col, dt).alias(f.name()));
                }
                None => exprs.push(col),
            }
        }
        df = df
            .select(exprs)
            .map_err(|e| TransformError::Other(e.to_string()))?;
    }
    let name = format!("{}.{}", node.schema, node.alias);
    let report = wh.load(&name, df, WriteMode::Overwrite).await?;
    Ok(done(format!("INSERT {} {name}", report.rows_in)))
}

/// A SQL type name as an Arrow type (for seeds' `column_types`).
fn sql_type(t: &str) -> Option<datafusion::arrow::datatypes::DataType> {
    use datafusion::arrow::datatypes::{DataType, TimeUnit};
    let lower = t.trim().to_ascii_lowercase();
    let base = lower.split('(').next().unwrap_or("").trim();
    Some(match base {
        "varchar" | "text" | "string" | "char" => DataType::Utf8,
        "int" | "integer" | "int4" => DataType::Int32,
        "bigint" | "int8" | "int64" => DataType::Int64,
        "smallint" | "int2" => DataType::Int16,
        "double" | "float8" | "float64" | "double precision" => DataType::Float64,
        "float" | "real" | "float4" => DataType::Float32,
        "boolean" | "bool" => DataType::Boolean,
        "date" => DataType::Date32,
        "timestamp" | "datetime" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "decimal" | "numeric" => {
            let args: Vec<u8> = lower
                .split_once('(')
                .map(|(_, a)| {
                    a.trim_end_matches(')')
                        .split(',')
                        .filter_map(|x| x.trim().parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            DataType::Decimal128(
                *args.first().unwrap_or(&18),
                *args.get(1).unwrap_or(&3) as i8,
            )
        }
        _ => return None,
    })
}

/// Runs a test query and judges it by `severity`, `warn_if` and `error_if`.
pub async fn test(wh: &Warehouse, node: &Node, sql: &str) -> Result<Outcome> {
    let limit = node
        .config
        .get("limit")
        .and_then(|v| v.as_u64())
        .map(|n| format!("\nlimit {n}"))
        .unwrap_or_default();
    if node.config.bool("store_failures").unwrap_or(false) {
        // Failing rows are kept in `<schema>_dbt_test__audit.<test name>`, as dbt does.
        let audit = format!("{}_dbt_test__audit", node.schema);
        ensure_schema(wh, &audit).await?;
        wh.execute(&format!(
            "CREATE OR REPLACE TABLE {}.{} AS\n{sql}{limit}",
            quote(&audit),
            quote(&node.alias)
        ))
        .await?;
    }
    let count_sql =
        format!("select count(*) as failures from (\n{sql}{limit}\n) dbt_internal_test");
    let batches = wh.query(&count_sql).await?;
    let failures = crate::resolver::to_table(&batches)
        .rows
        .first()
        .and_then(|r| r.first())
        .and_then(|v| v.as_i64())
        .unwrap_or(0) as u64;
    let severity = node
        .config
        .str("severity")
        .unwrap_or("error")
        .to_ascii_lowercase();
    let error_if = node.config.str("error_if").unwrap_or("!= 0");
    let warn_if = node.config.str("warn_if").unwrap_or("!= 0");
    let status = if severity == "error" && condition(error_if, failures) {
        Status::Fail
    } else if condition(warn_if, failures) {
        Status::Warn
    } else {
        Status::Pass
    };
    let message = match status {
        Status::Pass => "PASS".to_string(),
        _ => format!(
            "Got {failures} result{}, configured to {} if {}",
            if failures == 1 { "" } else { "s" },
            if status == Status::Fail {
                "fail"
            } else {
                "warn"
            },
            if status == Status::Fail {
                error_if
            } else {
                warn_if
            }
        ),
    };
    Ok(Outcome {
        status,
        message,
        compiled_sql: None,
        failures: Some(failures),
    })
}

/// `"!= 0"`, `"> 10"`, `">=5"` applied to `n`.
fn condition(expr: &str, n: u64) -> bool {
    let e = expr.trim();
    for op in [">=", "<=", "!=", "<>", "==", ">", "<", "="] {
        if let Some(rest) = e.strip_prefix(op) {
            let Ok(v) = rest.trim().parse::<f64>() else {
                return n != 0;
            };
            let n = n as f64;
            return match op {
                ">=" => n >= v,
                "<=" => n <= v,
                "!=" | "<>" => n != v,
                "==" | "=" => n == v,
                ">" => n > v,
                _ => n < v,
            };
        }
    }
    n != 0
}

#[cfg(test)]
mod tests {
    use super::condition;

    #[test]
    fn conditions() {
        assert!(condition("!= 0", 1));
        assert!(!condition("!= 0", 0));
        assert!(condition(">10", 11));
        assert!(!condition("> 10", 10));
        assert!(condition(">= 10", 10));
    }
}
