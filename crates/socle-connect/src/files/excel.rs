//! Excel workbooks (`.xlsx`, `.xlsm`, `.xls`) through `calamine`: one sheet (by name or
//! position, default the first), optionally a cell range, the first row as header.
//!
//! Cell types carry over: numbers that are all whole become BIGINT, other numbers DOUBLE,
//! dates DATE (TIMESTAMP when any has a time of day), text is inferred like CSV text. A
//! row with an error cell (`#DIV/0!`, `#N/A`) is rejected with its cell address.

use calamine::{Data, Reader};
use datafusion::arrow::array::RecordBatch;
use serde::Deserialize;

use crate::infer::{ColumnBuilder, Kind, Parsed, classify, parse_text};
use crate::{Result, RowMeta, StreamContext};

/// `excel:` options of a stream.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExcelOptions {
    /// Sheet name, or its position from 0 (default: the first sheet).
    pub sheet: Option<SheetRef>,
    /// Cells to read, e.g. `A3:F40` (default: the sheet's used range).
    pub range: Option<String>,
    /// Whether the first row of the range names the columns (default true).
    pub header: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SheetRef {
    Index(usize),
    Name(String),
}

/// `B12` → (row 11, column 1).
fn cell(s: &str) -> Option<(u32, u32)> {
    let s = s.trim().to_ascii_uppercase();
    let letters: String = s.chars().take_while(char::is_ascii_alphabetic).collect();
    let digits = &s[letters.len()..];
    if letters.is_empty() || digits.is_empty() {
        return None;
    }
    let col = letters
        .bytes()
        .fold(0u32, |acc, b| acc * 26 + (b - b'A' + 1) as u32);
    let row: u32 = digits.parse().ok()?;
    (row >= 1).then(|| (row - 1, col - 1))
}

fn address(row: u32, col: u32) -> String {
    let mut c = col + 1;
    let mut letters = Vec::new();
    while c > 0 {
        letters.push(b'A' + ((c - 1) % 26) as u8);
        c = (c - 1) / 26;
    }
    letters.reverse();
    format!("{}{}", String::from_utf8_lossy(&letters), row + 1)
}

fn cell_kind(d: &Data) -> Kind {
    match d {
        Data::Empty => Kind::Null,
        Data::Int(_) => Kind::Int,
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Kind::Int,
        Data::Float(_) => Kind::Float,
        Data::Bool(_) => Kind::Bool,
        Data::String(s) => classify(s.trim()),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => Kind::Date,
            Some(_) => Kind::Timestamp,
            None => Kind::Float,
        },
        Data::DateTimeIso(s) => classify(s),
        Data::DurationIso(_) | Data::Error(_) => Kind::String,
    }
}

fn cell_value(kind: Kind, d: &Data) -> std::result::Result<Parsed<'_>, String> {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    Ok(match (kind, d) {
        (_, Data::Empty) => Parsed::Null,
        (_, Data::Error(e)) => return Err(format!("error value {e}")),
        (Kind::String, Data::String(s)) => Parsed::Str(s),
        (Kind::String, Data::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            Parsed::Owned(format!("{}", *f as i64))
        }
        (Kind::String, other) => Parsed::Owned(other.to_string()),
        (Kind::Int, Data::Int(i)) => Parsed::Int(*i),
        (Kind::Int, Data::Float(f)) if f.fract() == 0.0 => Parsed::Int(*f as i64),
        (Kind::Float, Data::Int(i)) => Parsed::Float(*i as f64),
        (Kind::Float, Data::Float(f)) => Parsed::Float(*f),
        (Kind::Bool, Data::Bool(b)) => Parsed::Bool(*b),
        (Kind::Date | Kind::Timestamp, Data::DateTime(dt)) => match dt.as_datetime() {
            Some(t) if kind == Kind::Date => Parsed::Date((t.date() - epoch).num_days() as i32),
            Some(t) => Parsed::Timestamp(t.and_utc().timestamp_micros()),
            None => return Err(format!("`{dt}` is not a date")),
        },
        (k, Data::String(s)) | (k, Data::DateTimeIso(s)) => parse_text(k, s.trim())?,
        (k, other) => return Err(format!("`{other}` does not fit a {} column", k.sql_name())),
    })
}

pub(crate) async fn read(
    options: &ExcelOptions,
    name: &str,
    bytes: Vec<u8>,
    meta: &RowMeta,
    ctx: &mut StreamContext<'_>,
) -> Result<()> {
    let options = options.clone();
    let declared = ctx.sink.declared().clone();
    let decoded = tokio::task::spawn_blocking(move || decode(&options, bytes, &declared))
        .await
        .map_err(|e| ctx.fetch_error(e.to_string()))?;
    match decoded {
        Ok((batch, rejects)) => {
            for (raw, reason, at) in rejects {
                ctx.sink.reject(raw, reason, format!("{name}!{at}"));
            }
            ctx.sink.push(batch, meta).await
        }
        Err(e) => {
            ctx.sink.reject(
                String::new(),
                format!("not a readable workbook: {e}"),
                name.to_string(),
            );
            Ok(())
        }
    }
}

type Rejects = Vec<(String, String, String)>;

fn decode(
    options: &ExcelOptions,
    bytes: Vec<u8>,
    declared: &std::collections::BTreeMap<String, Kind>,
) -> std::result::Result<(RecordBatch, Rejects), String> {
    let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e| e.to_string())?;
    let sheets = book.sheet_names();
    let sheet_name = match &options.sheet {
        None => sheets.first().cloned().ok_or("the workbook has no sheet")?,
        Some(SheetRef::Name(n)) => {
            if !sheets.contains(n) {
                return Err(format!("no sheet `{n}` (sheets: {})", sheets.join(", ")));
            }
            n.clone()
        }
        Some(SheetRef::Index(i)) => sheets
            .get(*i)
            .cloned()
            .ok_or_else(|| format!("no sheet at position {i} (it has {})", sheets.len()))?,
    };
    let full = book
        .worksheet_range(&sheet_name)
        .map_err(|e| e.to_string())?;
    let range = match &options.range {
        None => full,
        Some(r) => {
            let (a, b) = r
                .split_once(':')
                .and_then(|(a, b)| Some((cell(a)?, cell(b)?)))
                .ok_or_else(|| format!("bad range `{r}`: write it like A1:F100"))?;
            full.range(a, b)
        }
    };
    let origin = range.start().unwrap_or((0, 0));
    let mut rows = range.rows();
    let header = options.header.unwrap_or(true);
    let first: Vec<Data> = rows.next().map(|r| r.to_vec()).unwrap_or_default();
    let names: Vec<String> = if header {
        super::column_names(&first.iter().map(|c| c.to_string()).collect::<Vec<_>>())
    } else {
        (1..=first.len()).map(|i| format!("column_{i}")).collect()
    };
    let mut data: Vec<(u32, Vec<Data>)> = Vec::new();
    if !header && !first.is_empty() {
        data.push((origin.0, first));
    }
    // `rows` continues after the first row of the range, whichever role it had.
    for (i, r) in rows.enumerate() {
        if r.iter().all(|c| matches!(c, Data::Empty)) {
            continue;
        }
        data.push((origin.0 + 1 + i as u32, r.to_vec()));
    }
    let mut kinds = vec![Kind::Null; names.len()];
    for (_, r) in &data {
        for (i, c) in r.iter().enumerate().take(names.len()) {
            if matches!(c, Data::Error(_)) {
                continue;
            }
            kinds[i] = kinds[i].join_or_string(cell_kind(c));
        }
    }
    let schema = super::settle_kinds(&names, &mut kinds, declared);
    let mut builders: Vec<ColumnBuilder> = kinds
        .iter()
        .map(|k| ColumnBuilder::new(*k, data.len()))
        .collect();
    let mut rejects = Vec::new();
    'rows: for (row, r) in &data {
        let mut values = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            let c = r.get(i).unwrap_or(&Data::Empty);
            match cell_value(kinds[i], c) {
                Ok(v) => values.push(v),
                Err(e) => {
                    let raw = r
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join("\t");
                    rejects.push((
                        raw,
                        format!("column `{}`: {e}", names[i]),
                        address(*row, origin.1 + i as u32),
                    ));
                    continue 'rows;
                }
            }
        }
        for (b, v) in builders.iter_mut().zip(values) {
            b.append(v);
        }
    }
    let columns = builders.iter_mut().map(|b| b.finish()).collect();
    let batch = RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())?;
    Ok((batch, rejects))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_name_their_cell_with_or_without_a_header() {
        let book = include_bytes!("../../../socle-cli/tests/it/fixtures/files/budget.xlsx");
        for (header, range) in [(true, "A3:F16"), (false, "A4:F16")] {
            let options = ExcelOptions {
                sheet: Some(SheetRef::Name("Budget".into())),
                range: Some(range.into()),
                header: Some(header),
            };
            let (batch, rejects) = decode(&options, book.to_vec(), &Default::default()).unwrap();
            assert_eq!(batch.num_rows(), 12, "header: {header}");
            assert_eq!(rejects.len(), 1);
            assert_eq!(rejects[0].2, "D16", "header: {header}");
        }
    }

    #[test]
    fn cell_addresses() {
        assert_eq!(cell("A1"), Some((0, 0)));
        assert_eq!(cell("b12"), Some((11, 1)));
        assert_eq!(cell("AA3"), Some((2, 26)));
        assert_eq!(cell("A0"), None);
        assert_eq!(address(11, 1), "B12");
        assert_eq!(address(2, 26), "AA3");
    }
}
