//! Extraction state: each stream's committed cursor / seen files, the load in flight, and
//! a history of stream extractions.
//!
//! The protocol that keeps state and data together: before a load, the state it will
//! advance to is written as *pending* with the next sequence number; the load's Delta
//! commit carries that number as an application transaction; once the commit is in, the
//! pending state becomes the state. A crash in between leaves a pending row, which the
//! next extraction reconciles by asking the table whether the commit made it.

use sqlx::Row;

use crate::{MetaDb, MetaError, now};

/// The committed state of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamState {
    /// Sequence number of the last committed load (0 before the first).
    pub seq: i64,
    /// Connector-specific JSON (cursor values, seen files).
    pub state: String,
    pub run_id: String,
    pub updated_at: String,
}

/// A load that was started and not yet confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub seq: i64,
    pub run_id: String,
    /// The state the stream advances to once the load is committed.
    pub state: String,
    /// JSON with what the reconciliation needs (table, raw files, rejects).
    pub detail: String,
}

/// One stream extraction, for history listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractRun {
    pub run_id: String,
    pub source: String,
    pub stream: String,
    pub logical_date: String,
    pub status: crate::StreamState,
    pub rows_loaded: i64,
    pub rows_rejected: i64,
    pub bytes: i64,
    pub files: i64,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub error: Option<String>,
}

impl MetaDb {
    /// The committed state of a stream, if it ever loaded.
    pub async fn stream_state(
        &self,
        source: &str,
        stream: &str,
    ) -> Result<Option<StreamState>, MetaError> {
        let row = sqlx::query(
            "SELECT seq, state, run_id, updated_at FROM extract_state WHERE source = $1 AND stream = $2",
        )
        .bind(source)
        .bind(stream)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| StreamState {
            seq: r.get(0),
            state: r.get(1),
            run_id: r.get(2),
            updated_at: r.get(3),
        }))
    }

    /// The load in flight for a stream, if any.
    pub async fn pending_load(
        &self,
        source: &str,
        stream: &str,
    ) -> Result<Option<Pending>, MetaError> {
        let row = sqlx::query(
            "SELECT seq, run_id, state, detail FROM extract_pending WHERE source = $1 AND stream = $2",
        )
        .bind(source)
        .bind(stream)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| Pending {
            seq: r.get(0),
            run_id: r.get(1),
            state: r.get(2),
            detail: r.get(3),
        }))
    }

    /// Records a load about to be committed (replacing a discarded one).
    pub async fn begin_load(
        &self,
        source: &str,
        stream: &str,
        pending: &Pending,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO extract_pending (source, stream, seq, run_id, state, detail, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (source, stream) DO UPDATE SET seq = excluded.seq, run_id = excluded.run_id,
               state = excluded.state, detail = excluded.detail, created_at = excluded.created_at",
        )
        .bind(source)
        .bind(stream)
        .bind(pending.seq)
        .bind(&pending.run_id)
        .bind(&pending.state)
        .bind(&pending.detail)
        .bind(now())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The pending load is in the table: its state becomes the stream's state, in one
    /// transaction.
    pub async fn confirm_load(&self, source: &str, stream: &str) -> Result<bool, MetaError> {
        let mut tx = self.pool().begin().await?;
        let moved = sqlx::query(
            "INSERT INTO extract_state (source, stream, seq, state, run_id, updated_at)
             SELECT source, stream, seq, state, run_id, $3 FROM extract_pending
             WHERE source = $1 AND stream = $2
             ON CONFLICT (source, stream) DO UPDATE SET seq = excluded.seq, state = excluded.state,
               run_id = excluded.run_id, updated_at = excluded.updated_at",
        )
        .bind(source)
        .bind(stream)
        .bind(now())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM extract_pending WHERE source = $1 AND stream = $2")
            .bind(source)
            .bind(stream)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(moved > 0)
    }

    /// The pending load never reached the table: forget it (the state stays where it was).
    pub async fn discard_load(&self, source: &str, stream: &str) -> Result<(), MetaError> {
        sqlx::query("DELETE FROM extract_pending WHERE source = $1 AND stream = $2")
            .bind(source)
            .bind(stream)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Forgets a stream's state (`--full-refresh`); the sequence number carries on so the
    /// table's transaction versions keep increasing.
    pub async fn reset_stream_state(&self, source: &str, stream: &str) -> Result<(), MetaError> {
        sqlx::query("UPDATE extract_state SET state = '{}', updated_at = $3 WHERE source = $1 AND stream = $2")
            .bind(source)
            .bind(stream)
            .bind(now())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records the start of a stream extraction.
    pub async fn start_extract_run(
        &self,
        run_id: &str,
        source: &str,
        stream: &str,
        logical_date: &str,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO extract_runs (run_id, source, stream, logical_date, status, rows_loaded,
               rows_rejected, bytes, files, started_at)
             VALUES ($1, $2, $3, $4, $6, 0, 0, 0, 0, $5)
             ON CONFLICT (run_id, source, stream) DO UPDATE SET status = excluded.status, started_at = excluded.started_at",
        )
        .bind(run_id)
        .bind(source)
        .bind(stream)
        .bind(logical_date)
        .bind(now())
        .bind(crate::states::StreamState::Running.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records how a stream extraction ended.
    pub async fn finish_extract_run(&self, run: &ExtractRun) -> Result<(), MetaError> {
        sqlx::query(
            "UPDATE extract_runs SET status = $4, rows_loaded = $5, rows_rejected = $6, bytes = $7,
               files = $8, ended_at = $9, error = $10
             WHERE run_id = $1 AND source = $2 AND stream = $3",
        )
        .bind(&run.run_id)
        .bind(&run.source)
        .bind(&run.stream)
        .bind(run.status.as_str())
        .bind(run.rows_loaded)
        .bind(run.rows_rejected)
        .bind(run.bytes)
        .bind(run.files)
        .bind(run.ended_at.clone().unwrap_or_else(now))
        .bind(&run.error)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The latest stream extractions, newest first.
    pub async fn list_extract_runs(
        &self,
        source: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ExtractRun>, MetaError> {
        let rows = sqlx::query(
            "SELECT run_id, source, stream, logical_date, status, rows_loaded, rows_rejected, bytes,
               files, started_at, ended_at, error
             FROM extract_runs WHERE ($1 = '' OR source = $1)
             ORDER BY started_at DESC, stream LIMIT $2",
        )
        .bind(source.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ExtractRun {
                run_id: r.get(0),
                source: r.get(1),
                stream: r.get(2),
                logical_date: r.get(3),
                status: r
                    .get::<String, _>(4)
                    .parse()
                    .unwrap_or(crate::StreamState::Failed),
                rows_loaded: r.get(5),
                rows_rejected: r.get(6),
                bytes: r.get(7),
                files: r.get(8),
                started_at: r.get(9),
                ended_at: r.get(10),
                error: r.get(11),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pending_then_confirm_or_discard() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/m.db", dir.path().display());
        let db = MetaDb::open(&url).await.unwrap();
        assert_eq!(db.stream_state("s", "t").await.unwrap(), None);
        let p = Pending {
            seq: 1,
            run_id: "r1".into(),
            state: r#"{"cursor":5}"#.into(),
            detail: "{}".into(),
        };
        db.begin_load("s", "t", &p).await.unwrap();
        assert_eq!(db.pending_load("s", "t").await.unwrap(), Some(p.clone()));
        assert!(db.confirm_load("s", "t").await.unwrap());
        let st = db.stream_state("s", "t").await.unwrap().unwrap();
        assert_eq!((st.seq, st.state.as_str()), (1, r#"{"cursor":5}"#));
        assert_eq!(db.pending_load("s", "t").await.unwrap(), None);

        let p2 = Pending {
            seq: 2,
            state: r#"{"cursor":9}"#.into(),
            ..p
        };
        db.begin_load("s", "t", &p2).await.unwrap();
        db.discard_load("s", "t").await.unwrap();
        let st = db.stream_state("s", "t").await.unwrap().unwrap();
        assert_eq!(st.seq, 1, "a discarded load does not move the state");
        assert!(!db.confirm_load("s", "t").await.unwrap());
    }
}
