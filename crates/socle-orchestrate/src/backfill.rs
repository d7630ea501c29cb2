//! Backfills: a pipeline run for every interval between two dates, a few at a time. A
//! date that already has a scheduled or backfill run is left alone, or, with
//! `rerun_failed`, has its failed tasks rerun.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::task::JoinSet;

use crate::error::{OrchestrateError, Result};
use crate::pipeline::Pipeline;
use crate::runner::{Previous, RunEnv, RunProgress, RunRequest, RunSummary};
use crate::schedule::start_of_day;

/// What happened to one interval of a backfill.
#[derive(Debug, Clone)]
pub enum Outcome {
    Ran(RunSummary),
    /// Already run (its run id and state).
    Kept(String, socle_meta::RunState),
}

/// The intervals whose logical date falls on `from` ..= `to` (days in the pipeline's zone).
pub fn intervals(
    pipeline: &Pipeline,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
    if to < from {
        return Err(OrchestrateError::Other(format!(
            "--to {to} is before --from {from}"
        )));
    }
    let tz = pipeline
        .schedule
        .as_ref()
        .map(|s| s.tz)
        .unwrap_or(chrono_tz::UTC);
    let first = start_of_day(from, tz);
    let last = start_of_day(to + chrono::Duration::days(1), tz);
    let mut out = Vec::new();
    match &pipeline.schedule {
        Some(s) => {
            let mut at = s.next(first, true);
            while let Some(start) = at.filter(|t| *t < last) {
                let end = s.next(start, false).ok_or_else(|| {
                    OrchestrateError::Other(format!("schedule `{}` ends", s.expr))
                })?;
                out.push((start, end));
                if out.len() > 100_000 {
                    return Err(OrchestrateError::Other(
                        "more than 100,000 intervals: narrow --from/--to".into(),
                    ));
                }
                at = Some(end);
            }
        }
        None => {
            let mut day = from;
            while day <= to {
                out.push((
                    start_of_day(day, tz),
                    start_of_day(day + chrono::Duration::days(1), tz),
                ));
                day += chrono::Duration::days(1);
            }
        }
    }
    Ok(out)
}

/// Runs every interval, `parallel` at a time, oldest first.
pub async fn backfill(
    env: &RunEnv,
    pipeline: &Pipeline,
    from: NaiveDate,
    to: NaiveDate,
    parallel: usize,
    rerun_failed: bool,
    progress: Arc<dyn RunProgress>,
) -> Result<Vec<(DateTime<Utc>, Outcome)>> {
    let todo = intervals(pipeline, from, to)?;
    let mut out: Vec<(DateTime<Utc>, Outcome)> = Vec::new();
    let mut queue = todo.into_iter();
    let mut running: JoinSet<Result<(DateTime<Utc>, Outcome)>> = JoinSet::new();
    loop {
        while running.len() < parallel.max(1) {
            let Some((start, end)) = queue.next() else {
                break;
            };
            let (env, progress) = (env.clone(), progress.clone());
            let request = RunRequest {
                pipeline: pipeline.clone(),
                start,
                end,
                trigger: "backfill".into(),
                only: None,
            };
            running.spawn(async move {
                if let Some(run_id) = crate::runner::create_run(&env, &request).await? {
                    let s = crate::runner::execute(
                        &env,
                        &run_id,
                        request,
                        progress,
                        Previous::default(),
                    )
                    .await?;
                    return Ok((start, Outcome::Ran(s)));
                }
                let existing = env
                    .meta
                    .runs_for_date(&request.pipeline.name, &start.to_rfc3339())
                    .await?
                    .into_iter()
                    .rfind(|r| r.trigger == "scheduled" || r.trigger == "backfill")
                    .ok_or_else(|| OrchestrateError::Other("run vanished".into()))?;
                if rerun_failed && existing.state == socle_meta::RunState::Failed {
                    let s = crate::runner::resume(&env, &existing.run_id, progress, false).await?;
                    return Ok((start, Outcome::Ran(s)));
                }
                Ok((start, Outcome::Kept(existing.run_id, existing.state)))
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        out.push(joined.map_err(|e| OrchestrateError::Other(e.to_string()))??);
    }
    out.sort_by_key(|(t, _)| *t);
    Ok(out)
}
