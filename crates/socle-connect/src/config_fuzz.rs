//! Fuzz tests of source files (`sources/*.yml`, read by [`crate::registry::parse`] and the
//! parser of each kind): any text, and YAML made of the sources' own keys with plausible
//! and hostile values (rates and durations past what a clock holds, templates that do not
//! parse, unknown kinds), is a source or located errors, never a panic.

use std::path::PathBuf;
use std::time::Duration;

use socle_core::ConfigError;

use super::SourceFile;

/// How long each fuzz target runs within `cargo test` (`BOLERO_RANDOM_TEST_TIME_MS`
/// overrides it).
const FUZZ_TIME: Duration = Duration::from_secs(2);

fn parse(text: &str) -> Result<(), Vec<ConfigError>> {
    let file = SourceFile {
        name: "shop".into(),
        path: PathBuf::from("sources/shop.yml"),
        text: text.to_string(),
        root: PathBuf::from("/p"),
    };
    crate::registry::parse(&file).map(|_| ())
}

fn load(text: &str) {
    if let Err(errors) = parse(text) {
        assert!(!errors.is_empty());
        for e in errors {
            let _ = e.to_string();
        }
    }
}

const KEYS: &[&str] = &[
    "type",
    "description",
    "schema",
    "landing",
    "max_rejected",
    "on_type_conflict",
    "streams",
    "storage_options",
    "path",
    "format",
    "csv",
    "delimiter",
    "header",
    "quote",
    "escape",
    "comment",
    "encoding",
    "skip_rows",
    "null_values",
    "json",
    "records",
    "excel",
    "sheet",
    "range",
    "incremental",
    "detect_changes",
    "on_missing",
    "table",
    "write",
    "primary_key",
    "columns",
    "base_url",
    "auth",
    "accounts",
    "headers",
    "params",
    "paginate",
    "concurrency",
    "timeout",
    "rate_limit",
    "retry",
    "attempts",
    "backoff",
    "max_backoff",
    "method",
    "cursor_field",
    "for_each",
    "orders",
    "2bad",
];

const VALUES: &[&str] = &[
    "",
    "files",
    "rest",
    "scrape",
    "sqlite",
    "postgres",
    "fiels",
    "data/orders.csv",
    "\"data/*.csv\"",
    "[a.csv, b.json]",
    "[]",
    "csv",
    "tsv",
    "xlsx",
    "txt2",
    "\";\"",
    "\"\\t\"",
    "\u{e9}",
    "ab",
    "latin-1",
    "klingon",
    "5%",
    "101%",
    "-1",
    "1e-300",
    "0",
    ".nan",
    ".inf",
    "30s",
    "99999999999999999999d",
    "append",
    "merge",
    "upsert",
    "[id]",
    "{ id: bigint, x: geography }",
    "parquet",
    "avro",
    "http://127.0.0.1/api",
    "not a url",
    "\"{{ ds }}\"",
    "\"{% for %}\"",
    "\"{%}\"",
    "\"${secret:k}\"",
    "\"${bad\"",
    "true",
    "null",
    "{}",
    "metadata",
    "hash",
    "skip",
    "/data/items",
    "GET",
    "DELETE",
    "{ type: cursor, next: /next }",
    "{ type: page, size: 0 }",
    "{ type: oauth2 }",
    "[{ name: a }, { name: a }]",
    "&x y",
    "*x",
];

/// A valid source of each kind the generated lines add to.
const STARTS: &[&str] = &[
    "type: files\nstreams:\n  orders:\n    path: data/orders.csv\n",
    "type: rest\nbase_url: http://127.0.0.1/api\nstreams:\n  events:\n    path: /events\n",
];

/// YAML made from `KEYS` and `VALUES` after a valid source, driven by `bytes`: the first
/// byte picks the source, then each pair of bytes an indentation (0 to 6 spaces: the
/// source, a stream, a stream's field, a nested value), a key and a value (an empty value
/// opens a mapping).
fn yaml_from(bytes: &[u8]) -> String {
    let Some((first, rest)) = bytes.split_first() else {
        return STARTS[0].to_string();
    };
    let mut out = STARTS[usize::from(*first) % STARTS.len()].to_string();
    for pair in rest.chunks(2) {
        let a = pair[0];
        let b = pair.get(1).copied().unwrap_or(0);
        out.push_str(&" ".repeat(usize::from(a >> 6) * 2));
        out.push_str(KEYS[usize::from(a & 0x3f) % KEYS.len()]);
        out.push(':');
        let value = VALUES[usize::from(b) % VALUES.len()];
        if !value.is_empty() {
            out.push(' ');
            out.push_str(value);
        }
        out.push('\n');
    }
    out
}

#[test]
fn fuzz_source_text() {
    bolero::check!()
        .with_test_time(FUZZ_TIME)
        .for_each(|bytes: &[u8]| {
            if let Ok(text) = std::str::from_utf8(bytes) {
                load(text);
            }
        });
}

#[test]
fn fuzz_source_keys_and_values() {
    bolero::check!()
        .with_test_time(FUZZ_TIME)
        .for_each(|bytes: &[u8]| load(&yaml_from(bytes)));
}

#[test]
fn the_generated_yaml_reaches_the_validation() {
    for start in STARTS {
        if let Err(errors) = parse(start) {
            panic!("{start}: {errors:?}");
        }
    }
}

/// Found while writing the fuzz tests: a rate so small that the wait between two requests does
/// not fit a `Duration` panicked when the HTTP client was built.
#[test]
fn regression_a_rate_limit_too_small_to_wait_for_is_an_error() {
    let text = format!("{}rate_limit: 1e-300\n", STARTS[1]);
    let errors = parse(&text).expect_err("refused");
    assert!(
        errors.iter().any(|e| e.to_string().contains("rate_limit")),
        "{errors:?}"
    );
    assert!(parse(&format!("{}rate_limit: 0.5\n", STARTS[1])).is_ok());
}
