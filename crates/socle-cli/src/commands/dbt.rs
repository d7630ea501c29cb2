//! `socle build`, `run`, `seed`, `test`, `compile` and `ls`: a dbt project in the project
//! folder, run on the warehouse.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use socle_transform::loader::{LoadOptions, Loaded, load};
use socle_transform::nodes::{Kind, Node};
use socle_transform::run::{NodeResult, Progress, RunOptions, Status};

/// Options shared by every dbt-style command.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// Nodes to include (dbt selection syntax: name, +name, name+, tag:x, path:dir, ...)
    #[arg(long, short = 's', alias = "models", short_alias = 'm', num_args = 1.., value_name = "SELECTOR")]
    pub select: Vec<String>,
    /// Nodes to leave out (same syntax as --select)
    #[arg(long, num_args = 1.., value_name = "SELECTOR")]
    pub exclude: Vec<String>,
    /// How many nodes run at once
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Rebuild incremental models and reload seeds from scratch
    #[arg(long)]
    pub full_refresh: bool,
    /// Stop at the first failure
    #[arg(long, short = 'x')]
    pub fail_fast: bool,
    /// Variables, as YAML or JSON: --vars '{start_date: 2024-01-01}'
    #[arg(long, value_name = "YAML")]
    pub vars: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Build,
    Run,
    Seed,
    Test,
    Compile,
}

fn kinds(which: Which) -> BTreeSet<Kind> {
    match which {
        Which::Build => [Kind::Seed, Kind::Model, Kind::Snapshot, Kind::Test].into(),
        Which::Run => [Kind::Model].into(),
        Which::Seed => [Kind::Seed].into(),
        Which::Test => [Kind::Test].into(),
        Which::Compile => [Kind::Model, Kind::Test, Kind::Analysis, Kind::Snapshot].into(),
    }
}

pub(crate) async fn open(
    explicit: Option<PathBuf>,
    common: &Common,
) -> Result<(crate::context::Opened, Arc<Loaded>)> {
    let opened = crate::context::open(explicit).await?;
    let cli_vars = match &common.vars {
        Some(text) => {
            match serde_saphyr::from_str::<serde_json::Value>(text).context("--vars is not YAML")? {
                serde_json::Value::Object(map) => map,
                _ => anyhow::bail!("--vars must be a mapping, such as '{{key: value}}'"),
            }
        }
        None => serde_json::Map::new(),
    };
    let loaded = socle_app::load_dbt(&opened.project, common.threads, cli_vars).await?;
    Ok((opened, loaded))
}

/// dbt-style progress lines.
struct Lines;

fn describe(node: &Node) -> String {
    match node.kind {
        Kind::Model => format!(
            "sql {} model {}.{}",
            node.config.materialized(),
            node.schema,
            node.alias
        ),
        Kind::Seed => format!("seed file {}.{}", node.schema, node.alias),
        Kind::Test => format!("test {}", node.name),
        Kind::Snapshot => format!("snapshot {}.{}", node.schema, node.alias),
        Kind::Analysis => format!("analysis {}", node.name),
    }
}

fn dots(text: &str) -> String {
    let width = 72usize.saturating_sub(text.chars().count());
    format!("{text} {}", ".".repeat(width.max(3)))
}

impl Progress for Lines {
    fn started(&self, node: &Node, index: usize, total: usize) {
        println!("{index} of {total} START {} [RUN]", dots(&describe(node)));
    }

    fn finished(&self, node: &Node, r: &NodeResult, index: usize, total: usize) {
        let secs = r.duration.as_secs_f64();
        let (word, tag) = match r.status {
            Status::Success => ("OK", format!("[OK in {secs:.2}s]")),
            Status::Pass => ("PASS", format!("[PASS in {secs:.2}s]")),
            Status::Warn => (
                "WARN",
                format!("[WARN {} in {secs:.2}s]", r.failures.unwrap_or(0)),
            ),
            Status::Fail => (
                "FAIL",
                format!("[FAIL {} in {secs:.2}s]", r.failures.unwrap_or(0)),
            ),
            Status::Error => ("ERROR", format!("[ERROR in {secs:.2}s]")),
            Status::Skipped => ("SKIP", "[SKIP]".to_string()),
        };
        println!("{index} of {total} {word} {} {tag}", dots(&describe(node)));
    }
}

pub async fn run(explicit: Option<PathBuf>, which: Which, common: Common) -> Result<ExitCode> {
    let (opened, loaded) = open(explicit, &common).await?;
    let options = RunOptions {
        select: common.select.clone(),
        exclude: common.exclude.clone(),
        kinds: kinds(which),
        threads: common.threads,
        full_refresh: common.full_refresh,
        fail_fast: common.fail_fast,
        compile_only: which == Which::Compile,
    };
    let command = format!("{which:?}").to_lowercase();
    let report = socle_app::run_dbt(
        loaded.clone(),
        opened.warehouse.clone(),
        options,
        Arc::new(Lines),
        &command,
    )
    .await?;
    if which == Which::Compile {
        for r in &report.results {
            if let Some(sql) = &r.compiled_sql
                && report.results.len() == 1
            {
                println!("{sql}");
            }
        }
    }
    println!();
    let failures: Vec<&NodeResult> = report
        .results
        .iter()
        .filter(|r| r.status.is_failure() || r.status == Status::Warn)
        .collect();
    for r in &failures {
        let node = &loaded.nodes.nodes[&r.unique_id];
        let label = if r.status == Status::Warn {
            "Warning"
        } else {
            "Failure"
        };
        println!(
            "{label} in {} {} ({})\n  {}\n",
            node.kind.as_str(),
            node.name,
            node.path,
            r.message.replace('\n', "\n  ")
        );
    }
    println!(
        "Finished running {} nodes in {:.2}s.",
        report.results.len(),
        report.elapsed.as_secs_f64()
    );
    println!(
        "Done. PASS={} WARN={} ERROR={} SKIP={} TOTAL={}",
        report.count(Status::Success) + report.count(Status::Pass),
        report.count(Status::Warn),
        report.count(Status::Error) + report.count(Status::Fail),
        report.count(Status::Skipped),
        report.results.len()
    );
    Ok(if report.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `socle ls`: the selected nodes, one per line.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  socle ls\n  socle ls --select tag:daily\n  socle ls --resource-type model --output path"
)]
pub struct LsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Only nodes of this kind (model, seed, test, snapshot, analysis)
    #[arg(long)]
    pub resource_type: Option<String>,
    /// What to print per node
    #[arg(long, default_value = "selector", value_parser = ["selector", "name", "path", "json"])]
    pub output: String,
}

pub async fn ls(explicit: Option<PathBuf>, args: LsArgs) -> Result<ExitCode> {
    let project = crate::context::project(explicit)?;
    let options = LoadOptions {
        target_schema: project.config.warehouse.default_schema.clone(),
        target_name: "dev".into(),
        threads: args.common.threads,
        cli_vars: serde_json::Map::new(),
    };
    let loaded = load(&project.root, &project.config.name, options)?;
    let graph = socle_transform::graph::Graph::new(&loaded.nodes);
    let ids = socle_transform::graph::select(
        &loaded.nodes,
        &graph,
        &args.common.select,
        &args.common.exclude,
    )?;
    for id in ids {
        let node = &loaded.nodes.nodes[&id];
        if args
            .resource_type
            .as_deref()
            .is_some_and(|t| t != node.kind.as_str())
        {
            continue;
        }
        match args.output.as_str() {
            "name" => println!("{}", node.name),
            "path" => println!("{}", node.path),
            "json" => println!(
                "{}",
                serde_json::json!({"unique_id": node.unique_id, "name": node.name, "resource_type": node.kind.as_str(),
                    "path": node.path, "depends_on": node.depends_on, "config": node.config.0})
            ),
            _ => println!("{}.{}", node.package, node.fqn.join(".")),
        }
    }
    Ok(ExitCode::SUCCESS)
}
