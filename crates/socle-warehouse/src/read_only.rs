//! Queries that can only read the warehouse: what the server runs for callers who may not
//! write. One `SELECT`/`WITH` query; every table it scans must be a warehouse table, a view
//! over them or `information_schema` — never a file path on the server's disk, which the
//! interactive `socle sql` allows (`SELECT * FROM 'data/orders.csv'`).

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::DataFrame;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::Warehouse;
use crate::error::{Result, WarehouseError};

/// Whether a parsed statement is a plain query (reads only).
pub fn is_query(statement: &Statement) -> bool {
    matches!(statement, Statement::Statement(s) if matches!(s.as_ref(), SqlStatement::Query(_)))
}

impl Warehouse {
    /// Plans `sql`, which must be one query reading warehouse relations only, and returns
    /// its rows to stream. Anything else is refused with a message saying why.
    pub async fn read_query(&self, sql: &str) -> Result<DataFrame> {
        let mut prepared = self.parse(sql)?;
        let Some(one) = prepared.pop().filter(|_| prepared.is_empty()) else {
            return Err(WarehouseError::Unsupported(
                "send one statement at a time".into(),
            ));
        };
        if !is_query(&one.statement) {
            return Err(WarehouseError::Unsupported(
                "only queries (SELECT or WITH) may run here: this role cannot change data".into(),
            ));
        }
        let plan = self
            .ctx
            .state()
            .statement_to_plan(one.statement)
            .await
            .map_err(|e| WarehouseError::from_datafusion(e, sql))?;
        check_scans(&plan)?;
        self.ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| WarehouseError::from_datafusion(e, sql))
    }
}

/// Refuses scans of files (listing tables), including inside sub-queries.
fn check_scans(plan: &LogicalPlan) -> Result<()> {
    let mut bad: Option<String> = None;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && provider.is::<ListingTable>()
        {
            bad = Some(scan.table_name.to_string());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    match bad {
        Some(name) => Err(WarehouseError::Unsupported(format!(
            "`{name}` is a file, not a warehouse table: queries here read warehouse tables only"
        ))),
        None => Ok(()),
    }
}
