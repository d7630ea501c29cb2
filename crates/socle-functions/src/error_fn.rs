//! `ERROR(message)` (BigQuery): fails the query with `message` when it is evaluated, so a
//! data check can stop a pipeline: `CASE WHEN n = 366 THEN 'ok' ELSE ERROR('...') END`.
//! Volatile, so the planner never evaluates it ahead of time for a branch not taken.

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::util::arity;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ErrorFn {
    signature: Signature,
}

impl ErrorFn {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for ErrorFn {
    fn name(&self) -> &str {
        "error"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Null)
    }
    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        arity("ERROR", types, 1, 1)?;
        Ok(vec![DataType::Utf8])
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.number_rows == 0 {
            return Ok(ColumnarValue::Scalar(ScalarValue::Null));
        }
        let message = match &args.args[0] {
            ColumnarValue::Scalar(s) => s.to_string(),
            ColumnarValue::Array(a) => (0..a.len())
                .find(|i| !a.is_null(*i))
                .and_then(|i| ScalarValue::try_from_array(a, i).ok())
                .map(|s| s.to_string())
                .unwrap_or_else(|| "NULL".into()),
        };
        exec_err!("ERROR: {message}")
    }
}
