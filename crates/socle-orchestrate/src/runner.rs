//! Running one pipeline for one logical date: tasks in dependency order, in parallel,
//! each with its retries (exponential backoff with jitter when asked), its timeout and its
//! trigger rule; every state change and attempt is written to the run history.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use socle_meta::runs::TaskRecord;
use socle_meta::{MetaDb, RunState};
use tokio::task::JoinSet;

use crate::attempt::attempt_all;
pub use crate::attempt::{human, retry_delay};
use crate::error::{OrchestrateError, Result};
use crate::pipeline::{Pipeline, TriggerRule};
use crate::schedule::start_of_day;
use crate::tasks::{Log, TaskContext};
use crate::template::RunDates;

/// How many tasks of one run execute at once.
pub const MAX_PARALLEL_TASKS: usize = 16;

/// What a run needs from the project.
#[derive(Clone)]
pub struct RunEnv {
    pub project: Arc<socle_core::Project>,
    pub warehouse: socle_app::LazyWarehouse,
    pub meta: MetaDb,
    /// Ctrl-C stops the run at once (the command line); the daemon shuts down gracefully
    /// instead.
    pub stop_on_ctrl_c: bool,
    /// Where alerts go (`alerts:` of socle.yml); none when no channel is configured.
    pub alerter: Option<Arc<crate::alerts::Alerter>>,
    /// Concurrency pools (`pools:` of socle.yml), shared by the runs of this process.
    pub pools: Arc<crate::pools::Pools>,
    /// Runs whose SLA miss was alerted already (the daemon alerts runs still in flight).
    pub sla_alerted: Arc<std::sync::Mutex<BTreeSet<String>>>,
    /// A program (and its arguments) that runs one attempt of a task which uses the
    /// warehouse, in a child process (see [`crate::tasks::process`]); `None` runs them in
    /// this process. The daemon sets it, so that a build does not leave the query engine's
    /// memory in it.
    pub task_command: Option<Vec<std::ffi::OsString>>,
}

/// The context of one task of a run (its template values, the project, the warehouse).
pub fn task_context(
    env: &RunEnv,
    pipeline: &Pipeline,
    run_id: &str,
    task: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> TaskContext {
    let tz = zone(pipeline);
    let dates = RunDates { start, end, tz };
    TaskContext {
        project: env.project.clone(),
        warehouse: env.warehouse.clone(),
        template: crate::template::context(&dates, run_id, &pipeline.name, task, &pipeline.params),
        log: Log::default(),
        pipeline: pipeline.name.clone(),
        pipeline_file: pipeline.file.clone(),
        alerter: env.alerter.clone(),
        meta: None,
        run_id: run_id.to_string(),
        dates,
        task_command: env.task_command.clone(),
    }
}

/// One run to make.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub pipeline: Pipeline,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `manual`, `scheduled` or `backfill`.
    pub trigger: String,
    /// Only these tasks (their upstream tasks are taken as done).
    pub only: Option<BTreeSet<String>>,
}

/// The states of a task in a run (stored as text by the metadata layer).
pub use socle_meta::TaskState;

/// What happens, for progress output.
#[derive(Debug, Clone)]
pub enum Event {
    RunStarted {
        run_id: String,
    },
    TaskStarted {
        task: String,
        try_number: u32,
        tries: u32,
    },
    TaskRetrying {
        task: String,
        try_number: u32,
        error: String,
        delay: Duration,
    },
    TaskFinished {
        task: String,
        state: TaskState,
        duration: Duration,
        message: String,
    },
}

pub trait RunProgress: Send + Sync {
    fn event(&self, event: &Event);
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub run_id: String,
    pub success: bool,
    pub tasks: Vec<(String, TaskState, Duration, String)>,
    pub elapsed: Duration,
}

/// The data interval for `--date` (a date, or an RFC 3339 time), or, without one, the
/// latest complete interval of the schedule (yesterday for a daily pipeline; today for a
/// pipeline without a schedule).
pub fn interval_for(
    pipeline: &Pipeline,
    date: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let tz = pipeline
        .schedule
        .as_ref()
        .map(|s| s.tz)
        .unwrap_or(chrono_tz::UTC);
    let at = match date {
        Some(text) => {
            let text = text.trim();
            if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                // A day: the interval that starts on that day (its first tick), so that
                // `ds` is the day given.
                let midnight = start_of_day(d, tz);
                match &pipeline.schedule {
                    Some(s) => s
                        .next(midnight, true)
                        .filter(|t| t.with_timezone(&tz).date_naive() == d)
                        .unwrap_or(midnight),
                    None => midnight,
                }
            } else if let Ok(t) = DateTime::parse_from_rfc3339(text) {
                t.with_timezone(&Utc)
            } else {
                return Err(OrchestrateError::BadDate(text.to_string()));
            }
        }
        None => match &pipeline.schedule {
            Some(s) => {
                return s.latest_complete(now).ok_or_else(|| {
                    OrchestrateError::Other(format!(
                        "schedule `{}` has no complete interval before now",
                        s.expr
                    ))
                });
            }
            None => start_of_day(now.with_timezone(&tz).date_naive(), tz),
        },
    };
    match &pipeline.schedule {
        Some(s) => s.interval_at(at).ok_or_else(|| {
            OrchestrateError::Other(format!("schedule `{}` has no tick before {at}", s.expr))
        }),
        None => Ok((at, at + chrono::Duration::days(1))),
    }
}

pub(crate) fn now_text() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs a pipeline once. The run is recorded whatever happens; `Err` only for problems
/// of socle itself (the metadata database unreachable, ...).
pub async fn run(
    env: &RunEnv,
    req: RunRequest,
    progress: Arc<dyn RunProgress>,
) -> Result<RunSummary> {
    let run_id = create_run(env, &req).await?.ok_or_else(|| {
        OrchestrateError::Other(format!(
            "pipeline `{}` already has a scheduled run for {}",
            req.pipeline.name, req.start
        ))
    })?;
    execute(env, &run_id, req, progress, Previous::default()).await
}

pub use socle_core::process::runner_id;

fn zone(pipeline: &Pipeline) -> chrono_tz::Tz {
    pipeline
        .schedule
        .as_ref()
        .map(|s| s.tz)
        .unwrap_or(chrono_tz::UTC)
}

/// Records a new run; `None` when the request is scheduled or a backfill and that logical
/// date already has such a run.
pub async fn create_run(env: &RunEnv, req: &RunRequest) -> Result<Option<String>> {
    let local = req.start.with_timezone(&zone(&req.pipeline));
    let stamp = if local.time() == chrono::NaiveTime::MIN {
        local.format("%Y%m%d").to_string()
    } else {
        local.format("%Y%m%dT%H%M%S").to_string()
    };
    let logical = req.start.to_rfc3339();
    let n = env.meta.count_runs(&req.pipeline.name, &logical).await?;
    let run_id = format!("{}.{stamp}.{}", req.pipeline.name, n + 1);
    let inserted = env
        .meta
        .insert_run(
            &run_id,
            &req.pipeline.name,
            &logical,
            &req.end.to_rfc3339(),
            &req.trigger,
            runner_id(),
        )
        .await?;
    Ok(inserted.then_some(run_id))
}

/// What an earlier attempt of the same run left: tasks that succeeded (kept) and how many
/// tries each task has had (numbering continues).
#[derive(Debug, Clone, Default)]
pub struct Previous {
    pub succeeded: BTreeSet<String>,
    pub tries: BTreeMap<String, i64>,
    /// Tries already made count against `retries` (crash recovery); otherwise a rerun
    /// gets a fresh set of retries.
    pub keep_budget: bool,
}

/// Executes the tasks of a recorded run (a new one, or one being resumed).
pub async fn execute(
    env: &RunEnv,
    run_id: &str,
    req: RunRequest,
    progress: Arc<dyn RunProgress>,
    previous: Previous,
) -> Result<RunSummary> {
    let started = Instant::now();
    let run_id = run_id.to_string();
    let pipeline = Arc::new(req.pipeline.clone());
    let tz = zone(&pipeline);
    let local = req.start.with_timezone(&tz);
    progress.event(&Event::RunStarted {
        run_id: run_id.clone(),
    });
    let order = crate::dag::order(&pipeline.tasks);
    let selected: Vec<String> = order
        .into_iter()
        .filter(|t| req.only.as_ref().is_none_or(|only| only.contains(t)))
        .collect();
    let selected_set: BTreeSet<String> = selected.iter().cloned().collect();
    let mut states: BTreeMap<String, TaskState> = BTreeMap::new();
    let mut results: Vec<(String, TaskState, Duration, String)> = Vec::new();
    for name in selected.iter().filter(|t| previous.succeeded.contains(*t)) {
        states.insert(name.clone(), TaskState::Success);
        results.push((
            name.clone(),
            TaskState::Success,
            Duration::ZERO,
            "kept from the earlier attempt of this run".into(),
        ));
    }
    let mut pending: Vec<String> = selected
        .iter()
        .filter(|t| !previous.succeeded.contains(*t))
        .cloned()
        .collect();
    // Among ready tasks, higher priority starts first (a stable sort keeps the order).
    pending.sort_by_key(|t| std::cmp::Reverse(pipeline.tasks[t].priority));
    let mut running: JoinSet<(String, TaskState, Duration, String)> = JoinSet::new();
    let interrupted = loop {
        // Start every task whose upstream tasks (in this run) are final.
        let mut i = 0;
        while i < pending.len() && running.len() < MAX_PARALLEL_TASKS {
            let spec = &pipeline.tasks[&pending[i]];
            let ups: Vec<TaskState> = spec
                .depends_on
                .iter()
                .filter(|d| selected_set.contains(*d))
                .map(|d| states.get(d).copied())
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default();
            let ready = spec
                .depends_on
                .iter()
                .filter(|d| selected_set.contains(*d))
                .all(|d| states.contains_key(d));
            if !ready {
                i += 1;
                continue;
            }
            let name = pending.remove(i);
            let verdict = decide(spec.trigger_rule, &ups);
            if let Some(state) = verdict {
                let message = match state {
                    TaskState::UpstreamFailed => "an upstream task failed".to_string(),
                    _ => format!("trigger rule {} not met", spec.trigger_rule.as_str()),
                };
                env.meta
                    .put_task(&TaskRecord::ended_without_running(
                        &run_id, &name, state, 0, &message,
                    ))
                    .await?;
                progress.event(&Event::TaskFinished {
                    task: name.clone(),
                    state,
                    duration: Duration::ZERO,
                    message: message.clone(),
                });
                states.insert(name.clone(), state);
                results.push((name, state, Duration::ZERO, message));
                continue;
            }
            let ctx = task_context(env, &pipeline, &run_id, &name, (req.start, req.end));
            let (meta, progress, spec, pipe) = (
                env.meta.clone(),
                progress.clone(),
                spec.clone(),
                pipeline.clone(),
            );
            let pool = spec.pool.as_ref().and_then(|p| env.pools.get(p)).cloned();
            let so_far = previous.tries.get(&name).copied().unwrap_or(0).max(0) as u32;
            let first_try = so_far + 1;
            // A rerun asked for gets a fresh set of retries; a run recovered after a crash
            // keeps its budget.
            let last_try = if previous.keep_budget {
                spec.policy.retries + 1
            } else {
                so_far + spec.policy.retries + 1
            };
            running.spawn(async move {
                attempt_all(
                    &meta,
                    &spec,
                    ctx,
                    progress,
                    (first_try, last_try),
                    pipe,
                    pool,
                )
                .await
            });
        }
        if running.is_empty() {
            break false;
        }
        let joined = tokio::select! {
            j = running.join_next() => j,
            _ = ctrl_c(env.stop_on_ctrl_c) => break true,
        };
        let Some(joined) = joined else { break false };
        let (name, state, duration, message) =
            joined.map_err(|e| OrchestrateError::Other(format!("a task panicked: {e}")))?;
        progress.event(&Event::TaskFinished {
            task: name.clone(),
            state,
            duration,
            message: message.clone(),
        });
        states.insert(name.clone(), state);
        results.push((name, state, duration, message));
    };
    if interrupted {
        // Dropping the tasks kills their process groups.
        running.abort_all();
        while running.join_next().await.is_some() {}
        for name in selected.iter().filter(|t| !states.contains_key(*t)) {
            env.meta
                .put_task(&TaskRecord::ended_without_running(
                    &run_id,
                    name,
                    TaskState::Failed,
                    0,
                    "interrupted",
                ))
                .await?;
            results.push((
                name.clone(),
                TaskState::Failed,
                Duration::ZERO,
                "interrupted".into(),
            ));
        }
    }
    let success = !interrupted
        && results
            .iter()
            .all(|(_, s, _, _)| matches!(s, TaskState::Success | TaskState::Skipped));
    env.meta
        .set_run_state(
            &run_id,
            if success {
                RunState::Success
            } else {
                RunState::Failed
            },
        )
        .await?;
    if let Some(alerter) = &env.alerter {
        let base = crate::alerts::Alert {
            event: "success".into(),
            pipeline: pipeline.name.clone(),
            task: None,
            run_id: run_id.clone(),
            logical_date: local.format("%Y-%m-%d").to_string(),
            attempt: None,
            message: String::new(),
            logs: alerter.logs_link(&pipeline.name, &run_id, None),
        };
        if success {
            alerter.emit(&pipeline, base.clone()).await;
        }
        let finished = Utc::now();
        if let Some(sla) = pipeline.sla
            && let Ok(sla_c) = chrono::Duration::from_std(sla)
            && finished > req.end + sla_c
            && env
                .sla_alerted
                .lock()
                .expect("sla lock")
                .insert(run_id.clone())
        {
            let late = (finished - req.end - sla_c).to_std().unwrap_or_default();
            let message = format!(
                "the run was due within {} of its interval's end ({}); it finished {} later",
                human(sla),
                req.end.with_timezone(&tz).to_rfc3339(),
                human(late)
            );
            let alert = crate::alerts::Alert {
                event: "sla_miss".into(),
                message,
                ..base
            };
            alerter.emit(&pipeline, alert).await;
        }
    }
    Ok(RunSummary {
        run_id,
        success,
        tasks: results,
        elapsed: started.elapsed(),
    })
}

/// Reruns the tasks of a run that did not succeed (failed, upstream failed, skipped,
/// interrupted), keeping the successful ones; try numbers continue.
pub async fn resume(
    env: &RunEnv,
    run_id: &str,
    progress: Arc<dyn RunProgress>,
    keep_budget: bool,
) -> Result<RunSummary> {
    let record = env
        .meta
        .get_run(run_id)
        .await?
        .ok_or_else(|| OrchestrateError::UnknownRun(run_id.to_string()))?;
    let pipeline = crate::pipeline::load_one(&env.project.root, &record.pipeline)?;
    let time = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| OrchestrateError::Other(format!("run {run_id}: bad date `{t}`")))
    };
    let (start, end) = (time(&record.logical_date)?, time(&record.interval_end)?);
    let mut previous = Previous {
        keep_budget,
        ..Previous::default()
    };
    for t in env.meta.list_tasks(run_id).await? {
        if t.state == TaskState::Success {
            previous.succeeded.insert(t.task.clone());
        }
        previous.tries.insert(t.task, t.try_number);
    }
    env.meta.restart_run(run_id, runner_id()).await?;
    let request = RunRequest {
        pipeline,
        start,
        end,
        trigger: record.trigger,
        only: None,
    };
    execute(env, run_id, request, progress, previous).await
}

/// Resolves on Ctrl-C when `enabled`; never otherwise.
async fn ctrl_c(enabled: bool) {
    if enabled {
        let _ = tokio::signal::ctrl_c().await;
    } else {
        std::future::pending::<()>().await;
    }
}

/// Whether a task whose upstream tasks ended in `ups` runs (`None`) or ends at once.
fn decide(rule: TriggerRule, ups: &[TaskState]) -> Option<TaskState> {
    let failed = ups
        .iter()
        .any(|s| matches!(s, TaskState::Failed | TaskState::UpstreamFailed));
    match rule {
        TriggerRule::AllSuccess if failed => Some(TaskState::UpstreamFailed),
        TriggerRule::AllSuccess if ups.contains(&TaskState::Skipped) => Some(TaskState::Skipped),
        TriggerRule::AllSuccess | TriggerRule::AllDone => None,
        TriggerRule::OneFailed if failed => None,
        TriggerRule::OneFailed => Some(TaskState::Skipped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_rules() {
        use TaskState::*;
        assert_eq!(decide(TriggerRule::AllSuccess, &[Success, Success]), None);
        assert_eq!(
            decide(TriggerRule::AllSuccess, &[Success, Failed]),
            Some(UpstreamFailed)
        );
        assert_eq!(
            decide(TriggerRule::AllSuccess, &[UpstreamFailed]),
            Some(UpstreamFailed)
        );
        assert_eq!(decide(TriggerRule::AllSuccess, &[Skipped]), Some(Skipped));
        assert_eq!(decide(TriggerRule::AllDone, &[Failed, Success]), None);
        assert_eq!(decide(TriggerRule::OneFailed, &[Failed, Success]), None);
        assert_eq!(decide(TriggerRule::OneFailed, &[Success]), Some(Skipped));
        assert_eq!(decide(TriggerRule::AllSuccess, &[]), None);
    }
}
