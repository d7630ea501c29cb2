//! `DATE_DIFF` in both spellings, and `TIMESTAMP_DIFF` / `DATETIME_DIFF`.
//!
//! - BigQuery: `DATE_DIFF(end, start, part)`; plain `WEEK` starts on Sunday.
//! - DuckDB / Snowflake / Redshift: `date_diff('part', start, end)` and `datediff(...)`;
//!   `week` is the ISO (Monday) week.
//!
//! Both count the part boundaries crossed between the two values, as those engines do.
//! `TIMESTAMP_DIFF(end, start, part)` counts whole elapsed parts (truncating) for parts up to
//! DAY, as BigQuery does, and boundaries for WEEK and longer.

use std::sync::Arc;

use chrono::Weekday;
use datafusion::arrow::array::{
    Array, ArrayRef, Date32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::date_part::{MICROS_PER_DAY, Part, date_boundaries};
use crate::util::{arity, arrays, as_type, finish, is_date, is_string, is_timestamp, string_at};

const MICROS: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

/// A value on the time line: whole days, or microseconds since the epoch.
#[derive(Clone, Copy)]
enum Instant {
    Day(i32),
    Micros(i64),
}

impl Instant {
    fn micros(self) -> i64 {
        match self {
            Instant::Day(d) => d as i64 * MICROS_PER_DAY,
            Instant::Micros(m) => m,
        }
    }
    fn day(self) -> i32 {
        match self {
            Instant::Day(d) => d,
            Instant::Micros(m) => m.div_euclid(MICROS_PER_DAY) as i32,
        }
    }
}

/// Reads a date or timestamp column as instants.
fn instants(array: &ArrayRef) -> Result<Vec<Option<Instant>>> {
    if is_timestamp(array.data_type()) {
        let a = as_type(array, &MICROS)?;
        let a = a
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .expect("timestamp");
        Ok((0..a.len())
            .map(|i| (!a.is_null(i)).then(|| Instant::Micros(a.value(i))))
            .collect())
    } else {
        let a = as_type(array, &DataType::Date32)?;
        let a = a.as_any().downcast_ref::<Date32Array>().expect("date32");
        Ok((0..a.len())
            .map(|i| (!a.is_null(i)).then(|| Instant::Day(a.value(i))))
            .collect())
    }
}

fn temporal(func: &str, pos: usize, t: &DataType) -> Result<DataType> {
    if is_timestamp(t) {
        Ok(t.clone())
    } else if is_date(t) || is_string(t) || t.is_null() {
        Ok(DataType::Date32)
    } else {
        plan_err!("{func}: argument {pos} must be a DATE or TIMESTAMP, got {t}")
    }
}

/// Counts boundaries of `part` between `start` and `end`.
fn boundaries(func: &str, part: Part, start: Instant, end: Instant) -> Result<i64> {
    if let Some(unit) = part.micros() {
        if matches!((start, end), (Instant::Day(_), Instant::Day(_))) && part != Part::Day {
            return exec_err!("{func}: part {part:?} needs TIMESTAMP arguments, got DATEs");
        }
        return Ok(end.micros().div_euclid(unit) - start.micros().div_euclid(unit));
    }
    Ok(date_boundaries(part, start.day(), end.day()).expect("calendar part"))
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateDiff {
    signature: Signature,
    aliases: Vec<String>,
}

impl DateDiff {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: vec!["datediff".into()],
        }
    }
}

impl ScalarUDFImpl for DateDiff {
    fn name(&self) -> &str {
        "date_diff"
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn coerce_types(&self, t: &[DataType]) -> Result<Vec<DataType>> {
        arity("DATE_DIFF", t, 3, 3)?;
        match (is_string(&t[0]), is_string(&t[2])) {
            // DuckDB form; when both ends are strings the part is decided per row at run time.
            (true, false) => Ok(vec![
                DataType::Utf8,
                temporal("DATE_DIFF", 2, &t[1])?,
                temporal("DATE_DIFF", 3, &t[2])?,
            ]),
            (false, true) => Ok(vec![
                temporal("DATE_DIFF", 1, &t[0])?,
                temporal("DATE_DIFF", 2, &t[1])?,
                DataType::Utf8,
            ]),
            (true, true) => Ok(vec![
                DataType::Utf8,
                temporal("DATE_DIFF", 2, &t[1])?,
                DataType::Utf8,
            ]),
            (false, false) => plan_err!(
                "DATE_DIFF needs a date part: DATE_DIFF(end, start, DAY) (BigQuery) or date_diff('day', start, end) (DuckDB)"
            ),
        }
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (a, scalar) = arrays(&args.args)?;
        let first_is_part = a[0].data_type() == &DataType::Utf8;
        let last_is_part = a[2].data_type() == &DataType::Utf8;
        let middle = instants(&a[1])?;
        let mut out = Vec::with_capacity(middle.len());
        let first_instants = if first_is_part {
            None
        } else {
            Some(instants(&a[0])?)
        };
        let last_instants = if last_is_part {
            None
        } else {
            Some(instants(&a[2])?)
        };
        for (i, start) in middle.iter().enumerate() {
            // Decide the form of this row.
            let duck = first_is_part
                && (!last_is_part
                    || string_at(&a[0], i)
                        .is_some_and(|s| Part::parse("", s, Weekday::Mon).is_ok()));
            let (part_str, end) = if duck {
                let end = match &last_instants {
                    Some(v) => v[i],
                    None => parse_date_string(string_at(&a[2], i))?,
                };
                (string_at(&a[0], i), end)
            } else {
                let end = match &first_instants {
                    Some(v) => v[i],
                    None => parse_date_string(string_at(&a[0], i))?,
                };
                (string_at(&a[2], i), end)
            };
            let (Some(part_str), Some(start), Some(end)) = (part_str, start, end) else {
                out.push(None);
                continue;
            };
            let part = Part::parse(
                "DATE_DIFF",
                part_str,
                if duck { Weekday::Mon } else { Weekday::Sun },
            )?;
            out.push(Some(boundaries("DATE_DIFF", part, *start, end)?));
        }
        finish(Arc::new(Int64Array::from(out)), scalar)
    }
}

fn parse_date_string(s: Option<&str>) -> Result<Option<Instant>> {
    let Some(s) = s else { return Ok(None) };
    let arr: ArrayRef = Arc::new(StringArray::from(vec![s]));
    Ok(instants(&as_type(&arr, &DataType::Date32)?)?[0])
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TimestampDiff {
    signature: Signature,
    aliases: Vec<String>,
}

impl TimestampDiff {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            aliases: vec!["datetime_diff".into()],
        }
    }
}

impl ScalarUDFImpl for TimestampDiff {
    fn name(&self) -> &str {
        "timestamp_diff"
    }
    fn aliases(&self) -> &[String] {
        &self.aliases
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn coerce_types(&self, t: &[DataType]) -> Result<Vec<DataType>> {
        arity("TIMESTAMP_DIFF", t, 3, 3)?;
        let ts = |pos: usize, t: &DataType| -> Result<DataType> {
            if is_timestamp(t) || is_date(t) || is_string(t) || t.is_null() {
                Ok(MICROS)
            } else {
                plan_err!("TIMESTAMP_DIFF: argument {pos} must be a TIMESTAMP, got {t}")
            }
        };
        if !is_string(&t[2]) {
            return plan_err!(
                "TIMESTAMP_DIFF(end, start, part): the third argument is a date part such as SECOND"
            );
        }
        Ok(vec![ts(1, &t[0])?, ts(2, &t[1])?, DataType::Utf8])
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (a, scalar) = arrays(&args.args)?;
        let ends = instants(&a[0])?;
        let starts = instants(&a[1])?;
        let mut out = Vec::with_capacity(ends.len());
        for i in 0..ends.len() {
            let (Some(end), Some(start), Some(p)) = (ends[i], starts[i], string_at(&a[2], i))
            else {
                out.push(None);
                continue;
            };
            let part = Part::parse("TIMESTAMP_DIFF", p, Weekday::Sun)?;
            out.push(Some(match part.micros() {
                // Whole elapsed units, truncated toward zero.
                Some(unit) => (end.micros() - start.micros()) / unit,
                None => boundaries("TIMESTAMP_DIFF", part, start, end)?,
            }));
        }
        finish(Arc::new(Int64Array::from(out)), scalar)
    }
}
