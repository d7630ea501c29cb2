//! `sql`: statements run on the warehouse, written inline or in a file (both templated).
//!
//! ```yaml
//! report:
//!   kind: sql
//!   file: jobs/report.sql            # relative to the project folder
//! cleanup:
//!   kind: sql
//!   sql: "DELETE FROM raw.events WHERE day < DATE '{{ macros.ds_add(ds, -90) }}'"
//! ```

use socle_warehouse::Executed;

use super::{Fields, Kind, TaskContext, TaskFailure};
use crate::pipeline::TaskSpec;

/// A `sql` task's own fields.
#[derive(Debug, Clone)]
pub struct Sql {
    pub sql: Option<String>,
    pub file: Option<String>,
}

impl Kind for Sql {
    const NAME: &'static str = "sql";
    const FIELDS: &'static [&'static str] = &["sql", "file"];

    fn parse(f: &mut Fields) -> Self {
        Self {
            sql: f.value("sql"),
            file: f.value("file"),
        }
    }

    fn templates(&self) -> Vec<String> {
        self.sql.iter().chain(&self.file).cloned().collect()
    }

    fn uses_warehouse(&self) -> bool {
        true
    }

    fn check(&self) -> Result<(), String> {
        match (&self.sql, &self.file) {
            (Some(_), Some(_)) => Err("give `sql` or `file`, not both".into()),
            (None, None) => {
                Err("a `sql` task needs `sql` (statements) or `file` (a .sql file)".into())
            }
            _ => Ok(()),
        }
    }

    async fn run(&self, _spec: &TaskSpec, ctx: &TaskContext) -> Result<String, TaskFailure> {
        let text = match (&self.sql, &self.file) {
            (Some(sql), _) => ctx.render(sql)?,
            (None, Some(file)) => {
                let path = ctx.project.root.join(ctx.render(file)?);
                let raw = std::fs::read_to_string(&path).map_err(|e| {
                    TaskFailure::new(format!("cannot read {}: {e}", path.display()))
                })?;
                ctx.render(&raw)?
            }
            (None, None) => unreachable!("checked"),
        };
        let results = ctx
            .warehouse()
            .await?
            .execute(&text)
            .await
            .map_err(|e| TaskFailure::new(e.to_string()))?;
        let mut rows_total = 0usize;
        for (i, r) in results.iter().enumerate() {
            match r {
                Executed::Rows(batches) => {
                    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                    rows_total += rows;
                    ctx.log.line(&format!("statement {}: {rows} rows", i + 1));
                }
                Executed::Done(msg) => ctx.log.line(&format!("statement {}: {msg}", i + 1)),
            }
        }
        Ok(format!(
            "{} statements, {rows_total} rows returned",
            results.len()
        ))
    }
}
