//! `REGEXP_CONTAINS(value, regex)` and `REGEXP_EXTRACT(value, regex[, position[, occurrence]])`
//! (BigQuery; RE2 syntax, which the `regex` crate follows).
//!
//! `REGEXP_EXTRACT` returns the first capturing group when the pattern has one, else the
//! whole match; NULL when nothing matches. A pattern with more than one group is an error.

use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray, Int64Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use regex::Regex;

use crate::util::{arity, arrays, as_type, finish, want_integer, want_string};

/// Compiles patterns once per batch when the pattern is the same on every row.
struct Patterns {
    last: Option<(String, Regex)>,
    func: &'static str,
}

impl Patterns {
    fn new(func: &'static str) -> Self {
        Self { last: None, func }
    }
    fn get(&mut self, pattern: &str) -> Result<&Regex> {
        let stale = !matches!(&self.last, Some((p, _)) if p == pattern);
        if stale {
            match Regex::new(pattern) {
                Ok(re) => self.last = Some((pattern.to_string(), re)),
                Err(e) => {
                    return exec_err!("{}: invalid regular expression '{pattern}': {e}", self.func);
                }
            }
        }
        Ok(&self.last.as_ref().expect("set above").1)
    }
}

fn strings(arrays: &[datafusion::arrow::array::ArrayRef], i: usize) -> Result<StringArray> {
    let a = as_type(&arrays[i], &DataType::Utf8)?;
    Ok(a.as_any()
        .downcast_ref::<StringArray>()
        .expect("utf8")
        .clone())
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RegexpContains {
    signature: Signature,
}

impl RegexpContains {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for RegexpContains {
    fn name(&self) -> &str {
        "regexp_contains"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        arity("REGEXP_CONTAINS", types, 2, 2)?;
        types
            .iter()
            .enumerate()
            .map(|(i, t)| want_string("REGEXP_CONTAINS", i + 1, t))
            .collect()
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (arrays, scalar) = arrays(&args.args)?;
        let values = strings(&arrays, 0)?;
        let patterns = strings(&arrays, 1)?;
        let mut cache = Patterns::new("REGEXP_CONTAINS");
        let mut out = Vec::with_capacity(values.len());
        for i in 0..values.len() {
            if values.is_null(i) || patterns.is_null(i) {
                out.push(None);
            } else {
                out.push(Some(
                    cache.get(patterns.value(i))?.is_match(values.value(i)),
                ));
            }
        }
        finish(Arc::new(BooleanArray::from(out)), scalar)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RegexpExtract {
    signature: Signature,
    aliases: Vec<String>,
}

impl RegexpExtract {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: vec!["regexp_substr".into()],
        }
    }
}

impl ScalarUDFImpl for RegexpExtract {
    fn name(&self) -> &str {
        "regexp_extract"
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn coerce_types(&self, types: &[DataType]) -> Result<Vec<DataType>> {
        arity("REGEXP_EXTRACT", types, 2, 4)?;
        types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if i < 2 {
                    want_string("REGEXP_EXTRACT", i + 1, t)
                } else {
                    want_integer("REGEXP_EXTRACT", i + 1, t)
                }
            })
            .collect()
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (arrays, scalar) = arrays(&args.args)?;
        let values = strings(&arrays, 0)?;
        let patterns = strings(&arrays, 1)?;
        let int_arg = |i: usize| -> Result<Option<Int64Array>> {
            match arrays.get(i) {
                None => Ok(None),
                Some(a) => {
                    let a = as_type(a, &DataType::Int64)?;
                    Ok(Some(
                        a.as_any()
                            .downcast_ref::<Int64Array>()
                            .expect("int64")
                            .clone(),
                    ))
                }
            }
        };
        let positions = int_arg(2)?;
        let occurrences = int_arg(3)?;
        let mut cache = Patterns::new("REGEXP_EXTRACT");
        let mut out: Vec<Option<String>> = Vec::with_capacity(values.len());
        for i in 0..values.len() {
            let null_int = |a: &Option<Int64Array>| a.as_ref().is_some_and(|a| a.is_null(i));
            if values.is_null(i)
                || patterns.is_null(i)
                || null_int(&positions)
                || null_int(&occurrences)
            {
                out.push(None);
                continue;
            }
            let position = positions.as_ref().map_or(1, |a| a.value(i));
            let occurrence = occurrences.as_ref().map_or(1, |a| a.value(i));
            if position < 1 {
                return exec_err!("REGEXP_EXTRACT: position must be at least 1, got {position}");
            }
            if occurrence < 1 {
                return exec_err!(
                    "REGEXP_EXTRACT: occurrence must be at least 1, got {occurrence}"
                );
            }
            let re = cache.get(patterns.value(i))?;
            let groups = re.captures_len() - 1;
            if groups > 1 {
                return exec_err!(
                    "REGEXP_EXTRACT: the regular expression may have at most one capturing group, it has {groups}"
                );
            }
            let value = values.value(i);
            let start = value
                .char_indices()
                .nth(position as usize - 1)
                .map(|(b, _)| b);
            let found = start.and_then(|start| {
                re.captures_iter(&value[start..])
                    .nth(occurrence as usize - 1)
                    .map(|c| {
                        let m = if groups == 1 { c.get(1) } else { c.get(0) };
                        m.map(|m| m.as_str().to_string())
                    })
            });
            out.push(found.flatten());
        }
        finish(Arc::new(StringArray::from(out)), scalar)
    }
}
