//! `ml`: trains a model of `ml/*.yml`, applies it, or both (see `docs/ml.md`), so that a
//! daily pipeline can build, retrain and predict.
//!
//! ```yaml
//! retrain:
//!   kind: ml
//!   model: views_model
//!   action: both            # train | predict | both (default: both)
//!   input: marts.new_posts  # predict from this table or SELECT (default: the spec's input)
//!   output: ml.views_today  # predictions table (default: ml.<output>_predictions)
//!   depends_on: [build]
//! ```
//!
//! `input` and `output` are templates (`{{ ds }}`). A failed training leaves the model's
//! newest version as it was; `predict` then uses it.

use socle_ml::spec::Input;

use super::{Fields, Kind, TaskContext, TaskFailure};
use crate::pipeline::TaskSpec;

/// An `ml` task's own fields.
#[derive(Debug, Clone)]
pub struct Ml {
    pub model: Option<String>,
    pub action: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
}

const ACTIONS: &[&str] = &["train", "predict", "both"];

impl Kind for Ml {
    const NAME: &'static str = "ml";
    const FIELDS: &'static [&'static str] = &["model", "action", "input", "output"];

    fn parse(f: &mut Fields) -> Self {
        Self {
            model: f.value("model"),
            action: f.value("action"),
            input: f.value("input"),
            output: f.value("output"),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.model.as_deref().is_none_or(|m| m.trim().is_empty()) {
            return Err("an `ml` task needs `model` (a file of ml/)".into());
        }
        match self.action.as_deref() {
            None => Ok(()),
            Some(a) if ACTIONS.contains(&a) => Ok(()),
            Some(a) => Err(format!(
                "`action: {a}` is not one of: {}",
                ACTIONS.join(", ")
            )),
        }
    }

    fn templates(&self) -> Vec<String> {
        self.input.iter().chain(&self.output).cloned().collect()
    }

    fn uses_warehouse(&self) -> bool {
        true
    }

    async fn run(&self, _: &TaskSpec, ctx: &TaskContext) -> Result<String, TaskFailure> {
        let name = self.model.clone().unwrap_or_default();
        let action = self.action.as_deref().unwrap_or("both");
        let models = ctx
            .warehouse
            .models()
            .await
            .map_err(|e| TaskFailure::new(format!("cannot open the warehouse: {e}")))?;
        let not_retryable = |e: socle_ml::MlError| TaskFailure {
            // The user's spec or data: a retry would fail the same way.
            retryable: !matches!(
                e.fault(),
                socle_core::fault::Fault::Input | socle_core::fault::Fault::NotFound
            ),
            ..TaskFailure::new(e.to_string())
        };
        let spec = models.spec(&name).map_err(not_retryable)?;
        let log = ctx.log.clone();
        let progress = move |done: usize, total: usize, what: &str| {
            log.line(&format!("[{done}/{total}] {what}"));
        };
        let mut summary = Vec::new();
        if action != "predict" {
            let who = format!("pipeline {} run {}", ctx.pipeline, ctx.run_id);
            let report = models
                .train(&spec, &who, &progress)
                .await
                .map_err(not_retryable)?;
            for (metric, value) in &report.metrics {
                ctx.log.line(&format!("{metric} = {value}"));
            }
            for note in &report.notes {
                ctx.log.line(&format!("note: {note}"));
            }
            summary.push(format!("trained version {}", report.version));
        }
        if action != "train" {
            let input = match &self.input {
                Some(text) => {
                    let text = ctx.render(text)?;
                    Some(if text.trim().contains(char::is_whitespace) {
                        Input::Sql(text)
                    } else {
                        Input::Table(text.trim().to_string())
                    })
                }
                None => None,
            };
            let output = match &self.output {
                Some(o) => Some(ctx.render(o)?),
                None => None,
            };
            let report = models
                .predict(&spec, None, input.as_ref(), output.as_deref(), &progress)
                .await
                .map_err(not_retryable)?;
            for out in &report.outputs {
                ctx.log.line(&format!(
                    "wrote {} (version {})",
                    out.table,
                    out.version.unwrap_or_default()
                ));
            }
            summary.push(format!(
                "predicted {} rows with version {}",
                report.rows, report.version
            ));
        }
        Ok(format!("{name}: {}", summary.join("; ")))
    }
}
