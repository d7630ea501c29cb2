//! `SPLIT(value[, delimiter])` (BigQuery): an ARRAY of strings; the delimiter defaults to
//! `,`; an empty delimiter splits into characters; an empty value gives `['']`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ListBuilder, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::util::{arity, arrays, as_type, finish, want_string};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Split {
    signature: Signature,
}

impl Split {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Split {
    fn name(&self) -> &str {
        "split"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Utf8,
            true,
        ))))
    }
    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        arity("SPLIT", types, 1, 2)?;
        types
            .iter()
            .enumerate()
            .map(|(i, t)| want_string("SPLIT", i + 1, t))
            .collect()
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (arrays, scalar) = arrays(&args.args)?;
        let values = as_type(&arrays[0], &DataType::Utf8)?;
        let values = values.as_any().downcast_ref::<StringArray>().expect("utf8");
        let delims = arrays
            .get(1)
            .map(|d| as_type(d, &DataType::Utf8))
            .transpose()?;
        let delims = delims
            .as_ref()
            .map(|d| d.as_any().downcast_ref::<StringArray>().expect("utf8"));
        let mut builder = ListBuilder::new(StringBuilder::new());
        for i in 0..values.len() {
            let delim = match delims {
                Some(d) if d.is_null(i) => None,
                Some(d) => Some(d.value(i)),
                None => Some(","),
            };
            match (values.is_null(i), delim) {
                (false, Some(delim)) => {
                    let v = values.value(i);
                    if delim.is_empty() {
                        if v.is_empty() {
                            builder.values().append_value("");
                        }
                        for c in v.chars() {
                            builder.values().append_value(c.to_string());
                        }
                    } else {
                        for part in v.split(delim) {
                            builder.values().append_value(part);
                        }
                    }
                    builder.append(true);
                }
                _ => builder.append(false),
            }
        }
        finish(Arc::new(builder.finish()), scalar)
    }
}
