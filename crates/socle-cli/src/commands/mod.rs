//! One module per subcommand; [`run`] dispatches.

pub mod check;
pub mod dbt;
pub mod docs;
pub mod extract;
pub mod init;
pub mod internal;
pub mod load;
pub mod ml;
pub mod pipeline;
pub mod secrets;
pub mod serve;
pub mod sql;
pub mod table;
pub mod users;

use std::process::ExitCode;

use crate::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let project = cli.project.clone();
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Check(args) => check::run(project, args).await,
        Command::Sql(args) => sql::run(project, args).await,
        Command::Load(args) => load::run(project, args).await,
        Command::Extract(args) => extract::run(project, args).await,
        Command::Table(args) => table::run(project, args).await,
        Command::Secrets(args) => secrets::run(project, args),
        Command::Users(args) => users::users(project, args).await,
        Command::Tokens(args) => users::tokens(project, args).await,
        Command::Build(c) => dbt::run(project, dbt::Which::Build, c).await,
        Command::Run(args) => pipeline::run(project, args).await,
        Command::Runs(args) => pipeline::runs(project, args).await,
        Command::Logs(args) => pipeline::logs(project, args).await,
        Command::Rerun(args) => pipeline::rerun(project, args).await,
        Command::Backfill(args) => pipeline::backfill(project, args).await,
        Command::Serve(args) => serve::serve(project, args).await,
        Command::Seed(c) => dbt::run(project, dbt::Which::Seed, c).await,
        Command::Test(c) => dbt::run(project, dbt::Which::Test, c).await,
        Command::Compile(c) => dbt::run(project, dbt::Which::Compile, c).await,
        Command::Ls(args) => dbt::ls(project, args).await,
        Command::Docs(args) => docs::run(project, args).await,
        Command::Ml(args) => ml::run(project, args).await,
        Command::CatalogSnapshot => internal::catalog_snapshot(project).await,
        Command::QueryWorker => internal::query_worker(project).await,
        Command::TaskAttempt => internal::task_attempt(project).await,
    }
}
