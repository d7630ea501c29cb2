//! `socle docs`: writes the static documentation site (see `socle_transform::docs`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use socle_transform::nodes::{Kind, Node};
use socle_transform::run::{NodeResult, Progress, RunOptions, run as run_nodes};

use super::dbt::Common;

/// Write the documentation site: models, sources, columns, tests, lineage
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The site is one self-contained index.html (no network needed): open it in a browser.\nRun `socle build` first so that column types, row counts, test results and column\nlineage are there; nodes that were never built are documented from the project alone.\n\nExamples:\n  socle docs\n  socle docs generate --out site/\n  socle --project examples/shop docs && xdg-open examples/shop/target/docs/index.html"
)]
pub struct Args {
    /// `generate` (the default; dbt's spelling)
    #[arg(value_parser = ["generate", "serve"])]
    pub action: Option<String>,
    /// Folder to write (default: target/docs in the project)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

struct Quiet;

impl Progress for Quiet {
    fn started(&self, _: &Node, _: usize, _: usize) {}
    fn finished(&self, _: &Node, _: &NodeResult, _: usize, _: usize) {}
}

pub async fn run(explicit: Option<PathBuf>, args: Args) -> Result<ExitCode> {
    if args.action.as_deref() == Some("serve") {
        anyhow::bail!(
            "`socle docs serve` is not needed: the site is one file that works offline; run `socle docs` and open target/docs/index.html"
        );
    }
    let (opened, loaded) = super::dbt::open(explicit, &args.common).await?;
    let options = RunOptions {
        select: args.common.select.clone(),
        exclude: args.common.exclude.clone(),
        kinds: [Kind::Model, Kind::Snapshot].into(),
        threads: args.common.threads,
        full_refresh: false,
        fail_fast: false,
        compile_only: true,
    };
    let report = run_nodes(
        loaded.clone(),
        opened.warehouse.clone(),
        options,
        Arc::new(Quiet),
    )
    .await?;
    let mut compiled = std::collections::BTreeMap::new();
    for r in report.results {
        match r.compiled_sql {
            Some(sql) => {
                compiled.insert(r.unique_id, sql);
            }
            None if r.status.is_failure() => {
                eprintln!("warning: {} did not compile: {}", r.unique_id, r.message);
            }
            None => {}
        }
    }
    let dir = args
        .out
        .unwrap_or_else(|| opened.project.root.join("target").join("docs"));
    let docs = socle_transform::docs::generate(&loaded, &opened.warehouse, &compiled, &dir).await?;
    for (id, why) in &docs.untraced {
        eprintln!("note: no column lineage for {id}: {why}");
    }
    println!(
        "Wrote {} ({} nodes, {} columns, {} with lineage)",
        dir.join("index.html").display(),
        docs.nodes,
        docs.columns,
        docs.traced_columns
    );
    Ok(ExitCode::SUCCESS)
}
