//! Queries that can only read the warehouse: what the server runs for callers who may not
//! write. One `SELECT`/`WITH` query; every table it scans must be a warehouse table, a view
//! over them or `information_schema` — never a file path on the server's disk, which the
//! interactive `socle sql` allows (`SELECT * FROM 'data/orders.csv'`). The plan is held to
//! [`guard::check_plan`] whatever the warehouse's [`crate::Access`].

use datafusion::prelude::DataFrame;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

use crate::error::{Result, WarehouseError};
use crate::{Warehouse, guard};

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
        guard::check_plan(&plan)?;
        self.ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| WarehouseError::from_datafusion(e, sql))
    }
}
