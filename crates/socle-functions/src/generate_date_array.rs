//! `GENERATE_DATE_ARRAY(start, end[, INTERVAL n unit])` (BigQuery): the dates from `start`
//! to `end` inclusive, one `step` apart (default one day); used with `UNNEST` to build date
//! spines. Steps may be days, weeks, months, quarters or years, and negative.

use std::sync::Arc;

use chrono::Months;
use datafusion::arrow::array::{
    Array, Date32Array, Date32Builder, IntervalMonthDayNanoArray, ListBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, IntervalUnit};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::date_part::{date_of, days_of};
use crate::util::{arity, arrays, as_type, finish, want_date};

/// Refuse to build absurd arrays (a typo in a year) rather than exhaust memory.
const MAX_ELEMENTS: usize = 10_000_000;

const STEP: DataType = DataType::Interval(IntervalUnit::MonthDayNano);

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GenerateDateArray {
    signature: Signature,
}

impl GenerateDateArray {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for GenerateDateArray {
    fn name(&self) -> &str {
        "generate_date_array"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new_list_field(
            DataType::Date32,
            true,
        ))))
    }
    fn coerce_types(&self, t: &[DataType]) -> Result<Vec<DataType>> {
        arity("GENERATE_DATE_ARRAY", t, 2, 3)?;
        let mut out = vec![DataType::Date32, DataType::Date32];
        for (i, ty) in t.iter().take(2).enumerate() {
            if want_date("GENERATE_DATE_ARRAY", i + 1, ty)? != DataType::Date32 {
                return plan_err!(
                    "GENERATE_DATE_ARRAY takes DATE bounds; cast timestamps with DATE(x)"
                );
            }
        }
        if let Some(step) = t.get(2) {
            if !matches!(step, DataType::Interval(_)) && !step.is_null() {
                return plan_err!(
                    "GENERATE_DATE_ARRAY: the step must be an INTERVAL such as INTERVAL 1 WEEK, got {step}"
                );
            }
            out.push(STEP);
        }
        Ok(out)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (a, scalar) = arrays(&args.args)?;
        let starts = as_type(&a[0], &DataType::Date32)?;
        let starts = starts
            .as_any()
            .downcast_ref::<Date32Array>()
            .expect("date32");
        let ends = as_type(&a[1], &DataType::Date32)?;
        let ends = ends.as_any().downcast_ref::<Date32Array>().expect("date32");
        let steps = a.get(2).map(|s| as_type(s, &STEP)).transpose()?;
        let steps = steps.as_ref().map(|s| {
            s.as_any()
                .downcast_ref::<IntervalMonthDayNanoArray>()
                .expect("interval")
        });
        let mut builder = ListBuilder::new(Date32Builder::new());
        for i in 0..starts.len() {
            if starts.is_null(i) || ends.is_null(i) || steps.is_some_and(|s| s.is_null(i)) {
                builder.append(false);
                continue;
            }
            let (months, days, nanos) = match steps {
                Some(s) => {
                    let v = s.value(i);
                    (v.months, v.days, v.nanoseconds)
                }
                None => (0, 1, 0),
            };
            if nanos != 0 || (months != 0 && days != 0) {
                return exec_err!(
                    "GENERATE_DATE_ARRAY: the step must be whole days, weeks, months or years"
                );
            }
            if months == 0 && days == 0 {
                return exec_err!("GENERATE_DATE_ARRAY: the step cannot be zero");
            }
            let (start, end) = (starts.value(i), ends.value(i));
            let forward = months > 0 || days > 0;
            let mut count = 0usize;
            let mut k: i64 = 0;
            loop {
                let current = if months != 0 {
                    let base = date_of(start);
                    let m = (months as i64 * k).unsigned_abs() as u32;
                    let moved = if months > 0 {
                        base.checked_add_months(Months::new(m))
                    } else {
                        base.checked_sub_months(Months::new(m))
                    };
                    match moved {
                        Some(d) => days_of(d),
                        None => break,
                    }
                } else {
                    match (start as i64).checked_add(days as i64 * k) {
                        Some(d) if d >= i32::MIN as i64 && d <= i32::MAX as i64 => d as i32,
                        _ => break,
                    }
                };
                if (forward && current > end) || (!forward && current < end) {
                    break;
                }
                count += 1;
                if count > MAX_ELEMENTS {
                    return exec_err!(
                        "GENERATE_DATE_ARRAY would produce more than {MAX_ELEMENTS} elements"
                    );
                }
                builder.values().append_value(current);
                k += 1;
            }
            builder.append(true);
        }
        finish(Arc::new(builder.finish()), scalar)
    }
}
