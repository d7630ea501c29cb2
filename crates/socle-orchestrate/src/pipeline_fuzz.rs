//! Fuzz and property tests of pipeline files ([`from_yaml`]): any text, and YAML made of a
//! pipeline's own keys with plausible and hostile values (bad crons, durations past
//! `Duration::MAX`, templates that do not parse), is a pipeline or located errors, never
//! a panic; generated task graphs load with their dependencies as written, and a cycle
//! among them is reported.

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;

use super::from_yaml;

/// How long each fuzz target runs within `cargo test` (`BOLERO_RANDOM_TEST_TIME_MS`
/// overrides it).
const FUZZ_TIME: Duration = Duration::from_secs(2);

fn load(text: &str) {
    match from_yaml(text, Path::new("pipelines/daily.yml")) {
        Ok(p) => assert!(!p.tasks.is_empty()),
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                let _ = e.to_string();
            }
        }
    }
}

const KEYS: &[&str] = &[
    "description",
    "schedule",
    "timezone",
    "start_date",
    "end_date",
    "catchup",
    "max_active_runs",
    "defaults",
    "retries",
    "retry_delay",
    "retry_backoff",
    "max_retry_delay",
    "timeout",
    "params",
    "alerts",
    "on",
    "to",
    "sla",
    "tasks",
    "kind",
    "depends_on",
    "trigger_rule",
    "pool",
    "priority",
    "command",
    "env",
    "cwd",
    "select",
    "exclude",
    "full_refresh",
    "vars",
    "sql",
    "file",
    "message",
    "channels",
    "sources",
    "a",
    "b",
    "report",
];

const VALUES: &[&str] = &[
    "",
    "command",
    "build",
    "test",
    "sql",
    "notify",
    "extract",
    "echo hi",
    "[echo, hi]",
    "[]",
    "[a]",
    "[a, b]",
    "[report]",
    "\"0 6 * * *\"",
    "\"* * * * * *\"",
    "\"@daily\"",
    "\"61 * * * *\"",
    "\"0 0 31 2 *\"",
    "\"L W # ?\"",
    "UTC",
    "Europe/Paris",
    "Mars/Olympus",
    "2024-01-01",
    "2024-02-30",
    "30s",
    "0",
    "-1",
    "1h30m",
    "99999999999999999999d",
    "18446744073709551615",
    "4294967296",
    "all_done",
    "one_failed",
    "sometimes",
    "true",
    "null",
    "{}",
    "{ day: \"{{ ds }}\" }",
    "\"{{ ds }}\"",
    "\"{{ macros.ds_add(ds, 9999999999) }}\"",
    "\"{{ macros.ds_add(ds, -9223372036854775808) }}\"",
    "\"{{ macros.ds_format(ds, '%Y-%m-%d', '%Q') }}\"",
    "\"{% for x in %}\"",
    "\"{{\"",
    "\"{%}\"",
    "\"${env:HOME}\"",
    "\"${nope\"",
    "[failure, success]",
    "&x y",
    "*x",
];

/// YAML made from `KEYS` and `VALUES` after a valid pipeline, driven by `bytes`: each pair
/// of bytes picks an indentation (0 to 6 spaces: top level, a task, a task's field, a
/// nested value), a key and a value (an empty value opens a mapping).
fn yaml_from(bytes: &[u8]) -> String {
    let mut out = String::from(
        "schedule: \"@daily\"\ntasks:\n  a:\n    kind: command\n    command: echo a\n",
    );
    for pair in bytes.chunks(2) {
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
fn fuzz_pipeline_text() {
    bolero::check!()
        .with_test_time(FUZZ_TIME)
        .for_each(|bytes: &[u8]| {
            if let Ok(text) = std::str::from_utf8(bytes) {
                load(text);
            }
        });
}

#[test]
fn fuzz_pipeline_keys_and_values() {
    bolero::check!()
        .with_test_time(FUZZ_TIME)
        .for_each(|bytes: &[u8]| load(&yaml_from(bytes)));
}

#[test]
fn the_generated_yaml_reaches_the_validation() {
    assert!(from_yaml(&yaml_from(&[]), Path::new("pipelines/daily.yml")).is_ok());
}

/// A pipeline of `deps.len()` command tasks `t0`, `t1`, ...; task `i` depends on the tasks
/// listed in `deps[i]`.
fn pipeline_text(deps: &[Vec<usize>]) -> String {
    let mut out = String::from("schedule: \"0 6 * * *\"\ntimezone: Europe/Paris\ntasks:\n");
    for (i, d) in deps.iter().enumerate() {
        let names: Vec<String> = d.iter().map(|j| format!("t{j}")).collect();
        out.push_str(&format!(
            "  t{i}:\n    kind: command\n    command: echo {i}\n    depends_on: [{}]\n",
            names.join(", ")
        ));
    }
    out
}

/// Edges from each task to some earlier ones: a graph without cycles.
fn acyclic() -> impl Strategy<Value = Vec<Vec<usize>>> {
    prop::collection::vec(any::<u8>(), 1..7).prop_map(|bits| {
        bits.iter()
            .enumerate()
            .map(|(i, b)| (0..i).filter(|&j| b & (1u8 << (j % 8)) != 0).collect())
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn task_graphs_load_with_their_dependencies(deps in acyclic()) {
        let p = from_yaml(&pipeline_text(&deps), Path::new("pipelines/daily.yml"));
        prop_assert!(p.is_ok(), "{:?}", p.as_ref().err());
        let p = p.unwrap_or_else(|_| unreachable!());
        prop_assert_eq!(p.name.as_str(), "daily");
        prop_assert_eq!(p.tasks.len(), deps.len());
        for (i, d) in deps.iter().enumerate() {
            let expected: Vec<String> = d.iter().map(|j| format!("t{j}")).collect();
            prop_assert_eq!(&p.tasks[&format!("t{i}")].depends_on, &expected);
        }
    }

    /// Closing a path `t0 <- t1 <- ... <- tn` with `t0 -> tn` makes a cycle.
    #[test]
    fn a_cycle_is_reported(mut deps in acyclic()) {
        let n = deps.len();
        for (i, d) in deps.iter_mut().enumerate().skip(1) {
            if !d.contains(&(i - 1)) {
                d.push(i - 1);
            }
        }
        deps[0].push(n - 1);
        let errors = from_yaml(&pipeline_text(&deps), Path::new("pipelines/daily.yml"));
        prop_assert!(errors.is_err());
        let shown: Vec<String> = errors
            .err()
            .unwrap_or_default()
            .iter()
            .map(|e| e.to_string())
            .collect();
        let wanted = if n == 1 { "depends on itself" } else { "cycle" };
        prop_assert!(shown.iter().any(|e| e.contains(wanted)), "{:?}", shown);
    }
}
