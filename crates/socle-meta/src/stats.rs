//! Aggregates of the run and extraction history for the server's `/metrics`: counted by the
//! database, so they hold across restarts and across daemons sharing one database.

use sqlx::Row;

use crate::{MetaDb, MetaError};

/// Pipeline runs of one pipeline in one state, by trigger.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCount {
    pub pipeline: String,
    pub state: String,
    pub trigger: String,
    pub runs: i64,
}

/// Task instances of one task in one state, with their summed duration.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskCount {
    pub pipeline: String,
    pub task: String,
    pub state: String,
    pub count: i64,
    pub duration_ms: i64,
}

/// Extractions of one stream in one status, with the rows they loaded and rejected and
/// when the last one ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamCount {
    pub source: String,
    pub stream: String,
    pub status: crate::StreamState,
    pub count: i64,
    pub rows_loaded: i64,
    pub rows_rejected: i64,
    pub last_ended_at: Option<String>,
}

/// One finished run's times (RFC 3339), for durations and scheduler lag.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTimes {
    pub pipeline: String,
    pub trigger: String,
    pub state: String,
    pub interval_end: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
}

impl MetaDb {
    /// When the latest pipeline run or extraction ended (RFC 3339), whichever process made
    /// it: the server's catalog is read again after it.
    pub async fn last_ended_at(&self) -> Result<Option<String>, MetaError> {
        let row = sqlx::query(
            "SELECT MAX(m) FROM (SELECT MAX(ended_at) AS m FROM pipeline_runs
             UNION ALL SELECT MAX(ended_at) AS m FROM extract_runs) t",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<Option<String>, _>(0)?)
    }

    pub async fn run_counts(&self) -> Result<Vec<RunCount>, MetaError> {
        let rows = sqlx::query(
            "SELECT pipeline, state, run_trigger, COUNT(*) FROM pipeline_runs
             GROUP BY pipeline, state, run_trigger ORDER BY pipeline, state, run_trigger",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| RunCount {
                pipeline: r.get(0),
                state: r.get(1),
                trigger: r.get(2),
                runs: r.get(3),
            })
            .collect())
    }

    pub async fn task_counts(&self) -> Result<Vec<TaskCount>, MetaError> {
        let rows = sqlx::query(
            "SELECT r.pipeline, t.task, t.state, COUNT(*),
                    CAST(COALESCE(SUM(t.duration_ms), 0) AS BIGINT)
             FROM task_instances t JOIN pipeline_runs r ON r.run_id = t.run_id
             GROUP BY r.pipeline, t.task, t.state ORDER BY r.pipeline, t.task, t.state",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| TaskCount {
                pipeline: r.get(0),
                task: r.get(1),
                state: r.get(2),
                count: r.get(3),
                duration_ms: r.get(4),
            })
            .collect())
    }

    pub async fn stream_counts(&self) -> Result<Vec<StreamCount>, MetaError> {
        let rows = sqlx::query(
            "SELECT source, stream, status, COUNT(*),
                    CAST(COALESCE(SUM(rows_loaded), 0) AS BIGINT),
                    CAST(COALESCE(SUM(rows_rejected), 0) AS BIGINT), MAX(ended_at)
             FROM extract_runs GROUP BY source, stream, status ORDER BY source, stream, status",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| StreamCount {
                source: r.get(0),
                stream: r.get(1),
                status: r
                    .get::<String, _>(2)
                    .parse()
                    .unwrap_or(crate::StreamState::Failed),
                count: r.get(3),
                rows_loaded: r.get(4),
                rows_rejected: r.get(5),
                last_ended_at: r.get(6),
            })
            .collect())
    }

    /// The latest `limit` runs' times, newest first.
    pub async fn run_times(&self, limit: i64) -> Result<Vec<RunTimes>, MetaError> {
        let rows = sqlx::query(
            "SELECT pipeline, run_trigger, state, interval_end, created_at, started_at, ended_at
             FROM pipeline_runs ORDER BY created_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| RunTimes {
                pipeline: r.get(0),
                trigger: r.get(1),
                state: r.get(2),
                interval_end: r.get(3),
                created_at: r.get(4),
                started_at: r.get(5),
                ended_at: r.get(6),
            })
            .collect())
    }
}
