//! Running statements: the ones socle handles itself (tables and views are persistent,
//! so DDL and DML go to Delta and the metadata database) and queries, planned by DataFusion.

use std::sync::Arc;

use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{DdlStatement, DmlStatement, LogicalPlan, WriteOp};
use datafusion::prelude::DataFrame;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{
    ObjectName, ObjectNamePart, ObjectType, SchemaName, Statement as SqlStatement,
};
use deltalake::protocol::SaveMode;

use crate::error::{Result, WarehouseError};
use crate::guard::{self, Access};
use crate::names::RelName;
use crate::{Outcome, Prepared, Warehouse, nullable};

/// `schema.table` from an AST name, normalizing unquoted identifiers like DataFusion does.
fn object_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(id) if id.quote_style.is_none() => {
                id.value.to_ascii_lowercase()
            }
            ObjectNamePart::Identifier(id) => id.value.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

pub(crate) async fn run(wh: &Warehouse, prepared: Prepared) -> Result<Outcome> {
    let sql = prepared.sql.clone();
    let guarded = wh.access == Access::Server;
    if guarded {
        guard::check_statement(&prepared.statement)?;
    }
    if let Statement::Statement(inner) = &prepared.statement {
        match inner.as_ref() {
            SqlStatement::CreateView(v) => {
                if !v.columns.is_empty() {
                    return Err(WarehouseError::Unsupported(
                        "CREATE VIEW with a column list is not supported: name the columns with AS in the query".into(),
                    ));
                }
                if v.materialized {
                    return Err(WarehouseError::Unsupported(
                        "materialized views are not supported: use CREATE TABLE ... AS SELECT"
                            .into(),
                    ));
                }
                let rel = RelName::parse(&object_name(&v.name), wh.default_schema())?;
                return create_view(
                    wh,
                    &rel,
                    &v.query.to_string(),
                    v.or_replace,
                    v.if_not_exists,
                    &sql,
                )
                .await;
            }
            SqlStatement::Drop {
                object_type,
                if_exists,
                names,
                cascade,
                ..
            } => {
                return drop_objects(wh, *object_type, names, *if_exists, *cascade).await;
            }
            SqlStatement::CreateSchema {
                schema_name,
                if_not_exists,
                ..
            } => {
                let SchemaName::Simple(name) = schema_name else {
                    return Err(WarehouseError::Unsupported(
                        "CREATE SCHEMA ... AUTHORIZATION is not supported".into(),
                    ));
                };
                let name = object_name(name);
                RelName::parse(&format!("{name}.x"), wh.default_schema())?;
                // The name cache is current for this process; re-list only on a miss
                // (another process may have made it).
                let existed = wh.shared.schema_names().contains(&name)
                    || wh.list_schemas().await?.contains(&name);
                if existed && !*if_not_exists {
                    return Err(WarehouseError::Exists {
                        kind: "schema",
                        name,
                        hint: "",
                    });
                }
                if !existed {
                    wh.shared.meta.create_schema(&name).await?;
                }
                wh.shared.note(&name, None, true);
                return Ok(Outcome::Done(if existed {
                    format!("schema {name} exists")
                } else {
                    format!("CREATE SCHEMA {name}")
                }));
            }
            SqlStatement::Truncate { .. } => {
                return Err(WarehouseError::Unsupported(
                    "TRUNCATE is not supported: use DELETE FROM t or INSERT OVERWRITE".into(),
                ));
            }
            _ => {}
        }
    }
    if let Statement::CreateExternalTable(_) = &prepared.statement {
        return Err(WarehouseError::Unsupported(
            "CREATE EXTERNAL TABLE is not supported: query files directly (SELECT * FROM 'data/orders.csv') or load them with `socle load`".into(),
        ));
    }
    let state = wh.ctx.state();
    let plan = state
        .statement_to_plan(prepared.statement)
        .await
        .map_err(|e| WarehouseError::from_datafusion(e, &sql))?;
    if guarded {
        guard::check_plan(&plan)?;
    }
    match plan {
        LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(c)) => {
            if c.temporary {
                return Err(WarehouseError::Unsupported(
                    "temporary tables are not supported".into(),
                ));
            }
            let rel = RelName::from_reference(&c.name, wh.default_schema())?;
            create_table_as(
                wh,
                &rel,
                Arc::unwrap_or_clone(c.input),
                c.or_replace,
                c.if_not_exists,
            )
            .await
        }
        LogicalPlan::Dml(DmlStatement {
            table_name,
            op,
            input,
            ..
        }) => {
            let rel = RelName::from_reference(&table_name, wh.default_schema())?;
            match op {
                WriteOp::Insert(InsertOp::Append) => {
                    insert(wh, &rel, Arc::unwrap_or_clone(input), SaveMode::Append).await
                }
                WriteOp::Insert(InsertOp::Overwrite) => {
                    insert(wh, &rel, Arc::unwrap_or_clone(input), SaveMode::Overwrite).await
                }
                other => Err(WarehouseError::Unsupported(format!(
                    "{other} is not supported yet"
                ))),
            }
        }
        LogicalPlan::Ddl(other) => Err(WarehouseError::Unsupported(format!(
            "{} is not supported",
            other.name()
        ))),
        plan => {
            let df = wh
                .ctx
                .execute_logical_plan(plan)
                .await
                .map_err(|e| WarehouseError::from_datafusion(e, &sql))?;
            Ok(Outcome::Query(df))
        }
    }
}

async fn create_view(
    wh: &Warehouse,
    rel: &RelName,
    query: &str,
    or_replace: bool,
    if_not_exists: bool,
    sql: &str,
) -> Result<Outcome> {
    if wh.shared.open_table(rel, None).await?.is_some() {
        return Err(WarehouseError::Exists {
            kind: "table",
            name: rel.to_string(),
            hint: "; drop it first to make a view of that name",
        });
    }
    let existing = wh.shared.meta.get_view(&rel.schema, &rel.name).await?;
    if existing.is_some() && !or_replace {
        if if_not_exists {
            return Ok(Outcome::Done(format!("view {rel} exists")));
        }
        return Err(WarehouseError::Exists {
            kind: "view",
            name: rel.to_string(),
            hint: "; use CREATE OR REPLACE VIEW",
        });
    }
    // Plan it now: a view that does not plan is refused rather than stored.
    let state = wh.ctx.state();
    let stmt = wh.parser.parse_one(query)?;
    let refs = state
        .resolve_table_references(&stmt)
        .map_err(|e| WarehouseError::from_datafusion(e, sql))?;
    for r in &refs {
        let target = RelName::from_reference(r, wh.default_schema());
        if let Ok(target) = target
            && (&target == rel || references_view(wh, &target, rel, 0).await?)
        {
            return Err(WarehouseError::Unsupported(format!(
                "view {rel} would depend on itself (through {target})"
            )));
        }
    }
    let plan = state
        .statement_to_plan(stmt)
        .await
        .map_err(|e| WarehouseError::from_datafusion(e, sql))?;
    if wh.access == Access::Server {
        guard::check_plan(&plan)?;
    }
    wh.shared
        .meta
        .put_view(&rel.schema, &rel.name, query)
        .await?;
    wh.shared.note(&rel.schema, Some(&rel.name), true);
    Ok(Outcome::Done(format!(
        "{} VIEW {rel}",
        if existing.is_some() {
            "REPLACE"
        } else {
            "CREATE"
        }
    )))
}

/// Does view `from` (transitively) read `target`?
async fn references_view(
    wh: &Warehouse,
    from: &RelName,
    target: &RelName,
    depth: usize,
) -> Result<bool> {
    if depth > 32 {
        return Ok(true);
    }
    let Some(view) = wh.shared.meta.get_view(&from.schema, &from.name).await? else {
        return Ok(false);
    };
    let stmt = wh.parser.parse_one(&view.definition)?;
    let refs = wh
        .ctx
        .state()
        .resolve_table_references(&stmt)
        .map_err(|e| WarehouseError::from_datafusion(e, &view.definition))?;
    for r in refs {
        if let Ok(next) = RelName::from_reference(&r, wh.default_schema())
            && (&next == target || Box::pin(references_view(wh, &next, target, depth + 1)).await?)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `CREATE [OR REPLACE] TABLE ... AS`. When another writer creates or replaces the table
/// first, the statement runs again against what it committed (a bounded number of times,
/// and not when the query reads the table itself): two concurrent `CREATE OR REPLACE` end
/// as if run one after the other, and a plain `CREATE` that lost says the table exists.
async fn create_table_as(
    wh: &Warehouse,
    rel: &RelName,
    input: LogicalPlan,
    or_replace: bool,
    if_not_exists: bool,
) -> Result<Outcome> {
    let retry = !crate::load::reads_table(&input, rel);
    let mut attempt = 1;
    loop {
        match create_table_once(wh, rel, input.clone(), or_replace, if_not_exists).await {
            Err(WarehouseError::Conflict { .. })
                if retry && attempt < crate::load::LOAD_ATTEMPTS =>
            {
                tracing::info!(table = %rel, attempt, "another writer committed first; creating again");
                tokio::time::sleep(crate::load::backoff(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

async fn create_table_once(
    wh: &Warehouse,
    rel: &RelName,
    input: LogicalPlan,
    or_replace: bool,
    if_not_exists: bool,
) -> Result<Outcome> {
    if wh
        .shared
        .meta
        .get_view(&rel.schema, &rel.name)
        .await?
        .is_some()
    {
        return Err(WarehouseError::Exists {
            kind: "view",
            name: rel.to_string(),
            hint: "; drop the view first",
        });
    }
    let existing = wh.shared.open_table(rel, None).await?;
    if existing.is_some() && !or_replace {
        if if_not_exists {
            return Ok(Outcome::Done(format!("table {rel} exists")));
        }
        return Err(WarehouseError::Exists {
            kind: "table",
            name: rel.to_string(),
            hint: "; use CREATE OR REPLACE TABLE",
        });
    }
    // `CREATE TABLE t (id BIGINT NOT NULL, ...)` declares its columns: keep their NOT NULL.
    // A query's columns are made nullable, as BigQuery and DuckDB do for CTAS.
    let plan = match input {
        declared @ LogicalPlan::EmptyRelation(_) => declared,
        query => {
            nullable::make_nullable(query).map_err(|e| WarehouseError::Internal(e.to_string()))?
        }
    };
    let df = DataFrame::new(wh.ctx.state(), plan);
    let report = crate::load::write_dataframe(
        wh,
        rel,
        existing,
        df,
        SaveMode::Overwrite,
        true,
        &Default::default(),
    )
    .await?;
    wh.shared.note(&rel.schema, Some(&rel.name), true);
    Ok(Outcome::Done(format!(
        "{} TABLE {rel}: {} rows, version {}",
        if report.version > 0 {
            "REPLACE"
        } else {
            "CREATE"
        },
        report.rows_in,
        report.version
    )))
}

async fn insert(
    wh: &Warehouse,
    rel: &RelName,
    input: LogicalPlan,
    mode: SaveMode,
) -> Result<Outcome> {
    let existing = wh.shared.open_table(rel, None).await?;
    if existing.is_none() {
        return Err(WarehouseError::NotFound {
            kind: "table",
            name: rel.to_string(),
            suggestion: None,
        });
    }
    let df = DataFrame::new(wh.ctx.state(), input);
    let report =
        crate::load::write_dataframe(wh, rel, existing, df, mode, false, &Default::default())
            .await?;
    Ok(Outcome::Done(format!(
        "INSERT {}: {} rows, version {}",
        rel, report.rows_in, report.version
    )))
}

async fn drop_objects(
    wh: &Warehouse,
    kind: ObjectType,
    names: &[ObjectName],
    if_exists: bool,
    cascade: bool,
) -> Result<Outcome> {
    let mut done = Vec::new();
    for name in names {
        let text = object_name(name);
        match kind {
            ObjectType::Table | ObjectType::View => {
                let rel = RelName::parse(&text, wh.default_schema())?;
                let is_view = wh
                    .shared
                    .meta
                    .get_view(&rel.schema, &rel.name)
                    .await?
                    .is_some();
                match (kind, is_view) {
                    (ObjectType::Table, true) => {
                        return Err(WarehouseError::Unsupported(format!(
                            "{rel} is a view: use DROP VIEW"
                        )));
                    }
                    (ObjectType::View, false)
                        if wh.shared.open_table(&rel, None).await?.is_some() =>
                    {
                        return Err(WarehouseError::Unsupported(format!(
                            "{rel} is a table: use DROP TABLE"
                        )));
                    }
                    _ => {}
                }
                if wh.drop_relation(&rel.to_string(), if_exists).await? {
                    done.push(format!(
                        "DROP {} {rel}",
                        if is_view { "VIEW" } else { "TABLE" }
                    ));
                }
            }
            ObjectType::Schema => {
                let relations = wh.list_relations(Some(&text)).await?;
                let exists = wh.list_schemas().await?.contains(&text);
                if !exists {
                    if if_exists {
                        continue;
                    }
                    return Err(WarehouseError::NotFound {
                        kind: "schema",
                        name: text,
                        suggestion: None,
                    });
                }
                if !relations.is_empty() && !cascade {
                    return Err(WarehouseError::Unsupported(format!(
                        "schema {text} is not empty ({} relations): use DROP SCHEMA {text} CASCADE",
                        relations.len()
                    )));
                }
                for r in relations {
                    wh.drop_relation(&format!("{}.{}", r.schema, r.name), true)
                        .await?;
                }
                wh.shared.meta.drop_schema(&text).await?;
                wh.shared
                    .lake
                    .delete_prefix(&format!("warehouse/{text}/"))
                    .await?;
                done.push(format!("DROP SCHEMA {text}"));
            }
            other => {
                return Err(WarehouseError::Unsupported(format!(
                    "DROP {other} is not supported"
                )));
            }
        }
    }
    wh.refresh().await?;
    Ok(Outcome::Done(if done.is_empty() {
        "nothing to drop".into()
    } else {
        done.join("\n")
    }))
}
