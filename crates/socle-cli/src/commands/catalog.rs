//! `socle catalog-snapshot` (hidden): prints the catalog the server shows (tables, columns,
//! row counts, freshness, dbt nodes) as JSON on stdout. `socle serve` runs it in a child
//! process so that the daemon does not keep the query engine's memory after reading the
//! catalog (see `socle_server::http::catalog`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::context;

pub async fn run(explicit: Option<PathBuf>) -> Result<ExitCode> {
    let opened = context::open(explicit).await?;
    let config = &opened.project.config;
    let snapshot = socle_server::http::catalog::read(
        &opened.project.root,
        &config.name,
        &config.warehouse.default_schema,
        &opened.warehouse,
    )
    .await?;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &snapshot).context("cannot write the catalog")?;
    out.flush().context("cannot write the catalog")?;
    Ok(ExitCode::SUCCESS)
}
