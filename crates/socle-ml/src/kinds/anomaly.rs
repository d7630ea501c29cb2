//! `anomaly`: flags each row with a score and the rule that fired, so that a model can be
//! trained on the rest (see [`crate::algo::anomaly`]).
//!
//! ```yaml
//! kind: anomaly
//! input: { table: marts.daily_views }
//! columns: { value: views, group: channel_id, time: day }   # group and time optional
//! params: { rule: zscore, window: 7, threshold: 3 }          # or iqr (k), seasonal (period)
//! ```
//!
//! Rows are taken in `time` order within each group (input order without `time`). The
//! output is the input's rows and columns with `anomaly_score`, `is_anomaly` and
//! `anomaly_rule` added; training writes it for the training input, predicting for new
//! rows (the rule is applied to them as they are: rolling windows see only those rows).

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;
use serde::Serialize;
use socle_core::fields::Fields;

use super::{Kind, TrainContext, Trained, role};
use crate::algo::anomaly::Detector;
use crate::error::MlError;
use crate::frame::{Frame, OutColumn};

/// An `anomaly` model's columns and parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    pub value: Option<String>,
    pub group: Option<String>,
    pub time: Option<String>,
    /// The rule and its settings, as `algo::anomaly::Detector` reads them.
    pub detector: serde_json::Value,
}

/// Each rule's own parameters.
const RULE_PARAMS: &[(&str, &[&str])] = &[
    ("zscore", &["window", "min_periods", "threshold", "center"]),
    ("iqr", &["k"]),
    ("seasonal", &["period", "threshold"]),
];

impl Kind for Anomaly {
    const NAME: &'static str = "anomaly";
    const ROLES: &'static [&'static str] = &["value", "group", "time"];
    const PARAMS: &'static [&'static str] = &[
        "rule",
        "window",
        "min_periods",
        "threshold",
        "center",
        "k",
        "period",
    ];
    const FORMAT: u32 = 1;

    fn parse(columns: &mut Fields, params: &mut Fields) -> Self {
        let rule: String = params.value("rule").unwrap_or_else(|| "zscore".into());
        let mut detector = serde_json::Map::new();
        detector.insert("rule".into(), serde_json::Value::String(rule.clone()));
        let own = RULE_PARAMS
            .iter()
            .find(|(r, _)| *r == rule)
            .map(|(_, p)| *p)
            .unwrap_or_default();
        for name in &Self::PARAMS[1..] {
            if let Some(v) = params.take::<serde_json::Value>(name) {
                if own.contains(name) {
                    detector.insert(name.to_string(), v.value);
                } else {
                    params.error(
                        socle_core::Location::of(&v),
                        format!("`{name}` does not apply to rule `{rule}` (it takes: {})", own.join(", ")),
                    );
                }
            }
        }
        if rule == "zscore" && !detector.contains_key("window") {
            detector.insert("window".into(), 7.into());
        }
        Self {
            value: role(columns, "value"),
            group: role(columns, "group"),
            time: role(columns, "time"),
            detector: serde_json::Value::Object(detector),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.value.is_none() {
            return Err("an `anomaly` model needs `columns: { value }`".into());
        }
        self.detector().map(|_| ())
    }

    fn input_columns(&self) -> Vec<String> {
        [&self.value, &self.group, &self.time]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn train(&self, frame: &Frame, ctx: &TrainContext) -> Result<Trained, MlError> {
        let table = self.flag(ctx.model, frame)?;
        let flagged = table.1;
        let mut metrics = BTreeMap::new();
        metrics.insert("rows".to_string(), frame.rows() as f64);
        metrics.insert("flagged".to_string(), flagged as f64);
        metrics.insert(
            "flagged_share".to_string(),
            flagged as f64 / frame.rows().max(1) as f64,
        );
        Ok(Trained {
            fitted: serde_json::to_vec(&self.detector).expect("detector serializes"),
            metrics,
            params: self.detector.clone(),
            notes: Vec::new(),
            outputs: vec![("", table.0)],
        })
    }

    fn predict(
        &self,
        model: &str,
        _fitted: &[u8],
        frame: &Frame,
    ) -> Result<Vec<(&'static str, RecordBatch)>, MlError> {
        Ok(vec![("", self.flag(model, frame)?.0)])
    }
}

impl Anomaly {
    fn detector(&self) -> Result<Detector, String> {
        serde_json::from_value(self.detector.clone()).map_err(|e| {
            let rules: Vec<&str> = RULE_PARAMS.iter().map(|(r, _)| *r).collect();
            format!("{e} (rules: {})", rules.join(", "))
        })
    }

    /// The input with its flags, and how many rows were flagged.
    fn flag(&self, model: &str, frame: &Frame) -> Result<(RecordBatch, usize), MlError> {
        let detector = self.detector().map_err(|e| MlError::data(model, e))?;
        let value = self.value.as_deref().unwrap_or_default();
        let values = frame.f64s(value)?;
        let groups: Vec<u32> = match &self.group {
            Some(g) => intern(&frame.strings(g)?),
            None => vec![0; values.len()],
        };
        // Time order within each group: the rules read the rows in the order given.
        let order: Vec<usize> = match &self.time {
            Some(t) => {
                let times = frame.times(t)?;
                let missing = times.iter().filter(|t| t.is_none()).count();
                if missing > 0 {
                    return Err(MlError::data(
                        model,
                        format!("column `{t}` has {missing} NULL times: rows cannot be ordered"),
                    ));
                }
                let mut order: Vec<usize> = (0..values.len()).collect();
                order.sort_by_key(|&i| (times[i], i));
                order
            }
            None => (0..values.len()).collect(),
        };
        let sorted_values: Vec<f64> = order.iter().map(|&i| values[i]).collect();
        let sorted_groups: Vec<u32> = order.iter().map(|&i| groups[i]).collect();
        let flags = detector
            .apply(&sorted_values, &sorted_groups)
            .map_err(|e| MlError::data(model, format!("column `{value}`: {e}")))?;
        let mut score = vec![None; values.len()];
        let mut flagged = vec![None; values.len()];
        let mut rule = vec![None; values.len()];
        let mut count = 0;
        for (k, &i) in order.iter().enumerate() {
            let f = &flags[k];
            if f.is_scored() {
                score[i] = Some(f.score);
            }
            flagged[i] = Some(f.flagged);
            rule[i] = Some(f.rule.as_str().to_string());
            count += usize::from(f.flagged);
        }
        let table = frame.with_columns(vec![
            ("anomaly_score", OutColumn::Float(score)),
            ("is_anomaly", OutColumn::Bool(flagged)),
            ("anomaly_rule", OutColumn::Text(rule)),
        ])?;
        Ok((table, count))
    }
}

/// Dense ids for group keys (NULL is a group of its own), in first-seen order.
fn intern(keys: &[Option<String>]) -> Vec<u32> {
    let mut ids: std::collections::HashMap<Option<&str>, u32> = std::collections::HashMap::new();
    keys.iter()
        .map(|k| {
            let next = ids.len() as u32;
            *ids.entry(k.as_deref()).or_insert(next)
        })
        .collect()
}
