//! Type inference for untyped input (CSV cells, JSON values) and the builders that turn
//! values into Arrow columns.
//!
//! The rules (documented in `docs/sources.md`):
//! - empty text (and the configured null markers) is NULL;
//! - `true` / `false` (any case) is BOOLEAN;
//! - an integer without leading zeros that fits 64 bits is BIGINT (`007` stays text: it is
//!   an identifier, not a number);
//! - any other decimal or exponent number is DOUBLE;
//! - `YYYY-MM-DD` is DATE; an ISO 8601 / RFC 3339 date-time (`T` or space, optional
//!   fraction, `Z` or an offset; none means UTC) is TIMESTAMP (microseconds, UTC);
//! - everything else is STRING.
//!
//! Two kinds meet at their join: BIGINT + DOUBLE is DOUBLE, DATE + TIMESTAMP is TIMESTAMP,
//! NULL + anything is that thing; any other pair is a type conflict, settled by the
//! stream's `on_type_conflict` policy (STRING, or fail).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// The kind of a value, as inferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Null,
    Bool,
    Int,
    Float,
    Date,
    Timestamp,
    String,
}

impl Kind {
    /// The join of two kinds, or None when they conflict.
    pub fn join(self, other: Kind) -> Option<Kind> {
        use Kind::*;
        match (self, other) {
            (a, b) if a == b => Some(a),
            (Null, x) | (x, Null) => Some(x),
            (Int, Float) | (Float, Int) => Some(Float),
            (Date, Timestamp) | (Timestamp, Date) => Some(Timestamp),
            _ => None,
        }
    }

    /// The join, with conflicts settled as text.
    pub fn join_or_string(self, other: Kind) -> Kind {
        self.join(other).unwrap_or(Kind::String)
    }

    pub fn data_type(self) -> DataType {
        match self {
            Kind::Null | Kind::String => DataType::Utf8,
            Kind::Bool => DataType::Boolean,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => timestamp_type(),
        }
    }

    pub fn sql_name(self) -> &'static str {
        match self {
            Kind::Null | Kind::String => "STRING",
            Kind::Bool => "BOOLEAN",
            Kind::Int => "BIGINT",
            Kind::Float => "DOUBLE",
            Kind::Date => "DATE",
            Kind::Timestamp => "TIMESTAMP",
        }
    }

    /// The kind of an Arrow type (None for types inference never produces).
    pub fn of_type(t: &DataType) -> Option<Kind> {
        Some(match t {
            DataType::Null => Kind::Null,
            DataType::Boolean => Kind::Bool,
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Kind::Int,
            DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => Kind::Int,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => Kind::Float,
            DataType::Date32 | DataType::Date64 => Kind::Date,
            DataType::Timestamp(_, _) => Kind::Timestamp,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::String,
            _ => return None,
        })
    }
}

/// Timestamps are stored as microseconds in UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
}

/// The Arrow type of a `columns:` declaration (validated against
/// [`crate::config::COLUMN_TYPES`] when the source file was read).
pub fn declared_kind(sql: &str) -> Kind {
    let base = sql.trim().to_ascii_lowercase();
    match base.split('(').next().unwrap_or("").trim() {
        "bigint" | "int" | "integer" => Kind::Int,
        "double" | "float" | "decimal" => Kind::Float,
        "boolean" | "bool" => Kind::Bool,
        "date" => Kind::Date,
        "timestamp" | "timestamptz" => Kind::Timestamp,
        _ => Kind::String,
    }
}

fn is_int(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits.len() == 1 || !digits.starts_with('0'))
        && s.parse::<i64>().is_ok()
}

fn is_float(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b.iter().any(u8::is_ascii_digit) {
        return false;
    }
    // Plain decimal notation only: `1.5`, `-0.25`, `1e-3`, `.5`; no `inf`, `NaN`, hex.
    if !b
        .iter()
        .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E'))
    {
        return false;
    }
    let digits = s.trim_start_matches(['-', '+']);
    // `0123.5` keeps its leading zero: an identifier more likely than a number.
    if digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0.") {
        return false;
    }
    s.parse::<f64>().is_ok_and(f64::is_finite)
}

/// Days since the Unix epoch of a `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<i32> {
    if s.len() != 10 || s.as_bytes()[4] != b'-' || s.as_bytes()[7] != b'-' {
        return None;
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some((d - NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days() as i32)
}

/// Microseconds since the Unix epoch (UTC) of an ISO 8601 date-time.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 16 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(&s.replacen(' ', "T", 1)) {
        return Some(t.timestamp_micros());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.timestamp_micros());
        }
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    None
}

/// The kind of a text value (the caller has already mapped null markers to None).
pub fn classify(s: &str) -> Kind {
    if s.is_empty() {
        return Kind::Null;
    }
    let first = s.as_bytes()[0];
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        if is_int(s) {
            return Kind::Int;
        }
        if parse_date(s).is_some() {
            return Kind::Date;
        }
        if parse_timestamp(s).is_some() {
            return Kind::Timestamp;
        }
        if is_float(s) {
            return Kind::Float;
        }
        return Kind::String;
    }
    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") {
        return Kind::Bool;
    }
    Kind::String
}

/// The kind of a JSON value (objects and arrays are stored as JSON text).
pub fn classify_json(v: &serde_json::Value) -> Kind {
    use serde_json::Value;
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_i64() => Kind::Int,
        Value::Number(_) => Kind::Float,
        Value::String(s) => match classify(s) {
            // Numbers inside strings stay strings: the API chose to quote them.
            Kind::Date => Kind::Date,
            Kind::Timestamp => Kind::Timestamp,
            Kind::Null => Kind::String,
            _ => Kind::String,
        },
        Value::Array(_) | Value::Object(_) => Kind::String,
    }
}

/// Builds one Arrow column of a given kind from text or JSON values.
pub enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    String(StringBuilder),
}

impl ColumnBuilder {
    pub fn new(kind: Kind, capacity: usize) -> Self {
        match kind {
            Kind::Bool => Self::Bool(BooleanBuilder::with_capacity(capacity)),
            Kind::Int => Self::Int(Int64Builder::with_capacity(capacity)),
            Kind::Float => Self::Float(Float64Builder::with_capacity(capacity)),
            Kind::Date => Self::Date(Date32Builder::with_capacity(capacity)),
            Kind::Timestamp => Self::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"),
            ),
            Kind::Null | Kind::String => {
                Self::String(StringBuilder::with_capacity(capacity, capacity * 8))
            }
        }
    }

    pub fn append_null(&mut self) {
        match self {
            Self::Bool(b) => b.append_null(),
            Self::Int(b) => b.append_null(),
            Self::Float(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::String(b) => b.append_null(),
        }
    }

    /// Appends a value checked by [`parse_text`] or [`parse_json`].
    pub fn append(&mut self, v: Parsed<'_>) {
        match (self, v) {
            (b, Parsed::Null) => b.append_null(),
            (Self::Bool(b), Parsed::Bool(x)) => b.append_value(x),
            (Self::Int(b), Parsed::Int(x)) => b.append_value(x),
            (Self::Float(b), Parsed::Float(x)) => b.append_value(x),
            (Self::Float(b), Parsed::Int(x)) => b.append_value(x as f64),
            (Self::Date(b), Parsed::Date(x)) => b.append_value(x),
            (Self::Timestamp(b), Parsed::Timestamp(x)) => b.append_value(x),
            (Self::Timestamp(b), Parsed::Date(x)) => b.append_value(x as i64 * 86_400_000_000),
            (Self::String(b), Parsed::Str(x)) => b.append_value(x),
            (Self::String(b), Parsed::Owned(x)) => b.append_value(x),
            (b, other) => unreachable!("{other:?} parsed for a {:?} column", b.kind()),
        }
    }

    /// Parses and appends a text value; the error says why it does not fit.
    pub fn append_text(&mut self, s: &str) -> Result<(), String> {
        let v = parse_text(self.kind(), s)?;
        self.append(v);
        Ok(())
    }

    pub fn kind(&self) -> Kind {
        match self {
            Self::Bool(_) => Kind::Bool,
            Self::Int(_) => Kind::Int,
            Self::Float(_) => Kind::Float,
            Self::Date(_) => Kind::Date,
            Self::Timestamp(_) => Kind::Timestamp,
            Self::String(_) => Kind::String,
        }
    }

    pub fn len(&self) -> usize {
        use datafusion::arrow::array::ArrayBuilder;
        match self {
            Self::Bool(b) => b.len(),
            Self::Int(b) => b.len(),
            Self::Float(b) => b.len(),
            Self::Date(b) => b.len(),
            Self::Timestamp(b) => b.len(),
            Self::String(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Int(b) => Arc::new(b.finish()),
            Self::Float(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::String(b) => Arc::new(b.finish()),
        }
    }
}

/// A value checked against a column kind, ready to append.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Date(i32),
    Timestamp(i64),
    Str(&'a str),
    Owned(String),
}

/// Parses text as a value of `kind`; the error says why it does not fit.
pub fn parse_text(kind: Kind, s: &str) -> Result<Parsed<'_>, String> {
    let bad = |what: &str| Err(format!("`{}` is not {what}", excerpt(s, 60)));
    Ok(match kind {
        Kind::Null | Kind::String => Parsed::Str(s),
        Kind::Int => match s.parse::<i64>() {
            Ok(v) => Parsed::Int(v),
            Err(_) => return bad("an integer"),
        },
        Kind::Float => match s.parse::<f64>() {
            Ok(v) if v.is_finite() || s.eq_ignore_ascii_case("nan") => Parsed::Float(v),
            _ => return bad("a number"),
        },
        Kind::Bool => {
            if s.eq_ignore_ascii_case("true") {
                Parsed::Bool(true)
            } else if s.eq_ignore_ascii_case("false") {
                Parsed::Bool(false)
            } else {
                return bad("a boolean (true or false)");
            }
        }
        Kind::Date => match parse_date(s) {
            Some(v) => Parsed::Date(v),
            None => return bad("a date (YYYY-MM-DD)"),
        },
        Kind::Timestamp => match parse_timestamp(s) {
            Some(v) => Parsed::Timestamp(v),
            None => match parse_date(s) {
                Some(d) => Parsed::Date(d),
                None => return bad("a timestamp (ISO 8601)"),
            },
        },
    })
}

/// Checks a JSON value against a column kind (objects and arrays become JSON text in
/// STRING columns; numbers fit STRING columns as their text).
pub fn parse_json(kind: Kind, v: &serde_json::Value) -> Result<Parsed<'_>, String> {
    use serde_json::Value;
    Ok(match (kind, v) {
        (_, Value::Null) => Parsed::Null,
        (Kind::Bool, Value::Bool(x)) => Parsed::Bool(*x),
        (Kind::Int, Value::Number(n)) if n.is_i64() => Parsed::Int(n.as_i64().unwrap_or(0)),
        (Kind::Float, Value::Number(n)) => Parsed::Float(n.as_f64().unwrap_or(f64::NAN)),
        (Kind::String | Kind::Null, Value::String(s)) => Parsed::Str(s),
        (Kind::String | Kind::Null, other) => Parsed::Owned(other.to_string()),
        (Kind::Date | Kind::Timestamp, Value::String(s)) => parse_text(kind, s)?,
        (Kind::Int | Kind::Float | Kind::Bool, Value::String(s)) => match parse_text(kind, s)? {
            // A quoted number in a numeric column (declared, or joined with real numbers).
            p @ (Parsed::Int(_) | Parsed::Float(_) | Parsed::Bool(_)) => p,
            _ => unreachable!(),
        },
        (kind, other) => {
            return Err(format!(
                "`{}` does not fit a {} column",
                excerpt(&other.to_string(), 60),
                kind.sql_name()
            ));
        }
    })
}

/// The first `max` characters of `s`, with `…` when cut.
pub fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_text() {
        assert_eq!(classify("42"), Kind::Int);
        assert_eq!(classify("-7"), Kind::Int);
        assert_eq!(classify("007"), Kind::String);
        assert_eq!(classify("0"), Kind::Int);
        assert_eq!(classify("3.25"), Kind::Float);
        assert_eq!(classify("0.5"), Kind::Float);
        assert_eq!(classify("1e-3"), Kind::Float);
        assert_eq!(classify("99999999999999999999"), Kind::Float);
        assert_eq!(classify("inf"), Kind::String);
        assert_eq!(classify("TRUE"), Kind::Bool);
        assert_eq!(classify("2024-06-01"), Kind::Date);
        assert_eq!(classify("2024-13-01"), Kind::String);
        assert_eq!(classify("2024-06-01T10:00:00Z"), Kind::Timestamp);
        assert_eq!(classify("2024-06-01 10:00:00.123"), Kind::Timestamp);
        assert_eq!(classify("2024-06-01T10:00:00+02:00"), Kind::Timestamp);
        assert_eq!(classify("12 rue de la Paix"), Kind::String);
        assert_eq!(classify(""), Kind::Null);
    }

    #[test]
    fn joins() {
        assert_eq!(Kind::Int.join(Kind::Float), Some(Kind::Float));
        assert_eq!(Kind::Null.join(Kind::Date), Some(Kind::Date));
        assert_eq!(Kind::Date.join(Kind::Timestamp), Some(Kind::Timestamp));
        assert_eq!(Kind::Int.join(Kind::String), None);
        assert_eq!(Kind::Bool.join_or_string(Kind::Int), Kind::String);
    }

    #[test]
    fn timestamps_are_utc_micros() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z"), Some(1_000_000));
        assert_eq!(
            parse_timestamp("1970-01-01T02:00:01+02:00"),
            Some(1_000_000)
        );
        assert_eq!(parse_timestamp("1970-01-01 00:00:01"), Some(1_000_000));
        assert_eq!(parse_date("1970-01-02"), Some(1));
    }

    #[test]
    fn builders_report_bad_values() {
        let mut b = ColumnBuilder::new(Kind::Int, 4);
        assert!(b.append_text("12").is_ok());
        let e = b.append_text("12,5").unwrap_err();
        assert!(e.contains("`12,5` is not an integer"), "{e}");
        let mut d = ColumnBuilder::new(Kind::Date, 1);
        assert!(d.append_text("31/12/2024").is_err());
        assert_eq!(b.len(), 1);
    }
}
