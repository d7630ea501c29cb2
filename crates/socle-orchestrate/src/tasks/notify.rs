//! `notify`: a message (templated) to alert channels of `socle.yml`.
//!
//! ```yaml
//! tell:
//!   kind: notify
//!   message: "Marts for {{ ds }} are ready."
//!   channels: [team]          # default: the `alerts.to` channels of socle.yml
//!   depends_on: [build]
//! ```
//!
//! The task fails when a channel cannot be reached (unlike alerts, which never fail a
//! run), so that retries apply.

use super::{Fields, Kind, TaskContext, TaskFailure};
use crate::alerts::Alert;
use crate::pipeline::TaskSpec;

/// A `notify` task's own fields.
#[derive(Debug, Clone)]
pub struct Notify {
    pub message: Option<String>,
    pub channels: Vec<String>,
}

impl Kind for Notify {
    const NAME: &'static str = "notify";
    const FIELDS: &'static [&'static str] = &["message", "channels"];

    fn parse(f: &mut Fields) -> Self {
        Self {
            message: f.value("message"),
            channels: f.value("channels").unwrap_or_default(),
        }
    }

    fn templates(&self) -> Vec<String> {
        self.message.iter().cloned().collect()
    }

    fn channels(&self) -> Vec<String> {
        self.channels.clone()
    }

    fn check(&self) -> Result<(), String> {
        match &self.message {
            Some(m) if !m.trim().is_empty() => Ok(()),
            _ => Err("a `notify` task needs `message`".into()),
        }
    }

    async fn run(&self, spec: &TaskSpec, ctx: &TaskContext) -> Result<String, TaskFailure> {
        let Some(alerter) = &ctx.alerter else {
            return Err(TaskFailure::new(
                "no alert channels: add `alerts:` to socle.yml",
            ));
        };
        let message = ctx.render(self.message.as_deref().unwrap_or_default())?;
        let channels = if self.channels.is_empty() {
            alerter.default_channels()
        } else {
            self.channels.clone()
        };
        if channels.is_empty() {
            return Err(TaskFailure::new(
                "no channel to notify: give `channels` or `alerts.to` in socle.yml",
            ));
        }
        let alert = Alert {
            event: "notify".into(),
            pipeline: ctx.pipeline.clone(),
            task: Some(spec.name.clone()),
            run_id: ctx.run_id.clone(),
            logical_date: ctx.dates.ds(),
            attempt: None,
            message,
            logs: alerter.logs_link(&ctx.pipeline, &ctx.run_id, Some(&spec.name)),
        };
        let mut failed = Vec::new();
        for (channel, result) in alerter.send(&channels, &alert).await {
            match result {
                Ok(()) => ctx.log.line(&format!("sent to {channel}")),
                Err(e) => {
                    ctx.log.line(&format!("not sent to {channel}: {e}"));
                    failed.push(format!("{channel}: {e}"));
                }
            }
        }
        if failed.is_empty() {
            Ok(format!("sent to {}", channels.join(", ")))
        } else {
            Err(TaskFailure::new(format!(
                "not delivered: {}",
                failed.join("; ")
            )))
        }
    }
}
