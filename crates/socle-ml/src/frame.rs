//! A model's input rows as columns, read from the warehouse's Arrow batches, and the
//! output tables built back as Arrow batches.
//!
//! Reading a column names what is wrong in the user's terms: a column that does not exist
//! (with "did you mean"), text where numbers are needed (with how many rows and the first
//! value), a value that is not a time.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, ListBuilder, RecordBatch,
    StringArray, StringBuilder, TimestampSecondArray,
};
use datafusion::arrow::compute::{CastOptions, cast, cast_with_options, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::error::MlError;

/// Rows as named columns.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The model it is read for, to name in errors.
    model: String,
    batch: RecordBatch,
}

impl Frame {
    /// All `batches` as one frame (an empty input is an error: nothing to learn from).
    pub fn from_batches(model: &str, batches: &[RecordBatch]) -> Result<Self, MlError> {
        let Some(first) = batches.first() else {
            return Err(MlError::data(model, "the input has no rows"));
        };
        let batch = concat_batches(&first.schema(), batches)
            .map_err(|e| MlError::data(model, format!("the input does not read: {e}")))?;
        if batch.num_rows() == 0 {
            return Err(MlError::data(model, "the input has no rows"));
        }
        Ok(Self {
            model: model.to_string(),
            batch,
        })
    }

    pub fn rows(&self) -> usize {
        self.batch.num_rows()
    }

    /// The column names, in order.
    pub fn names(&self) -> Vec<String> {
        self.batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// Column `name` as it is.
    pub fn column(&self, name: &str) -> Result<&ArrayRef, MlError> {
        match self.batch.schema().index_of(name) {
            Ok(i) => Ok(self.batch.column(i)),
            Err(_) => {
                let names = self.names();
                let hint =
                    match socle_core::diag::did_you_mean(name, names.iter().map(String::as_str)) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("the input's columns: {}", names.join(", ")),
                    };
                Err(MlError::data(
                    &self.model,
                    format!("the input has no column `{name}` ({hint})"),
                ))
            }
        }
    }

    /// Column `name` as numbers; NULL is NaN. Booleans are 0 and 1. Text is an error.
    pub fn f64s(&self, name: &str) -> Result<Vec<f64>, MlError> {
        let col = self.column(name)?;
        let numeric = match col.data_type() {
            DataType::Boolean => cast(col, &DataType::Float64),
            t if t.is_numeric() => cast(col, &DataType::Float64),
            DataType::Null => cast(col, &DataType::Float64),
            other => {
                return Err(MlError::data(
                    &self.model,
                    format!("column `{name}` holds {other}, not numbers"),
                ));
            }
        }
        .map_err(|e| MlError::data(&self.model, format!("column `{name}`: {e}")))?;
        let values = numeric
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("cast to Float64");
        Ok((0..values.len())
            .map(|i| {
                if values.is_null(i) {
                    f64::NAN
                } else {
                    values.value(i)
                }
            })
            .collect())
    }

    /// Column `name` as text (any type, as the warehouse prints it); NULL is `None`.
    pub fn strings(&self, name: &str) -> Result<Vec<Option<String>>, MlError> {
        let col = self.column(name)?;
        let text = cast(col, &DataType::Utf8)
            .map_err(|e| MlError::data(&self.model, format!("column `{name}`: {e}")))?;
        let values = text
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        Ok((0..values.len())
            .map(|i| (!values.is_null(i)).then(|| values.value(i).to_string()))
            .collect())
    }

    /// Column `name` as lists of text: a list column as it is, a text column split at
    /// `separator` (items trimmed, empty ones dropped). NULL is an empty list.
    pub fn string_lists(&self, name: &str, separator: &str) -> Result<Vec<Vec<String>>, MlError> {
        let col = self.column(name)?;
        if let DataType::List(_) | DataType::LargeList(_) | DataType::ListView(_) = col.data_type()
        {
            let target = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
            let lists = cast(col, &target)
                .map_err(|e| MlError::data(&self.model, format!("column `{name}`: {e}")))?;
            let lists = lists
                .as_any()
                .downcast_ref::<ListArray>()
                .expect("cast to a list");
            return Ok((0..lists.len())
                .map(|i| {
                    if lists.is_null(i) {
                        return Vec::new();
                    }
                    let values = lists.value(i);
                    let values = values
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .expect("list of text");
                    (0..values.len())
                        .filter(|&j| !values.is_null(j))
                        .map(|j| values.value(j).to_string())
                        .collect()
                })
                .collect());
        }
        Ok(self
            .strings(name)?
            .into_iter()
            .map(|text| {
                text.map(|t| {
                    t.split(separator)
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
            })
            .collect())
    }

    /// Column `name` as times, in seconds since 1970-01-01 UTC (dates at midnight; text
    /// in ISO 8601). NULL is `None`; a value that is not a time is an error naming it.
    pub fn times(&self, name: &str) -> Result<Vec<Option<i64>>, MlError> {
        let col = self.column(name)?;
        let target = DataType::Timestamp(TimeUnit::Second, None);
        let converted = match col.data_type() {
            DataType::Timestamp(_, Some(_)) => {
                // Zoned instants: the instant, read in UTC.
                cast(
                    col,
                    &DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
                )
                .and_then(|c| cast(&c, &target))
            }
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, None) => {
                cast(col, &target)
            }
            // Strict: text that is not a time is an error, not a NULL.
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => cast_with_options(
                col,
                &target,
                &CastOptions {
                    safe: false,
                    ..CastOptions::default()
                },
            ),
            other => {
                return Err(MlError::data(
                    &self.model,
                    format!("column `{name}` holds {other}, not dates or times"),
                ));
            }
        }
        .map_err(|e| {
            MlError::data(
                &self.model,
                format!("column `{name}` holds a value that is not a time: {e}"),
            )
        })?;
        let values = converted
            .as_any()
            .downcast_ref::<TimestampSecondArray>()
            .expect("cast to seconds");
        Ok((0..values.len())
            .map(|i| (!values.is_null(i)).then(|| values.value(i)))
            .collect())
    }
}

impl Frame {
    /// The rows with `extra` columns added (a column of the same name is replaced).
    pub fn with_columns(&self, extra: Vec<(&str, OutColumn)>) -> Result<RecordBatch, MlError> {
        let schema = self.batch.schema();
        let mut fields: Vec<Field> = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        for (field, array) in schema.fields().iter().zip(self.batch.columns()) {
            if extra.iter().any(|(name, _)| name == field.name()) {
                continue;
            }
            fields.push(field.as_ref().clone());
            arrays.push(array.clone());
        }
        for (name, column) in extra {
            let array = column.into_array();
            fields.push(Field::new(name, array.data_type().clone(), true));
            arrays.push(array);
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| MlError::data(&self.model, format!("the output does not build: {e}")))
    }
}

/// One output column.
pub enum OutColumn {
    Float(Vec<Option<f64>>),
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
    Bool(Vec<Option<bool>>),
    /// Seconds since 1970-01-01 UTC, written as a timestamp without time zone.
    Time(Vec<Option<i64>>),
    /// A list of text per row.
    TextList(Vec<Vec<String>>),
}

impl OutColumn {
    fn into_array(self) -> ArrayRef {
        match self {
            OutColumn::Float(v) => Arc::new(Float64Array::from(v)),
            OutColumn::Int(v) => Arc::new(Int64Array::from(v)),
            OutColumn::Text(v) => Arc::new(StringArray::from(v)),
            OutColumn::Bool(v) => Arc::new(BooleanArray::from(v)),
            OutColumn::Time(v) => Arc::new(TimestampSecondArray::from(v)),
            OutColumn::TextList(v) => {
                let mut b = ListBuilder::new(StringBuilder::new());
                for row in v {
                    for item in row {
                        b.values().append_value(item);
                    }
                    b.append(true);
                }
                Arc::new(b.finish())
            }
        }
    }
}

/// An output table's rows from named columns of equal length.
pub fn batch(columns: Vec<(&str, OutColumn)>) -> RecordBatch {
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays = Vec::with_capacity(columns.len());
    for (name, column) in columns {
        let array = column.into_array();
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .expect("output columns of equal length")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        let b = batch(vec![
            ("x", OutColumn::Float(vec![Some(1.5), None, Some(3.0)])),
            ("n", OutColumn::Int(vec![Some(1), Some(2), None])),
            (
                "t",
                OutColumn::Text(vec![Some("2024-01-02".into()), None, Some("a".into())]),
            ),
            ("ok", OutColumn::Bool(vec![Some(true), Some(false), None])),
        ]);
        Frame::from_batches("m", &[b]).unwrap()
    }

    #[test]
    fn columns_read_as_numbers_text_and_times() {
        let f = frame();
        assert_eq!(f.rows(), 3);
        let x = f.f64s("x").unwrap();
        assert_eq!(x[0], 1.5);
        assert!(x[1].is_nan());
        assert_eq!(f.f64s("n").unwrap()[1], 2.0);
        assert_eq!(f.f64s("ok").unwrap()[..2], [1.0, 0.0]);
        assert_eq!(f.strings("n").unwrap()[0].as_deref(), Some("1"));
        let e = f.f64s("t").unwrap_err().to_string();
        assert!(e.contains("model `m`") && e.contains("`t`"), "{e}");
        let e = f.f64s("xx").unwrap_err().to_string();
        assert!(e.contains("did you mean `x`?"), "{e}");
        // A value that is not a time is named as such.
        let e = f.times("t").unwrap_err().to_string();
        assert!(e.contains("not a time"), "{e}");
        assert!(Frame::from_batches("m", &[]).is_err());
    }

    #[test]
    fn dates_read_as_seconds() {
        let b = batch(vec![(
            "d",
            OutColumn::Text(vec![Some("2024-01-02".into()), None]),
        )]);
        let f = Frame::from_batches("m", &[b]).unwrap();
        assert_eq!(f.times("d").unwrap(), vec![Some(1_704_153_600), None]);
    }
}
