//! `DATE_TRUNC` in both spellings, replacing DataFusion's built-in:
//!
//! - PostgreSQL / DuckDB: `date_trunc('month', x)`; `week` is the ISO (Monday) week.
//! - BigQuery: `DATE_TRUNC(x, MONTH)`, `DATE_TRUNC(x, WEEK(MONDAY))`; `WEEK` starts Sunday.
//!
//! A DATE stays a DATE (as in BigQuery and DuckDB); timestamps keep their type and time
//! zone and are truncated by DataFusion's built-in, which this delegates to.

use std::sync::Arc;

use chrono::Weekday;
use datafusion::arrow::array::{Array, ArrayRef, Date32Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use crate::date_part::{MICROS_PER_DAY, Part, trunc_date};
use crate::util::{arity, as_type, is_date, is_string, is_timestamp};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateTrunc {
    signature: Signature,
    aliases: Vec<String>,
}

impl DateTrunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: vec!["datetrunc".into()],
        }
    }
}

fn builtin() -> Arc<ScalarUDF> {
    datafusion::functions::datetime::date_trunc()
}

/// Index of the value argument (the other one is the part).
fn value_index(types: &[DataType]) -> usize {
    if is_string(&types[0]) && !is_string(&types[1]) {
        1
    } else if is_string(&types[1]) {
        0
    } else {
        1
    }
}

impl ScalarUDFImpl for DateTrunc {
    fn name(&self) -> &str {
        "date_trunc"
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, types: &[DataType]) -> Result<DataType> {
        Ok(types[value_index(types)].clone())
    }
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(Arc::new(Field::new(
            self.name(),
            self.return_type(&types)?,
            true,
        )))
    }
    fn coerce_types(&self, t: &[DataType]) -> Result<Vec<DataType>> {
        arity("DATE_TRUNC", t, 2, 2)?;
        let value = |v: &DataType| -> Result<DataType> {
            if is_date(v) {
                Ok(DataType::Date32)
            } else if is_timestamp(v) || matches!(v, DataType::Time32(_) | DataType::Time64(_)) {
                Ok(v.clone())
            } else if is_string(v) || v.is_null() {
                Ok(DataType::Timestamp(TimeUnit::Nanosecond, None))
            } else {
                plan_err!("DATE_TRUNC: cannot truncate a value of type {v}")
            }
        };
        match (is_string(&t[0]), is_string(&t[1])) {
            (true, _) => Ok(vec![DataType::Utf8, value(&t[1])?]),
            (false, true) => Ok(vec![value(&t[0])?, DataType::Utf8]),
            _ => plan_err!(
                "DATE_TRUNC needs a date part: date_trunc('month', x) or DATE_TRUNC(x, MONTH)"
            ),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let types: Vec<DataType> = args.args.iter().map(|a| a.data_type()).collect();
        let vi = value_index(&types);
        let bigquery_form = vi == 0;
        let part_str = match &args.args[1 - vi] {
            ColumnarValue::Scalar(s) => match s {
                ScalarValue::Utf8(Some(p))
                | ScalarValue::LargeUtf8(Some(p))
                | ScalarValue::Utf8View(Some(p)) => p.clone(),
                s if s.is_null() => {
                    return Ok(ColumnarValue::Scalar(ScalarValue::try_from(&types[vi])?));
                }
                _ => return exec_err!("DATE_TRUNC: the date part must be a string"),
            },
            ColumnarValue::Array(_) => {
                return exec_err!("DATE_TRUNC: the date part must be a constant");
            }
        };
        let part = Part::parse(
            "DATE_TRUNC",
            &part_str,
            if bigquery_form {
                Weekday::Sun
            } else {
                Weekday::Mon
            },
        )?;
        let value = args.args[vi].clone();
        if types[vi] == DataType::Date32 {
            return trunc_dates(part, value, args.number_rows);
        }
        // Timestamps and times: DataFusion's built-in, with weeks that start on another
        // day than Monday obtained by shifting into a Monday week and back.
        let (builtin_part, shift_days) = match part {
            Part::Week(wd) => ("week", ((7 - wd.num_days_from_monday()) % 7) as i64),
            Part::IsoYear => {
                return exec_err!("DATE_TRUNC: ISOYEAR is supported on DATE values only");
            }
            Part::Microsecond => ("microsecond", 0),
            Part::Millisecond => ("millisecond", 0),
            Part::Second => ("second", 0),
            Part::Minute => ("minute", 0),
            Part::Hour => ("hour", 0),
            Part::Day => ("day", 0),
            Part::Month => ("month", 0),
            Part::Quarter => ("quarter", 0),
            Part::Year => ("year", 0),
        };
        let value = if shift_days != 0 {
            shift(value, &types[vi], shift_days)?
        } else {
            value
        };
        let f = builtin();
        let out = f.invoke_with_args(ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(builtin_part.into()))),
                value,
            ],
            arg_fields: vec![
                Arc::new(Field::new("part", DataType::Utf8, false)),
                Arc::new(Field::new("value", types[vi].clone(), true)),
            ],
            number_rows: args.number_rows,
            return_field: Arc::new(Field::new("date_trunc", types[vi].clone(), true)),
            config_options: args.config_options.clone(),
        })?;
        if shift_days != 0 {
            shift(out, &types[vi], -shift_days)
        } else {
            Ok(out)
        }
    }
}

fn trunc_dates(part: Part, value: ColumnarValue, rows: usize) -> Result<ColumnarValue> {
    let scalar = matches!(value, ColumnarValue::Scalar(_));
    let array = value.into_array(if scalar { 1 } else { rows })?;
    let dates = array
        .as_any()
        .downcast_ref::<Date32Array>()
        .expect("date32");
    let out: Date32Array = dates
        .iter()
        .map(|d| {
            d.map(|d| {
                if part.micros().is_some() {
                    d
                } else {
                    trunc_date(part, d).unwrap_or(d)
                }
            })
        })
        .collect();
    crate::util::finish(Arc::new(out), scalar)
}

/// Adds `days` days to a timestamp value.
fn shift(value: ColumnarValue, t: &DataType, days: i64) -> Result<ColumnarValue> {
    let DataType::Timestamp(unit, _) = t else {
        return exec_err!("DATE_TRUNC: weeks not starting on Monday need a DATE or TIMESTAMP");
    };
    let per_day = match unit {
        TimeUnit::Second => MICROS_PER_DAY / 1_000_000,
        TimeUnit::Millisecond => MICROS_PER_DAY / 1_000,
        TimeUnit::Microsecond => MICROS_PER_DAY,
        TimeUnit::Nanosecond => MICROS_PER_DAY * 1_000,
    };
    let scalar = matches!(value, ColumnarValue::Scalar(_));
    // A scalar becomes a one-row array; an array is returned as is.
    let array: ArrayRef = value.into_array(1)?;
    let ints = as_type(&array, &DataType::Int64)?;
    let ints = ints
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .expect("int64");
    let moved: datafusion::arrow::array::Int64Array =
        ints.iter().map(|v| v.map(|v| v + days * per_day)).collect();
    let moved: ArrayRef = Arc::new(moved);
    let back = datafusion::arrow::compute::cast(&moved, t)?;
    crate::util::finish(back, scalar)
}
