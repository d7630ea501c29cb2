//! Helpers shared by the function implementations.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::ColumnarValue;

/// Materializes the arguments as arrays of `number_rows` rows, and tells whether they
/// were all scalars (then the result is a scalar too).
pub fn arrays(args: &[ColumnarValue]) -> Result<(Vec<ArrayRef>, bool)> {
    let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    Ok((ColumnarValue::values_to_arrays(args)?, all_scalar))
}

/// Wraps a result array back into a `ColumnarValue`.
pub fn finish(array: ArrayRef, all_scalar: bool) -> Result<ColumnarValue> {
    if all_scalar && array.len() == 1 {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

/// Casts to `to` (no-op when already that type).
pub fn as_type(array: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    if array.data_type() == to {
        Ok(Arc::clone(array))
    } else {
        Ok(cast(array, to)?)
    }
}

pub fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

pub fn is_integer(t: &DataType) -> bool {
    t.is_integer()
}

pub fn is_timestamp(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(_, _))
}

pub fn is_date(t: &DataType) -> bool {
    matches!(t, DataType::Date32 | DataType::Date64)
}

/// Coerces an argument that must be a string.
pub fn want_string(func: &str, pos: usize, t: &DataType) -> Result<DataType> {
    if is_string(t) || t.is_null() {
        Ok(DataType::Utf8)
    } else {
        plan_err!("{func}: argument {pos} must be a string, got {t}")
    }
}

/// Coerces an argument that must be an integer.
pub fn want_integer(func: &str, pos: usize, t: &DataType) -> Result<DataType> {
    if is_integer(t) || t.is_null() {
        Ok(DataType::Int64)
    } else {
        plan_err!("{func}: argument {pos} must be an integer, got {t}")
    }
}

/// Coerces a date-like argument: dates stay dates, strings become dates.
pub fn want_date(func: &str, pos: usize, t: &DataType) -> Result<DataType> {
    if is_date(t) || is_string(t) || t.is_null() {
        Ok(DataType::Date32)
    } else if is_timestamp(t) {
        Ok(t.clone())
    } else {
        plan_err!("{func}: argument {pos} must be a DATE, got {t}")
    }
}

/// Checks the argument count.
pub fn arity(func: &str, types: &[DataType], min: usize, max: usize) -> Result<()> {
    if types.len() < min || types.len() > max {
        if min == max {
            return plan_err!("{func} takes {min} arguments, got {}", types.len());
        }
        return plan_err!("{func} takes {min} to {max} arguments, got {}", types.len());
    }
    Ok(())
}

/// Reads a scalar string argument of each row (None for NULL).
pub fn string_at(array: &ArrayRef, i: usize) -> Option<&str> {
    let a = array
        .as_any()
        .downcast_ref::<datafusion::arrow::array::StringArray>()?;
    if a.is_null(i) { None } else { Some(a.value(i)) }
}
