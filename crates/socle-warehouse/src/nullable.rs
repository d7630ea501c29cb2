//! `socle_nullable(x)`: returns `x` unchanged but declares it nullable.
//!
//! Warehouse columns are nullable unless declared `NOT NULL` (as in BigQuery and dbt), but a
//! query's output often claims non-null columns (`SELECT 1 AS x`). Delta records what the
//! first write declares, so later rows with NULLs would be refused. Wrapping the columns of
//! a new table's first write in this function fixes the declared schema at no cost.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Expr, LogicalPlan, LogicalPlanBuilder, ReturnFieldArgs, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Nullable {
    signature: Signature,
}

impl Nullable {
    pub fn udf() -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::from(Self {
            signature: Signature::any(1, Volatility::Immutable),
        }))
    }
}

impl ScalarUDFImpl for Nullable {
    fn name(&self) -> &str {
        "socle_nullable"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        Ok(types[0].clone())
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let f = &args.arg_fields[0];
        Ok(Arc::new(
            Field::new(f.name(), f.data_type().clone(), true).with_metadata(f.metadata().clone()),
        ))
    }
    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(args.args.remove(0))
    }
}

/// Wraps `plan` so every column it outputs is nullable (no-op when they already are).
pub fn make_nullable(plan: LogicalPlan) -> Result<LogicalPlan> {
    if plan.schema().fields().iter().all(|f| f.is_nullable()) {
        return Ok(plan);
    }
    let udf = Nullable::udf();
    let exprs: Vec<Expr> = plan
        .schema()
        .iter()
        .map(|(qualifier, field)| {
            let col = Expr::Column(datafusion::common::Column::new(
                qualifier.cloned(),
                field.name(),
            ));
            if field.is_nullable() {
                col
            } else {
                udf.call(vec![col]).alias(field.name())
            }
        })
        .collect();
    LogicalPlanBuilder::from(plan).project(exprs)?.build()
}
