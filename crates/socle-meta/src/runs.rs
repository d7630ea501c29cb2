//! Run history: pipeline runs, their task instances (latest state per task) and every
//! attempt with its captured log.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::states::decode;
use crate::{MetaDb, MetaError, RunState, TaskState, now};

/// One run of a pipeline for one logical date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub run_id: String,
    pub pipeline: String,
    /// Start of the data interval (RFC 3339).
    pub logical_date: String,
    pub interval_end: String,
    /// `manual`, `scheduled` or `backfill`.
    pub trigger: String,
    pub state: RunState,
    pub created_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
}

/// The latest state of one task in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    pub run_id: String,
    pub task: String,
    pub state: TaskState,
    pub try_number: i64,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
}

impl TaskRecord {
    /// A task that ended without running (or without a further attempt): `state` with
    /// `error`, ended now.
    pub fn ended_without_running(
        run_id: &str,
        task: &str,
        state: TaskState,
        try_number: i64,
        error: &str,
    ) -> Self {
        Self {
            run_id: run_id.to_string(),
            task: task.to_string(),
            state,
            try_number,
            started_at: None,
            ended_at: Some(now()),
            duration_ms: None,
            error: Some(error.to_string()),
        }
    }
}

/// One attempt of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub run_id: String,
    pub task: String,
    pub try_number: i64,
    pub state: TaskState,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub log: String,
}

fn run_of(r: &AnyRow) -> Result<RunRecord, sqlx::Error> {
    Ok(RunRecord {
        run_id: r.try_get("run_id")?,
        pipeline: r.try_get("pipeline")?,
        logical_date: r.try_get("logical_date")?,
        interval_end: r.try_get("interval_end")?,
        trigger: r.try_get("run_trigger")?,
        state: decode(r, "state")?,
        created_at: r.try_get("created_at")?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
    })
}

const RUN_COLS: &str = "run_id, pipeline, logical_date, interval_end, run_trigger, state, created_at, started_at, ended_at";

impl MetaDb {
    /// Records a new run (state `running`, started now). Returns `false`, writing
    /// nothing, when the pipeline already has a scheduled or backfill run for that logical
    /// date and this one is one of those too (each date is scheduled once).
    pub async fn insert_run(
        &self,
        run_id: &str,
        pipeline: &str,
        logical_date: &str,
        interval_end: &str,
        trigger: &str,
        runner: &str,
    ) -> Result<bool, MetaError> {
        let ts = now();
        let done = sqlx::query(
            "INSERT INTO pipeline_runs (run_id, pipeline, logical_date, interval_end, run_trigger, state, created_at, started_at, runner)
             VALUES ($1, $2, $3, $4, $5, $8, $6, $6, $7)",
        )
        .bind(run_id)
        .bind(pipeline)
        .bind(logical_date)
        .bind(interval_end)
        .bind(trigger)
        .bind(ts)
        .bind(runner)
        .bind(RunState::Running.as_str())
        .execute(self.pool())
        .await;
        match done {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e))
                if e.kind() == sqlx::error::ErrorKind::UniqueViolation =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The latest logical date a scheduled or backfill run of `pipeline` has.
    pub async fn last_scheduled(&self, pipeline: &str) -> Result<Option<String>, MetaError> {
        let row = sqlx::query(
            "SELECT MAX(logical_date) AS d FROM pipeline_runs
             WHERE pipeline = $1 AND run_trigger = 'scheduled'",
        )
        .bind(pipeline)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<Option<String>, _>("d")?)
    }

    /// Runs in a state (`running` ones left by a crash, for instance), oldest first.
    pub async fn runs_in_state(&self, state: RunState) -> Result<Vec<RunRecord>, MetaError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM pipeline_runs WHERE state = $1 ORDER BY created_at, run_id"
        ))
        .bind(state.as_str())
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(run_of).collect::<Result<_, _>>()?)
    }

    /// Records the process group an attempt's program runs in (to stop it if the daemon
    /// running it dies).
    pub async fn set_attempt_pgid(
        &self,
        run_id: &str,
        task: &str,
        try_number: i64,
        pgid: i64,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "UPDATE task_attempts SET pgid = $4 WHERE run_id = $1 AND task = $2 AND try_number = $3",
        )
        .bind(run_id)
        .bind(task)
        .bind(try_number)
        .bind(pgid)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Process groups of a run's attempts still `running`.
    pub async fn running_pgids(&self, run_id: &str) -> Result<Vec<i64>, MetaError> {
        let rows = sqlx::query(
            "SELECT pgid FROM task_attempts WHERE run_id = $1 AND state = $2 AND pgid IS NOT NULL",
        )
        .bind(run_id)
        .bind(TaskState::Running.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>("pgid"))
            .collect::<Result<_, _>>()
            .map_err(MetaError::from)
    }

    /// Marks the attempts and tasks of a run still `running` as failed with `reason`
    /// (their process is gone: a crash). Returns how many attempts it closed.
    pub async fn fail_running(&self, run_id: &str, reason: &str) -> Result<u64, MetaError> {
        let ts = now();
        let done = sqlx::query(
            "UPDATE task_attempts SET state = $4, error = $2, ended_at = $3
             WHERE run_id = $1 AND state = $5",
        )
        .bind(run_id)
        .bind(reason)
        .bind(&ts)
        .bind(TaskState::Failed.as_str())
        .bind(TaskState::Running.as_str())
        .execute(self.pool())
        .await?;
        sqlx::query(
            "UPDATE task_instances SET state = $4, error = $2, ended_at = $3
             WHERE run_id = $1 AND state IN ($5, $6)",
        )
        .bind(run_id)
        .bind(reason)
        .bind(&ts)
        .bind(TaskState::Failed.as_str())
        .bind(TaskState::Running.as_str())
        .bind(TaskState::UpForRetry.as_str())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Log retention: empties the logs of attempts that ended before `logs_before`, and
    /// deletes runs (with their tasks and attempts) created before `runs_before` (both
    /// RFC 3339). Returns (logs emptied, runs deleted).
    pub async fn prune_history(
        &self,
        logs_before: &str,
        runs_before: Option<&str>,
    ) -> Result<(u64, u64), MetaError> {
        let logs = sqlx::query(
            "UPDATE task_attempts SET log = '[log removed by retention]'
             WHERE ended_at IS NOT NULL AND ended_at < $1 AND log <> '[log removed by retention]'",
        )
        .bind(logs_before)
        .execute(self.pool())
        .await?
        .rows_affected();
        let mut runs = 0;
        if let Some(before) = runs_before {
            let mut tx = self.pool().begin().await?;
            for table in ["task_attempts", "task_instances"] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE run_id IN
                     (SELECT run_id FROM pipeline_runs WHERE created_at < $1 AND state <> $2)"
                ))
                .bind(before)
                .bind(RunState::Running.as_str())
                .execute(&mut *tx)
                .await?;
            }
            runs = sqlx::query("DELETE FROM pipeline_runs WHERE created_at < $1 AND state <> $2")
                .bind(before)
                .bind(RunState::Running.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
        }
        Ok((logs, runs))
    }

    /// Who started a run (`host:pid:start`), to tell a crashed scheduler's runs.
    pub async fn run_runner(&self, run_id: &str) -> Result<Option<String>, MetaError> {
        let row = sqlx::query("SELECT runner FROM pipeline_runs WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>("runner").ok().flatten()))
    }

    /// Makes `to` the runner of a run still `running` whose runner is `from` (a process
    /// that died). False when the run ended or another process claimed it first: one
    /// statement, so two processes taking over never both resume it.
    pub async fn claim_run(&self, run_id: &str, from: &str, to: &str) -> Result<bool, MetaError> {
        let done = sqlx::query(
            "UPDATE pipeline_runs SET runner = $3
             WHERE run_id = $1 AND state = $4 AND runner = $2",
        )
        .bind(run_id)
        .bind(from)
        .bind(to)
        .bind(RunState::Running.as_str())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks a run `running` again (a rerun), run by `runner` from now on.
    pub async fn restart_run(&self, run_id: &str, runner: &str) -> Result<(), MetaError> {
        sqlx::query(
            "UPDATE pipeline_runs SET state = $4, ended_at = NULL, runner = $2,
                 started_at = COALESCE(started_at, $3)
             WHERE run_id = $1",
        )
        .bind(run_id)
        .bind(runner)
        .bind(now())
        .bind(RunState::Running.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Takes or renews the lease `name` for `holder` until `expires_at` (RFC 3339). True
    /// when `holder` holds it now: it was free, expired at `now`, or already its own.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_at: &str,
        expires_at: &str,
    ) -> Result<bool, MetaError> {
        sqlx::query(
            "INSERT INTO scheduler_lease (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE scheduler_lease.holder = excluded.holder OR scheduler_lease.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(expires_at)
        .bind(now_at)
        .execute(self.pool())
        .await?;
        let row = sqlx::query("SELECT holder FROM scheduler_lease WHERE name = $1")
            .bind(name)
            .fetch_one(self.pool())
            .await?;
        Ok(row.try_get::<String, _>("holder")? == holder)
    }

    /// Gives the lease up (when `holder` has it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), MetaError> {
        sqlx::query("DELETE FROM scheduler_lease WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Sets a run's state; a final state (`success`, `failed`) also stamps its end.
    pub async fn set_run_state(&self, run_id: &str, state: RunState) -> Result<(), MetaError> {
        let ended = state.is_final().then(now);
        sqlx::query(
            "UPDATE pipeline_runs SET state = $2, ended_at = $3,
                 started_at = COALESCE(started_at, $4)
             WHERE run_id = $1",
        )
        .bind(run_id)
        .bind(state.as_str())
        .bind(ended)
        .bind(now())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, MetaError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM pipeline_runs WHERE run_id = $1"
        ))
        .bind(run_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| run_of(&r)).transpose()?)
    }

    /// Runs, newest logical date first (then newest created), optionally of one pipeline.
    pub async fn list_runs(
        &self,
        pipeline: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RunRecord>, MetaError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM pipeline_runs WHERE $1 = '' OR pipeline = $1
             ORDER BY logical_date DESC, created_at DESC, run_id DESC LIMIT $2"
        ))
        .bind(pipeline.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(run_of).collect::<Result<_, _>>()?)
    }

    /// The runs of a pipeline for one logical date, oldest first.
    pub async fn runs_for_date(
        &self,
        pipeline: &str,
        logical_date: &str,
    ) -> Result<Vec<RunRecord>, MetaError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLS} FROM pipeline_runs WHERE pipeline = $1 AND logical_date = $2
             ORDER BY created_at, run_id"
        ))
        .bind(pipeline)
        .bind(logical_date)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(run_of).collect::<Result<_, _>>()?)
    }

    /// How many runs a pipeline has for a logical date (to number a new one).
    pub async fn count_runs(&self, pipeline: &str, logical_date: &str) -> Result<i64, MetaError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM pipeline_runs WHERE pipeline = $1 AND logical_date = $2",
        )
        .bind(pipeline)
        .bind(logical_date)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Writes a task's latest state.
    pub async fn put_task(&self, t: &TaskRecord) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO task_instances (run_id, task, state, try_number, started_at, ended_at, duration_ms, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (run_id, task) DO UPDATE SET state = excluded.state,
                 try_number = excluded.try_number, started_at = excluded.started_at,
                 ended_at = excluded.ended_at, duration_ms = excluded.duration_ms,
                 error = excluded.error",
        )
        .bind(&t.run_id)
        .bind(&t.task)
        .bind(t.state.as_str())
        .bind(t.try_number)
        .bind(&t.started_at)
        .bind(&t.ended_at)
        .bind(t.duration_ms)
        .bind(&t.error)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn list_tasks(&self, run_id: &str) -> Result<Vec<TaskRecord>, MetaError> {
        let rows = sqlx::query(
            "SELECT run_id, task, state, try_number, started_at, ended_at, duration_ms, error
             FROM task_instances WHERE run_id = $1 ORDER BY started_at, task",
        )
        .bind(run_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TaskRecord {
                    run_id: r.try_get("run_id")?,
                    task: r.try_get("task")?,
                    state: decode(r, "state")?,
                    try_number: r.try_get("try_number")?,
                    started_at: r.try_get("started_at")?,
                    ended_at: r.try_get("ended_at")?,
                    duration_ms: r.try_get("duration_ms")?,
                    error: r.try_get("error")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(MetaError::from)
    }

    /// Writes one attempt (insert, or update when it finishes).
    pub async fn put_attempt(&self, a: &AttemptRecord) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO task_attempts (run_id, task, try_number, state, started_at, ended_at, duration_ms, exit_code, error, log)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (run_id, task, try_number) DO UPDATE SET state = excluded.state,
                 ended_at = excluded.ended_at, duration_ms = excluded.duration_ms,
                 exit_code = excluded.exit_code, error = excluded.error, log = excluded.log",
        )
        .bind(&a.run_id)
        .bind(&a.task)
        .bind(a.try_number)
        .bind(a.state.as_str())
        .bind(&a.started_at)
        .bind(&a.ended_at)
        .bind(a.duration_ms)
        .bind(a.exit_code)
        .bind(&a.error)
        .bind(&a.log)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Attempts of a run (optionally of one task), in order.
    pub async fn list_attempts(
        &self,
        run_id: &str,
        task: Option<&str>,
    ) -> Result<Vec<AttemptRecord>, MetaError> {
        let rows = sqlx::query(
            "SELECT run_id, task, try_number, state, started_at, ended_at, duration_ms, exit_code, error, log
             FROM task_attempts WHERE run_id = $1 AND ($2 = '' OR task = $2)
             ORDER BY started_at, task, try_number",
        )
        .bind(run_id)
        .bind(task.unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRecord {
                    run_id: r.try_get("run_id")?,
                    task: r.try_get("task")?,
                    try_number: r.try_get("try_number")?,
                    state: decode(r, "state")?,
                    started_at: r.try_get("started_at")?,
                    ended_at: r.try_get("ended_at")?,
                    duration_ms: r.try_get("duration_ms")?,
                    exit_code: r.try_get("exit_code")?,
                    error: r.try_get("error")?,
                    log: r.try_get("log")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(MetaError::from)
    }
}
