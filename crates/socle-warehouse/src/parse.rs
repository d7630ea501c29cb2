//! Turning SQL text into statements: time travel clauses, the configured dialect, and
//! socle's compatibility rewrites, in that order. Errors keep positions in the user's text.

use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::dialect::{Dialect, dialect_from_str};
use socle_core::Dialect as DialectName;

use crate::error::{Result, WarehouseError, parser_position};

#[derive(Debug, Clone, Copy)]
pub struct Parser {
    pub dialect: DialectName,
}

impl Parser {
    fn dialect(&self) -> Box<dyn Dialect> {
        dialect_from_str(self.dialect.datafusion_name()).expect("known dialect")
    }

    /// The identifier quote of the dialect (for generated names).
    fn quote(&self) -> char {
        match self.dialect {
            DialectName::Bigquery | DialectName::Mysql => '`',
            _ => '"',
        }
    }

    /// Parses every statement of `sql`.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>> {
        let dialect = self.dialect();
        let text = crate::time_travel::rewrite(sql, dialect.as_ref(), self.quote())
            .map_err(|m| WarehouseError::sql(m, sql, None))?;
        let statements =
            DFParser::parse_sql_with_dialect(&text, dialect.as_ref()).map_err(|e| {
                let msg = e.strip_backtrace();
                let position = parser_position(&msg);
                WarehouseError::from_datafusion(e, sql).with_position_if_missing(position)
            })?;
        Ok(statements.into_iter().map(rewrite).collect())
    }

    /// Parses exactly one statement.
    pub fn parse_one(&self, sql: &str) -> Result<Statement> {
        let mut all = self.parse(sql)?;
        match all.len() {
            1 => Ok(all.remove(0)),
            0 => Err(WarehouseError::sql("no SQL statement", sql, None)),
            n => Err(WarehouseError::sql(
                format!("expected one statement, found {n}"),
                sql,
                None,
            )),
        }
    }
}

fn rewrite(mut stmt: Statement) -> Statement {
    match &mut stmt {
        Statement::Statement(inner) => socle_functions::rewrite::rewrite(inner.as_mut()),
        Statement::Explain(explain) => {
            let inner = std::mem::replace(
                &mut *explain.statement,
                Statement::Statement(Box::new(empty())),
            );
            *explain.statement = rewrite(inner);
        }
        Statement::CopyTo(copy) => {
            if let datafusion::sql::parser::CopyToSource::Query(q) = &mut copy.source {
                socle_functions::rewrite::rewrite(q.as_mut());
            }
        }
        _ => {}
    }
    stmt
}

fn empty() -> datafusion::sql::sqlparser::ast::Statement {
    datafusion::sql::sqlparser::ast::Statement::Commit {
        chain: false,
        end: false,
        modifier: None,
    }
}
