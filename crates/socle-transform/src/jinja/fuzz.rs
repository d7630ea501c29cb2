//! Fuzz tests of rendering untrusted templates with dbt's Jinja ([`Jinja::render_str`],
//! with socle's built-in macros, `ref`, `modules`, mutable lists and dicts): whatever the
//! text, a render returns SQL or an error, never panics, never waits forever, and never
//! produces more than the budget's text ([`TEMPLATE_MAX_BYTES`]). The regressions it
//! found are kept below, by name.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Map;

use super::limits::TEMPLATE_MAX_BYTES;
use super::{Jinja, QueryTable, Relation, Resolver, Scope};

/// How long each fuzz target runs within `cargo test` (`BOLERO_RANDOM_TEST_TIME_MS`
/// overrides it).
const FUZZ_TIME: Duration = Duration::from_secs(2);

/// A project without a warehouse: every `ref` is a table of `main`, nothing else exists.
struct NoWarehouse;

impl Resolver for NoWarehouse {
    fn resolve_ref(
        &self,
        _from_package: &str,
        _package: Option<&str>,
        name: &str,
    ) -> Result<Relation, String> {
        Ok(Relation {
            database: "socle".into(),
            schema: "main".into(),
            identifier: name.into(),
            kind: "table".into(),
        })
    }

    fn resolve_source(&self, source: &str, table: &str) -> Result<Relation, String> {
        Err(format!("no source `{source}.{table}`"))
    }

    fn run_query(&self, _sql: &str) -> Result<QueryTable, String> {
        Err("no warehouse here".into())
    }

    fn get_relation(&self, _schema: &str, _identifier: &str) -> Option<Relation> {
        None
    }

    fn columns(&self, _relation: &Relation) -> Result<Vec<(String, String)>, String> {
        Ok(Vec::new())
    }

    fn doc(&self, _name: &str) -> Option<String> {
        None
    }
}

fn project() -> (Jinja, Arc<Scope>) {
    let jinja = Jinja::new("shop", Vec::new(), Map::new()).expect("built-in macros load");
    let scope = Scope::new(
        "shop",
        true,
        None,
        false,
        Map::new(),
        serde_json::json!({ "name": "fuzz", "unique_id": "model.shop.fuzz" }),
        serde_json::json!({ "name": "dev", "schema": "main", "type": "duckdb" }),
        (Map::new(), Map::new()),
        false,
        Arc::new(NoWarehouse),
    );
    (jinja, scope)
}

fn render(project: &(Jinja, Arc<Scope>), text: &str) -> Result<String, String> {
    project
        .0
        .render_str("models/fuzz.sql", text, &project.1)
        .map_err(|e| e.message)
}

fn check(project: &(Jinja, Arc<Scope>), text: &str) {
    if let Ok(sql) = render(project, text) {
        assert!(
            sql.len() as u64 <= TEMPLATE_MAX_BYTES,
            "{} bytes",
            sql.len()
        );
    }
}

/// Pieces of templates: dbt's functions and objects with hostile arguments, mutable lists
/// and dicts fed to themselves, loops and growing strings, broken syntax.
const PIECES: &[&str] = &[
    "select 1",
    "{{ ref('orders') }}",
    "{{ ref('shop', 'orders').identifier }}",
    "{{ source('raw', 'orders') }}",
    "{{ config(materialized='table') }}",
    "{{ var('x', 1) }}",
    "{{ this }}",
    "{{ is_incremental() }}",
    "{% set l = [1, [2]] %}",
    "{% do l.append(l) %}",
    "{% do l.extend(l) %}",
    "{% do l.insert(0, l) %}",
    "{{ l.index(l) }}",
    "{% do l.remove(l) %}",
    "{{ l.pop() }}",
    "{{ l }}",
    "{% set d = {'a': {'b': 1}} %}",
    "{% do d.update(d) %}",
    "{% do d.update({'self': d}) %}",
    "{{ d.get(d, 0) }}",
    "{{ d.setdefault(d, 1) }}",
    "{{ d.pop('a') }}",
    "{{ d }}",
    "{{ tojson(l) }}",
    "{{ tojson(d) }}",
    "{{ fromjson('[1, {\"a\": 2}]') }}",
    "{{ fromjson('nope') }}",
    "{{ modules.datetime.datetime(2024, 1, 2).isoformat('%Q') }}",
    "{{ modules.datetime.datetime(2024, 1, 2).strftime('%Q') }}",
    "{{ modules.datetime.datetime.strptime('2024', '%Q') }}",
    "{{ modules.datetime.datetime(99999, 99, 99) }}",
    "{{ modules.datetime.timedelta(days=1e300) }}",
    "{{ modules.re.sub('(a', 'b', 'c') }}",
    "{{ modules.re.sub('(a)', '\\\\g<', 'aaa') }}",
    "{{ modules.re.findall('(a)(b)?', 'ab a') }}",
    "{{ modules.re.match('x*', '') }}",
    "{{ run_query('select 1') }}",
    "{{ adapter.dispatch('nope')() }}",
    "{{ exceptions.raise_compiler_error('no') }}",
    "{{ return(1) }}",
    "{% macro m(x) %}{{ return(x) }}{% endmacro %}{{ m(1) }}",
    "{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}",
    "{% for i in range(",
    "100000",
    ") %}",
    "{% endfor %}",
    "{% set ns = namespace(s='ab') %}",
    "{% set ns.s = ns.s ~ ns.s %}",
    "{{ ns.s }}",
    "{{ 'abc' * 100000000 }}",
    "{%}",
    "{{",
    "}}",
    "{%",
    "%}",
    "{% raw %}",
    "{% endraw %}",
    "{% test t(model) %}x{% endtest %}",
    "{% macro a() %}",
    "{% endmacro %}",
    "{% if l %}",
    "{% endif %}",
    " ",
    "\n",
    "\u{e9}",
];

#[test]
fn fuzz_render_text() {
    let project = AssertUnwindSafe(project());
    bolero::check!()
        .with_test_time(FUZZ_TIME)
        .for_each(|bytes: &[u8]| {
            let project: &(Jinja, Arc<Scope>) = &project;
            if let Ok(text) = std::str::from_utf8(bytes) {
                check(project, text);
            }
        });
}

#[test]
fn fuzz_render_pieces() {
    let project = AssertUnwindSafe(project());
    bolero::check!()
        .with_test_time(FUZZ_TIME)
        .with_max_len(48)
        .for_each(|bytes: &[u8]| {
            let project: &(Jinja, Arc<Scope>) = &project;
            let text: String = bytes
                .iter()
                .map(|b| PIECES[usize::from(*b) % PIECES.len()])
                .collect();
            check(project, &text);
        });
}

/// Found while writing the fuzz tests: `l.extend(l)`, `d.update(d)` and comparisons with the
/// container itself took its lock a second time while holding it, and the render waited
/// forever.
#[test]
fn regression_a_list_or_dict_read_while_it_changes() {
    let p = project();
    assert_eq!(
        render(&p, "{% set l = [1] %}{% do l.extend(l) %}{{ l|length }}").unwrap(),
        "2"
    );
    assert_eq!(
        render(&p, "{% set l = [[1]] %}{{ l.index(l) }}").unwrap(),
        "-1"
    );
    assert_eq!(
        render(&p, "{% set d = {'a': 1} %}{% do d.update(d) %}{{ d.a }}").unwrap(),
        "1"
    );
}

/// Found while writing the fuzz tests: a list appended to itself (directly or through another
/// list or dict) made a cycle, and printing it never ended (a stack overflow).
#[test]
fn regression_a_list_or_dict_cannot_hold_itself() {
    let p = project();
    for text in [
        "{% set l = [] %}{% do l.append(l) %}",
        "{% set l = [] %}{% set m = [l] %}{% do l.append(m) %}",
        "{% set l = [] %}{% do l.insert(0, [1, [l]]) %}",
        "{% set d = {} %}{% do d.update({'me': d}) %}",
        "{% set d = {} %}{{ d.setdefault('me', [d]) }}",
    ] {
        let e = render(&p, text).unwrap_err();
        assert!(e.contains("cannot hold itself"), "{text}: {e}");
    }
    // Holding another list is fine.
    assert_eq!(
        render(
            &p,
            "{% set l = [] %}{% set m = [1] %}{% do l.append(m) %}{{ l }}"
        )
        .unwrap(),
        "[[1]]"
    );
}
