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
            duration_ms,
        )
        .await
    }

    /// Marks a version `failed` with why.
    pub async fn fail_version(
        &self,
        model: &str,
        version: i64,
        error: &str,
        duration_ms: i64,
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
        duration_ms: i64,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "UPDATE ml_versions SET state = $3, metrics = $4, error = $5, finished_at = $6,
                 duration_ms = $7
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

    /// The versions of `model`, newest first (every state).
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (tempfile::TempDir, MetaDb) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let db = MetaDb::open(&url).await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn numbers_are_claimed_once_each_and_only_ready_versions_count() {
        let (_d, db) = db().await;
        // Eight trainings at once: eight different numbers.
        let mut claims = Vec::new();
        for i in 0..8 {
            let db = db.clone();
            claims.push(tokio::spawn(async move {
                db.claim_version("views", "regression", "h", &format!("u{i}"))
                    .await
                    .unwrap()
            }));
        }
        let mut numbers = Vec::new();
        for c in claims {
            numbers.push(c.await.unwrap());
        }
        numbers.sort();
        assert_eq!(numbers, (1..=8).collect::<Vec<i64>>());
        assert_eq!(db.ready_version("views", None).await.unwrap(), None);
        db.finish_version("views", 3, r#"{"rmse":1.5}"#, 10)
            .await
            .unwrap();
        db.fail_version("views", 8, "no rows", 5).await.unwrap();
        let ready = db.ready_version("views", None).await.unwrap().unwrap();
        assert_eq!((ready.version, ready.state), (3, VersionState::Ready));
        assert_eq!(ready.metrics.as_deref(), Some(r#"{"rmse":1.5}"#));
        assert!(db.ready_version("views", Some(8)).await.unwrap().is_none());
        // A failed number is not reused.
        assert_eq!(
            db.claim_version("views", "regression", "h", "u")
                .await
                .unwrap(),
            9
        );
        let latest = db.latest_versions().await.unwrap();
        assert_eq!(latest.len(), 1);
        assert_eq!(latest[0].version, 3);
        let all = db.versions("views").await.unwrap();
        assert_eq!(all.first().map(|v| v.version), Some(9));
        assert_eq!(all[1].error.as_deref(), Some("no rows"));
    }
}
