//! CSV and TSV: streamed from disk on a blocking thread (memory stays flat whatever the
//! file size), transcoded from the file's encoding, typed by inference over the first
//! [`INFER_ROWS`] records (or `columns:`), and checked row by row: a row with the wrong
//! number of fields or a value that does not fit its column is rejected with its line
//! number, the others load.
//!
//! Written here rather than with `arrow-csv`, whose reader fails a whole batch on one bad
//! value and cannot say which line it was.

use std::io::{BufRead, BufReader, Read};

use datafusion::arrow::array::RecordBatch;
use serde::Deserialize;

use super::Input;
use crate::infer::{ColumnBuilder, Kind, Parsed, classify, parse_text};
use crate::{Result, RowMeta, StreamContext};

/// Records sampled to infer column types.
pub const INFER_ROWS: usize = 10_000;
/// Rows per batch handed to the sink.
const BATCH_ROWS: usize = 65_536;

/// `csv:` options of a stream.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// One character; default `,` (`\t` for TSV).
    pub delimiter: Option<String>,
    /// Whether the first row names the columns (default true).
    pub header: Option<bool>,
    /// Quote character (default `"`; a doubled quote inside quotes is one quote).
    pub quote: Option<String>,
    /// Escape character inside quotes (default none).
    pub escape: Option<String>,
    /// Lines starting with this character are skipped.
    pub comment: Option<String>,
    /// `utf-8` (default), `latin-1`, `windows-1252`, `utf-16`, ... (WHATWG labels).
    pub encoding: Option<String>,
    /// Lines to skip before the header (titles above a table).
    pub skip_rows: Option<usize>,
    /// Values read as NULL (default: the empty string).
    pub null_values: Option<Vec<String>>,
    /// Trim spaces around values (default false).
    pub trim: Option<bool>,
}

fn one_byte(field: &str, v: &Option<String>) -> std::result::Result<Option<u8>, String> {
    match v.as_deref() {
        None => Ok(None),
        Some("\\t") | Some("\t") => Ok(Some(b'\t')),
        Some(s) if s.len() == 1 => Ok(Some(s.as_bytes()[0])),
        Some(s) => Err(format!("`{field}` must be one character, not `{s}`")),
    }
}

/// The encoding of a WHATWG label, also accepting common spellings (`latin-1`, `utf8`).
fn encoding_for(label: &str) -> Option<&'static encoding_rs::Encoding> {
    let l = label.trim().to_ascii_lowercase();
    encoding_rs::Encoding::for_label(l.as_bytes())
        .or_else(|| encoding_rs::Encoding::for_label(l.replace(['-', '_'], "").as_bytes()))
        .or_else(|| encoding_rs::Encoding::for_label(l.replace('_', "-").as_bytes()))
}

impl CsvOptions {
    pub fn validate(&self) -> std::result::Result<(), String> {
        one_byte("delimiter", &self.delimiter)?;
        one_byte("quote", &self.quote)?;
        one_byte("escape", &self.escape)?;
        one_byte("comment", &self.comment)?;
        if let Some(e) = &self.encoding
            && encoding_for(e).is_none()
        {
            return Err(format!(
                "unknown encoding `{e}` (use utf-8, latin-1, windows-1252, utf-16le, ...)"
            ));
        }
        Ok(())
    }
}

enum Msg {
    Batch(RecordBatch),
    Reject {
        raw: String,
        reason: String,
        line: u64,
    },
}

/// Reads one CSV file into the sink.
pub(crate) async fn read(
    options: &CsvOptions,
    name: &str,
    input: Input,
    meta: &RowMeta,
    ctx: &mut StreamContext<'_>,
) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(4);
    let declared = ctx.sink.declared().clone();
    let options = options.clone();
    let worker = tokio::task::spawn_blocking(move || decode(&options, input, &declared, &tx));
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Batch(b) => ctx.sink.push(b, meta).await?,
            Msg::Reject { raw, reason, line } => {
                ctx.sink.reject(raw, reason, format!("{name}:{line}"));
                ctx.sink.maybe_flush_rejects().await?;
            }
        }
        if ctx.cancelled() {
            break;
        }
    }
    drop(rx);
    match worker.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ctx.fetch_error(format!("{name}: {e}"))),
        Err(e) => Err(ctx.fetch_error(format!("{name}: {e}"))),
    }
}

/// The text of a record as it would be written back (for rejects).
fn record_text(record: &csv::ByteRecord, delimiter: u8) -> String {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(Vec::new());
    let _ = w.write_byte_record(record);
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}

fn decode(
    options: &CsvOptions,
    input: Input,
    declared: &std::collections::BTreeMap<String, Kind>,
    tx: &tokio::sync::mpsc::Sender<Msg>,
) -> std::result::Result<(), String> {
    let raw: Box<dyn Read + Send> = match input {
        Input::File(p) => Box::new(std::fs::File::open(&p).map_err(|e| e.to_string())?),
        Input::Bytes(b) => Box::new(std::io::Cursor::new(b)),
    };
    let encoding = options
        .encoding
        .as_deref()
        .and_then(encoding_for)
        .filter(|e| *e != encoding_rs::UTF_8);
    let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(encoding)
        .utf8_passthru(true)
        .strip_bom(true)
        .build(raw);
    let mut reader = BufReader::with_capacity(1 << 20, decoded);
    let mut line_offset = 0u64;
    for _ in 0..options.skip_rows.unwrap_or(0) {
        let mut skipped = Vec::new();
        if reader
            .read_until(b'\n', &mut skipped)
            .map_err(|e| e.to_string())?
            == 0
        {
            break;
        }
        line_offset += 1;
    }
    let delimiter = one_byte("delimiter", &options.delimiter)?.unwrap_or(b',');
    let quote = one_byte("quote", &options.quote)?.unwrap_or(b'"');
    let escape = one_byte("escape", &options.escape)?;
    let comment = one_byte("comment", &options.comment)?;
    let mut builder = csv::ReaderBuilder::new();
    builder
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .quote(quote)
        .escape(escape)
        .comment(comment);
    if options.trim.unwrap_or(false) {
        builder.trim(csv::Trim::All);
    }
    let watched =
        super::quotes::QuoteWatch::new(reader, delimiter, quote, escape, comment, line_offset + 1);
    let mut csv = builder.from_reader(watched);
    let nulls: Vec<String> = options
        .null_values
        .clone()
        .unwrap_or_else(|| vec![String::new()]);
    let mut record = csv::ByteRecord::new();
    // The reader counts from the line it started on (after the skipped ones), from 0.
    let line_of = |r: &csv::ByteRecord| r.position().map_or(0, |p| p.line()) + 1 + line_offset;

    // Header.
    if !csv
        .read_byte_record(&mut record)
        .map_err(|e| e.to_string())?
    {
        return Ok(());
    }
    let first = record.clone();
    let header = options.header.unwrap_or(true);
    let names = if header {
        super::column_names(
            &first
                .iter()
                .map(|f| String::from_utf8_lossy(f).to_string())
                .collect::<Vec<_>>(),
        )
    } else {
        (1..=first.len()).map(|i| format!("column_{i}")).collect()
    };
    let ncols = names.len();

    // Sample for inference.
    let mut sample: Vec<csv::ByteRecord> = Vec::new();
    if !header {
        sample.push(first);
    }
    while sample.len() < INFER_ROWS
        && csv
            .read_byte_record(&mut record)
            .map_err(|e| e.to_string())?
    {
        sample.push(record.clone());
    }
    let mut kinds = vec![Kind::Null; ncols];
    for r in &sample {
        if r.len() != ncols {
            continue;
        }
        for (i, f) in r.iter().enumerate() {
            let Ok(s) = std::str::from_utf8(f) else {
                kinds[i] = Kind::String;
                continue;
            };
            if nulls.iter().any(|n| n == s) {
                continue;
            }
            kinds[i] = kinds[i].join_or_string(classify(s));
        }
    }
    let schema = super::settle_kinds(&names, &mut kinds, declared);
    let new_builders = || -> Vec<ColumnBuilder> {
        kinds
            .iter()
            .map(|k| ColumnBuilder::new(*k, BATCH_ROWS))
            .collect()
    };
    let mut builders = new_builders();
    let mut rows = 0usize;
    let send = |m: Msg| tx.blocking_send(m).map_err(|_| "stopped".to_string());

    let handle = |r: &csv::ByteRecord,
                  builders: &mut Vec<ColumnBuilder>,
                  rows: &mut usize|
     -> std::result::Result<(), String> {
        let line = line_of(r);
        if r.len() != ncols {
            // A trailing empty line of a one-column file reads as one empty field.
            if r.len() == 1 && r[0].is_empty() {
                return Ok(());
            }
            return send(Msg::Reject {
                raw: record_text(r, delimiter),
                reason: format!("expected {ncols} fields, found {}", r.len()),
                line,
            });
        }
        let mut values: Vec<Parsed<'_>> = Vec::with_capacity(ncols);
        for (i, f) in r.iter().enumerate() {
            let Ok(s) = std::str::from_utf8(f) else {
                return send(Msg::Reject {
                    raw: record_text(r, delimiter),
                    reason: format!(
                        "column `{}`: not valid UTF-8 (set `csv: {{ encoding: latin-1 }}` or the file's encoding)",
                        names[i]
                    ),
                    line,
                });
            };
            if nulls.iter().any(|n| n == s) {
                values.push(Parsed::Null);
                continue;
            }
            match parse_text(kinds[i], s) {
                Ok(v) => values.push(v),
                Err(e) => {
                    return send(Msg::Reject {
                        raw: record_text(r, delimiter),
                        reason: format!("column `{}`: {e}", names[i]),
                        line,
                    });
                }
            }
        }
        for (b, v) in builders.iter_mut().zip(values) {
            b.append(v);
        }
        *rows += 1;
        Ok(())
    };
    let flush = |builders: &mut Vec<ColumnBuilder>| -> std::result::Result<(), String> {
        let columns = builders.iter_mut().map(|b| b.finish()).collect();
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
        send(Msg::Batch(batch))
    };
    for r in &sample {
        handle(r, &mut builders, &mut rows)?;
        if rows >= BATCH_ROWS {
            flush(&mut builders)?;
            rows = 0;
        }
    }
    drop(sample);
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(e.to_string()),
        }
        handle(&record, &mut builders, &mut rows)?;
        if rows >= BATCH_ROWS {
            flush(&mut builders)?;
            rows = 0;
        }
    }
    // A quote left open took the rest of the file as one value: the file is not loaded.
    if let Some(line) = csv.get_ref().unclosed_quote() {
        return Err(super::quotes::unclosed_message(line));
    }
    if rows > 0 {
        flush(&mut builders)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "csv_props.rs"]
mod props;
