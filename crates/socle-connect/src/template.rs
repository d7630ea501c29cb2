//! Templates in source settings (paths, parameters, headers, queries): Jinja with the
//! run's logical date and the stream's state.
//!
//! Variables: `ds` (`2024-06-30`), `ds_nodash` (`20240630`), `logical_date`,
//! `data_interval_start` / `data_interval_end` (RFC 3339, UTC), `run_id`, `state` (the
//! stream's committed state) and `cursor` (its cursor value, when it has one); connectors
//! add their own (an account's fields, a fan-out item).

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::RunDates;

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// Renders `template` with `vars`; the error names the undefined variable or the
/// syntax problem.
pub fn render(
    template: &str,
    vars: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, String> {
    if !template.contains("{{") && !template.contains("{%") {
        return Ok(template.to_string());
    }
    let env = env();
    let t = env
        .template_from_str(template)
        .map_err(|e| format!("template `{template}`: {e}"))?;
    let ctx: std::collections::BTreeMap<String, Value> =
        vars.iter().map(|(k, v)| (k.clone(), to_value(v))).collect();
    t.render(Value::from(ctx))
        .map_err(|e| format!("template `{template}`: {e}"))
}

/// A JSON value as a template value (objects become maps, not sequences).
fn to_value(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(*b),
        J::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_f64().map(Value::from))
            .unwrap_or_else(|| Value::from(n.to_string())),
        J::String(s) => Value::from(s.as_str()),
        J::Array(items) => Value::from(items.iter().map(to_value).collect::<Vec<_>>()),
        J::Object(m) => Value::from(
            m.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<std::collections::BTreeMap<_, _>>(),
        ),
    }
}

/// Checks a template's syntax without rendering it.
pub fn check(template: &str) -> Result<(), String> {
    env()
        .template_from_str(template)
        .map(|_| ())
        .map_err(|e| format!("template `{template}`: {e}"))
}

/// The variables of a run.
pub fn run_vars(
    dates: &RunDates,
    run_id: &str,
    state: &serde_json::Value,
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    let ds = dates.ds();
    m.insert("ds_nodash".into(), ds.replace('-', "").into());
    m.insert("ds".into(), ds.clone().into());
    m.insert("logical_date".into(), ds.into());
    m.insert(
        "data_interval_start".into(),
        dates
            .start
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .into(),
    );
    m.insert(
        "data_interval_end".into(),
        dates
            .end
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .into(),
    );
    m.insert("run_id".into(), run_id.into());
    m.insert("state".into(), state.clone());
    m.insert(
        "cursor".into(),
        state
            .get("cursor")
            .cloned()
            .unwrap_or(serde_json::Value::Null),
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_dates_and_cursor() {
        let d = RunDates::day(chrono::NaiveDate::from_ymd_opt(2024, 6, 30).unwrap());
        let vars = run_vars(
            &d,
            "r1",
            &serde_json::json!({"cursor": "2024-06-29T10:00:00Z"}),
        );
        assert_eq!(
            render("{{ ds }}/{{ ds_nodash }}", &vars).unwrap(),
            "2024-06-30/20240630"
        );
        assert_eq!(
            render("{{ data_interval_end }}", &vars).unwrap(),
            "2024-07-01T00:00:00Z"
        );
        assert_eq!(
            render("{{ cursor }}", &vars).unwrap(),
            "2024-06-29T10:00:00Z"
        );
        let e = render("{{ nope }}", &vars).unwrap_err();
        assert!(e.contains("undefined"), "{e}");
    }
}
