//! `socle extract`: read sources into the lake and the warehouse's raw schema.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use socle_connect::{ExtractOptions, Progress, RunDates, StreamReport};

use crate::context;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Extract sources into the lake (raw files) and the warehouse (`raw` schema)
///
/// Each stream lands immutable raw files under raw/<source>/<stream>/dt=<date>/ and is
/// loaded into its table in one commit, together with its incremental state (cursor, files
/// seen). Rejected records go to <table>__rejected with the reason and where they were.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  socle extract                          # every stream of every source
  socle extract shop_files               # one source
  socle extract shop_files.orders --date 2024-06-30
  socle extract --full-refresh shop_files.customers
  socle extract --list
  socle extract --format json > report.json")]
pub struct Args {
    /// Sources (`name`) or streams (`name.stream`) to extract (default: all)
    pub select: Vec<String>,
    /// Logical date of the run, YYYY-MM-DD (default: yesterday, UTC)
    #[arg(long)]
    pub date: Option<String>,
    /// Forget the streams' state (cursors, files seen) and replace their tables
    #[arg(long)]
    pub full_refresh: bool,
    /// List the sources and streams with their state instead of extracting
    #[arg(long)]
    pub list: bool,
    /// Output format of the summary
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// A spinner per stream on a terminal, nothing otherwise.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress for Bar {
    fn stream_started(&self, source: &str, stream: &str) {
        if let Some(b) = &self.bar {
            b.reset();
            b.set_prefix(format!("{source}.{stream}"));
            b.set_message("starting");
        }
    }
    fn stream_progress(&self, _source: &str, _stream: &str, rows: u64, bytes: u64) {
        if let Some(b) = &self.bar {
            b.set_message(format!(
                "{} rows, {} read",
                rows,
                indicatif::HumanBytes(bytes)
            ));
        }
    }
    fn stream_finished(&self, _report: &StreamReport) {
        if let Some(b) = &self.bar {
            b.set_message("done");
        }
    }
    fn note(&self, message: &str) {
        match &self.bar {
            Some(b) => b.println(format!("note: {message}")),
            None => eprintln!("note: {message}"),
        }
    }
}

pub async fn run(project: Option<PathBuf>, args: Args) -> Result<ExitCode> {
    let opened = context::open(project).await?;
    let root = opened.project.root.clone();
    let sources = socle_connect::load_sources(&root)?;
    if sources.is_empty() {
        bail!(
            "no sources in {}/sources/ (add a file such as sources/files.yml; see docs/sources.md)",
            root.display()
        );
    }
    if args.list {
        return list(&opened, &sources, args.format).await;
    }
    let date = match &args.date {
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .with_context(|| format!("--date `{d}`: write YYYY-MM-DD"))?,
        None => chrono::Utc::now().date_naive() - chrono::Duration::days(1),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!(
                    "interrupted: stopping after the current file or page (nothing half-written is kept)"
                );
                cancel.store(true, Ordering::Relaxed);
            }
        });
    }
    let bar = (std::io::IsTerminal::is_terminal(&std::io::stderr()) && args.format == Format::Text)
        .then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {prefix:.bold} {msg} [{elapsed}]",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
    let progress = Arc::new(Bar { bar: bar.clone() });
    let extraction = socle_app::Extract {
        project: &opened.project,
        warehouse: &opened.warehouse,
        meta: &opened.meta,
        progress,
        cancel,
    };
    let options = ExtractOptions::new(RunDates::day(date), args.full_refresh);
    let reports = extraction.run(&sources, &args.select, &options).await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&reports)?),
        Format::Text => print_summary(&reports, &options),
    }
    let failed = reports
        .iter()
        .filter(|r| r.status != socle_meta::StreamState::Success)
        .count();
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn human_bytes(b: u64) -> String {
    indicatif::HumanBytes(b).to_string()
}

fn print_summary(reports: &[StreamReport], options: &ExtractOptions) {
    println!(
        "extract run {} for {}:",
        options.run_id,
        options.dates.logical_date()
    );
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                format!("{}.{}", r.source, r.stream),
                r.table.clone(),
                r.write.clone(),
                r.rows_read.to_string(),
                r.rows_inserted.to_string(),
                r.rows_updated.to_string(),
                r.rejected.to_string(),
                human_bytes(r.bytes),
                r.files.to_string(),
                format!("{:.2}s", r.duration_ms as f64 / 1000.0),
                r.status.as_str().to_uppercase(),
            ]
        })
        .collect();
    let header = [
        "stream", "table", "write", "read", "inserted", "updated", "rejected", "bytes", "files",
        "time", "status",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(header.iter().map(|s| s.to_string()).collect()));
    for r in rows {
        println!("{}", line(r));
    }
    for r in reports {
        for c in &r.new_columns {
            println!("  {}: new column `{c}`", r.table);
        }
        for w in &r.warnings {
            println!("  {}.{}: warning: {w}", r.source, r.stream);
        }
        if r.rejected > 0 {
            println!(
                "  {}.{}: {} rejected records in {}__rejected",
                r.source, r.stream, r.rejected, r.table
            );
        }
        if let Some(e) = &r.error {
            println!("  {}.{} failed: {e}", r.source, r.stream);
        }
    }
}

async fn list(
    opened: &context::Opened,
    sources: &[Box<dyn socle_connect::Source>],
    format: Format,
) -> Result<ExitCode> {
    let mut out = Vec::new();
    for s in sources {
        let c = s.common();
        for st in &c.streams {
            let state = opened.meta.stream_state(&c.name, &st.name).await?;
            out.push(serde_json::json!({
                "source": c.name,
                "type": c.kind,
                "stream": st.name,
                "table": st.table,
                "write": st.write.as_str(),
                "primary_key": st.primary_key,
                "last_run": state.as_ref().map(|s| s.run_id.clone()),
                "last_loaded_at": state.as_ref().map(|s| s.updated_at.clone()),
            }));
        }
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&out)?),
        Format::Text => {
            for o in &out {
                println!(
                    "{}.{} ({}) -> {} [{}] last loaded: {}",
                    o["source"].as_str().unwrap_or(""),
                    o["stream"].as_str().unwrap_or(""),
                    o["type"].as_str().unwrap_or(""),
                    o["table"].as_str().unwrap_or(""),
                    o["write"].as_str().unwrap_or(""),
                    o["last_loaded_at"].as_str().unwrap_or("never"),
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
