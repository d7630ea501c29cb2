//! Templating of task fields, with Airflow's names for the run's dates: `{{ ds }}`,
//! `{{ ds_nodash }}`, `{{ ts }}`, `{{ data_interval_start }}`, `{{ data_interval_end }}`,
//! `{{ logical_date }}`, `{{ macros.ds_add(ds, -1) }}`, `{{ macros.ds_format(ds, '%Y-%m-%d',
//! '%d/%m/%Y') }}`, plus `{{ run_id }}`, `{{ pipeline }}`, `{{ task }}`, `{{ params.x }}`
//! and `{{ env_var('NAME', 'default') }}`.
//!
//! Dates are in the pipeline's time zone (`ds` of a daily Paris run is the Paris date).

use std::fmt::Write;

use chrono::{DateTime, NaiveDate, Utc};
use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

use crate::pipeline::TaskSpec;

pub use socle_core::dates::RunDates;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    socle_transform::jinja::limits::bound(&mut env);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_function(
        "env_var",
        |name: String, default: Option<String>| -> Result<String, Error> {
            std::env::var(&name).ok().or(default).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("environment variable `{name}` is not set and has no default"),
                )
            })
        },
    );
    env
}

fn ds_add(ds: String, days: i64) -> Result<String, Error> {
    let d = NaiveDate::parse_from_str(&ds, "%Y-%m-%d").map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("ds_add: `{ds}` is not YYYY-MM-DD"),
        )
    })?;
    // Days past the calendar (`ds_add(ds, 9999999999)`) are an error, not a panic.
    chrono::Duration::try_days(days)
        .and_then(|delta| d.checked_add_signed(delta))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("ds_add: `{ds}` plus {days} days is past the calendar"),
            )
        })
}

fn ds_format(ds: String, input: String, output: String) -> Result<String, Error> {
    let d = NaiveDate::parse_from_str(&ds, &input).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("ds_format: `{ds}` does not match `{input}`"),
        )
    })?;
    // A format chrono cannot write (`%Q`) fails the `Display`; `to_string` would panic.
    let mut out = String::new();
    write!(out, "{}", d.format(&output)).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("ds_format: `{output}` is not a date format"),
        )
    })?;
    Ok(out)
}

/// The template context of one task of one run.
pub fn context(
    dates: &RunDates,
    run_id: &str,
    pipeline: &str,
    task: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Value {
    let local = dates.start.with_timezone(&dates.tz);
    let ds = local.format("%Y-%m-%d").to_string();
    let iso = |t: DateTime<Utc>| t.with_timezone(&dates.tz).to_rfc3339();
    let macros = map([
        ("ds_add", Value::from_function(ds_add)),
        ("ds_format", Value::from_function(ds_format)),
    ]);
    map([
        ("ds", Value::from(ds.clone())),
        ("ds_nodash", Value::from(ds.replace('-', ""))),
        ("ts", Value::from(iso(dates.start))),
        (
            "ts_nodash",
            Value::from(local.format("%Y%m%dT%H%M%S").to_string()),
        ),
        ("logical_date", Value::from(iso(dates.start))),
        ("data_interval_start", Value::from(iso(dates.start))),
        ("data_interval_end", Value::from(iso(dates.end))),
        ("run_id", Value::from(run_id)),
        ("pipeline", Value::from(pipeline)),
        ("task", Value::from(task)),
        (
            "params",
            socle_transform::jinja::json_to_value(&serde_json::Value::Object(params.clone())),
        ),
        ("macros", macros),
    ])
}

fn map<const N: usize>(pairs: [(&'static str, Value); N]) -> Value {
    Value::from(std::collections::BTreeMap::from(pairs))
}

/// Renders one field.
pub fn render(text: &str, ctx: &Value) -> Result<String, String> {
    if !text.contains("{{") && !text.contains("{%") {
        return Ok(text.to_string());
    }
    environment()
        .render_str(text, ctx)
        .map_err(|e| describe(&e))
}

/// Whether a field's template parses (checked when the pipeline is loaded).
pub fn check_syntax(text: &str) -> Result<(), String> {
    let env = environment();
    env.template_from_str(text)
        .map(|_| ())
        .map_err(|e| describe(&e))
}

fn describe(e: &Error) -> String {
    if socle_transform::jinja::limits::is_out_of_budget(e) {
        return socle_transform::jinja::limits::out_of_budget_message();
    }
    let mut msg = e.detail().unwrap_or("").to_string();
    if msg.is_empty() {
        msg = e.kind().to_string();
    } else {
        msg = format!("{}: {msg}", e.kind());
    }
    msg
}

/// Every templated text of a task (for syntax checks).
pub fn templated_fields(spec: &TaskSpec) -> Vec<String> {
    spec.kind.templates()
}

#[cfg(test)]
#[path = "template_fuzz.rs"]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn airflow_names_in_the_pipeline_time_zone() {
        let dates = RunDates {
            start: "2024-03-30T23:00:00Z".parse().unwrap(),
            end: "2024-03-31T22:00:00Z".parse().unwrap(),
            tz: chrono_tz::Europe::Paris,
        };
        let mut params = serde_json::Map::new();
        params.insert("region".into(), "eu".into());
        let ctx = context(&dates, "daily.20240331.1", "daily", "load", &params);
        let r = |t: &str| render(t, &ctx).unwrap();
        assert_eq!(r("{{ ds }} {{ ds_nodash }}"), "2024-03-31 20240331");
        assert_eq!(r("{{ macros.ds_add(ds, -1) }}"), "2024-03-30");
        assert_eq!(
            r("{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}"),
            "31/03/2024"
        );
        assert_eq!(r("{{ data_interval_start }}"), "2024-03-31T00:00:00+01:00");
        assert_eq!(r("{{ data_interval_end }}"), "2024-04-01T00:00:00+02:00");
        assert_eq!(
            r("{{ params.region }}/{{ task }}/{{ run_id }}"),
            "eu/load/daily.20240331.1"
        );
        assert!(
            render("{{ nope }}", &ctx)
                .unwrap_err()
                .contains("undefined")
        );
        assert!(check_syntax("{{ ds ").is_err());
        assert_eq!(r("plain"), "plain");
    }

    /// Found while writing the fuzz tests: these panicked in chrono (a date past the calendar,
    /// a format it cannot write) and took the runner down.
    #[test]
    fn regression_date_macros_past_the_calendar_or_with_a_bad_format() {
        let dates = RunDates {
            start: "2024-03-30T23:00:00Z".parse().unwrap(),
            end: "2024-03-31T22:00:00Z".parse().unwrap(),
            tz: chrono_tz::Europe::Paris,
        };
        let ctx = context(&dates, "r", "p", "t", &serde_json::Map::new());
        let e = render("{{ macros.ds_add(ds, 9999999999) }}", &ctx).unwrap_err();
        assert!(e.contains("past the calendar"), "{e}");
        assert!(render("{{ macros.ds_add(ds, -9223372036854775807) }}", &ctx).is_err());
        let e = render("{{ macros.ds_format(ds, '%Y-%m-%d', '%Q') }}", &ctx).unwrap_err();
        assert!(e.contains("not a date format"), "{e}");
        assert_eq!(
            render("{{ macros.ds_add(ds, 3) }}", &ctx).unwrap(),
            "2024-04-03"
        );
    }
}
