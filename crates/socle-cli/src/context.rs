//! Opening a project's parts (lake, metadata database, warehouse) for a command.

use std::path::PathBuf;

use anyhow::{Context, Result};
use socle_core::Project;
use socle_core::project::ProjectError;
use socle_meta::MetaDb;
use socle_warehouse::Warehouse;

/// Finds the project from `--project` or the current directory.
pub fn project(explicit: Option<PathBuf>) -> Result<Project> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Project::discover(explicit.as_deref(), &cwd).map_err(|e| match e {
        // Name the file as the user would type it: relative to where they are.
        ProjectError::Config(mut c) => {
            let here = std::fs::canonicalize(&cwd).unwrap_or(cwd);
            if let Ok(rel) = c.file.strip_prefix(&here) {
                c.file = rel.to_path_buf();
            }
            anyhow::Error::new(c)
        }
        other => other.into(),
    })
}

/// The opened layers of a project.
pub struct Opened {
    pub project: Project,
    pub warehouse: Warehouse,
    pub meta: MetaDb,
}

/// The project and its metadata database only (the scheduler daemon opens the warehouse
/// when a task needs it). Enters the project folder, as [`open`] does.
pub async fn open_meta(explicit: Option<PathBuf>) -> Result<(Project, MetaDb)> {
    let project = project(explicit)?;
    std::env::set_current_dir(&project.root)
        .with_context(|| format!("cannot enter the project folder {}", project.root.display()))?;
    let meta = socle_app::open_meta(&project, &socle_app::resolver(&project)).await?;
    Ok((project, meta))
}

/// Opens the project's layers and makes the project folder the working directory, so that
/// relative paths in SQL (`SELECT * FROM 'data/orders.csv'`) mean the same wherever socle is
/// started from. Commands resolve their own path arguments before calling this.
pub async fn open(explicit: Option<PathBuf>) -> Result<Opened> {
    open_with(explicit, socle_warehouse::Access::Project).await
}

/// [`open`], with a warehouse for SQL of the given origin (the server's query process
/// opens it with [`socle_warehouse::Access::Server`]).
pub async fn open_with(
    explicit: Option<PathBuf>,
    access: socle_warehouse::Access,
) -> Result<Opened> {
    let project = project(explicit)?;
    std::env::set_current_dir(&project.root)
        .with_context(|| format!("cannot enter the project folder {}", project.root.display()))?;
    let secrets = socle_app::resolver(&project);
    let lake = socle_app::open_lake(&project, &secrets)?;
    let meta = socle_app::open_meta(&project, &secrets).await?;
    let warehouse = socle_app::open_warehouse(&project, lake, meta.clone(), access).await?;
    Ok(Opened {
        project,
        warehouse,
        meta,
    })
}
