//! `socle ml`: train, apply and list the models of `ml/*.yml` (see `socle_app::ml`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use socle_ml::spec::Input;

use crate::context;

/// Train models, apply them, list their versions
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Models are files: ml/<name>.yml, one each (see docs/ml.md).

Examples:
  socle ml models
  socle ml train revenue_forecast
  socle ml evaluate revenue_forecast       # validation only: no version, no table
  socle ml predict views_model --input marts.new_posts --output ml.views_today
  socle ml predict views_model --version 3
  socle ml versions views_model --format json"
)]
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
    /// List the models of ml/ with their kind and newest version
    Models,
    /// Fit a model on its input: a new version, its metrics and its output tables
    Train { name: String },
    /// Validate a model on its input as training would (the spec's `validation:`, or the
    /// last 20% of rows held out), keeping no version and writing no table
    Evaluate { name: String },
    /// Apply a model's newest version (or --version) and write its predictions
    #[command(disable_version_flag = true)]
    Predict {
        name: String,
        /// A table or a SELECT to predict for (default: the spec's input)
        #[arg(long)]
        input: Option<String>,
        /// The table the predictions go to (default: ml.<output>_predictions)
        #[arg(long)]
        output: Option<String>,
        /// The version to use (default: the newest ready one)
        #[arg(long)]
        version: Option<i64>,
    },
    /// List a model's versions, newest first
    Versions { name: String },
}

pub async fn run(project: Option<PathBuf>, args: Args) -> Result<ExitCode> {
    let opened = context::open(project).await?;
    let secrets = socle_app::resolver(&opened.project);
    let lake = socle_app::open_lake(&opened.project, &secrets)?;
    let models = socle_app::ml::Models {
        project: Arc::new(opened.project),
        warehouse: opened.warehouse,
        lake,
        meta: opened.meta,
    };
    let json = args.format == OutFormat::Json;
    match args.action {
        Action::Models => list(&models, json).await,
        Action::Train { name } => {
            let spec = models.spec(&name)?;
            let who = whoami();
            let report = models.train(&spec, &who, &progress(json)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "Trained {} version {} ({}) on {} rows in {}.",
                    report.model,
                    report.version,
                    report.kind,
                    report.rows,
                    seconds(report.duration_ms)
                );
                for (metric, value) in &report.metrics {
                    println!("  {metric:<24} {value:.6}");
                }
                for note in &report.notes {
                    println!("  note: {note}");
                }
                for out in &report.outputs {
                    println!(
                        "  wrote {} (version {})",
                        out.table,
                        out.version.unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Evaluate { name } => {
            let spec = models.spec(&name)?;
            let report = models.evaluate(&spec, &progress(json)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "Evaluated {} ({}) on {} rows in {} ({}); nothing was kept.",
                    report.model,
                    report.kind,
                    report.rows,
                    seconds(report.duration_ms),
                    serde_json::to_string(&report.validation).unwrap_or_default()
                );
                for (metric, value) in &report.metrics {
                    println!("  {metric:<24} {value:.6}");
                }
                for note in &report.notes {
                    println!("  note: {note}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Predict {
            name,
            input,
            output,
            version,
        } => {
            let spec = models.spec(&name)?;
            let input = input.map(|i| parse_input(&i));
            let report = models
                .predict(
                    &spec,
                    version,
                    input.as_ref(),
                    output.as_deref(),
                    &progress(json),
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "Applied {} version {} to {} rows.",
                    report.model, report.version, report.rows
                );
                for out in &report.outputs {
                    println!(
                        "  wrote {} (version {})",
                        out.table,
                        out.version.unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Versions { name } => {
            // The spec need not exist any more: its versions still do.
            let versions = models.versions(&name).await?;
            if json {
                let out: Vec<serde_json::Value> = versions.iter().map(version_json).collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else if versions.is_empty() {
                println!("Model `{name}` has no version yet: `socle ml train {name}`.");
            } else {
                println!(
                    "{:>7}  {:<8}  {:<24}  {:>9}  {:<12}  metrics",
                    "version", "state", "created", "took", "by"
                );
                for v in &versions {
                    println!(
                        "{:>7}  {:<8}  {:<24}  {:>9}  {:<12}  {}",
                        v.version,
                        v.state.as_str(),
                        v.created_at,
                        v.duration_ms.map(|d| seconds(d as u64)).unwrap_or_default(),
                        v.created_by,
                        v.metrics
                            .as_deref()
                            .or(v.error.as_deref())
                            .unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn list(models: &socle_app::ml::Models, json: bool) -> Result<ExitCode> {
    let specs = socle_ml::spec::load_all(&models.project.root).map_err(socle_ml::MlError::Spec)?;
    let latest = models.meta.latest_versions().await?;
    let newest = |name: &str| latest.iter().find(|v| v.model == name);
    if json {
        let out: Vec<serde_json::Value> = specs
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "kind": s.kind.name(),
                    "description": s.description,
                    "output": s.output.table(""),
                    "latest": newest(&s.name).map(version_json),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if specs.is_empty() {
        println!("No models yet: write ml/<name>.yml (see docs/ml.md).");
    } else {
        println!(
            "{:<28}  {:<18}  {:>7}  description",
            "model", "kind", "version"
        );
        for s in &specs {
            println!(
                "{:<28}  {:<18}  {:>7}  {}",
                s.name,
                s.kind.name(),
                newest(&s.name)
                    .map(|v| v.version.to_string())
                    .unwrap_or_else(|| "-".into()),
                s.description
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn version_json(v: &socle_meta::models::VersionRecord) -> serde_json::Value {
    serde_json::json!({
        "model": v.model,
        "version": v.version,
        "state": v.state.as_str(),
        "kind": v.kind,
        "spec_hash": v.spec_hash,
        "created_by": v.created_by,
        "created_at": v.created_at,
        "finished_at": v.finished_at,
        "duration_ms": v.duration_ms,
        "metrics": v.metrics.as_deref().and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok()),
        "error": v.error,
    })
}

/// A table name, or a SELECT when it has spaces.
fn parse_input(text: &str) -> Input {
    if text.trim().contains(char::is_whitespace) {
        Input::Sql(text.to_string())
    } else {
        Input::Table(text.trim().to_string())
    }
}

/// Progress on stderr (not with `--format json`).
fn progress(json: bool) -> impl Fn(usize, usize, &str) + Sync {
    move |done: usize, total: usize, what: &str| {
        if !json && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!("[{done}/{total}] {what}");
        } else {
            tracing::info!(done, total, "{what}");
        }
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// Who trains: the OS user.
fn whoami() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
