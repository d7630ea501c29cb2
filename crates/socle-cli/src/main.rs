//! The `socle` binary: parses the command line and hands each subcommand to a module in
//! [`commands`]. All real work lives in the library crates.

mod commands;
mod context;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: query planning and Arrow buffers allocate a
/// great deal, and glibc's malloc showed up as a fifth of a small-data build's time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// socle: a modern data stack in one binary.
///
/// Collect data into a lake, load it into an embedded warehouse (DataFusion over Delta Lake
/// tables), transform it with SQL, and query it, from one project folder.
#[derive(Debug, Parser)]
#[command(
    name = "socle",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Examples:\n  socle init shop && cd shop\n  socle check\n  socle sql \"select 42 as answer\"\n  socle --project examples/shop build\n  socle --project examples/shop sql -f examples/shop/jobs/report.sql"
)]
pub struct Cli {
    /// Project folder (default: the nearest folder at or above the current one with a
    /// socle.yml or dbt_project.yml)
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "SOCLE_PROJECT",
        value_name = "DIR"
    )]
    pub project: Option<PathBuf>,

    /// More log output (-v: debug, -vv: trace); logs go to stderr
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log lines as JSON objects (for log collectors)
    #[arg(long, global = true)]
    pub log_json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(commands::init::Args),
    Check(commands::check::Args),
    Sql(commands::sql::Args),
    Extract(commands::extract::Args),
    Load(commands::load::Args),
    Table(commands::table::Args),
    Secrets(commands::secrets::Args),
    Users(commands::users::UsersArgs),
    Tokens(commands::users::TokensArgs),
    /// Build a dbt project: seeds, models, snapshots and tests, in DAG order
    #[command(
        after_help = "Examples:\n  socle build\n  socle build --select +marts.orders\n  socle build --select tag:daily --exclude resource_type:test\n  socle build --full-refresh --threads 8"
    )]
    Build(commands::dbt::Common),
    /// Run a pipeline once, or (without a pipeline name) the dbt project's models
    Run(commands::pipeline::RunArgs),
    /// List pipeline runs, newest first
    Runs(commands::pipeline::RunsArgs),
    /// Show the logs of a pipeline run
    Logs(commands::pipeline::LogsArgs),
    /// Rerun the tasks of a pipeline run that did not succeed
    Rerun(commands::pipeline::RerunArgs),
    /// Run a pipeline for every interval between two dates
    Backfill(commands::pipeline::BackfillArgs),
    /// Run the scheduler daemon: pipelines start when their intervals end
    Serve(commands::serve::ServeArgs),
    /// Load the seed CSV files into tables
    #[command(
        after_help = "Examples:\n  socle seed\n  socle seed --select country_codes --full-refresh"
    )]
    Seed(commands::dbt::Common),
    /// Run the data tests
    #[command(after_help = "Examples:\n  socle test\n  socle test --select orders")]
    Test(commands::dbt::Common),
    /// Render models and tests to SQL under target/compiled without running them
    #[command(after_help = "Examples:\n  socle compile\n  socle compile --select orders")]
    Compile(commands::dbt::Common),
    /// List the nodes a selection picks
    Ls(commands::dbt::LsArgs),
    Docs(commands::docs::Args),
    Ml(commands::ml::Args),
    /// Print the catalog the server shows, as JSON (`socle serve` reads it in a child
    /// process)
    #[command(hide = true)]
    CatalogSnapshot,
    /// Run the queries `socle serve` hands over stdin and stdout (the server's query
    /// process)
    #[command(hide = true)]
    QueryWorker,
    /// Make one attempt of a task for `socle serve`'s scheduler (a task process)
    #[command(hide = true)]
    TaskAttempt,
}

/// Log output with every known credential masked (see `socle_core::secrets::redact`).
struct Redacted<W>(W);

impl<W: std::io::Write> std::io::Write for Redacted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = socle_core::secrets::redact(&String::from_utf8_lossy(buf));
        self.0.write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    // delta-rs logs every failed open at ERROR through its instrumented spans, including the
    // "no table here yet" probes socle makes on purpose; socle reports real failures itself.
    let default = match cli.verbose {
        // The daemon says what it does (runs, their ends, where it listens): `socle` is the
        // prefix of the binary's target and of every socle crate's (`socle_server`, ...).
        0 if matches!(cli.command, Command::Serve(_)) => {
            "warn,socle=info,deltalake_core=off,buoyant_kernel=off"
        }
        0 => "warn,deltalake_core=off,buoyant_kernel=off",
        1 => "info,socle=debug,deltalake_core=warn,buoyant_kernel=warn",
        _ => "debug,socle=trace",
    };
    let filter = EnvFilter::try_from_env("SOCLE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| Redacted(std::io::stderr()));
    if cli.log_json {
        builder.json().init();
    } else {
        builder.with_target(false).compact().init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", socle_core::secrets::redact(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
