//! `socle table`: list, describe, history, optimize (compact), vacuum and drop tables.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use socle_warehouse::Warehouse;

use crate::context;

/// Inspect and maintain warehouse tables
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  socle table list
  socle table describe raw.orders
  socle table history raw.orders
  socle table optimize raw.orders          # compact small files
  socle table vacuum raw.orders --retain-hours 168")]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    /// Output format
    #[arg(long, value_enum, default_value_t = OutFormat::Text, global = true)]
    pub format: OutFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutFormat {
    Text,
    Json,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// List tables and views (optionally of one schema)
    List { schema: Option<String> },
    /// Show the columns, types, version and size of a table or view
    Describe { name: String },
    /// Show the versions of a table (for time travel: VERSION AS OF n)
    History {
        name: String,
        /// Most versions shown
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Compact small files into larger ones (a new version with the same rows)
    Optimize {
        name: String,
        /// Target file size in bytes
        #[arg(long)]
        target_size: Option<u64>,
    },
    /// Delete files no version newer than the retention period needs
    Vacuum {
        name: String,
        /// Keep files needed by versions of the last N hours (time travel reach)
        #[arg(long, default_value_t = 168)]
        retain_hours: u64,
        /// List what would be deleted without deleting
        #[arg(long)]
        dry_run: bool,
    },
    /// Drop a table or view
    Drop {
        name: String,
        /// No error when it does not exist
        #[arg(long)]
        if_exists: bool,
    },
}

pub async fn run(project: Option<PathBuf>, args: Args) -> Result<ExitCode> {
    let opened = context::open(project).await?;
    let wh = &opened.warehouse;
    let json = args.format == OutFormat::Json;
    match args.action {
        Action::List { schema } => {
            if json {
                let list = wh.list_relations(schema.as_deref()).await?;
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_list(wh, schema.as_deref()).await?;
            }
        }
        Action::Describe { name } => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&wh.describe(&name).await?)?
                );
            } else {
                print_describe(wh, &name).await?;
            }
        }
        Action::History { name, limit } => {
            let versions = wh.history(&name, limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&versions)?);
            } else {
                println!(
                    "{:>8}  {:<24}  {:<18}  details",
                    "version", "timestamp (UTC)", "operation"
                );
                for v in versions {
                    println!(
                        "{:>8}  {:<24}  {:<18}  {}",
                        v.version, v.timestamp, v.operation, v.details
                    );
                }
            }
        }
        Action::Optimize { name, target_size } => {
            let r = wh.optimize(&name, target_size).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{name}: compacted {} files into {} (version {})",
                    r.files_removed, r.files_added, r.version
                );
            }
        }
        Action::Vacuum {
            name,
            retain_hours,
            dry_run,
        } => {
            let r = wh.vacuum(&name, retain_hours, dry_run).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else if dry_run {
                println!("{name}: would delete {} files", r.files.len());
                for f in &r.files {
                    println!("  {f}");
                }
            } else {
                println!("{name}: deleted {} files", r.files.len());
            }
        }
        Action::Drop { name, if_exists } => {
            let existed = wh.drop_relation(&name, if_exists).await?;
            println!(
                "{}",
                if existed {
                    format!("dropped {name}")
                } else {
                    format!("{name} does not exist")
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn print_list(wh: &Warehouse, schema: Option<&str>) -> Result<()> {
    let list = wh.list_relations(schema).await?;
    if list.is_empty() {
        println!("no tables yet (create one with CREATE TABLE ... AS SELECT, or socle load)");
        return Ok(());
    }
    println!("{:<40} {:<6} {:>8}", "name", "kind", "version");
    for r in list {
        let version = r.version.map(|v| v.to_string()).unwrap_or_default();
        println!(
            "{:<40} {:<6} {:>8}",
            format!("{}.{}", r.schema, r.name),
            r.kind,
            version
        );
    }
    Ok(())
}

pub async fn print_describe(wh: &Warehouse, name: &str) -> Result<()> {
    let d = wh.describe(name).await?;
    println!("{} {}.{}", d.kind, d.schema, d.name);
    if let Some(desc) = &d.description {
        println!("  {desc}");
    }
    if let Some(v) = d.version {
        println!(
            "version {v}, {} files, {} rows",
            d.files.unwrap_or(0),
            d.rows.map(|r| r.to_string()).unwrap_or("?".into())
        );
    }
    if let Some(def) = &d.definition {
        println!("definition: {def}");
    }
    println!();
    println!("{:<32} {:<28} {:<8} description", "column", "type", "null");
    for c in &d.columns {
        println!(
            "{:<32} {:<28} {:<8} {}",
            c.name,
            c.data_type,
            if c.nullable { "yes" } else { "no" },
            c.description.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

pub async fn print_schemas(wh: &Warehouse) -> Result<()> {
    for s in wh.list_schemas().await? {
        println!("{s}");
    }
    Ok(())
}
