//! The server's principals: local users (argon2id password hashes), browser sessions,
//! API tokens and the audit log. Secrets are stored only as hashes: a session cookie or
//! an API token is looked up by the SHA-256 of its value; hashing and checking passwords
//! is the caller's (the server's) job.

use sqlx::Row;

use crate::{MetaDb, MetaError, Role, now};

/// A local user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    /// An argon2id PHC string.
    pub password_hash: String,
    pub role: Role,
    /// Set for a generated one-time password: the user must choose another.
    pub must_change_password: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub username: String,
    pub csrf: String,
    pub created_at: String,
    pub expires_at: String,
    pub address: String,
}

/// An API token (its secret is not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub token_hash: String,
    pub username: String,
    pub role: Role,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub address: String,
}

/// A stored role; text no socle wrote (a hand edit) gives the least: `viewer`.
fn stored_role(text: String) -> Role {
    text.parse().unwrap_or_else(|e| {
        tracing::warn!("{e}: taken as viewer");
        Role::Viewer
    })
}

fn user(r: &sqlx::any::AnyRow) -> User {
    User {
        username: r.get(0),
        password_hash: r.get(1),
        role: stored_role(r.get(2)),
        must_change_password: r.get::<i64, _>(3) != 0,
        created_at: r.get(4),
        updated_at: r.get(5),
    }
}

fn token(r: &sqlx::any::AnyRow) -> ApiToken {
    ApiToken {
        id: r.get(0),
        name: r.get(1),
        token_hash: r.get(2),
        username: r.get(3),
        role: stored_role(r.get(4)),
        created_at: r.get(5),
        expires_at: r.get(6),
        revoked_at: r.get(7),
    }
}

const USER_COLUMNS: &str =
    "username, password_hash, role, must_change_password, created_at, updated_at";
const TOKEN_COLUMNS: &str =
    "id, name, token_hash, username, role, created_at, expires_at, revoked_at";

impl MetaDb {
    /// Adds a user; false when the name is taken.
    pub async fn add_user(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        must_change_password: bool,
    ) -> Result<bool, MetaError> {
        let at = now();
        let done = sqlx::query(
            "INSERT INTO users (username, password_hash, role, must_change_password, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO NOTHING",
        )
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(must_change_password as i64)
        .bind(&at)
        .bind(&at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn user(&self, username: &str) -> Result<Option<User>, MetaError> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(user))
    }

    pub async fn users(&self) -> Result<Vec<User>, MetaError> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY username"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(user).collect())
    }

    /// Sets a user's password (and whether it must be changed); false when no such user.
    pub async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        must_change_password: bool,
    ) -> Result<bool, MetaError> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, must_change_password = $2, updated_at = $3 WHERE username = $4",
        )
        .bind(password_hash)
        .bind(must_change_password as i64)
        .bind(now())
        .bind(username)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets a user's role; false when no such user.
    pub async fn set_role(&self, username: &str, role: Role) -> Result<bool, MetaError> {
        let done = sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE username = $3")
            .bind(role.as_str())
            .bind(now())
            .bind(username)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a user with their sessions and tokens; false when no such user.
    pub async fn remove_user(&self, username: &str) -> Result<bool, MetaError> {
        sqlx::query("DELETE FROM sessions WHERE username = $1")
            .bind(username)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE username = $2 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(username)
        .execute(self.pool())
        .await?;
        let done = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn add_session(&self, s: &Session) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, username, csrf, created_at, expires_at, address)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&s.token_hash)
        .bind(&s.username)
        .bind(&s.csrf)
        .bind(&s.created_at)
        .bind(&s.expires_at)
        .bind(&s.address)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session of a cookie's hash, if it has not expired at `at`.
    pub async fn session(&self, token_hash: &str, at: &str) -> Result<Option<Session>, MetaError> {
        let row = sqlx::query(
            "SELECT token_hash, username, csrf, created_at, expires_at, address FROM sessions
             WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(at)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| Session {
            token_hash: r.get(0),
            username: r.get(1),
            csrf: r.get(2),
            created_at: r.get(3),
            expires_at: r.get(4),
            address: r.get(5),
        }))
    }

    pub async fn remove_session(&self, token_hash: &str) -> Result<(), MetaError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Removes every session of a user (after a password change).
    pub async fn remove_sessions_of(&self, username: &str) -> Result<(), MetaError> {
        sqlx::query("DELETE FROM sessions WHERE username = $1")
            .bind(username)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Removes every session of a user but the one of `keep` (a cookie's hash): a password
    /// changed from one session ends the others.
    pub async fn remove_other_sessions(
        &self,
        username: &str,
        keep: &str,
    ) -> Result<u64, MetaError> {
        let done = sqlx::query("DELETE FROM sessions WHERE username = $1 AND token_hash <> $2")
            .bind(username)
            .bind(keep)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn add_token(&self, t: &ApiToken) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, token_hash, username, role, created_at, expires_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(&t.token_hash)
        .bind(&t.username)
        .bind(t.role.as_str())
        .bind(&t.created_at)
        .bind(&t.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The token with this id (any state).
    pub async fn token(&self, id: &str) -> Result<Option<ApiToken>, MetaError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(token))
    }

    pub async fn tokens(&self) -> Result<Vec<ApiToken>, MetaError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(token).collect())
    }

    /// Revokes a token; false when there is no such live token.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, MetaError> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        detail: &str,
        address: &str,
    ) -> Result<(), MetaError> {
        sqlx::query("INSERT INTO audit_log (at, actor, action, detail, address) VALUES ($1, $2, $3, $4, $5)")
            .bind(now())
            .bind(actor)
            .bind(action)
            .bind(detail)
            .bind(address)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, MetaError> {
        let rows = sqlx::query(
            "SELECT at, actor, action, detail, address FROM audit_log ORDER BY at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                at: r.get(0),
                actor: r.get(1),
                action: r.get(2),
                detail: r.get(3),
                address: r.get(4),
            })
            .collect())
    }
}
