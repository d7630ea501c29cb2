//! `socle serve`: the scheduler daemon and the HTTP server in one process.
//!
//! What the daemon says goes through `tracing` only, to stderr: one line per event, or
//! one JSON object per event with `--log-json` (fields such as `run_id`, `task`, `state`
//! and `duration_ms` for a collector to index). Without `-v` or `SOCLE_LOG` it logs socle's
//! own events from `info` up and other crates' from `warn`. Secrets never reach it: the
//! first admin's one-time password is kept in a file only its owner can read, and printed
//! to stdout only when stdout is a terminal (a person, not a log collector).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use socle_orchestrate::runner::{Event, RunEnv, RunProgress, TaskState, human};

use super::pipeline::{env_with, first_line, parse_duration};

/// `socle serve`: the scheduler daemon and the HTTP server.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Starts a run of each scheduled pipeline when its interval ends (see docs/pipelines.md).\nSeveral daemons may share a PostgreSQL metadata database: one holds the lease and\nschedules, the others wait to take over. SIGTERM or Ctrl-C stops scheduling, lets runs in\nflight finish within --grace, then stops them.\n\nThe same process serves HTTP on server.bind:server.port of socle.yml (127.0.0.1:8080 by\ndefault): the web UI, the JSON API (/api/openapi.json), /metrics, /healthz and /readyz;\nsee docs/server.md. The first start with no user creates `admin` with a one-time password,\nkept in .socle/admin-password (owner-only) until it is changed at first sign-in.\n\nThe log goes to stderr: one line per event, or JSON objects with --log-json; -v and\nSOCLE_LOG choose how much. With server.tls (or --tls-cert and --tls-key) it speaks HTTPS.\n\nExamples:\n  socle serve                                  # http://127.0.0.1:8080\n  socle serve --port 9000 --bind 0.0.0.0\n  socle serve --tls-cert cert.pem --tls-key key.pem\n  socle serve --no-http                        # the scheduler only\n  socle --project examples/shop serve --grace 5m"
)]
pub struct ServeArgs {
    /// HTTP port (default: server.port of socle.yml, 8080; 0: any free port, logged)
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to listen on (default: server.bind of socle.yml, 127.0.0.1)
    #[arg(long)]
    pub bind: Option<std::net::IpAddr>,
    /// Run the scheduler only, without the HTTP server
    #[arg(long, conflicts_with_all = ["port", "bind", "tls_cert"])]
    pub no_http: bool,
    /// PEM certificate chain: serve HTTPS (with --tls-key)
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// How long runs in flight may finish after a stop signal (30s, 5m, ...)
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub grace: std::time::Duration,
    /// How long the scheduling lease lasts without renewal: a stopped daemon's runs are
    /// taken over after that
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub lease: std::time::Duration,
    /// How often schedules are looked at
    #[arg(long, default_value = "1s", value_parser = parse_duration, hide = true)]
    pub tick: std::time::Duration,
}

pub async fn serve(explicit: Option<PathBuf>, mut args: ServeArgs) -> Result<ExitCode> {
    // Paths given on the command line are relative to where socle was started.
    for path in [&mut args.tls_cert, &mut args.tls_key]
        .into_iter()
        .flatten()
    {
        *path = std::path::absolute(&*path)
            .with_context(|| format!("cannot resolve {}", path.display()))?;
    }
    // The warehouse opens when a task needs it: an idle daemon stays small.
    let (project, meta) = crate::context::open_meta(explicit).await?;
    let pipelines = socle_orchestrate::pipeline::load_all(&project.root)?;
    let scheduled: Vec<String> = pipelines
        .iter()
        .filter(|p| p.schedule.is_some())
        .map(|p| {
            format!(
                "{} ({} {})",
                p.name,
                p.schedule.as_ref().map(|s| s.expr.as_str()).unwrap_or(""),
                p.schedule.as_ref().map(|s| s.tz.name()).unwrap_or("")
            )
        })
        .collect();
    tracing::info!(
        scheduled = scheduled.len(),
        "scheduler: {} scheduled pipeline(s){}{}",
        scheduled.len(),
        if scheduled.is_empty() { "" } else { ": " },
        scheduled.join(", ")
    );
    let server_config = project.config.server.clone();
    // The warehouse opens when a task (or the server's catalog) first needs it.
    let env = RunEnv {
        stop_on_ctrl_c: false,
        // Tasks that use the warehouse run in task processes, so the daemon stays small.
        task_command: super::internal::command(&project.root, "task-attempt"),
        ..{
            let project = Arc::new(project);
            let warehouse = socle_app::LazyWarehouse::new(project.clone(), meta.clone());
            env_with(project, meta.clone(), warehouse)
        }
    };
    let http = if args.no_http {
        None
    } else {
        let tls = match (&args.tls_cert, &args.tls_key, &server_config.tls) {
            (Some(cert), Some(key), _) => Some((cert.clone(), key.clone())),
            (_, _, Some(t)) => Some((t.cert.clone(), t.key.clone())),
            _ => None,
        };
        let tls = match tls {
            Some((cert, key)) => Some(
                socle_server::http::tls::config(&cert, &key)
                    .map_err(|e| anyhow::anyhow!("TLS: {e}"))?,
            ),
            None => None,
        };
        let bind = args.bind.unwrap_or(server_config.bind);
        let port = args.port.unwrap_or(server_config.port);
        let listener = tokio::net::TcpListener::bind((bind, port))
            .await
            .with_context(|| {
                format!("cannot listen on {bind}:{port} (another program uses it? choose another with --port or server.port, or --no-http)")
            })?;
        if let Some(password) = socle_server::http::first_admin(&meta)
            .await
            .map_err(anyhow::Error::msg)?
        {
            announce_first_password(&env.project, &password)?;
        }
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(url = %format!("{scheme}://{addr}"), "server: listening on {scheme}://{addr}");
        let options = socle_server::http::Options {
            secure_cookies: tls.is_some(),
            query_timeout: server_config.query_timeout,
            max_rows: server_config.max_rows,
            catalog_ttl: server_config.catalog_refresh,
            // The catalog is read, and queries run, in child processes, so the daemon
            // stays small.
            catalog_command: super::internal::command(&env.project.root, "catalog-snapshot"),
            query_command: super::internal::command(&env.project.root, "query-worker"),
            query_idle: server_config.query_idle,
            connections: socle_server::http::conn::Limits {
                max_connections: server_config.max_connections,
                max_connections_per_address: server_config.max_connections_per_address,
                header_timeout: server_config.header_timeout,
                body_timeout: server_config.body_timeout,
                idle_timeout: server_config.idle_timeout,
            },
            query_queue_wait: server_config.query_queue_wait,
            query_slots: server_config.query_slots,
            max_answer_bytes: server_config.max_answer_bytes,
        };
        let state = socle_server::http::AppState::new(env.clone(), options);
        let server = tokio::spawn(socle_server::http::serve(
            listener,
            tls,
            state.clone(),
            stop_signal(),
        ));
        Some((server, state))
    };
    let settings = socle_orchestrate::scheduler::Settings {
        lease: args.lease,
        tick: args.tick,
        grace: args.grace,
    };
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    socle_orchestrate::scheduler::serve(env, settings, Arc::new(Logged), shutdown).await?;
    if let Some((h, state)) = http {
        state.drain(args.grace).await;
        match h.await {
            Ok(Ok(())) => tracing::info!("server: stopped"),
            Ok(Err(e)) => tracing::error!("server: {e}"),
            Err(e) => tracing::error!("server: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or Ctrl-C.
async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Keeps the first admin's one-time `password` where only its owner can read it, logs
/// where (never the password), and shows it when a person watches stdout.
fn announce_first_password(project: &socle_core::Project, password: &str) -> Result<()> {
    let kept = socle_server::http::keep_first_password(&project.state_dir(), password)
        .context("cannot keep the first admin's one-time password")?;
    let shown = project.display_path(&kept);
    tracing::info!(
        file = %shown,
        "server: created user `admin`; its one-time password is in {shown} (change it at first sign-in)"
    );
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        // A terminal, not a log: the person who started the daemon signs in with it.
        println!("one-time password for `admin`: {password}");
    }
    Ok(())
}

/// The daemon's run events as log events, with fields for `--log-json`.
struct Logged;

impl RunProgress for Logged {
    fn event(&self, event: &Event) {
        match event {
            Event::RunStarted { run_id } => {
                tracing::info!(run_id = %run_id, "scheduler: run {run_id} started");
            }
            Event::TaskStarted {
                task,
                try_number,
                tries,
            } => tracing::info!(
                task = %task,
                try_number,
                tries,
                "scheduler: {task} started (try {try_number} of {tries})"
            ),
            Event::TaskRetrying {
                task,
                try_number,
                error,
                delay,
            } => tracing::warn!(
                task = %task,
                try_number,
                delay_ms = delay.as_millis() as u64,
                "scheduler: {task} failed on try {try_number}: {}; retrying in {}",
                first_line(error),
                human(*delay)
            ),
            Event::TaskFinished {
                task,
                state,
                duration,
                message,
            } => {
                let ms = duration.as_millis() as u64;
                match state {
                    TaskState::Failed => tracing::error!(
                        task = %task,
                        state = state.as_str(),
                        duration_ms = ms,
                        "scheduler: {task} FAILED after {}: {}",
                        human(*duration),
                        first_line(message)
                    ),
                    _ => tracing::info!(
                        task = %task,
                        state = state.as_str(),
                        duration_ms = ms,
                        "scheduler: {task} {} in {} ({message})",
                        state.as_str(),
                        human(*duration)
                    ),
                }
            }
        }
    }
}
