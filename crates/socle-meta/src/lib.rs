//! socle's metadata database: SQLite by default (a file under `.socle/`), PostgreSQL by URL.
//!
//! One [`MetaDb`] handle over an `sqlx` Any pool, so every query is written once in the
//! SQL subset both engines share (`$1` placeholders, `ON CONFLICT ... DO UPDATE`, TEXT
//! timestamps in RFC 3339). The schema evolves through the numbered migrations in
//! [`migrations`]; each one is applied in a transaction and recorded in `socle_migrations`.
//!
//! What it holds: catalog extras (view definitions, descriptions) and pipeline run
//! history ([`runs`]); extraction state ([`extract`]); the server's users, sessions, API
//! tokens and audit log ([`users`]); model versions ([`models`]). States and roles are typed ([`states`]) and stored as
//! text.

pub mod catalog;
pub mod extract;
pub mod migrations;
pub mod models;
pub mod runs;
pub mod states;
pub mod stats;
pub mod users;

pub use states::{Role, RunState, StreamState, TaskState, VersionState};

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("cannot open the metadata database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("metadata database migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
    #[error(
        "the metadata database is at schema version {found}, newer than this socle knows ({known}); upgrade socle"
    )]
    TooNew { found: i64, known: i64 },
    #[error("metadata database: {0}")]
    Query(#[from] sqlx::Error),
    /// Another writer kept winning a race (claiming a model version number).
    #[error("{0}")]
    Conflict(String),
}

/// Which engine is behind the handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An open, migrated metadata database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MetaDb {
    pool: AnyPool,
    backend: Backend,
}

impl MetaDb {
    /// Opens (creating the SQLite file if needed) and migrates to the latest version.
    /// `url` is `sqlite:///abs/path.db` or `postgres://...`, already resolved.
    pub async fn open(url: &str) -> Result<Self, MetaError> {
        install_default_drivers();
        let redacted = redact(url);
        let connect_err = |source| MetaError::Connect {
            url: redacted.clone(),
            source,
        };
        let (backend, url) = if let Some(path) = url.strip_prefix("sqlite://") {
            let file = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(file).parent() {
                std::fs::create_dir_all(dir).map_err(|e| connect_err(sqlx::Error::Io(e)))?;
            }
            let sep = if url.contains('?') { '&' } else { '?' };
            (Backend::Sqlite, format!("{url}{sep}mode=rwc"))
        } else {
            (Backend::Postgres, url.to_string())
        };
        let mut options =
            AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 4 } else { 8 });
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    // Switching a new database to WAL takes an exclusive lock that SQLite
                    // does not wait for (another process opening it at the same moment
                    // gets "database is locked" at once): try again for a few seconds.
                    let mut tries = 0;
                    while let Err(e) = conn.execute("PRAGMA journal_mode = WAL").await {
                        tries += 1;
                        if tries >= 50 || !sqlite_busy(&e) {
                            return Err(e);
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    // In WAL mode NORMAL syncs at checkpoints, not at every commit: a killed
                    // process loses nothing committed; only a power cut may lose the last
                    // commits (never corrupts). The server writes an audit row per query.
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await.map_err(connect_err)?;
        let db = Self { pool, backend };
        migrations::migrate(&db).await?;
        Ok(db)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i64, MetaError> {
        migrations::current_version(self).await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Hides the password of a database URL, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// SQLite's "database is locked" (`SQLITE_BUSY`, 5) or "table is locked" (`SQLITE_LOCKED`,
/// 6), extended codes included: another connection holds the lock for now.
fn sqlite_busy(e: &sqlx::Error) -> bool {
    let Some(code) = e.as_database_error().and_then(|d| d.code()) else {
        return false;
    };
    code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact("sqlite:///a/b.db"), "sqlite:///a/b.db");
    }
}
