//! `socle run PIPELINE`, `socle runs` and `socle logs`: pipelines run once from the command
//! line, and their history.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use socle_orchestrate::runner::{Event, RunEnv, RunProgress, RunRequest, TaskState, human};

use super::dbt::Common;

/// `socle run`: with a pipeline name, runs that pipeline once; without, runs the dbt
/// project's models (as `dbt run`).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  socle run daily                      # the latest complete interval of its schedule\n  socle run daily --date 2024-03-01    # a given logical date\n  socle run daily --task load --task build\n  socle run --select +marts.orders     # no pipeline: dbt models only, as `dbt run`"
)]
pub struct RunArgs {
    /// Pipeline to run (a file pipelines/NAME.yml); without it, the dbt models run
    pub pipeline: Option<String>,
    /// Logical date: YYYY-MM-DD or an RFC 3339 time (default: the latest complete interval)
    #[arg(long, value_name = "DATE")]
    pub date: Option<String>,
    /// Run only these tasks of the pipeline (their upstream tasks are taken as done)
    #[arg(long = "task", value_name = "TASK")]
    pub tasks: Vec<String>,
    #[command(flatten)]
    pub common: Common,
}

struct Lines {
    pipeline: String,
}

fn clock() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

impl RunProgress for Lines {
    fn event(&self, event: &Event) {
        let p = &self.pipeline;
        match event {
            Event::RunStarted { run_id } => println!("{} {p}: run {run_id}", clock()),
            Event::TaskStarted {
                task,
                try_number,
                tries,
            } => {
                if *tries > 1 {
                    println!(
                        "{} {p}: {task} started (try {try_number} of {tries})",
                        clock()
                    );
                } else {
                    println!("{} {p}: {task} started", clock());
                }
            }
            Event::TaskRetrying {
                task,
                try_number,
                error,
                delay,
            } => println!(
                "{} {p}: {task} failed on try {try_number}: {}; retrying in {}",
                clock(),
                first_line(error),
                human(*delay)
            ),
            Event::TaskFinished {
                task,
                state,
                duration,
                message,
            } => match state {
                TaskState::Success => println!(
                    "{} {p}: {task} succeeded in {} ({message})",
                    clock(),
                    human(*duration)
                ),
                TaskState::Failed => println!(
                    "{} {p}: {task} FAILED after {}: {}",
                    clock(),
                    human(*duration),
                    first_line(message)
                ),
                other => println!("{} {p}: {task} {} ({message})", clock(), other.as_str()),
            },
        }
    }
}

pub async fn run(explicit: Option<PathBuf>, args: RunArgs) -> Result<ExitCode> {
    let Some(name) = args.pipeline.clone() else {
        if args.date.is_some() || !args.tasks.is_empty() {
            bail!("--date and --task need a pipeline: socle run PIPELINE --date ...");
        }
        return super::dbt::run(explicit, super::dbt::Which::Run, args.common).await;
    };
    let opened = crate::context::open(explicit).await?;
    let pipeline = load_pipeline(&opened.project, &name)?;
    for t in &args.tasks {
        if !pipeline.tasks.contains_key(t) {
            bail!(socle_orchestrate::OrchestrateError::UnknownTask {
                pipeline: name.clone(),
                task: t.clone(),
            });
        }
    }
    let (start, end) = socle_orchestrate::runner::interval_for(
        &pipeline,
        args.date.as_deref(),
        chrono::Utc::now(),
    )?;
    let env = env_of(&opened);
    let request = RunRequest {
        pipeline,
        start,
        end,
        trigger: "manual".into(),
        only: (!args.tasks.is_empty()).then(|| args.tasks.iter().cloned().collect::<BTreeSet<_>>()),
    };
    let summary = socle_orchestrate::runner::run(
        &env,
        request,
        Arc::new(Lines {
            pipeline: name.clone(),
        }),
    )
    .await?;
    print_summary(&summary);
    Ok(if summary.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// `socle runs`: recent runs, newest first.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  socle runs\n  socle runs daily --limit 5\n  socle runs --format json\n  socle runs --prune-logs 30d --prune-runs 365d   # retention, e.g. from a daily pipeline"
)]
pub struct RunsArgs {
    /// Only this pipeline's runs
    pub pipeline: Option<String>,
    /// How many runs
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    /// `table` for people, `json` for scripts
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Retention: empty the logs of attempts older than this (30d, 12h, ...) and exit
    #[arg(long, value_name = "AGE", value_parser = parse_duration)]
    pub prune_logs: Option<std::time::Duration>,
    /// With --prune-logs: also delete runs older than this
    #[arg(long, value_name = "AGE", value_parser = parse_duration, requires = "prune_logs")]
    pub prune_runs: Option<std::time::Duration>,
}

pub async fn runs(explicit: Option<PathBuf>, args: RunsArgs) -> Result<ExitCode> {
    let opened = crate::context::open(explicit).await?;
    if let Some(age) = args.prune_logs {
        let before = |age: std::time::Duration| {
            (chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or_default())
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let (logs, runs) = opened
            .meta
            .prune_history(&before(age), args.prune_runs.map(before).as_deref())
            .await?;
        println!("Emptied {logs} attempt logs; deleted {runs} runs.");
        return Ok(ExitCode::SUCCESS);
    }
    let runs = opened
        .meta
        .list_runs(args.pipeline.as_deref(), args.limit.max(1))
        .await?;
    if args.format == "json" {
        let mut out = Vec::new();
        for r in &runs {
            let tasks = opened.meta.list_tasks(&r.run_id).await?;
            let runner = opened.meta.run_runner(&r.run_id).await?;
            let attempts = opened.meta.list_attempts(&r.run_id, None).await?;
            out.push(serde_json::json!({
                "run_id": r.run_id, "pipeline": r.pipeline, "logical_date": r.logical_date,
                "runner": runner,
                "attempts": attempts.iter().map(|a| serde_json::json!({
                    "task": a.task, "try_number": a.try_number, "state": a.state,
                    "error": a.error, "exit_code": a.exit_code,
                })).collect::<Vec<_>>(),
                "interval_end": r.interval_end, "trigger": r.trigger, "state": r.state,
                "created_at": r.created_at, "started_at": r.started_at, "ended_at": r.ended_at,
                "tasks": tasks.iter().map(|t| serde_json::json!({
                    "task": t.task, "state": t.state, "try_number": t.try_number,
                    "started_at": t.started_at, "ended_at": t.ended_at,
                    "duration_ms": t.duration_ms, "error": t.error,
                })).collect::<Vec<_>>(),
            }));
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    if runs.is_empty() {
        println!("No runs yet. Start one with `socle run PIPELINE`.");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<36} {:<12} {:<26} {:<8} {:<9} tasks",
        "run", "pipeline", "logical date", "trigger", "state"
    );
    for r in &runs {
        let tasks = opened.meta.list_tasks(&r.run_id).await?;
        let ok = tasks
            .iter()
            .filter(|t| t.state == TaskState::Success)
            .count();
        let bad = tasks.iter().filter(|t| t.state.is_failure()).count();
        println!(
            "{:<36} {:<12} {:<26} {:<8} {:<9} {ok} ok{}",
            r.run_id,
            r.pipeline,
            r.logical_date,
            r.trigger,
            r.state,
            if bad > 0 {
                format!(", {bad} failed")
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `socle logs RUN [TASK]`: the captured output of every attempt.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  socle logs daily.20240301.1\n  socle logs daily.20240301.1 build"
)]
pub struct LogsArgs {
    /// A run id, as `socle runs` lists them
    pub run: String,
    /// Only this task
    pub task: Option<String>,
}

pub async fn logs(explicit: Option<PathBuf>, args: LogsArgs) -> Result<ExitCode> {
    let opened = crate::context::open(explicit).await?;
    if opened.meta.get_run(&args.run).await?.is_none() {
        bail!(socle_orchestrate::OrchestrateError::UnknownRun(args.run));
    }
    let attempts = opened
        .meta
        .list_attempts(&args.run, args.task.as_deref())
        .await?;
    if attempts.is_empty() {
        match &args.task {
            Some(t) => bail!("run {} has no attempt of task `{t}`", args.run),
            None => println!("run {} has no task attempts", args.run),
        }
    }
    for a in attempts {
        println!(
            "==> {} try {} · {} · {}{}",
            a.task,
            a.try_number,
            a.state,
            a.started_at,
            a.duration_ms
                .map(|ms| format!(" · {}", human(std::time::Duration::from_millis(ms as u64))))
                .unwrap_or_default()
        );
        print!("{}", a.log);
        if !a.log.ends_with('\n') && !a.log.is_empty() {
            println!();
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn env_of(opened: &crate::context::Opened) -> RunEnv {
    let project = Arc::new(opened.project.clone());
    let warehouse = socle_app::LazyWarehouse::ready(
        opened.warehouse.clone(),
        project.clone(),
        opened.meta.clone(),
    );
    env_with(project, opened.meta.clone(), warehouse)
}

pub(crate) fn env_with(
    project: Arc<socle_core::Project>,
    meta: socle_meta::MetaDb,
    warehouse: socle_app::LazyWarehouse,
) -> RunEnv {
    RunEnv {
        warehouse,
        meta,
        stop_on_ctrl_c: true,
        pools: socle_orchestrate::pools::Pools::new(&project.config.pools),
        sla_alerted: Default::default(),
        task_command: None,
        alerter: (!project.config.alerts.channels.is_empty()).then(|| {
            socle_orchestrate::alerts::Alerter::new(project.config.alerts.clone(), &project.root)
        }),
        project,
    }
}

/// A pipeline, with its alert channels checked against socle.yml.
fn load_pipeline(project: &socle_core::Project, name: &str) -> Result<socle_orchestrate::Pipeline> {
    let pipeline = socle_orchestrate::pipeline::load_one(&project.root, name)?;
    let errors = pipeline.check_against(&project.config);
    if !errors.is_empty() {
        bail!(socle_orchestrate::OrchestrateError::Configs(errors));
    }
    Ok(pipeline)
}

fn print_summary(summary: &socle_orchestrate::runner::RunSummary) {
    println!();
    for (task, state, duration, message) in &summary.tasks {
        println!(
            "  {:<24} {:<16} {:>8}  {}",
            task,
            state.as_str(),
            human(*duration),
            first_line(message)
        );
    }
    println!(
        "\nRun {} {} in {}. Logs: socle logs {}",
        summary.run_id,
        if summary.success {
            "succeeded"
        } else {
            "FAILED"
        },
        human(summary.elapsed),
        summary.run_id
    );
}

/// `socle rerun RUN`: the tasks of a run that did not succeed, again.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Reruns the failed, upstream-failed, skipped and interrupted tasks of a run, in the same\nrun (try numbers continue); tasks that succeeded are kept.\n\nExamples:\n  socle rerun daily.20240301.1"
)]
pub struct RerunArgs {
    /// A run id, as `socle runs` lists them
    pub run: String,
}

pub async fn rerun(explicit: Option<PathBuf>, args: RerunArgs) -> Result<ExitCode> {
    let opened = crate::context::open(explicit).await?;
    let Some(record) = opened.meta.get_run(&args.run).await? else {
        bail!(socle_orchestrate::OrchestrateError::UnknownRun(args.run));
    };
    if record.state == socle_meta::RunState::Success {
        println!("Run {} succeeded: nothing to rerun.", record.run_id);
        return Ok(ExitCode::SUCCESS);
    }
    let env = env_of(&opened);
    let summary = socle_orchestrate::runner::resume(
        &env,
        &args.run,
        Arc::new(Lines {
            pipeline: record.pipeline.clone(),
        }),
        false,
    )
    .await?;
    print_summary(&summary);
    Ok(if summary.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `socle backfill PIPELINE --from D1 --to D2`: a run per interval.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Runs the pipeline for every interval whose logical date falls between --from and --to\n(inclusive). Dates that already have a scheduled or backfill run are left alone, unless\n--rerun-failed reruns the failed tasks of the failed ones.\n\nExamples:\n  socle backfill daily --from 2024-01-01 --to 2024-01-31 --parallel 4\n  socle backfill daily --from 2024-01-01 --to 2024-01-31 --rerun-failed"
)]
pub struct BackfillArgs {
    pub pipeline: String,
    /// First logical date (YYYY-MM-DD)
    #[arg(long)]
    pub from: chrono::NaiveDate,
    /// Last logical date (YYYY-MM-DD, inclusive)
    #[arg(long)]
    pub to: chrono::NaiveDate,
    /// Runs at once
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Rerun the failed tasks of dates whose run failed
    #[arg(long)]
    pub rerun_failed: bool,
}

pub async fn backfill(explicit: Option<PathBuf>, args: BackfillArgs) -> Result<ExitCode> {
    let opened = crate::context::open(explicit).await?;
    let pipeline = load_pipeline(&opened.project, &args.pipeline)?;
    let env = env_of(&opened);
    let outcomes = socle_orchestrate::backfill::backfill(
        &env,
        &pipeline,
        args.from,
        args.to,
        args.parallel,
        args.rerun_failed,
        Arc::new(Lines {
            pipeline: pipeline.name.clone(),
        }),
    )
    .await?;
    println!();
    let mut failed = 0;
    for (_, outcome) in &outcomes {
        match outcome {
            socle_orchestrate::backfill::Outcome::Ran(s) => {
                if !s.success {
                    failed += 1;
                }
                println!(
                    "  {:<36} {}",
                    s.run_id,
                    if s.success {
                        socle_meta::RunState::Success
                    } else {
                        socle_meta::RunState::Failed
                    }
                );
            }
            socle_orchestrate::backfill::Outcome::Kept(id, state) => {
                if *state == socle_meta::RunState::Failed {
                    failed += 1;
                }
                println!("  {id:<36} {state} (already run; left alone)");
            }
        }
    }
    println!(
        "\nBackfill of {}: {} intervals, {failed} failed.",
        pipeline.name,
        outcomes.len()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    socle_orchestrate::pipeline::parse_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration (30s, 5m, 2h)"))
}
