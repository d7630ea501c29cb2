//! Fuzz tests of the `socle.yml` loader ([`Config::from_yaml`]): any text, and YAML made of
//! socle.yml's own keys with plausible and hostile values, is either a config or a located
//! error, never a panic.

use std::path::Path;
use std::time::Duration;

use super::Config;

/// How long each fuzz target runs within `cargo test` (`BOLERO_RANDOM_TEST_TIME_MS`
/// overrides it).
const FUZZ_TIME: Duration = Duration::from_secs(2);

fn load(text: &str) {
    match Config::from_yaml(text, Path::new("socle.yml"), Path::new("/p")) {
        Ok(c) => assert!(!c.name.is_empty()),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

const KEYS: &[&str] = &[
    "name",
    "lake",
    "url",
    "options",
    "aws_region",
    "aws_access_key_id",
    "metadata",
    "warehouse",
    "default_schema",
    "dialect",
    "memory_limit",
    "target_partitions",
    "batch_size",
    "server",
    "bind",
    "port",
    "query_timeout",
    "catalog_refresh",
    "query_idle",
    "query_queue_wait",
    "query_slots",
    "max_answer_bytes",
    "max_rows",
    "header_timeout",
    "body_timeout",
    "idle_timeout",
    "max_connections",
    "max_connections_per_address",
    "tls",
    "cert",
    "key",
    "security",
    "alerts",
    "channels",
    "ops",
    "type",
    "host",
    "password",
    "to",
    "headers",
    "on",
    "pools",
    "nmae",
    "- x",
];

const VALUES: &[&str] = &[
    "",
    "shop",
    "main",
    "Main",
    "\"${env:KEY}\"",
    "\"${secret:key}\"",
    "${secret:",
    "\"$${x}\"",
    "30s",
    "0",
    "-1",
    "1h30m",
    "99999999999999999999d",
    "18446744073709551615",
    "1e400",
    ".",
    "[a, b]",
    "[]",
    "{}",
    "generic",
    "bigquery",
    "bigqeury",
    "s3://bucket/prefix",
    "s3://",
    "gs://b",
    "file:///tmp/lake",
    "ftp://x",
    "relative/lake",
    "sqlite://x.db",
    "sqlite://",
    "postgres://u@h/db",
    "127.0.0.1",
    "::1",
    "not-an-ip",
    "65536",
    "512MiB",
    "1.5GB",
    "1KiB",
    "12 parsecs",
    "true",
    "null",
    "~",
    "&a x",
    "*a",
    "*nope",
    "!!binary aGVsbG8=",
    "'quoted'",
    "\"\\u00e9\\n\"",
    "slack",
    "webhook",
    "email",
    "\u{e9}t\u{e9}",
    "|",
    ">-",
    "- 1",
    "? complex",
    "x: y: z",
];

/// YAML made from `keys` and `values`, driven by `bytes`: each pair of bytes picks an
/// indentation (0 to 6 spaces), a key and a value (an empty value opens a mapping).
pub(crate) fn yaml_from(bytes: &[u8], keys: &[&str], values: &[&str]) -> String {
    let mut out = String::new();
    for pair in bytes.chunks(2) {
        let a = pair[0];
        let b = pair.get(1).copied().unwrap_or(0);
        out.push_str(&" ".repeat(usize::from(a >> 6) * 2));
        out.push_str(keys[usize::from(a & 0x3f) % keys.len()]);
        out.push(':');
        let value = values[usize::from(b) % values.len()];
        if !value.is_empty() {
            out.push(' ');
            out.push_str(value);
        }
        out.push('\n');
    }
    out
}

#[test]
fn fuzz_socle_yml_text() {
    bolero::check!()
        .with_test_time(FUZZ_TIME)
        .for_each(|bytes: &[u8]| {
            if let Ok(text) = std::str::from_utf8(bytes) {
                load(text);
            }
        });
}

#[test]
fn fuzz_socle_yml_keys_and_values() {
    bolero::check!()
        .with_test_time(FUZZ_TIME)
        .for_each(|bytes: &[u8]| {
            load(&format!("name: shop\n{}", yaml_from(bytes, KEYS, VALUES)));
        });
}

#[test]
fn the_generated_yaml_reaches_the_validation() {
    // A well-formed document from the generator is read, so the fuzz target above goes past
    // the YAML syntax into the checks of each field.
    let text = format!(
        "name: shop\n{}",
        yaml_from(&[13, 0, 64 + 16, 8], KEYS, VALUES)
    );
    assert_eq!(text, "name: shop\nserver:\n  query_timeout: 30s\n");
    let c = Config::from_yaml(&text, Path::new("socle.yml"), Path::new("/p")).unwrap();
    assert_eq!(c.server.query_timeout, Duration::from_secs(30));
}
