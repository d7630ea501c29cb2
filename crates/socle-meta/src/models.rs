//! Model versions: one row per training run of a model (`ml/<name>.yml`).
//!
//! The protocol that keeps numbers unique and versions whole: a training first claims the
//! next number ([`MetaDb::claim_version`], state `training`; two trainings at once get two
//! numbers, the loser of a race tries the next one), then writes the version's files to
//! the lake, and only then marks it `ready` ([`MetaDb::finish_version`]). A training that
//! fails is marked `failed`; one whose process died stays `training`. Only `ready`
//! versions are used; numbers are never reused.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::states::decode;
use crate::{MetaDb, MetaError, VersionState, now};

/// One version of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    pub model: String,
    pub version: i64,
    pub state: VersionState,
    pub kind: String,
    pub spec_hash: String,
    pub created_by: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    /// JSON object of metric name to value.
    pub metrics: Option<String>,
    pub error: Option<String>,
}

/// Tries at claiming a number before giving up (each loses only to another claim).
const CLAIM_TRIES: usize = 50;

/// The version of a model that is writing its output tables.
#[derive(Debug, Clone, PartialEq)]
pub struct Writer {
    pub version: i64,
    /// The process writing them (`host:pid:start`).
    pub writer: Option<String>,
    /// Each output table's Delta version before the writing began (JSON, as the writer
    /// recorded it); `None` until recorded, when nothing was written yet.
    pub outputs_before: Option<String>,
}

/// What [`MetaDb::begin_writing`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// This version now writes the model's output tables.
    Acquired,
    /// Another version is writing them.
    Held(Writer),
}

impl MetaDb {
    /// Claims the next version number of `model` for a training by `created_by`.
    pub async fn claim_version(
        &self,
        model: &str,
        kind: &str,
        spec_hash: &str,
        created_by: &str,
    ) -> Result<i64, MetaError> {
        let mut last = None;
        for _ in 0..CLAIM_TRIES {
            let next: i64 = sqlx::query(
                "SELECT COALESCE(MAX(version), 0) + 1 AS v FROM ml_versions WHERE model = $1",
            )
            .bind(model)
            .fetch_one(self.pool())
            .await?
            .try_get("v")?;
            let done = sqlx::query(
                "INSERT INTO ml_versions (model, version, state, kind, spec_hash, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(model)
            .bind(next)
            .bind(VersionState::Training.as_str())
            .bind(kind)
            .bind(spec_hash)
            .bind(created_by)
            .bind(now())
            .execute(self.pool())
            .await;
            match done {
                Ok(_) => return Ok(next),
                // Another training took this number first: the next one.
                Err(sqlx::Error::Database(e))
                    if e.kind() == sqlx::error::ErrorKind::UniqueViolation =>
                {
                    last = Some(next);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(MetaError::Conflict(format!(
            "model `{model}`: no version number after {CLAIM_TRIES} tries (last {})",
            last.unwrap_or(0)
        )))
    }

    /// Marks a version `ready` (its files are in the lake) with its metrics (a JSON
    /// object) and how long it took.
    pub async fn finish_version(
        &self,
        model: &str,
        version: i64,
        metrics: &str,
        duration_ms: i64,
    ) -> Result<(), MetaError> {
        self.end_version(
            model,
            version,
            VersionState::Ready,
            Some(metrics),
            None,
            Some(duration_ms),
        )
        .await
    }

    /// Marks a version `failed` with why (and how long it ran, when known).
    pub async fn fail_version(
        &self,
        model: &str,
        version: i64,
        error: &str,
        duration_ms: Option<i64>,
    ) -> Result<(), MetaError> {
        self.end_version(
            model,
            version,
            VersionState::Failed,
            None,
            Some(error),
            duration_ms,
        )
        .await
    }

    async fn end_version(
        &self,
        model: &str,
        version: i64,
        state: VersionState,
        metrics: Option<&str>,
        error: Option<&str>,
        duration_ms: Option<i64>,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "UPDATE ml_versions SET state = $3, metrics = $4, error = $5, finished_at = $6,
                 duration_ms = COALESCE($7, duration_ms)
             WHERE model = $1 AND version = $2",
        )
        .bind(model)
        .bind(version)
        .bind(state.as_str())
        .bind(metrics)
        .bind(error)
        .bind(now())
        .bind(duration_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Moves `version` of `model` from `training` to `writing` for process `writer`: the
    /// right to write the model's output tables, held by one version at a time.
    pub async fn begin_writing(
        &self,
        model: &str,
        version: i64,
        writer: &str,
    ) -> Result<Begin, MetaError> {
        for _ in 0..CLAIM_TRIES {
            let done = sqlx::query(
                "UPDATE ml_versions SET state = $4, writer = $3, outputs_before = NULL
                 WHERE model = $1 AND version = $2 AND state = $5",
            )
            .bind(model)
            .bind(version)
            .bind(writer)
            .bind(VersionState::Writing.as_str())
            .bind(VersionState::Training.as_str())
            .execute(self.pool())
            .await;
            match done {
                Ok(r) if r.rows_affected() == 1 => return Ok(Begin::Acquired),
                Ok(_) => {
                    return Err(MetaError::Conflict(format!(
                        "model `{model}` version {version} is no longer training"
                    )));
                }
                Err(sqlx::Error::Database(e))
                    if e.kind() == sqlx::error::ErrorKind::UniqueViolation =>
                {
                    // The holder may have finished since: then try again.
                    if let Some(holder) = self.writing_version(model).await? {
                        return Ok(Begin::Held(holder));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(MetaError::Conflict(format!(
            "model `{model}`: could not start writing the outputs of version {version} after {CLAIM_TRIES} tries"
        )))
    }

    /// Records, for the version writing `model`'s outputs, each table's version before it
    /// wrote (JSON).
    pub async fn record_outputs_before(
        &self,
        model: &str,
        version: i64,
        outputs_before: &str,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "UPDATE ml_versions SET outputs_before = $3
             WHERE model = $1 AND version = $2 AND state = $4",
        )
        .bind(model)
        .bind(version)
        .bind(outputs_before)
        .bind(VersionState::Writing.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The version of `model` writing its output tables, if any.
    pub async fn writing_version(&self, model: &str) -> Result<Option<Writer>, MetaError> {
        let row = sqlx::query(
            "SELECT version, writer, outputs_before FROM ml_versions
             WHERE model = $1 AND state = $2",
        )
        .bind(model)
        .bind(VersionState::Writing.as_str())
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Writer {
                version: r.try_get("version")?,
                writer: r.try_get("writer")?,
                outputs_before: r.try_get("outputs_before")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| MetaError::from(e))
    }

    /// Takes the writing of `version` over from `dead` (a process that is gone): its
    /// writer becomes `me`. False when another process took it over first or it ended.
    pub async fn take_over_writing(
        &self,
        model: &str,
        version: i64,
        dead: Option<&str>,
        me: &str,
    ) -> Result<bool, MetaError> {
        let done = sqlx::query(
            "UPDATE ml_versions SET writer = $4
             WHERE model = $1 AND version = $2 AND state = $5
               AND COALESCE(writer, '') = $3",
        )
        .bind(model)
        .bind(version)
        .bind(dead.unwrap_or(""))
        .bind(me)
        .bind(VersionState::Writing.as_str())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The versions of `model`, newest first (every state). (Tested on SQLite and
    /// PostgreSQL in `tests/meta.rs`.)
    pub async fn versions(&self, model: &str) -> Result<Vec<VersionRecord>, MetaError> {
        let rows = sqlx::query(
            "SELECT model, version, state, kind, spec_hash, created_by, created_at, finished_at,
                    duration_ms, metrics, error
             FROM ml_versions WHERE model = $1 ORDER BY version DESC",
        )
        .bind(model)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(record)
            .collect::<Result<_, _>>()
            .map_err(MetaError::from)
    }

    /// The newest `ready` version of each model.
    pub async fn latest_versions(&self) -> Result<Vec<VersionRecord>, MetaError> {
        let rows = sqlx::query(
            "SELECT v.model, v.version, v.state, v.kind, v.spec_hash, v.created_by, v.created_at,
                    v.finished_at, v.duration_ms, v.metrics, v.error
             FROM ml_versions v
             WHERE v.state = $1 AND v.version =
                 (SELECT MAX(w.version) FROM ml_versions w WHERE w.model = v.model AND w.state = $1)
             ORDER BY v.model",
        )
        .bind(VersionState::Ready.as_str())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(record)
            .collect::<Result<_, _>>()
            .map_err(MetaError::from)
    }

    /// Version `version` of `model`, or its newest `ready` one.
    pub async fn ready_version(
        &self,
        model: &str,
        version: Option<i64>,
    ) -> Result<Option<VersionRecord>, MetaError> {
        let found = self.versions(model).await?;
        Ok(found.into_iter().find(|v| {
            v.state == VersionState::Ready && version.is_none_or(|wanted| v.version == wanted)
        }))
    }
}

fn record(r: &AnyRow) -> Result<VersionRecord, sqlx::Error> {
    Ok(VersionRecord {
        model: r.try_get("model")?,
        version: r.try_get("version")?,
        state: decode(r, "state")?,
        kind: r.try_get("kind")?,
        spec_hash: r.try_get("spec_hash")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
        duration_ms: r.try_get("duration_ms")?,
        metrics: r.try_get("metrics")?,
        error: r.try_get("error")?,
    })
}
