//! SQL compatibility for DataFusion: the BigQuery, PostgreSQL and DuckDB functions that dbt
//! projects use, and the syntax rewrites they need.
//!
//! - One module per function (or family sharing one implementation); each is registered
//!   by one line in [`register_all`]. Fixture tests live in `tests/fixtures/<function>.slt`.
//! - [`rewrite`] adapts parsed statements before planning, e.g. turns the bare date part in
//!   `DATE_DIFF(a, b, DAY)` into the string `'DAY'` the functions take.
//!
//! The table of supported functions is in `docs/sql-functions.md`.

mod date_diff;
mod date_part;
mod date_trunc;
mod error_fn;
mod format_time;
mod generate_date_array;
mod regexp;
pub mod rewrite;
mod safe_divide;
mod split;
mod to_hex;
mod util;

use std::sync::Arc;

use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::ScalarUDF;

/// Every compatibility function, built-ins overridden by the same name included.
pub fn all_functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(safe_divide::SafeDivide::new())),
        Arc::new(ScalarUDF::from(regexp::RegexpContains::new())),
        Arc::new(ScalarUDF::from(regexp::RegexpExtract::new())),
        Arc::new(ScalarUDF::from(
            generate_date_array::GenerateDateArray::new(),
        )),
        Arc::new(ScalarUDF::from(date_diff::DateDiff::new())),
        Arc::new(ScalarUDF::from(date_diff::TimestampDiff::new())),
        Arc::new(ScalarUDF::from(date_trunc::DateTrunc::new())),
        Arc::new(ScalarUDF::from(split::Split::new())),
        Arc::new(ScalarUDF::from(format_time::FormatTime::format_date())),
        Arc::new(ScalarUDF::from(format_time::FormatTime::strftime())),
        Arc::new(ScalarUDF::from(to_hex::ToHex::new())),
        Arc::new(ScalarUDF::from(error_fn::ErrorFn::new())),
    ]
}

/// Registers every compatibility function in `registry` (a `SessionContext` or state).
pub fn register_all(registry: &mut dyn FunctionRegistry) -> datafusion::error::Result<()> {
    for f in all_functions() {
        registry.register_udf(f)?;
    }
    Ok(())
}
