//! Formatting dates and timestamps with strftime-style patterns:
//!
//! - BigQuery: `FORMAT_DATE(format, date)`, also `FORMAT_DATETIME` and `FORMAT_TIMESTAMP`
//!   (timestamps are formatted in UTC);
//! - DuckDB: `strftime(value, format)`.
//!
//! Patterns follow chrono's strftime (`%Y-%m-%d`, `%A`, `%b`, `%j`, `%U`, ...), plus `%Q`
//! for the quarter (1-4) as BigQuery has it. An invalid pattern is an error, not garbage.

use std::fmt::Write;
use std::sync::Arc;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Datelike, NaiveDateTime};
use datafusion::arrow::array::{Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::util::{arity, arrays, as_type, finish, is_date, is_string, is_timestamp, string_at};

const MICROS: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FormatTime {
    signature: Signature,
    name: &'static str,
    aliases: Vec<String>,
    /// Position of the format argument (0 for BigQuery, 1 for DuckDB).
    format_pos: usize,
}

impl FormatTime {
    pub fn format_date() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            name: "format_date",
            aliases: vec!["format_datetime".into(), "format_timestamp".into()],
            format_pos: 0,
        }
    }
    pub fn strftime() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            name: "strftime",
            aliases: vec![],
            format_pos: 1,
        }
    }
}

impl ScalarUDFImpl for FormatTime {
    fn name(&self) -> &str {
        self.name
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
    fn coerce_types(&self, t: &[DataType]) -> Result<Vec<DataType>> {
        let fname = self.name.to_ascii_uppercase();
        arity(&fname, t, 2, 2)?;
        let vp = 1 - self.format_pos;
        let mut out = vec![DataType::Utf8, DataType::Utf8];
        if !is_string(&t[self.format_pos]) && !t[self.format_pos].is_null() {
            return plan_err!(
                "{fname}: the format must be a string, got {}",
                t[self.format_pos]
            );
        }
        out[vp] = if is_timestamp(&t[vp]) || is_date(&t[vp]) || is_string(&t[vp]) || t[vp].is_null()
        {
            MICROS
        } else {
            return plan_err!("{fname}: cannot format a value of type {}", t[vp]);
        };
        Ok(out)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (a, scalar) = arrays(&args.args)?;
        let values = as_type(&a[1 - self.format_pos], &MICROS)?;
        let values = values
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .expect("timestamp");
        let mut cache: Option<(String, Vec<Item<'static>>)> = None;
        let mut out = Vec::with_capacity(values.len());
        for i in 0..values.len() {
            let (Some(fmt), false) = (string_at(&a[self.format_pos], i), values.is_null(i)) else {
                out.push(None);
                continue;
            };
            if !matches!(&cache, Some((f, _)) if f == fmt) {
                cache = Some((fmt.to_string(), parse_format(self.name, fmt)?));
            }
            let items = &cache.as_ref().expect("set").1;
            let Some(dt) = DateTime::from_timestamp_micros(values.value(i)).map(|d| d.naive_utc())
            else {
                return exec_err!("{}: timestamp out of range", self.name);
            };
            out.push(Some(render(&dt, items)));
        }
        finish(Arc::new(StringArray::from(out)), scalar)
    }
}

/// Parses a pattern once, with `%Q` kept as a literal marker to fill in per value.
fn parse_format(func: &str, fmt: &str) -> Result<Vec<Item<'static>>> {
    let mut items = Vec::new();
    for piece in fmt.split("%Q").enumerate().flat_map(|(i, p)| {
        let marker = if i == 0 {
            None
        } else {
            Some(Item::Literal("\u{0}Q"))
        };
        marker.into_iter().map(Ok).chain(std::iter::once(Err(p)))
    }) {
        match piece {
            Ok(marker) => items.push(marker),
            Err(text) => {
                for item in StrftimeItems::new(text) {
                    match item {
                        Item::Error => return exec_err!("{func}: invalid format string '{fmt}'"),
                        other => items.push(other.to_owned()),
                    }
                }
            }
        }
    }
    Ok(items)
}

fn render(dt: &NaiveDateTime, items: &[Item<'static>]) -> String {
    let mut s = String::new();
    for item in items {
        if matches!(item, Item::Literal("\u{0}Q")) {
            let _ = write!(s, "{}", dt.month0() / 3 + 1);
        } else {
            let _ = write!(s, "{}", dt.format_with_items(std::iter::once(item.clone())));
        }
    }
    s
}
