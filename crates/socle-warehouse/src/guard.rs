//! What SQL that arrives over the server may do ([`Access::Server`]): read and write the
//! warehouse's own tables and views, nothing else on the host.
//!
//! SQL from the project's own files (models, pipeline `sql` tasks) and from `socle sql`
//! is project code, written by whoever may write the project folder: it keeps every
//! ability of the engine ([`Access::Project`]), such as `SELECT * FROM 'data/orders.csv'`
//! or `COPY (...) TO 'out.parquet'`. SQL sent to the server comes from a role, not from
//! the folder, so the server's warehouse is opened with [`Access::Server`]:
//! - file paths are not table names (the session has no URL tables), so no file on the
//!   host is ever opened, not even to infer its schema;
//! - statements are let through by kind: queries, `INSERT`, `CREATE TABLE [AS]`,
//!   `CREATE VIEW`, `CREATE SCHEMA`, `DROP`, `DELETE`/`UPDATE` (planned, then refused as
//!   unsupported), `SHOW`, and `EXPLAIN` of those. Everything else is refused before it is
//!   planned: `COPY`, `CREATE EXTERNAL TABLE`, `CREATE TABLE ... LOCATION`, `SET`/`RESET`
//!   (the session is shared by every caller), transactions and the rest;
//! - every plan is walked, sub-queries, views and `EXPLAIN ANALYZE` included, and refused
//!   if it holds a file scan, a copy to files, an external table or a session statement.
//!
//! A refusal is [`WarehouseError::NotAllowed`]: the caller's request, refused by policy.

use datafusion::catalog::view::ViewTable;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{DdlStatement, LogicalPlan, TableSource};
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::error::{Result, WarehouseError};

/// Whose SQL a warehouse runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Access {
    /// The project's own SQL (models, tasks, `socle sql`): every ability of the engine.
    #[default]
    Project,
    /// SQL sent to the server: the warehouse's tables and views only.
    Server,
}

/// The hint every refusal ends with.
const WHERE_INSTEAD: &str = "the server runs SQL over the warehouse's tables only; \
     files are read and written by `socle load`, `socle sql` on the host, or the project's \
     models and pipelines";

fn refuse(what: impl std::fmt::Display) -> WarehouseError {
    WarehouseError::NotAllowed(format!("{what} is not allowed here: {WHERE_INSTEAD}"))
}

/// Refuses a statement whose kind the server does not run (before it is planned).
pub fn check_statement(statement: &Statement) -> Result<()> {
    match statement {
        Statement::Statement(inner) => check_sql_statement(inner),
        Statement::Explain(explain) => check_statement(&explain.statement),
        Statement::CreateExternalTable(_) => Err(refuse("CREATE EXTERNAL TABLE")),
        Statement::CopyTo(_) => Err(refuse("COPY")),
        Statement::Reset(_) => Err(refuse("RESET")),
    }
}

fn check_sql_statement(statement: &SqlStatement) -> Result<()> {
    match statement {
        SqlStatement::Query(_)
        | SqlStatement::Insert(_)
        | SqlStatement::CreateView(_)
        | SqlStatement::CreateSchema { .. }
        | SqlStatement::Drop { .. }
        | SqlStatement::Delete(_)
        | SqlStatement::Update(_)
        | SqlStatement::Truncate(_)
        | SqlStatement::ShowTables { .. }
        | SqlStatement::ShowColumns { .. }
        | SqlStatement::ExplainTable { .. } => Ok(()),
        SqlStatement::CreateTable(create) => {
            if create.external {
                Err(refuse("CREATE EXTERNAL TABLE"))
            } else if create.location.is_some() {
                Err(refuse("CREATE TABLE ... LOCATION"))
            } else {
                Ok(())
            }
        }
        SqlStatement::Explain { statement, .. } => check_sql_statement(statement),
        SqlStatement::Copy { .. } | SqlStatement::CopyIntoSnowflake { .. } => Err(refuse("COPY")),
        other => Err(refuse(format!("`{}`", keyword(other)))),
    }
}

/// The first words of a statement, to name it in a refusal without echoing its text.
fn keyword(statement: &SqlStatement) -> String {
    statement
        .to_string()
        .split_whitespace()
        .take(2)
        .filter(|w| w.chars().all(|c| c.is_ascii_alphabetic() || c == '_'))
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

/// Refuses a plan that reaches outside the warehouse (anywhere in it).
pub fn check_plan(plan: &LogicalPlan) -> Result<()> {
    let mut bad: Option<WarehouseError> = None;
    let _ = plan.apply_with_subqueries(|node| {
        let refused = match node {
            LogicalPlan::Copy(_) => Some(refuse("COPY")),
            LogicalPlan::Ddl(DdlStatement::CreateExternalTable(_)) => {
                Some(refuse("CREATE EXTERNAL TABLE"))
            }
            LogicalPlan::Statement(s) => Some(refuse(format!("`{}`", s.name()))),
            LogicalPlan::TableScan(scan) => check_source(&scan.source, &scan.table_name).err(),
            LogicalPlan::Dml(dml) => check_source(&dml.target, &dml.table_name).err(),
            _ => None,
        };
        match refused {
            Some(e) => {
                bad = Some(e);
                Ok(TreeNodeRecursion::Stop)
            }
            None => Ok(TreeNodeRecursion::Continue),
        }
    });
    bad.map_or(Ok(()), Err)
}

/// A scanned or written relation must not be a file; a view's own plan is checked too.
fn check_source(
    source: &std::sync::Arc<dyn TableSource>,
    name: &impl std::fmt::Display,
) -> Result<()> {
    let Ok(provider) = source_as_provider(source) else {
        return Ok(());
    };
    if provider.is::<ListingTable>() {
        return Err(WarehouseError::NotAllowed(format!(
            "`{name}` is a file, not a warehouse table: {WHERE_INSTEAD}"
        )));
    }
    if let Some(view) = provider.downcast_ref::<ViewTable>() {
        return check_plan(view.logical_plan());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Parser;

    fn statement(sql: &str) -> Statement {
        let parser = Parser {
            dialect: socle_core::Dialect::default(),
        };
        parser.parse(sql).unwrap().pop().unwrap()
    }

    #[test]
    fn statements_are_let_through_by_kind() {
        for ok in [
            "SELECT 1",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "INSERT INTO t VALUES (1)",
            "CREATE TABLE t AS SELECT 1 AS a",
            "CREATE VIEW v AS SELECT 1 AS a",
            "DROP TABLE t",
            "EXPLAIN SELECT 1",
        ] {
            check_statement(&statement(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, word) in [
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            (
                "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/tmp/x.csv'",
                "EXTERNAL",
            ),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            ("RESET datafusion.execution.batch_size", "RESET"),
            ("BEGIN", "BEGIN"),
        ] {
            let e = check_statement(&statement(bad)).unwrap_err().to_string();
            assert!(e.contains(word) && e.contains("not allowed"), "{bad}: {e}");
            assert!(!e.contains("/tmp/x.csv"), "{e}");
        }
    }
}
