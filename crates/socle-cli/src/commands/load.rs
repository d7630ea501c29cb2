//! `socle load`: load files into a warehouse table with the load API (append, overwrite or
//! merge-upsert on key columns), in one atomic commit.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use socle_warehouse::WriteMode;

use crate::context;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Add the rows
    Append,
    /// Replace the table's rows
    Overwrite,
    /// Update rows whose key matches, insert the others (needs --key)
    Merge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FileFormat {
    Csv,
    Tsv,
    Parquet,
    Json,
}

/// Load files into a warehouse table (one atomic commit)
///
/// The table is created on first load. New columns in the files widen the table; a column
/// whose type does not fit, or a merge batch with duplicate keys, fails the load and leaves
/// the table at its previous version.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  socle load data/orders.csv --table raw.orders
  socle load data/orders_2024-*.parquet --table raw.orders --mode merge --key order_id
  socle load export.json --table raw.events --mode overwrite")]
pub struct Args {
    /// Files to load (CSV, TSV, Parquet or newline-delimited JSON; same format)
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Target table, `schema.table` or `table` (in the default schema)
    #[arg(long, short = 't')]
    pub table: String,
    #[arg(long, value_enum, default_value_t = Mode::Append)]
    pub mode: Mode,
    /// Key columns for --mode merge, comma-separated
    #[arg(long, value_delimiter = ',')]
    pub key: Vec<String>,
    /// File format (default: from the extension)
    #[arg(long, value_enum)]
    pub format: Option<FileFormat>,
    /// Output format of the summary
    #[arg(long, value_enum, default_value_t = super::table::OutFormat::Text)]
    pub output: super::table::OutFormat,
}

fn detect(path: &std::path::Path) -> Option<FileFormat> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "csv" => Some(FileFormat::Csv),
        "tsv" | "tab" => Some(FileFormat::Tsv),
        "parquet" | "pq" => Some(FileFormat::Parquet),
        "json" | "jsonl" | "ndjson" => Some(FileFormat::Json),
        _ => None,
    }
}

pub async fn run(project: Option<PathBuf>, args: Args) -> Result<ExitCode> {
    let format = match args.format.or_else(|| detect(&args.files[0])) {
        Some(f) => f,
        None => bail!(
            "cannot tell the format of {} from its extension: pass --format",
            args.files[0].display()
        ),
    };
    for f in &args.files {
        if !f.is_file() {
            bail!("{}: no such file", f.display());
        }
    }
    let mode = match args.mode {
        Mode::Append => WriteMode::Append,
        Mode::Overwrite => WriteMode::Overwrite,
        Mode::Merge if args.key.is_empty() => bail!("--mode merge needs --key COLUMN[,COLUMN...]"),
        Mode::Merge => WriteMode::Merge {
            keys: args.key.clone(),
        },
    };
    // The query engine's CSV reader takes a quote left open as a value running to the end
    // of the file, and words a bad header as a field count: check both first, with the line.
    let delimiter = match format {
        FileFormat::Csv => Some(b','),
        FileFormat::Tsv => Some(b'\t'),
        FileFormat::Parquet | FileFormat::Json => None,
    };
    if let Some(delimiter) = delimiter {
        for f in &args.files {
            socle_connect::files::quotes::check_file(f, delimiter)
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        }
    }
    let paths: Vec<String> = args
        .files
        .iter()
        .map(|p| std::fs::canonicalize(p).map(|p| p.display().to_string()))
        .collect::<std::io::Result<_>>()?;
    let opened = context::open(project).await?;
    let wh = &opened.warehouse;
    let started = Instant::now();
    let ctx = wh.session();
    let df = match format {
        FileFormat::Csv => {
            ctx.read_csv(
                paths,
                datafusion::prelude::CsvReadOptions::new().file_extension(""),
            )
            .await
        }
        FileFormat::Tsv => {
            ctx.read_csv(
                paths,
                datafusion::prelude::CsvReadOptions::new()
                    .delimiter(b'\t')
                    .file_extension(""),
            )
            .await
        }
        FileFormat::Parquet => {
            ctx.read_parquet(
                paths,
                datafusion::prelude::ParquetReadOptions::default().file_extension(""),
            )
            .await
        }
        FileFormat::Json => {
            ctx.read_json(
                paths,
                datafusion::prelude::JsonReadOptions::default().file_extension(""),
            )
            .await
        }
    }
    .map_err(|e| anyhow::anyhow!("cannot read the files: {}", e.strip_backtrace()))?;
    let report = wh.load(&args.table, df, mode).await?;
    // Crash tests: stop as a kill would, once the load is committed and before it is told.
    socle_core::failpoint::hit("load-after-commit");
    if args.output == super::table::OutFormat::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}: {} rows in, {} inserted, {} updated, version {} ({:.2}s)",
            report.table,
            report.rows_in,
            report.rows_inserted,
            report.rows_updated,
            report.version,
            started.elapsed().as_secs_f64()
        );
        if !report.new_columns.is_empty() {
            println!("  new columns: {}", report.new_columns.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}
