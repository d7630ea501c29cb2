//! Hidden commands that `socle serve` runs as child processes, so that the daemon does
//! not keep the query engine's code and memory once their work is done:
//! - `socle catalog-snapshot` prints the catalog the server shows (tables, columns, row
//!   counts, freshness, dbt nodes) on stdout (see `socle_app::catalog`; the server keeps
//!   it, see `socle_server::http::catalog`);
//! - `socle query-worker` runs the queries the server hands it over stdin and stdout until
//!   stdin closes (see `socle_server::http::query::engine`);
//! - `socle task-attempt` makes one attempt of a task that uses the warehouse for the
//!   scheduler (see `socle_orchestrate::tasks::process`).
//!
//! All three speak socle's framed protocol over their stdin and stdout
//! ([`socle_core::frames`]).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::context;

/// The command line running this binary's `subcommand` on the project at `root`.
pub fn command(root: &Path, subcommand: &str) -> Option<Vec<OsString>> {
    let exe = std::env::current_exe().ok()?;
    Some(vec![
        exe.into_os_string(),
        "--project".into(),
        root.as_os_str().to_owned(),
        subcommand.into(),
    ])
}

pub async fn catalog_snapshot(explicit: Option<PathBuf>) -> Result<ExitCode> {
    let opened = context::open(explicit).await?;
    let config = &opened.project.config;
    let snapshot = socle_app::catalog::read(
        &opened.project.root,
        &config.name,
        &config.warehouse.default_schema,
        &opened.warehouse,
    )
    .await?;
    socle_core::frames::write_sync(&mut std::io::stdout().lock(), &snapshot)
        .context("cannot write the catalog")?;
    Ok(ExitCode::SUCCESS)
}

pub async fn task_attempt(explicit: Option<PathBuf>) -> Result<ExitCode> {
    let mut from_daemon = socle_core::frames::Reader::new(tokio::io::stdin(), "scheduler");
    let request: socle_orchestrate::tasks::process::AttemptRequest = match from_daemon
        .next()
        .await
        .context("cannot read the attempt to make")?
    {
        Some(socle_core::frames::Incoming::Frame(request)) => request,
        Some(socle_core::frames::Incoming::Text { error, .. }) => {
            anyhow::bail!("the attempt to make does not parse: {error}")
        }
        None => anyhow::bail!("no attempt to make: stdin is empty"),
    };
    let (project, meta) = context::open_meta(explicit).await?;
    let project = std::sync::Arc::new(project);
    let warehouse = socle_app::LazyWarehouse::new(project.clone(), meta.clone());
    let env = super::pipeline::env_with(project, meta, warehouse);
    socle_orchestrate::tasks::process::attempt_here(&env, &request).await;
    Ok(ExitCode::SUCCESS)
}

pub async fn query_worker(explicit: Option<PathBuf>) -> Result<ExitCode> {
    // Its SQL arrives over HTTP: the warehouse's tables only, never a file on the host.
    let opened = context::open_with(explicit, socle_warehouse::Access::Server).await?;
    socle_server::http::query::engine::serve_stdio(opened.warehouse)
        .await
        .context("the query process lost its connection to the server")?;
    Ok(ExitCode::SUCCESS)
}
