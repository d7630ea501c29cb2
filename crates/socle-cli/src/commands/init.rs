//! `socle init DIR`: scaffold a working project.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

/// Create a new socle project folder
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  socle init shop\n  socle init . --name analytics")]
pub struct Args {
    /// Folder to create the project in (created if missing)
    pub dir: PathBuf,
    /// Project name (default: the folder's name)
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let files = socle_core::scaffold::init(&args.dir, args.name.as_deref())?;
    println!("Created a socle project in {}:", args.dir.display());
    for f in files {
        println!("  {f}");
    }
    println!("\nNext: socle --project {} check", args.dir.display());
    Ok(ExitCode::SUCCESS)
}
