//! `SAFE_DIVIDE(x, y)` (BigQuery): `x / y` as FLOAT64, NULL when `y` is 0 or NULL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::util::{arity, arrays, as_type, finish};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SafeDivide {
    signature: Signature,
}

impl SafeDivide {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for SafeDivide {
    fn name(&self) -> &str {
        "safe_divide"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        arity("SAFE_DIVIDE", types, 2, 2)?;
        types
            .iter()
            .map(|t| {
                if t.is_numeric() || t.is_null() {
                    Ok(DataType::Float64)
                } else {
                    plan_err!("SAFE_DIVIDE takes numbers, got {t}")
                }
            })
            .collect()
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (arrays, scalar) = arrays(&args.args)?;
        let x = as_type(&arrays[0], &DataType::Float64)?;
        let y = as_type(&arrays[1], &DataType::Float64)?;
        let x = x.as_any().downcast_ref::<Float64Array>().expect("float64");
        let y = y.as_any().downcast_ref::<Float64Array>().expect("float64");
        let out: Float64Array = (0..x.len())
            .map(|i| {
                if x.is_null(i) || y.is_null(i) || y.value(i) == 0.0 {
                    None
                } else {
                    Some(x.value(i) / y.value(i))
                }
            })
            .collect();
        finish(Arc::new(out), scalar)
    }
}
