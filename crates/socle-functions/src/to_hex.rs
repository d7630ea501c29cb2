//! `TO_HEX(x)`: lowercase hexadecimal of BYTES (BigQuery, so `TO_HEX(SHA256(name))` works)
//! or of an integer (DataFusion's and PostgreSQL's `to_hex`). Replaces the built-in, which
//! takes integers only.

use std::fmt::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, BinaryArray, Int64Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::util::{arity, arrays, as_type, finish};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToHex {
    signature: Signature,
}

impl ToHex {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ToHex {
    fn name(&self) -> &str {
        "to_hex"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        arity("TO_HEX", types, 1, 1)?;
        match &types[0] {
            DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::FixedSizeBinary(_) => Ok(vec![DataType::Binary]),
            t if t.is_integer() || t.is_null() => Ok(vec![DataType::Int64]),
            t => plan_err!("TO_HEX takes BYTES or an integer, got {t}"),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (arrays, scalar) = arrays(&args.args)?;
        let out: StringArray = if arrays[0].data_type() == &DataType::Int64 {
            let a = arrays[0]
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("int64");
            (0..a.len())
                .map(|i| (!a.is_null(i)).then(|| format!("{:x}", a.value(i))))
                .collect()
        } else {
            let a = as_type(&arrays[0], &DataType::Binary)?;
            let a = a.as_any().downcast_ref::<BinaryArray>().expect("binary");
            (0..a.len())
                .map(|i| {
                    (!a.is_null(i)).then(|| {
                        let bytes = a.value(i);
                        let mut s = String::with_capacity(bytes.len() * 2);
                        for b in bytes {
                            let _ = write!(s, "{b:02x}");
                        }
                        s
                    })
                })
                .collect()
        };
        finish(Arc::new(out), scalar)
    }
}
