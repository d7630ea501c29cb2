//! Fuzz tests of task templates ([`render`], [`check_syntax`]): a pipeline file's template
//! is untrusted text; whatever it is, rendering returns the text or an error (a syntax
//! error, an undefined name, a bad date, the budget used up), never panics, and never
//! produces more than the budget's text.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use socle_transform::jinja::limits::TEMPLATE_MAX_BYTES;

use super::{RunDates, check_syntax, context, render};

/// How long each fuzz target runs within `cargo test` (`BOLERO_RANDOM_TEST_TIME_MS`
/// overrides it).
const FUZZ_TIME: Duration = Duration::from_secs(2);

fn ctx() -> minijinja::Value {
    let dates = RunDates {
        start: "2024-03-30T23:00:00Z".parse().expect("instant"),
        end: "2024-03-31T22:00:00Z".parse().expect("instant"),
        tz: chrono_tz::Europe::Paris,
    };
    let mut params = serde_json::Map::new();
    params.insert("region".into(), "eu".into());
    params.insert("n".into(), 3.into());
    context(&dates, "daily.20240331.1", "daily", "load", &params)
}

fn check(text: &str, ctx: &minijinja::Value) {
    let _ = check_syntax(text);
    if let Ok(out) = render(text, ctx) {
        assert!(
            out.len() as u64 <= TEMPLATE_MAX_BYTES,
            "{} bytes",
            out.len()
        );
    }
}

/// Pieces of templates: the context's names and macros with hostile arguments, loops and
/// growing strings, and broken syntax.
const PIECES: &[&str] = &[
    "{{ ds }}",
    "{{ ds_nodash }}",
    "{{ ts }}",
    "{{ data_interval_end }}",
    "{{ params.region }}",
    "{{ params.nope }}",
    "{{ macros.ds_add(ds, ",
    "{{ macros.ds_format(ds, '%Y-%m-%d', '",
    "{{ macros.ds_format(ds, '",
    "%Q",
    "%Y%m%d",
    "%",
    "', '%d') }}",
    "') }}",
    ") }}",
    "-1",
    "9999999999",
    "-9223372036854775807",
    "1e300",
    "'x'",
    "{{ env_var('SOCLE_FUZZ_UNSET') }}",
    "{{ env_var('SOCLE_FUZZ_UNSET', 'd') }}",
    "{% for i in range(",
    "100000",
    ") %}",
    "{% endfor %}",
    "{% set ns = namespace(s='ab') %}",
    "{% set ns.s = ns.s ~ ns.s %}",
    "{{ ns.s }}",
    "{{ 'abc' * 100000000 }}",
    "{% if ds > '2024' %}",
    "{% else %}",
    "{% endif %}",
    "{% macro m(x) %}{{ m(x) }}{% endmacro %}{{ m(1) }}",
    "{{ 1 / 0 }}",
    "{{ 1 // 0 }}",
    "{{ ds|int }}",
    "{{ [1, 2]|join('-') }}",
    "{%}",
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "{% raw %}",
    "{% endraw %}",
    " ",
    "\n",
    "\u{e9}",
];

#[test]
fn fuzz_render_text() {
    let ctx = AssertUnwindSafe(ctx());
    bolero::check!()
        .with_test_time(FUZZ_TIME)
        .for_each(|bytes: &[u8]| {
            let ctx: &minijinja::Value = &ctx;
            if let Ok(text) = std::str::from_utf8(bytes) {
                check(text, ctx);
            }
        });
}

#[test]
fn fuzz_render_pieces() {
    let ctx = AssertUnwindSafe(ctx());
    bolero::check!()
        .with_test_time(FUZZ_TIME)
        .with_max_len(64)
        .for_each(|bytes: &[u8]| {
            let ctx: &minijinja::Value = &ctx;
            let text: String = bytes
                .iter()
                .map(|b| PIECES[usize::from(*b) % PIECES.len()])
                .collect();
            check(&text, ctx);
        });
}
