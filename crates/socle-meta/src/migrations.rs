//! Versioned migrations of the metadata database.
//!
//! Append new migrations at the end with the next number; never edit an applied one.
//! SQL must run on both SQLite and PostgreSQL.

use sqlx::Row;

use sqlx::AnyConnection;

use crate::{Backend, MetaDb, MetaError, now};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub statements: &'static [&'static str],
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "catalog",
        statements: &[
            "CREATE TABLE catalog_views (
            schema_name TEXT NOT NULL,
            view_name TEXT NOT NULL,
            definition TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (schema_name, view_name)
        )",
            "CREATE TABLE catalog_descriptions (
            schema_name TEXT NOT NULL,
            object_name TEXT NOT NULL,
            column_name TEXT NOT NULL,
            description TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (schema_name, object_name, column_name)
        )",
            "CREATE TABLE catalog_schemas (
            schema_name TEXT NOT NULL PRIMARY KEY,
            created_at TEXT NOT NULL
        )",
        ],
    },
    Migration {
        version: 2,
        name: "run history",
        statements: &[
            "CREATE TABLE pipeline_runs (
            run_id TEXT NOT NULL PRIMARY KEY,
            pipeline TEXT NOT NULL,
            logical_date TEXT NOT NULL,
            interval_end TEXT NOT NULL,
            run_trigger TEXT NOT NULL,
            state TEXT NOT NULL,
            created_at TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT
        )",
            "CREATE INDEX pipeline_runs_by_date ON pipeline_runs (pipeline, logical_date)",
            "CREATE TABLE task_instances (
            run_id TEXT NOT NULL,
            task TEXT NOT NULL,
            state TEXT NOT NULL,
            try_number BIGINT NOT NULL,
            started_at TEXT,
            ended_at TEXT,
            duration_ms BIGINT,
            error TEXT,
            PRIMARY KEY (run_id, task)
        )",
            "CREATE TABLE task_attempts (
            run_id TEXT NOT NULL,
            task TEXT NOT NULL,
            try_number BIGINT NOT NULL,
            state TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            duration_ms BIGINT,
            exit_code BIGINT,
            error TEXT,
            log TEXT NOT NULL,
            PRIMARY KEY (run_id, task, try_number)
        )",
        ],
    },
    Migration {
        version: 3,
        name: "scheduler",
        statements: &[
            // The scheduler (and backfills) run a logical date once: a second insert fails.
            "CREATE UNIQUE INDEX pipeline_runs_scheduled_once ON pipeline_runs (pipeline, logical_date)
                WHERE run_trigger IN ('scheduled', 'backfill')",
            "ALTER TABLE pipeline_runs ADD COLUMN runner TEXT",
            "CREATE TABLE scheduler_lease (
                name TEXT NOT NULL PRIMARY KEY,
                holder TEXT NOT NULL,
                expires_at TEXT NOT NULL
            )",
        ],
    },
    Migration {
        version: 4,
        name: "attempt process groups",
        statements: &["ALTER TABLE task_attempts ADD COLUMN pgid BIGINT"],
    },
    Migration {
        version: 5,
        name: "extraction state",
        statements: &[
            // The committed state of a stream: its cursor / seen files and the sequence
            // number of the last load (also written into the Delta commit as a txn action).
            "CREATE TABLE extract_state (
            source TEXT NOT NULL,
            stream TEXT NOT NULL,
            seq BIGINT NOT NULL,
            state TEXT NOT NULL,
            run_id TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (source, stream)
        )",
            // A load that was started: the state it advances to once its commit is in the
            // table. Reconciled (finished or discarded) before the stream runs again.
            "CREATE TABLE extract_pending (
            source TEXT NOT NULL,
            stream TEXT NOT NULL,
            seq BIGINT NOT NULL,
            run_id TEXT NOT NULL,
            state TEXT NOT NULL,
            detail TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (source, stream)
        )",
            // One row per stream extraction, for `socle extract --history` and the server.
            "CREATE TABLE extract_runs (
            run_id TEXT NOT NULL,
            source TEXT NOT NULL,
            stream TEXT NOT NULL,
            logical_date TEXT NOT NULL,
            status TEXT NOT NULL,
            rows_loaded BIGINT NOT NULL,
            rows_rejected BIGINT NOT NULL,
            bytes BIGINT NOT NULL,
            files BIGINT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            error TEXT,
            PRIMARY KEY (run_id, source, stream)
        )",
        ],
    },
    Migration {
        version: 6,
        name: "server users, sessions, tokens and audit log",
        statements: &[
            // Local users; passwords as argon2id PHC strings, never in clear.
            "CREATE TABLE users (
            username TEXT NOT NULL PRIMARY KEY,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL,
            must_change_password BIGINT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )",
            // Browser sessions: the cookie value's SHA-256, its CSRF token, its expiry.
            "CREATE TABLE sessions (
            token_hash TEXT NOT NULL PRIMARY KEY,
            username TEXT NOT NULL,
            csrf TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            address TEXT NOT NULL
        )",
            // API tokens for scripts: SHA-256 of the secret part, a role no higher than
            // their owner's, an expiry.
            "CREATE TABLE api_tokens (
            id TEXT NOT NULL PRIMARY KEY,
            name TEXT NOT NULL,
            token_hash TEXT NOT NULL,
            username TEXT NOT NULL,
            role TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            revoked_at TEXT
        )",
            // Who did what, when, from where.
            "CREATE TABLE audit_log (
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL,
            address TEXT NOT NULL
        )",
            "CREATE INDEX audit_log_at ON audit_log (at)",
        ],
    },
    Migration {
        version: 7,
        name: "model versions",
        statements: &[
            // One row per training run of a model: its number is claimed first (state
            // `training`), the version is `ready` once its files are in the lake, `failed`
            // otherwise. Numbers are never reused.
            "CREATE TABLE ml_versions (
            model TEXT NOT NULL,
            version BIGINT NOT NULL,
            state TEXT NOT NULL,
            kind TEXT NOT NULL,
            spec_hash TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            duration_ms BIGINT,
            metrics TEXT,
            error TEXT,
            PRIMARY KEY (model, version)
        )",
        ],
    },
    Migration {
        version: 8,
        name: "model output writers",
        statements: &[
            // The process writing a version's output tables (`host:pid:start`) and each
            // table's Delta version before it began (JSON), so that a writer that died
            // half-way can be undone by the next one.
            "ALTER TABLE ml_versions ADD COLUMN writer TEXT",
            "ALTER TABLE ml_versions ADD COLUMN outputs_before TEXT",
            // One version of a model writes its output tables at a time.
            "CREATE UNIQUE INDEX ml_versions_one_writer ON ml_versions (model) WHERE state = 'writing'",
        ],
    },
];

pub(crate) async fn current_version(db: &MetaDb) -> Result<i64, MetaError> {
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM socle_migrations")
        .fetch_one(db.pool())
        .await?;
    Ok(row.try_get::<i64, _>("v")?)
}

/// Applies the pending migrations. Several processes may open a fresh database at once
/// (two daemons, a daemon and a command): they take turns, holding a PostgreSQL advisory
/// lock or SQLite's write lock, and each re-reads the version under the lock.
pub(crate) async fn migrate(db: &MetaDb) -> Result<(), MetaError> {
    let mut conn = db.pool().acquire().await?;
    match db.backend() {
        Backend::Postgres => {
            sqlx::query("SELECT pg_advisory_lock(4715010901)")
                .execute(&mut *conn)
                .await?;
        }
        Backend::Sqlite => {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        }
    }
    let result = migrate_locked(&mut conn, db.backend()).await;
    let release = match (db.backend(), &result) {
        (Backend::Postgres, _) => "SELECT pg_advisory_unlock(4715010901)",
        (Backend::Sqlite, Ok(())) => "COMMIT",
        (Backend::Sqlite, Err(_)) => "ROLLBACK",
    };
    let released = sqlx::query(release).execute(&mut *conn).await;
    result?;
    released?;
    Ok(())
}

async fn migrate_locked(conn: &mut AnyConnection, backend: Backend) -> Result<(), MetaError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS socle_migrations (
            version BIGINT NOT NULL PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at TEXT NOT NULL
        )",
    )
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM socle_migrations")
        .fetch_one(&mut *conn)
        .await?;
    let current = row.try_get::<i64, _>("v")?;
    let known = MIGRATIONS.last().map(|m| m.version).unwrap_or(0);
    if current > known {
        return Err(MetaError::TooNew {
            found: current,
            known,
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let fail = |source| MetaError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        // SQLite is already in one transaction (BEGIN IMMEDIATE); PostgreSQL gets one per
        // migration.
        if backend == Backend::Postgres {
            sqlx::query("BEGIN")
                .execute(&mut *conn)
                .await
                .map_err(fail)?;
        }
        let applied = async {
            for stmt in m.statements {
                sqlx::query(stmt).execute(&mut *conn).await?;
            }
            sqlx::query(
                "INSERT INTO socle_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(now())
            .execute(&mut *conn)
            .await
        }
        .await;
        if backend == Backend::Postgres {
            let end = if applied.is_ok() {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            sqlx::query(end).execute(&mut *conn).await.map_err(fail)?;
        }
        applied.map_err(fail)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied metadata migration"
        );
    }
    Ok(())
}
