//! Task processes: the daemon (`socle serve`) runs each attempt of a task that uses the
//! warehouse (`build`, `test`, `sql`, `extract`) in a child process,
//! `socle task-attempt`, as Airflow runs each task instance in its own process. The query
//! engine's code and memory (a 200-model build leaves ~200 MiB behind) go with the child
//! when the attempt ends, so an idle daemon stays small; a task that crashes the engine
//! fails alone; and a timeout or a shutdown kills the child's process group like any
//! `command` task's.
//!
//! The daemon keeps everything else: pools, retries, timeouts, alerts, the attempt's
//! records. They speak socle's framed protocol ([`socle_core::frames`]): the daemon writes
//! one [`AttemptRequest`] frame to the child's stdin; the child answers on stdout with a
//! `{"log": "..."}` frame for each line of the attempt's log as it is written, then
//! `{"ok": "summary"}` or `{"failed": {...}}`. Anything else the child prints (stderr
//! included) goes to the log as it is.

use std::process::Stdio;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use socle_core::frames::{self, Incoming};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::{Log, TaskContext, TaskFailure, TaskKind};
use crate::pipeline::TaskSpec;
use crate::runner::RunEnv;

/// Which attempt a task process makes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptRequest {
    pub pipeline: String,
    pub task: String,
    pub run_id: String,
    pub try_number: i64,
    /// The data interval, RFC 3339.
    pub start: String,
    pub end: String,
}

/// One frame of a task process's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Line {
    Log(String),
    Ok(String),
    Failed {
        message: String,
        exit_code: Option<i64>,
        retryable: bool,
    },
}

/// How a program ended, for a failure message: `exited with status 2`, `killed by signal 9`.
pub(crate) fn ended(status: &std::process::ExitStatus) -> String {
    match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(status),
    ) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "failed".to_string(),
    }
}

/// Kills a process group when dropped (an attempt timed out or its run was stopped).
pub(crate) struct GroupGuard {
    pub pgid: Option<i32>,
}

impl GroupGuard {
    /// Guards the process group `child` leads, and records it on the attempt's row so that
    /// a daemon taking over after a crash can kill it.
    pub async fn recorded(child: &tokio::process::Child, ctx: &TaskContext) -> Self {
        let guard = Self {
            pgid: child.id().map(|p| p as i32),
        };
        if let (Some(pgid), Some((meta, task, try_number))) = (guard.pgid, &ctx.meta)
            && let Err(e) = meta
                .set_attempt_pgid(&ctx.run_id, task, *try_number, i64::from(pgid))
                .await
        {
            tracing::warn!("process group of {task} not recorded: {e}");
        }
        guard
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            // SAFETY: kill(2) with a negative pid signals the process group we created.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Runs one attempt of `spec`: in a task process when the context says so and the kind
/// uses the warehouse, otherwise here.
pub async fn run(
    kind: &TaskKind,
    spec: &TaskSpec,
    ctx: &TaskContext,
) -> Result<String, TaskFailure> {
    match &ctx.task_command {
        Some(command) if kind.uses_warehouse() => in_child(command, spec, ctx).await,
        _ => kind.run(spec, ctx).await,
    }
}

async fn in_child(
    command: &[std::ffi::OsString],
    spec: &TaskSpec,
    ctx: &TaskContext,
) -> Result<String, TaskFailure> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| TaskFailure::new("empty task command"))?;
    let request = AttemptRequest {
        pipeline: ctx.pipeline.clone(),
        task: spec.name.clone(),
        run_id: ctx.run_id.clone(),
        try_number: ctx.meta.as_ref().map(|m| m.2).unwrap_or(1),
        start: ctx.dates.start.to_rfc3339(),
        end: ctx.dates.end.to_rfc3339(),
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(&ctx.project.root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| TaskFailure::new(format!("cannot start the task process: {e}")))?;
    let mut guard = GroupGuard::recorded(&child, ctx).await;
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(&frames::encode(&request))
        .await
        .map_err(|e| TaskFailure::new(format!("cannot talk to the task process: {e}")))?;
    drop(stdin);
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let log = ctx.log.clone();
    let read_out = async move {
        let mut result = None;
        let mut from_child = frames::Reader::new(stdout, "task process");
        loop {
            match from_child.next::<Line>().await {
                Ok(Some(Incoming::Frame(Line::Log(text)))) => log.line(&text),
                Ok(Some(Incoming::Frame(Line::Ok(summary)))) => result = Some(Ok(summary)),
                Ok(Some(Incoming::Frame(Line::Failed {
                    message,
                    exit_code,
                    retryable,
                }))) => {
                    result = Some(Err(TaskFailure {
                        message,
                        exit_code,
                        retryable,
                    }))
                }
                Ok(Some(Incoming::Text { line, .. })) => log.line(&line),
                Ok(None) => break,
                // A line too long for the log is skipped, said so; the rest still counts.
                Err(e @ frames::FrameError::TooLong { .. }) => log.line(&e.to_string()),
                Err(e) => {
                    log.line(&e.to_string());
                    break;
                }
            }
        }
        result
    };
    let log = ctx.log.clone();
    let read_err = async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            log.line(&line);
        }
    };
    let (status, result, _) = tokio::join!(child.wait(), read_out, read_err);
    guard.pgid = None;
    if let Some(result) = result {
        return result;
    }
    let how = match status {
        Ok(s) => ended(&s),
        Err(e) => format!("could not be waited for: {e}"),
    };
    Err(TaskFailure::new(format!(
        "the task process ended before it finished the task: {how}"
    )))
}

/// The task process's side: makes the attempt `req` asks for, here, writing the log lines
/// and the outcome to stdout as JSON lines.
pub async fn attempt_here(env: &RunEnv, req: &AttemptRequest) {
    let outcome = attempt(env, req).await;
    let line = match outcome {
        Ok(summary) => Line::Ok(summary),
        Err(f) => Line::Failed {
            message: f.message,
            exit_code: f.exit_code,
            retryable: f.retryable,
        },
    };
    emit(&line);
}

fn emit(line: &Line) {
    // The daemon reading it is gone if this fails: nobody is left to tell.
    let _ = frames::write_sync(&mut std::io::stdout().lock(), line);
}

async fn attempt(env: &RunEnv, req: &AttemptRequest) -> Result<String, TaskFailure> {
    // Its own file only (as Airflow re-reads the DAG file in the task's process): another
    // pipeline being edited meanwhile does not matter.
    let dir = env.project.root.join("pipelines");
    let file = ["yml", "yaml"]
        .iter()
        .map(|ext| dir.join(format!("{}.{ext}", req.pipeline)))
        .find(|f| f.is_file())
        .ok_or_else(|| TaskFailure::new(format!("pipelines/{}.yml is gone", req.pipeline)))?;
    let pipeline = crate::pipeline::load_file(&file).map_err(|errors| {
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        TaskFailure {
            retryable: false,
            ..TaskFailure::new(format!("the pipeline does not load: {}", text.join("; ")))
        }
    })?;
    let time = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| TaskFailure::new(format!("bad interval `{t}`: {e}")))
    };
    let interval = (time(&req.start)?, time(&req.end)?);
    let spec = pipeline
        .tasks
        .get(&req.task)
        .ok_or_else(|| {
            TaskFailure::new(format!(
                "pipeline `{}` has no task `{}` any more",
                req.pipeline, req.task
            ))
        })?
        .clone();
    let ctx = TaskContext {
        log: Log::streaming(|text| emit(&Line::Log(text.to_string()))),
        meta: Some((env.meta.clone(), spec.name.clone(), req.try_number)),
        task_command: None,
        ..crate::runner::task_context(env, &pipeline, &req.run_id, &req.task, interval)
    };
    spec.kind.run(&spec, &ctx).await
}
