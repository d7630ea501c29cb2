//! Pipelines and their runs: the grid of runs × tasks, run detail with task timings (the
//! Gantt) and logs; triggering, rerunning and backfilling (editor).
//!
//! Runs started here execute in the server's process, with the scheduler's pools and
//! alerts, and are answered at once with `202 Accepted` and the run id; their progress is
//! in the run history (`GET /api/runs/{run_id}`).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use socle_meta::RunState;
use socle_orchestrate::Pipeline;
use socle_orchestrate::runner::{Event, RunProgress, RunRequest};

use super::{ApiError, AppState, Body, Caller, Params, internal};
use crate::auth::Role;

/// Task events of runs started through the API, to the server's log.
struct Traced(String);

impl RunProgress for Traced {
    fn event(&self, event: &Event) {
        match event {
            Event::RunStarted { run_id } => {
                tracing::info!(pipeline = %self.0, run_id, "run started")
            }
            Event::TaskFinished {
                task,
                state,
                message,
                ..
            } => tracing::info!(pipeline = %self.0, task, state = state.as_str(), "{message}"),
            _ => {}
        }
    }
}

fn pipeline_error(e: socle_orchestrate::OrchestrateError) -> ApiError {
    let text = e.to_string();
    if text.contains("no pipeline") || text.contains("does not exist") {
        ApiError::not_found(text)
    } else {
        ApiError::bad_request(text)
    }
}

/// A pipeline by name, checked against socle.yml as `socle run` checks it.
fn load(state: &AppState, name: &str) -> Result<Pipeline, ApiError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
    {
        return Err(ApiError::not_found(format!("no pipeline `{name}`")));
    }
    let p =
        socle_orchestrate::pipeline::load_one(&state.project.root, name).map_err(pipeline_error)?;
    let errors = p.check_against(&state.project.config);
    if let Some(e) = errors.first() {
        return Err(ApiError::bad_request(e.to_string()));
    }
    Ok(p)
}

fn pipeline_json(p: &Pipeline) -> Value {
    json!({
        "name": p.name,
        "description": p.description,
        "schedule": p.schedule.as_ref().map(|s| s.expr.clone()),
        "timezone": p.schedule.as_ref().map(|s| s.tz.name()),
        "catchup": p.catchup,
        "max_active_runs": p.max_active_runs,
        "tasks": p.tasks.values().map(|t| json!({
            "name": t.name, "kind": t.kind.name(), "description": t.description,
            "depends_on": t.depends_on,
        })).collect::<Vec<_>>(),
        "next_run": p.schedule.as_ref().and_then(|s| s.next(chrono::Utc::now(), false)).map(|t| t.to_rfc3339()),
    })
}

/// A run by id; 404 when there is none.
async fn run_record(
    state: &AppState,
    run_id: &str,
) -> Result<socle_meta::runs::RunRecord, ApiError> {
    state
        .meta
        .get_run(run_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::not_found(format!("no run `{run_id}`")))
}

fn run_json(r: &socle_meta::runs::RunRecord) -> Value {
    json!({
        "run_id": r.run_id, "pipeline": r.pipeline, "logical_date": r.logical_date,
        "interval_end": r.interval_end, "trigger": r.trigger, "state": r.state,
        "created_at": r.created_at, "started_at": r.started_at, "ended_at": r.ended_at,
    })
}

fn task_json(t: &socle_meta::runs::TaskRecord) -> Value {
    json!({
        "task": t.task, "state": t.state, "try_number": t.try_number,
        "started_at": t.started_at, "ended_at": t.ended_at, "duration_ms": t.duration_ms,
        "error": t.error,
    })
}

/// `GET /api/pipelines` (analyst): every pipeline with its tasks and latest runs.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Analyst)?;
    let root = state.project.root.clone();
    let pipelines =
        tokio::task::spawn_blocking(move || socle_orchestrate::pipeline::load_all(&root))
            .await
            .map_err(internal)?
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut out = Vec::new();
    for p in &pipelines {
        let runs = state
            .meta
            .list_runs(Some(&p.name), 10)
            .await
            .map_err(internal)?;
        let mut v = pipeline_json(p);
        v["recent_runs"] = json!(runs.iter().map(run_json).collect::<Vec<_>>());
        out.push(v);
    }
    Ok(Json(json!(out)))
}

#[derive(Deserialize)]
pub struct GridQuery {
    runs: Option<i64>,
}

/// `GET /api/pipelines/{name}[?runs=25]` (analyst): the pipeline and its grid, the latest
/// runs (oldest first) with each task's state.
pub async fn detail(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Params(q): Params<GridQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Analyst)?;
    let p = load(&state, &name)?;
    let mut runs = state
        .meta
        .list_runs(Some(&p.name), q.runs.unwrap_or(25).clamp(1, 500))
        .await
        .map_err(internal)?;
    runs.reverse();
    let mut grid = Vec::new();
    for r in &runs {
        let tasks = state.meta.list_tasks(&r.run_id).await.map_err(internal)?;
        let mut v = run_json(r);
        v["tasks"] = json!(tasks.iter().map(task_json).collect::<Vec<_>>());
        grid.push(v);
    }
    let mut v = pipeline_json(&p);
    v["runs"] = json!(grid);
    Ok(Json(v))
}

#[derive(Deserialize)]
pub struct Trigger {
    /// Logical date (YYYY-MM-DD or RFC 3339); default: the latest complete interval.
    date: Option<String>,
    /// Only these tasks.
    #[serde(default)]
    tasks: Vec<String>,
}

/// Runs `request` in the background; the catalog is refreshed when it ends.
fn spawn_run(state: &Arc<AppState>, run_id: String, request: RunRequest) {
    let shared = state.clone();
    state.spawn_run(async move {
        let state = shared;
        let name = request.pipeline.name.clone();
        let result = socle_orchestrate::runner::execute(
            &state.env,
            &run_id,
            request,
            Arc::new(Traced(name)),
            Default::default(),
        )
        .await;
        if let Err(e) = result {
            tracing::error!(run_id, "run failed to execute: {e}");
        }
        state.catalog.invalidate();
    });
}

/// `POST /api/pipelines/{name}/trigger` (editor): `{date?, tasks?}`; 202 with the run id.
pub async fn trigger(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<Trigger>,
) -> Result<Response, ApiError> {
    let caller = caller.need(Role::Editor)?;
    let pipeline = load(&state, &name)?;
    for t in &body.tasks {
        if !pipeline.tasks.contains_key(t) {
            return Err(ApiError::bad_request(format!(
                "pipeline `{name}` has no task `{t}`"
            )));
        }
    }
    let (start, end) = socle_orchestrate::runner::interval_for(
        &pipeline,
        body.date.as_deref(),
        chrono::Utc::now(),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let request = RunRequest {
        pipeline,
        start,
        end,
        trigger: "manual".into(),
        only: (!body.tasks.is_empty()).then(|| body.tasks.iter().cloned().collect::<BTreeSet<_>>()),
    };
    let run_id = socle_orchestrate::runner::create_run(&state.env, &request)
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::conflict("that date has a run already"))?;
    caller
        .audit(&state, "run.trigger", &format!("{run_id} ({name})"))
        .await?;
    spawn_run(&state, run_id.clone(), request);
    Ok((StatusCode::ACCEPTED, Json(json!({"run_id": run_id}))).into_response())
}

/// `POST /api/runs/{run_id}/rerun` (editor): reruns the tasks that did not succeed.
pub async fn rerun(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = caller.need(Role::Editor)?;
    let run = run_record(&state, &run_id).await?;
    if matches!(run.state, RunState::Running | RunState::Queued) {
        take_over(&state, &run_id).await?;
    }
    caller.audit(&state, "run.rerun", &run_id).await?;
    let state2 = state.clone();
    let id = run_id.clone();
    state.spawn_run(async move {
        let progress = Arc::new(Traced(run.pipeline.clone()));
        if let Err(e) = socle_orchestrate::runner::resume(&state2.env, &id, progress, false).await {
            tracing::error!(run_id = id, "rerun failed to execute: {e}");
        }
        state2.catalog.invalidate();
    });
    Ok((StatusCode::ACCEPTED, Json(json!({"run_id": run_id}))).into_response())
}

/// A run still `running`: taken over when the process running it is gone (a server or
/// `socle run` killed), else 409.
async fn take_over(state: &AppState, run_id: &str) -> Result<(), ApiError> {
    use socle_orchestrate::takeover::{Runner, runner_state};
    let runner = state.meta.run_runner(run_id).await.map_err(internal)?;
    let refused = |why: &str| {
        ApiError::conflict(format!(
            "run `{run_id}` is running {why}: rerun it once it has ended"
        ))
    };
    match (runner_state(runner.as_deref()), runner) {
        (Runner::Dead, Some(dead)) => {
            let taken = socle_orchestrate::takeover::take_over(
                &state.env,
                run_id,
                &dead,
                "the process running this attempt stopped (crash)",
            )
            .await
            .map_err(internal)?;
            if taken {
                Ok(())
            } else {
                Err(refused("(another process took it over just now)"))
            }
        }
        (Runner::Elsewhere, Some(other)) => Err(refused(&format!(
            "on another machine ({other}); if that process is gone, rerun it there with `socle rerun {run_id}`"
        ))),
        _ => Err(refused("in a process that is alive")),
    }
}

#[derive(Deserialize)]
pub struct Backfill {
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    #[serde(default = "one")]
    parallel: usize,
    #[serde(default)]
    rerun_failed: bool,
}

fn one() -> usize {
    1
}

/// `POST /api/pipelines/{name}/backfill` (editor): `{from, to, parallel?, rerun_failed?}`;
/// 202 with the number of intervals.
pub async fn backfill(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(body): Body<Backfill>,
) -> Result<Response, ApiError> {
    let caller = caller.need(Role::Editor)?;
    let pipeline = load(&state, &name)?;
    let intervals = socle_orchestrate::backfill::intervals(&pipeline, body.from, body.to)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    caller
        .audit(
            &state,
            "run.backfill",
            &format!(
                "{name} {} to {} ({} intervals)",
                body.from,
                body.to,
                intervals.len()
            ),
        )
        .await?;
    let state2 = state.clone();
    state.spawn_run(async move {
        let progress = Arc::new(Traced(pipeline.name.clone()));
        if let Err(e) = socle_orchestrate::backfill::backfill(
            &state2.env,
            &pipeline,
            body.from,
            body.to,
            body.parallel.clamp(1, 16),
            body.rerun_failed,
            progress,
        )
        .await
        {
            tracing::error!(pipeline = pipeline.name, "backfill failed: {e}");
        }
        state2.catalog.invalidate();
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"pipeline": name, "intervals": intervals.len()})),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct RunsQuery {
    pipeline: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/runs[?pipeline=&limit=]` (analyst): runs, newest first.
pub async fn runs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params(q): Params<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Analyst)?;
    let runs = state
        .meta
        .list_runs(q.pipeline.as_deref(), q.limit.unwrap_or(100).clamp(1, 1000))
        .await
        .map_err(internal)?;
    Ok(Json(json!(runs.iter().map(run_json).collect::<Vec<_>>())))
}

/// `GET /api/runs/{run_id}` (analyst): the run, its task instances (times for the Gantt)
/// and their attempts (without logs).
pub async fn run(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(run_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Analyst)?;
    let run = run_record(&state, &run_id).await?;
    let tasks = state.meta.list_tasks(&run_id).await.map_err(internal)?;
    let attempts = state
        .meta
        .list_attempts(&run_id, None)
        .await
        .map_err(internal)?;
    let mut v = run_json(&run);
    v["tasks"] = json!(tasks.iter().map(task_json).collect::<Vec<_>>());
    v["attempts"] =
        json!(attempts
        .iter()
        .map(|a| json!({
            "task": a.task, "try_number": a.try_number, "state": a.state,
            "started_at": a.started_at, "ended_at": a.ended_at, "duration_ms": a.duration_ms,
            "exit_code": a.exit_code, "error": a.error,
        }))
        .collect::<Vec<_>>());
    Ok(Json(v))
}

#[derive(Deserialize)]
pub struct LogsQuery {
    task: Option<String>,
}

/// `GET /api/runs/{run_id}/logs[?task=]` (analyst): every attempt's captured output.
pub async fn logs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(run_id): Path<String>,
    Params(q): Params<LogsQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Analyst)?;
    run_record(&state, &run_id).await?;
    let attempts = state
        .meta
        .list_attempts(&run_id, q.task.as_deref())
        .await
        .map_err(internal)?;
    Ok(Json(json!(
        attempts
            .iter()
            .map(|a| json!({
                "task": a.task, "try_number": a.try_number, "state": a.state,
                "started_at": a.started_at, "duration_ms": a.duration_ms,
                "log": socle_core::secrets::redact(&a.log),
            }))
            .collect::<Vec<_>>()
    )))
}
