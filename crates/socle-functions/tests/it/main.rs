//! Fixture tests: one sqllogictest file per function in `tests/fixtures/`, run against a
//! DataFusion session with socle's functions and rewrites, as the warehouse runs them.
//! Regenerate nothing by hand: expected results are written in the files.

use std::path::Path;

use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use sqllogictest::{DBOutput, DefaultColumnType};

struct Db {
    ctx: SessionContext,
}

#[derive(Debug)]
struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Error {}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = Error;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Error> {
        let err = |e: datafusion::error::DataFusionError| Error(e.strip_backtrace());
        let mut stmts = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})
            .map_err(|e| Error(e.to_string()))?;
        let mut stmt = stmts
            .pop_front()
            .ok_or_else(|| Error("empty statement".into()))?;
        if let Statement::Statement(inner) = &mut stmt {
            socle_functions::rewrite::rewrite(inner.as_mut());
        }
        let state = self.ctx.state();
        let plan = state.statement_to_plan(stmt).await.map_err(err)?;
        let df = self.ctx.execute_logical_plan(plan).await.map_err(err)?;
        let width = df.schema().fields().len();
        let batches = df.collect().await.map_err(err)?;
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error(e.to_string()))?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| f.value(row).to_string())
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; width],
            rows,
        })
    }

    async fn shutdown(&mut self) {}
}

fn run_fixture(path: &Path) -> datatest_stable::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut runner = sqllogictest::Runner::new(|| async {
            let mut ctx = SessionContext::new();
            socle_functions::register_all(&mut ctx).map_err(|e| Error(e.to_string()))?;
            Ok(Db { ctx })
        });
        runner.run_file_async(path).await
    })?;
    Ok(())
}

datatest_stable::harness! {
    { test = run_fixture, root = "tests/fixtures", pattern = r"\.slt$" },
}
