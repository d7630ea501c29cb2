//! Property and fuzz tests of CSV reading (the decoder [`decode`] and the quote check of
//! [`crate::files::quotes`]):
//! - records of any text (delimiters, quotes, line breaks, characters of several bytes)
//!   written with proper quoting, `\n` or `\r\n` line ends, read back field for field (an
//!   empty field is NULL), with no reject and no quote left open;
//! - a quote opened and never closed is reported on the line it opened on, counting the
//!   line breaks inside earlier quoted values, by the quote watch, the decoder and
//!   `check_file`;
//! - the header check names exactly the blank and repeated names, and the column names
//!   made from a header are never blank nor repeated;
//! - the decoder and the quote check answer for any bytes and any options (fuzz).

use std::collections::BTreeMap;
use std::time::Duration;

use datafusion::arrow::array::{Array, StringArray};
use proptest::prelude::*;

use super::{CsvOptions, Msg, decode};
use crate::files::Input;
use crate::files::quotes::{QuoteWatch, check_file, header_problems};
use crate::infer::Kind;

/// How long each fuzz target runs within `cargo test` (`BOLERO_RANDOM_TEST_TIME_MS`
/// overrides it).
const FUZZ_TIME: Duration = Duration::from_secs(2);

const DELIMITERS: [char; 4] = [',', ';', '\t', '|'];

/// What the decoder sent: the rows (text columns; `None` for NULL and for columns of other
/// types) and the rejects (line, reason).
#[derive(Debug, Default)]
struct Decoded {
    rows: Vec<Vec<Option<String>>>,
    rejects: Vec<(u64, String)>,
}

/// Runs the decoder over `bytes`, with the columns named in `text_columns` declared text.
fn decode_bytes(
    options: &CsvOptions,
    bytes: &[u8],
    text_columns: &[String],
) -> (Result<(), String>, Decoded) {
    let declared: BTreeMap<String, Kind> = text_columns
        .iter()
        .map(|n| (n.clone(), Kind::String))
        .collect();
    // Room for every message: the decoder sends with `blocking_send` and the messages are
    // read once it returns.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(1 << 16);
    let result = decode(options, Input::Bytes(bytes.to_vec()), &declared, &tx);
    drop(tx);
    let mut out = Decoded::default();
    while let Ok(msg) = rx.try_recv() {
        match msg {
            Msg::Batch(batch) => {
                let columns: Vec<Option<&StringArray>> = batch
                    .columns()
                    .iter()
                    .map(|c| c.as_any().downcast_ref::<StringArray>())
                    .collect();
                for row in 0..batch.num_rows() {
                    out.rows.push(
                        columns
                            .iter()
                            .map(|column| match column {
                                Some(c) if !c.is_null(row) => Some(c.value(row).to_string()),
                                _ => None,
                            })
                            .collect(),
                    );
                }
            }
            Msg::Reject { reason, line, .. } => out.rejects.push((line, reason)),
        }
    }
    (result, out)
}

/// The line of the quote left open in `text`, as the quote watch reads it.
fn unclosed(text: &[u8], delimiter: u8) -> Option<u64> {
    let mut w = QuoteWatch::new(text, delimiter, b'"', None, None, 1);
    std::io::copy(&mut w, &mut std::io::sink()).expect("reading from memory");
    w.unclosed_quote()
}

/// One record as a line: a field is quoted when it must be (it holds the delimiter, a
/// quote or a line break; or it is the only field and empty, which would be a blank line)
/// or when `quote_all`.
fn line(fields: &[String], delimiter: char, quote_all: bool) -> String {
    fields
        .iter()
        .map(|f| {
            let must =
                f.contains([delimiter, '"', '\n', '\r']) || (fields.len() == 1 && f.is_empty());
            if must || quote_all {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(&delimiter.to_string())
}

fn header(ncols: usize) -> Vec<String> {
    (1..=ncols).map(|i| format!("c{i}")).collect()
}

/// A file: the header `c1,c2,...` then the rows.
fn csv_text(
    rows: &[Vec<String>],
    ncols: usize,
    delimiter: char,
    crlf: bool,
    quote_all: bool,
) -> String {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut out = line(&header(ncols), delimiter, quote_all);
    out.push_str(eol);
    for r in rows {
        out.push_str(&line(r, delimiter, quote_all));
        out.push_str(eol);
    }
    out
}

fn text_field() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9 ]{0,6}", "[a-z,;|\t\"\n\r ]{0,6}", "(?s).{0,8}",]
}

/// A number of columns and rows of that many fields.
fn table() -> impl Strategy<Value = (usize, Vec<Vec<String>>)> {
    (1usize..5).prop_flat_map(|n| {
        (
            Just(n),
            prop::collection::vec(prop::collection::vec(text_field(), n), 0..8),
        )
    })
}

fn options(delimiter: char) -> CsvOptions {
    CsvOptions {
        delimiter: Some(delimiter.to_string()),
        ..CsvOptions::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn written_records_read_back(
        (ncols, rows) in table(),
        d in 0..DELIMITERS.len(),
        crlf in any::<bool>(),
        quote_all in any::<bool>(),
    ) {
        let delimiter = DELIMITERS[d];
        let text = csv_text(&rows, ncols, delimiter, crlf, quote_all);
        let (result, decoded) = decode_bytes(&options(delimiter), text.as_bytes(), &header(ncols));
        prop_assert_eq!(result, Ok(()));
        prop_assert!(decoded.rejects.is_empty(), "{:?}", decoded.rejects);
        let expected: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|r| r.iter().map(|f| (!f.is_empty()).then(|| f.clone())).collect())
            .collect();
        prop_assert_eq!(decoded.rows, expected, "{:?}", text);
        prop_assert_eq!(unclosed(text.as_bytes(), delimiter as u8), None);
    }

    #[test]
    fn an_unclosed_quote_is_reported_on_its_line(
        (ncols, before) in table(),
        open in "[a-z,;\n ]{0,10}",
        after in prop::collection::vec("[a-z0-9 ]{0,6}", 0..6),
        d in 0..DELIMITERS.len(),
        crlf in any::<bool>(),
    ) {
        let delimiter = DELIMITERS[d];
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = csv_text(&before, ncols, delimiter, crlf, false);
        // Every line break counts, those inside the quoted values above too.
        let line_no = 1 + text.matches('\n').count() as u64;
        // Plain fields, then a last one whose quote is never closed; the lines after it
        // hold no quote that could close it.
        for i in 1..ncols {
            text.push_str(&format!("v{i}{delimiter}"));
        }
        text.push('"');
        text.push_str(&open);
        text.push_str(eol);
        for a in &after {
            text.push_str(a);
            text.push_str(eol);
        }
        let at = format!("line {line_no}:");
        prop_assert_eq!(unclosed(text.as_bytes(), delimiter as u8), Some(line_no));
        let (result, _) = decode_bytes(&options(delimiter), text.as_bytes(), &header(ncols));
        prop_assert!(result.as_ref().is_err_and(|e| e.starts_with(&at)), "{:?}", result);
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text.as_bytes()).expect("write");
        let checked = check_file(file.path(), delimiter as u8);
        prop_assert!(checked.as_ref().is_err_and(|e| e.starts_with(&at)), "{:?}", checked);
    }

    #[test]
    fn header_problems_are_the_blank_and_repeated_names(
        names in prop::collection::vec("[ab \u{feff}]{0,3}", 0..6)
    ) {
        let clean: Vec<&str> = names
            .iter()
            .map(|n| n.trim().trim_start_matches('\u{feff}'))
            .collect();
        let fine = clean.iter().all(|n| !n.is_empty())
            && clean.iter().enumerate().all(|(i, n)| !clean[..i].contains(n));
        prop_assert_eq!(header_problems(&names).is_none(), fine, "{:?}", names);
        let columns = crate::files::column_names(&names);
        prop_assert_eq!(columns.len(), names.len());
        for (i, c) in columns.iter().enumerate() {
            prop_assert!(!c.is_empty());
            prop_assert!(!columns[..i].contains(c), "{:?}", columns);
        }
    }
}

/// Options chosen by two bytes: delimiter, quote, escape, comment, header, trim, lines to
/// skip, encoding and null markers.
fn fuzz_options(a: u8, b: u8) -> CsvOptions {
    fn pick(bits: u8, choices: &[Option<&str>]) -> Option<String> {
        choices[usize::from(bits) % choices.len()].map(str::to_string)
    }
    CsvOptions {
        delimiter: pick(a & 3, &[None, Some(";"), Some("\\t"), Some("|")]),
        quote: pick((a >> 2) & 1, &[None, Some("'")]),
        escape: pick((a >> 3) & 1, &[None, Some("\\")]),
        comment: pick((a >> 4) & 1, &[None, Some("#")]),
        header: Some(a & 0x20 == 0),
        trim: Some(a & 0x40 != 0),
        skip_rows: Some(usize::from(b & 3)),
        encoding: pick(
            (b >> 2) & 3,
            &[None, Some("latin-1"), Some("utf-16le"), Some("utf-8")],
        ),
        null_values: (b & 0x10 != 0).then(|| vec![String::new(), "NULL".into()]),
    }
}

/// Fuzz target: any bytes, any options; types are inferred. Every reject names a line.
#[test]
fn fuzz_decode() {
    bolero::check!()
        .with_test_time(FUZZ_TIME)
        .for_each(|bytes: &[u8]| {
            let (a, b, rest) = match bytes {
                [a, b, rest @ ..] => (*a, *b, rest),
                _ => return,
            };
            let (_, decoded) = decode_bytes(&fuzz_options(a, b), rest, &[]);
            assert!(decoded.rejects.iter().all(|(line, _)| *line >= 1));
        });
}

/// Fuzz target: the quote watch over any bytes with any quoting; an open quote is on a
/// line of the input.
#[test]
fn fuzz_quote_watch() {
    bolero::check!()
        .with_test_time(FUZZ_TIME)
        .for_each(|bytes: &[u8]| {
            let Some((a, rest)) = bytes.split_first() else {
                return;
            };
            let delimiter = DELIMITERS[usize::from(a & 3)] as u8;
            let quote = if a & 4 == 0 { b'"' } else { b'\'' };
            let escape = (a & 8 != 0).then_some(b'\\');
            let comment = (a & 16 != 0).then_some(b'#');
            let mut w = QuoteWatch::new(rest, delimiter, quote, escape, comment, 1);
            std::io::copy(&mut w, &mut std::io::sink()).expect("reading from memory");
            let lines = 1 + rest.iter().filter(|b| **b == b'\n').count() as u64;
            if let Some(line) = w.unclosed_quote() {
                assert!((1..=lines).contains(&line), "line {line} of {lines}");
            }
        });
}
