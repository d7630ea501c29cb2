//! `forecast`: an additive (or multiplicative) model in the manner of Prophet — a
//! piecewise-linear trend with changepoints, Fourier seasonalities, holidays and one-off
//! shocks, extra regressors — fitted by MAP with L-BFGS, one model per series (see
//! [`crate::algo::forecast`]).
//!
//! ```yaml
//! kind: forecast
//! input: { sql: "select day as ds, sum(amount) as y from marts.orders group by 1" }
//! columns: { time: ds, target: y }        # + series: store, regressors: [temperature]
//! params:
//!   horizon: 30                 # periods ahead, at `frequency` (default: the history's step)
//!   seasonality_mode: multiplicative
//!   shocks: [{ name: lockdown, start: 2020-03-16, end: 2020-05-10 }]
//!   holidays: [{ name: sale, dates: [2024-11-29, 2025-11-28], upper_window: 2 }]
//! ```
//!
//! Training writes `<output>`: per series and time, `y` (NULL ahead), `yhat`, `yhat_lower`,
//! `yhat_upper`, `trend` (with bounds), `additive_terms`, `multiplicative_terms`, each
//! component, and `is_forecast`, for the history and `horizon` periods after it. With
//! validation, the last part of each series is held out: `mape`, `rmse`, `mae` and
//! `coverage` (the share of held-out values inside the interval) are recorded.

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};
use socle_core::fields::Fields;

use super::{Kind, TrainContext, Trained, role, role_list};
use crate::algo::forecast::{self as algo, Column, Model};
use crate::error::MlError;
use crate::frame::{Frame, OutColumn, batch};

/// The parameters passed to the model as they are (Prophet's names).
const MODEL_PARAMS: &[&str] = &[
    "growth",
    "n_changepoints",
    "changepoint_range",
    "changepoint_prior_scale",
    "yearly_seasonality",
    "weekly_seasonality",
    "daily_seasonality",
    "seasonalities",
    "seasonality_mode",
    "seasonality_prior_scale",
    "holidays_prior_scale",
    "holidays_mode",
    "scaling",
    "interval_width",
    "uncertainty_samples",
];

/// A `forecast` model's columns and parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Forecast {
    pub time: Option<String>,
    pub target: Option<String>,
    pub series: Option<String>,
    pub regressors: Vec<String>,
    pub horizon: usize,
    pub frequency: String,
    /// Prophet's settings, with dates as written (converted when fitting).
    pub model: serde_json::Map<String, serde_json::Value>,
    pub holidays: Vec<HolidayParam>,
    pub shocks: Vec<ShockParam>,
    pub changepoints: Vec<String>,
}

/// A holiday: dates, and the days before and after each that it lasts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolidayParam {
    pub name: String,
    pub dates: Vec<String>,
    #[serde(default)]
    pub lower_window: i32,
    #[serde(default)]
    pub upper_window: i32,
    #[serde(default)]
    pub prior_scale: Option<f64>,
}

/// A one-off event from `start` to `end` (inclusive days).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShockParam {
    pub name: String,
    pub start: String,
    pub end: String,
    #[serde(default)]
    pub prior_scale: Option<f64>,
}

/// The fitted model: one per series.
#[derive(Debug, Serialize, Deserialize)]
struct Fitted {
    /// Series key → model (`""` without a series column).
    series: BTreeMap<String, Model>,
    /// Seconds between periods, or 0 with `months` set.
    step_seconds: i64,
    months: u32,
}

impl Kind for Forecast {
    const NAME: &'static str = "forecast";
    const ROLES: &'static [&'static str] = &["time", "target", "series", "regressors"];
    const PARAMS: &'static [&'static str] = &[
        "horizon",
        "frequency",
        "holidays",
        "shocks",
        "changepoints",
        "growth",
        "n_changepoints",
        "changepoint_range",
        "changepoint_prior_scale",
        "yearly_seasonality",
        "weekly_seasonality",
        "daily_seasonality",
        "seasonalities",
        "seasonality_mode",
        "seasonality_prior_scale",
        "holidays_prior_scale",
        "holidays_mode",
        "scaling",
        "interval_width",
        "uncertainty_samples",
    ];
    const FORMAT: u32 = 1;

    fn parse(columns: &mut Fields, params: &mut Fields) -> Self {
        let mut model = serde_json::Map::new();
        for name in MODEL_PARAMS {
            if let Some(v) = params.value::<serde_json::Value>(name) {
                model.insert(name.to_string(), v);
            }
        }
        Self {
            time: role(columns, "time"),
            target: role(columns, "target"),
            series: role(columns, "series"),
            regressors: role_list(columns, "regressors"),
            horizon: params.value("horizon").unwrap_or(30),
            frequency: params.value("frequency").unwrap_or_else(|| "auto".into()),
            model,
            holidays: params.value("holidays").unwrap_or_default(),
            shocks: params.value("shocks").unwrap_or_default(),
            changepoints: params.value("changepoints").unwrap_or_default(),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.time.is_none() || self.target.is_none() {
            return Err("a `forecast` model needs `columns: { time, target }`".into());
        }
        step(&self.frequency, &[]).map(|_| ())?;
        self.spec(0).map(|_| ())
    }

    fn input_columns(&self) -> Vec<String> {
        let mut c: Vec<String> = [&self.time, &self.target, &self.series]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        c.extend(self.regressors.iter().cloned());
        c
    }

    fn default_metric(&self) -> Option<&'static str> {
        Some("mape")
    }

    fn train(&self, frame: &Frame, ctx: &TrainContext) -> Result<Trained, MlError> {
        let data = self.read(ctx.model, frame, true)?;
        let spec = self.spec(ctx.seed).map_err(|e| MlError::data(ctx.model, e))?;
        let all_times: Vec<i64> = data.values().flat_map(|s| s.times.iter().copied()).collect();
        let (step_seconds, months) = step(&self.frequency, &all_times).map_err(|e| MlError::data(ctx.model, e))?;
        let mut metrics = BTreeMap::new();
        let mut notes = Vec::new();
        if let Some(v) = ctx.validation {
            let fraction = match &v.method {
                crate::validation::Method::Holdout { test_fraction, .. } => *test_fraction,
                crate::validation::Method::TimeSeries { folds, .. }
                | crate::validation::Method::Kfold { folds, .. } => 1.0 / (*folds as f64 + 1.0),
            };
            (ctx.progress)(0, data.len() + 1, "validating");
            let scores = self.holdout(ctx.model, &spec, &data, fraction)?;
            metrics.extend(scores);
        }
        let mut series = BTreeMap::new();
        let mut tables = Vec::new();
        for (i, (key, s)) in data.iter().enumerate() {
            (ctx.progress)(i + 1, data.len() + 1, &format!("fitting {}", if key.is_empty() { "the series" } else { key }));
            let model = fit(ctx.model, key, &spec, s)?;
            notes.extend(model.notes.iter().map(|n| prefixed(key, n)));
            let mut times = s.times.clone();
            if self.horizon > 0 && !self.regressors.is_empty() {
                notes.push(prefixed(key, "no forecast ahead: the future needs the regressors' values (use `socle ml predict` with an input holding them)"));
            } else if let Some(&last) = s.times.iter().max() {
                times.extend(ahead(last, self.horizon, step_seconds, months));
            }
            let regs: Vec<Column> = s.regressors.iter().map(|(n, v)| Column { name: n, values: v }).collect();
            let forecast = model
                .predict(&times, if times.len() == s.times.len() { &regs } else { &[] })
                .map_err(|e| MlError::data(ctx.model, prefixed(key, &e.to_string())))?;
            let actual: BTreeMap<i64, f64> = s.times.iter().copied().zip(s.y.iter().copied()).collect();
            tables.push((key.clone(), forecast, actual, s.times.iter().copied().max()));
            series.insert(key.clone(), model);
        }
        metrics.insert("series".into(), data.len() as f64);
        metrics.insert("rows".into(), data.values().map(|s| s.times.len()).sum::<usize>() as f64);
        let table = self.output(&tables);
        let fitted = Fitted {
            series,
            step_seconds,
            months,
        };
        Ok(Trained {
            fitted: serde_json::to_vec(&fitted).expect("model serializes"),
            metrics,
            params: serde_json::to_value(&spec).expect("spec serializes"),
            notes,
            outputs: vec![("", table)],
        })
    }

    fn predict(
        &self,
        model: &str,
        fitted: &[u8],
        frame: &Frame,
    ) -> Result<Vec<(&'static str, RecordBatch)>, MlError> {
        let fitted: Fitted = super::read_fitted(model, fitted)?;
        let data = self.read(model, frame, false)?;
        let mut tables = Vec::new();
        for (key, s) in &data {
            let m = fitted.series.get(key).ok_or_else(|| {
                MlError::data(model, format!("no series `{key}` was trained: train the model again"))
            })?;
            let regs: Vec<Column> = s.regressors.iter().map(|(n, v)| Column { name: n, values: v }).collect();
            let forecast = m
                .predict(&s.times, &regs)
                .map_err(|e| MlError::data(model, prefixed(key, &e.to_string())))?;
            tables.push((key.clone(), forecast, BTreeMap::new(), None));
        }
        Ok(vec![("", self.output(&tables))])
    }
}

/// One series' forecast for the output: its key, the forecast, its actual values by time,
/// and its last historical time (`None`: every row is a prediction).
type SeriesForecast = (String, algo::Forecast, BTreeMap<i64, f64>, Option<i64>);

/// One series' rows.
struct Series {
    times: Vec<i64>,
    y: Vec<f64>,
    regressors: Vec<(String, Vec<f64>)>,
}

fn prefixed(key: &str, message: &str) -> String {
    if key.is_empty() {
        message.to_string()
    } else {
        format!("series `{key}`: {message}")
    }
}

fn fit(model: &str, key: &str, spec: &algo::Spec, s: &Series) -> Result<Model, MlError> {
    let regs: Vec<Column> = s.regressors.iter().map(|(n, v)| Column { name: n, values: v }).collect();
    algo::fit(spec, &s.times, &s.y, &regs).map_err(|e| MlError::data(model, prefixed(key, &e.to_string())))
}

impl Forecast {
    /// The model's settings with dates as timestamps, its regressors and `seed`.
    fn spec(&self, seed: u64) -> Result<algo::Spec, String> {
        let mut value = serde_json::Value::Object(self.model.clone());
        let mut holidays = Vec::new();
        for h in &self.holidays {
            let dates = h.dates.iter().map(|d| date(d)).collect::<Result<Vec<_>, _>>()?;
            holidays.push(serde_json::json!({
                "name": h.name, "dates": dates, "lower_window": h.lower_window,
                "upper_window": h.upper_window, "prior_scale": h.prior_scale,
            }));
        }
        for s in &self.shocks {
            let (start, end) = (date(&s.start)?, date(&s.end)?);
            if end < start {
                return Err(format!("shock `{}` ends before it starts", s.name));
            }
            holidays.push(serde_json::json!({
                "name": s.name, "dates": [start], "lower_window": 0,
                "upper_window": (end - start) / 86_400, "prior_scale": s.prior_scale,
            }));
        }
        value["holidays"] = holidays.into();
        if !self.changepoints.is_empty() {
            let at = self.changepoints.iter().map(|d| date(d)).collect::<Result<Vec<_>, _>>()?;
            value["changepoints"] = at.into();
        }
        value["regressors"] = self
            .regressors
            .iter()
            .map(|r| serde_json::json!({ "name": r }))
            .collect::<Vec<_>>()
            .into();
        value["seed"] = seed.into();
        serde_json::from_value(value).map_err(|e| format!("params: {e}"))
    }

    /// The rows of each series, in time order; rows with a NULL time are refused, NULL
    /// targets are kept (missing: skipped by the fit).
    fn read(&self, model: &str, frame: &Frame, with_target: bool) -> Result<BTreeMap<String, Series>, MlError> {
        let time = self.time.as_deref().unwrap_or_default();
        let times = frame.times(time)?;
        let missing = times.iter().filter(|t| t.is_none()).count();
        if missing > 0 {
            return Err(MlError::data(model, format!("column `{time}` has {missing} NULL times")));
        }
        let y = match (&self.target, with_target) {
            (Some(t), true) => frame.f64s(t)?,
            _ => vec![f64::NAN; frame.rows()],
        };
        let keys = match &self.series {
            Some(s) => frame.strings(s)?.into_iter().map(|k| k.unwrap_or_default()).collect(),
            None => vec![String::new(); frame.rows()],
        };
        let regs: Vec<(String, Vec<f64>)> = self
            .regressors
            .iter()
            .map(|r| frame.f64s(r).map(|v| (r.clone(), v)))
            .collect::<Result<_, _>>()?;
        let mut rows: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, k) in keys.into_iter().enumerate() {
            rows.entry(k).or_default().push(i);
        }
        let mut out = BTreeMap::new();
        for (key, mut idx) in rows {
            idx.sort_by_key(|&i| (times[i], i));
            out.insert(
                key,
                Series {
                    times: idx.iter().map(|&i| times[i].expect("checked")).collect(),
                    y: idx.iter().map(|&i| y[i]).collect(),
                    regressors: regs
                        .iter()
                        .map(|(n, v)| (n.clone(), idx.iter().map(|&i| v[i]).collect()))
                        .collect(),
                },
            );
        }
        Ok(out)
    }

    /// Fits on the first `1 − fraction` of each series' times, scores the rest.
    fn holdout(
        &self,
        model: &str,
        spec: &algo::Spec,
        data: &BTreeMap<String, Series>,
        fraction: f64,
    ) -> Result<BTreeMap<String, f64>, MlError> {
        let (mut truth, mut pred, mut inside) = (Vec::new(), Vec::new(), 0usize);
        for (key, s) in data {
            let cut = ((s.times.len() as f64) * (1.0 - fraction)).floor() as usize;
            if cut < 2 || cut >= s.times.len() {
                return Err(MlError::data(model, prefixed(key, "too few rows to hold some out for validation")));
            }
            let head = Series {
                times: s.times[..cut].to_vec(),
                y: s.y[..cut].to_vec(),
                regressors: s.regressors.iter().map(|(n, v)| (n.clone(), v[..cut].to_vec())).collect(),
            };
            let m = fit(model, key, spec, &head)?;
            let regs: Vec<Column> = s
                .regressors
                .iter()
                .map(|(n, v)| Column { name: n, values: &v[cut..] })
                .collect();
            let f = m
                .predict(&s.times[cut..], &regs)
                .map_err(|e| MlError::data(model, prefixed(key, &e.to_string())))?;
            for (k, &t) in f.timestamps.iter().enumerate() {
                let Some(i) = s.times[cut..].iter().position(|&x| x == t) else { continue };
                let y = s.y[cut + i];
                if y.is_nan() {
                    continue;
                }
                truth.push(y);
                pred.push(f.yhat[k]);
                inside += usize::from(f.yhat_lower[k] <= y && y <= f.yhat_upper[k]);
            }
        }
        let mut out = BTreeMap::new();
        if truth.is_empty() {
            return Ok(out);
        }
        let err = |e: crate::algo::metrics::MetricError| MlError::data(model, e.to_string());
        out.insert("mape".into(), crate::algo::metrics::mape(&truth, &pred).map_err(err)?);
        out.insert("rmse".into(), crate::algo::metrics::rmse(&truth, &pred).map_err(err)?);
        out.insert("mae".into(), crate::algo::metrics::mae(&truth, &pred).map_err(err)?);
        out.insert("coverage".into(), inside as f64 / truth.len() as f64);
        out.insert("holdout_rows".into(), truth.len() as f64);
        Ok(out)
    }

    /// The output table of the forecasts of every series.
    fn output(&self, tables: &[SeriesForecast]) -> RecordBatch {
        let mut component_names: Vec<String> = Vec::new();
        for (_, f, _, _) in tables {
            for c in &f.components {
                if !component_names.contains(&c.name) {
                    component_names.push(c.name.clone());
                }
            }
        }
        let mut series = Vec::new();
        let mut ds = Vec::new();
        let mut y = Vec::new();
        let mut ahead = Vec::new();
        let mut cols: BTreeMap<&str, Vec<Option<f64>>> = BTreeMap::new();
        let mut comps: Vec<Vec<Option<f64>>> = vec![Vec::new(); component_names.len()];
        for (key, f, actual, last) in tables {
            for (k, &t) in f.timestamps.iter().enumerate() {
                series.push(Some(key.clone()));
                ds.push(Some(t));
                y.push(actual.get(&t).copied().filter(|v| !v.is_nan()));
                ahead.push(Some(last.is_some_and(|l| t > l)));
                for (name, values) in [
                    ("yhat", &f.yhat),
                    ("yhat_lower", &f.yhat_lower),
                    ("yhat_upper", &f.yhat_upper),
                    ("trend", &f.trend),
                    ("trend_lower", &f.trend_lower),
                    ("trend_upper", &f.trend_upper),
                    ("additive_terms", &f.additive_terms),
                    ("multiplicative_terms", &f.multiplicative_terms),
                ] {
                    cols.entry(name).or_default().push(Some(values[k]));
                }
                for (j, name) in component_names.iter().enumerate() {
                    comps[j].push(f.component(name).map(|v| v[k]));
                }
            }
        }
        let mut columns = Vec::new();
        if let Some(s) = &self.series {
            columns.push((s.as_str(), OutColumn::Text(series)));
        }
        columns.push(("ds", OutColumn::Time(ds)));
        columns.push(("y", OutColumn::Float(y)));
        for name in [
            "yhat",
            "yhat_lower",
            "yhat_upper",
            "trend",
            "trend_lower",
            "trend_upper",
            "additive_terms",
            "multiplicative_terms",
        ] {
            columns.push((name, OutColumn::Float(cols.remove(name).unwrap_or_default())));
        }
        for (name, values) in component_names.iter().zip(comps) {
            columns.push((name.as_str(), OutColumn::Float(values)));
        }
        columns.push(("is_forecast", OutColumn::Bool(ahead)));
        batch(columns)
    }
}

/// `2024-03-01` or an RFC 3339 time, as seconds since 1970-01-01 UTC.
fn date(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp());
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp())
        .map_err(|_| format!("`{text}` is not a date (write YYYY-MM-DD)"))
}

/// The step between periods: `(seconds, 0)` or `(0, months)`. `auto` takes the history's
/// median spacing (28–31 days is a month, 90–92 a quarter, 365–366 a year).
fn step(frequency: &str, times: &[i64]) -> Result<(i64, u32), String> {
    match frequency.trim() {
        "month" | "monthly" => return Ok((0, 1)),
        "quarter" | "quarterly" => return Ok((0, 3)),
        "year" | "yearly" => return Ok((0, 12)),
        "day" | "daily" => return Ok((86_400, 0)),
        "week" | "weekly" => return Ok((7 * 86_400, 0)),
        "hour" | "hourly" => return Ok((3_600, 0)),
        "auto" => {}
        other => {
            return socle_core::duration::parse(other)
                .map(|d| (d.as_secs() as i64, 0))
                .filter(|(s, _)| *s > 0)
                .ok_or_else(|| {
                    format!("`frequency: {other}`: write day, week, month, quarter, year, hour or a duration (6h)")
                });
        }
    }
    let mut sorted: Vec<i64> = times.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut gaps: Vec<i64> = sorted.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.is_empty() {
        return Ok((86_400, 0));
    }
    gaps.sort_unstable();
    let median = gaps[gaps.len() / 2];
    let days = median as f64 / 86_400.0;
    Ok(if (27.5..=31.5).contains(&days) {
        (0, 1)
    } else if (89.5..=92.5).contains(&days) {
        (0, 3)
    } else if (364.5..=366.5).contains(&days) {
        (0, 12)
    } else {
        (median, 0)
    })
}

/// `horizon` times after `last`.
fn ahead(last: i64, horizon: usize, step_seconds: i64, months: u32) -> Vec<i64> {
    use chrono::{DateTime, Months};
    (1..=horizon)
        .filter_map(|i| {
            if months == 0 {
                Some(last + step_seconds * i as i64)
            } else {
                let start = DateTime::from_timestamp(last, 0)?;
                start
                    .checked_add_months(Months::new(months * i as u32))
                    .map(|t| t.timestamp())
            }
        })
        .collect()
}
