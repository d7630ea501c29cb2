//! `socle users` and `socle tokens`: the server's local users (argon2id password hashes,
//! roles) and API tokens for scripts, kept in the metadata database. Every change is
//! written to the audit log. Passwords and tokens are shown once, when made, and never
//! stored in clear.

use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use socle_server::auth::{self, Role};

use crate::context;

/// Manage the users of the server (`socle serve`) and their roles
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  socle users add ada --role admin            # prints a one-time password
  printf %s \"$PW\" | socle users add bob --role analyst --password-stdin
  socle users passwd bob                      # a new one-time password
  socle users role bob editor
  socle users list
  socle users rm bob

Roles, each including the ones before it: viewer (dashboards, catalog), analyst (+ queries,
all data), editor (+ run, rerun, backfill), admin (+ users, tokens, settings, audit log).")]
pub struct UsersArgs {
    #[command(subcommand)]
    pub action: UsersAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum UsersAction {
    /// Add a user; without --password-stdin a one-time password is printed (to change at
    /// first login)
    Add {
        name: String,
        /// viewer, analyst, editor or admin
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Read the password from stdin (at least 12 characters)
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password (a one-time one unless --password-stdin); ends the user's sessions
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role
    Role { name: String, role: String },
    /// List users and roles
    List {
        #[arg(long, value_enum, default_value_t = super::table::OutFormat::Text)]
        format: super::table::OutFormat,
    },
    /// Remove a user, their sessions and their tokens
    Rm { name: String },
}

/// Manage API tokens for scripts (`Authorization: Bearer socle_…`)
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  socle tokens create nightly-export --user ada --role analyst --expires 30d
  socle tokens list
  socle tokens revoke 3f9c0a1b2c4d

The token is printed once; only its SHA-256 is kept. A token's role is at most its owner's.")]
pub struct TokensArgs {
    #[command(subcommand)]
    pub action: TokensAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokensAction {
    /// Create a token and print it once
    Create {
        /// What the token is for
        name: String,
        /// The user it acts as
        #[arg(long)]
        user: String,
        /// Its role (default: the user's); at most the user's
        #[arg(long)]
        role: Option<String>,
        /// How long it lives: 30d, 12h, ... (default 90d)
        #[arg(long, default_value = "90d")]
        expires: String,
    },
    /// List tokens (never their secrets)
    List {
        #[arg(long, value_enum, default_value_t = super::table::OutFormat::Text)]
        format: super::table::OutFormat,
    },
    /// Revoke a token by its id
    Revoke { id: String },
}

/// Who runs the command, for the audit log.
fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into())
    )
}

fn read_password() -> Result<String> {
    if std::io::stdin().is_terminal() {
        bail!(
            "--password-stdin reads the password from a pipe: printf %s \"$PW\" | socle users ..."
        );
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("cannot read the password from stdin")?;
    Ok(s.strip_suffix('\n').unwrap_or(&s).to_string())
}

/// The password to set and whether it is a one-time one.
fn new_password(from_stdin: bool) -> Result<(String, bool)> {
    if from_stdin {
        Ok((read_password()?, false))
    } else {
        Ok((auth::generate_password()?, true))
    }
}

pub async fn users(project: Option<PathBuf>, args: UsersArgs) -> Result<ExitCode> {
    let (_, meta) = context::open_meta(project).await?;
    let me = actor();
    match args.action {
        UsersAction::Add {
            name,
            role,
            password_stdin,
        } => {
            let role: Role = role.parse()?;
            if name.trim().is_empty() || name.contains(char::is_whitespace) {
                bail!("a user name has no spaces");
            }
            let (password, one_time) = new_password(password_stdin)?;
            let hash = auth::hash_password(&password)?;
            if !meta.add_user(&name, &hash, role, one_time).await? {
                bail!(
                    "user `{name}` exists (change it with `socle users passwd` or `socle users role`)"
                );
            }
            meta.audit(&me, "user.add", &format!("{name} as {role}"), "local")
                .await?;
            println!("added user {name} ({role})");
            if one_time {
                println!("one-time password (shown once; to change at first login): {password}");
            }
        }
        UsersAction::Passwd {
            name,
            password_stdin,
        } => {
            let (password, one_time) = new_password(password_stdin)?;
            let hash = auth::hash_password(&password)?;
            if !meta.set_password(&name, &hash, one_time).await? {
                bail!("no user `{name}`");
            }
            meta.remove_sessions_of(&name).await?;
            meta.audit(&me, "user.passwd", &name, "local").await?;
            println!("password of {name} changed; their sessions ended");
            if one_time {
                println!("one-time password (shown once; to change at first login): {password}");
            }
        }
        UsersAction::Role { name, role } => {
            let role: Role = role.parse()?;
            if !meta.set_role(&name, role).await? {
                bail!("no user `{name}`");
            }
            meta.audit(&me, "user.role", &format!("{name} to {role}"), "local")
                .await?;
            println!("{name} is now {role}");
        }
        UsersAction::List { format } => {
            let users = meta.users().await?;
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    vec![
                        u.username.clone(),
                        u.role.to_string(),
                        if u.must_change_password { "yes" } else { "no" }.into(),
                        u.created_at.clone(),
                    ]
                })
                .collect();
            print_rows(
                &["user", "role", "must_change_password", "created_at"],
                &rows,
                format,
            );
        }
        UsersAction::Rm { name } => {
            if !meta.remove_user(&name).await? {
                bail!("no user `{name}`");
            }
            meta.audit(&me, "user.rm", &name, "local").await?;
            println!("removed user {name}, their sessions and tokens");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn tokens(project: Option<PathBuf>, args: TokensArgs) -> Result<ExitCode> {
    let (_, meta) = context::open_meta(project).await?;
    let me = actor();
    match args.action {
        TokensAction::Create {
            name,
            user,
            role,
            expires,
        } => {
            let Some(owner) = meta.user(&user).await? else {
                bail!("no user `{user}` (add one with `socle users add`)");
            };
            let owner_role = owner.role;
            let role: Role = match role {
                Some(r) => r.parse()?,
                None => owner_role,
            };
            if !owner_role.allows(role) {
                bail!("a token of {user} ({owner_role}) cannot be {role}");
            }
            let life = socle_core::duration::parse(&expires)
                .with_context(|| format!("`{expires}` is not a duration (30d, 12h)"))?;
            let now = chrono::Utc::now();
            let expires_at =
                now + chrono::Duration::from_std(life).context("the expiry is too far away")?;
            let (id, token, hash) = auth::new_token()?;
            meta.add_token(&socle_meta::users::ApiToken {
                id: id.clone(),
                name: name.clone(),
                token_hash: hash,
                username: user.clone(),
                role,
                created_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                expires_at: expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                revoked_at: None,
            })
            .await?;
            meta.audit(
                &me,
                "token.create",
                &format!("{id} `{name}` for {user} as {role}"),
                "local",
            )
            .await?;
            println!(
                "token {id} `{name}` for {user} ({role}), expires {}",
                expires_at.format("%Y-%m-%d %H:%M UTC")
            );
            println!("{token}");
            eprintln!("(shown once: store it in your script's secrets now)");
        }
        TokensAction::List { format } => {
            let rows: Vec<Vec<String>> = meta
                .tokens()
                .await?
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        t.name.clone(),
                        t.username.clone(),
                        t.role.to_string(),
                        t.expires_at.clone(),
                        t.revoked_at.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print_rows(
                &["id", "name", "user", "role", "expires_at", "revoked_at"],
                &rows,
                format,
            );
        }
        TokensAction::Revoke { id } => {
            if !meta.revoke_token(&id).await? {
                bail!("no live token `{id}` (see `socle tokens list`)");
            }
            meta.audit(&me, "token.revoke", &id, "local").await?;
            println!("revoked token {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Rows as aligned text columns or as a JSON list of objects.
fn print_rows(headers: &[&str], rows: &[Vec<String>], format: super::table::OutFormat) {
    if format == super::table::OutFormat::Json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::Value::Object(
                    headers
                        .iter()
                        .zip(r)
                        .map(|(h, v)| (h.to_string(), serde_json::Value::from(v.as_str())))
                        .collect(),
                )
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return;
    }
    if rows.is_empty() {
        println!("none yet");
        return;
    }
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
                .max(h.len())
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(headers.to_vec()));
    for r in rows {
        println!("{}", line(r.iter().map(String::as_str).collect()));
    }
}
