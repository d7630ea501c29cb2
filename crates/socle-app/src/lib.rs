//! The application layer: the one place where a project's parts are opened.
//!
//! - [`open_lake`], [`open_meta`]: the lake and the metadata database of a project, with
//!   its secrets resolver. Nothing else in socle opens either.
//! - [`load_dbt`], [`run_dbt`]: a dbt command (load the project's nodes; manifest, run,
//!   run results), set up once for `socle build/run/test/seed/compile` and the pipelines'
//!   `build`/`test` tasks.
//! - [`Extract`]: an extraction of sources into the lake and the warehouse, set up once
//!   for `socle extract` and the pipelines' `extract` task.
//! - [`LazyWarehouse`]: the warehouse, opened when first needed, for SQL of one origin
//!   ([`Access::Project`]: the project's own files; [`Access::Server`]: what arrives over
//!   HTTP).
//! - [`query`]: one query run on the warehouse, its answer rendered (JSON or CSV) piece by
//!   piece within row, byte and time limits, for the server, in process or in the query
//!   process (`socle query-worker`).
//! - [`catalog`]: a snapshot of the catalog (tables, columns, row counts, freshness, dbt
//!   nodes), for the server, in process or in the child `socle catalog-snapshot`.
//! - [`ml`]: training and applying the models of `ml/*.yml`, for `socle ml` and the
//!   pipelines' `ml` task.
//!
//! The CLI, the orchestrator's tasks, the server and the child processes all reach the
//! warehouse through here; no layer reaches into another's internals to get one.

pub mod catalog;
pub mod ml;
pub mod query;

use std::sync::Arc;

use socle_core::Project;
use socle_core::secrets::store::StoreResolver;
use socle_lake::Lake;
use socle_meta::MetaDb;
pub use socle_warehouse::Access;
use socle_warehouse::Warehouse;
use tokio::sync::OnceCell;

/// Why a part of the project could not be opened (the part's own error, which says
/// whose fault it is; boxed, the errors are large).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// `metadata.url` (or a secret it names) cannot be resolved.
    #[error(transparent)]
    Config(#[from] Box<socle_core::ConfigError>),
    #[error(transparent)]
    Lake(#[from] Box<socle_lake::LakeError>),
    #[error(transparent)]
    Meta(#[from] Box<socle_meta::MetaError>),
    #[error(transparent)]
    Warehouse(#[from] Box<socle_warehouse::WarehouseError>),
    #[error(transparent)]
    Connect(#[from] Box<socle_connect::ConnectError>),
    #[error(transparent)]
    Transform(#[from] Box<socle_transform::TransformError>),
    /// A background task of socle's own stopped (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

/// The secrets resolver of a project (`${env:...}`, `${secret:...}`).
pub fn resolver(project: &Project) -> StoreResolver {
    StoreResolver::for_project(&project.root)
}

/// Opens the project's lake (`lake:` of socle.yml).
pub fn open_lake(project: &Project, resolver: &StoreResolver) -> Result<Lake, AppError> {
    Lake::open(&project.config.lake, resolver).map_err(|e| AppError::Lake(Box::new(e)))
}

/// Opens (creating and migrating if needed) the project's metadata database.
pub async fn open_meta(project: &Project, resolver: &StoreResolver) -> Result<MetaDb, AppError> {
    let url = project
        .config
        .metadata
        .url
        .resolve(resolver)
        .map_err(Box::new)?;
    MetaDb::open(&url).await.map_err(|e| Box::new(e).into())
}

/// Opens the warehouse over `lake` and `meta`, for SQL of origin `access`.
pub async fn open_warehouse(
    project: &Project,
    lake: Lake,
    meta: MetaDb,
    access: Access,
) -> Result<Warehouse, AppError> {
    Warehouse::open_with(lake, meta, &project.config.warehouse, access)
        .await
        .map_err(|e| Box::new(e).into())
}

/// Loads the project's dbt nodes (`dbt_project.yml`, models, seeds, tests, packages) with
/// `vars` as given on the command line or by a task, on a blocking thread.
pub async fn load_dbt(
    project: &Project,
    threads: usize,
    cli_vars: serde_json::Map<String, serde_json::Value>,
) -> Result<Arc<socle_transform::loader::Loaded>, AppError> {
    let options = socle_transform::loader::LoadOptions {
        target_schema: project.config.warehouse.default_schema.clone(),
        target_name: "dev".into(),
        threads,
        cli_vars,
    };
    let (root, name) = (project.root.clone(), project.config.name.clone());
    let loaded =
        tokio::task::spawn_blocking(move || socle_transform::loader::load(&root, &name, options))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(Box::new)?;
    Ok(Arc::new(loaded))
}

/// Runs one dbt command over loaded nodes: writes `target/manifest.json`, runs the
/// selected nodes on `warehouse`, writes `target/run_results.json` (`command` names it).
pub async fn run_dbt(
    loaded: Arc<socle_transform::loader::Loaded>,
    warehouse: Warehouse,
    options: socle_transform::run::RunOptions,
    progress: Arc<dyn socle_transform::run::Progress>,
    command: &str,
) -> Result<socle_transform::run::RunReport, AppError> {
    let invocation = socle_transform::artifacts::invocation_id();
    socle_transform::artifacts::write_manifest(&loaded, &invocation).map_err(Box::new)?;
    let report = socle_transform::run::run(loaded.clone(), warehouse, options, progress)
        .await
        .map_err(Box::new)?;
    socle_transform::artifacts::write_run_results(&loaded, &report, &invocation, command)
        .map_err(Box::new)?;
    Ok(report)
}

/// An extraction of a project's sources: the set-up shared by `socle extract` and the
/// pipelines' `extract` task (the lake and the secrets resolver are opened here).
pub struct Extract<'a> {
    pub project: &'a Project,
    pub warehouse: &'a Warehouse,
    pub meta: &'a MetaDb,
    /// Told of each stream as it goes.
    pub progress: Arc<dyn socle_connect::Progress>,
    /// Set to stop after the current file or page.
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
}

impl Extract<'_> {
    /// Extracts `selection` (sources or `source.stream`; all when empty) of `sources`.
    pub async fn run(
        &self,
        sources: &[Box<dyn socle_connect::Source>],
        selection: &[String],
        options: &socle_connect::ExtractOptions,
    ) -> Result<Vec<socle_connect::StreamReport>, AppError> {
        let resolver = resolver(self.project);
        let lake = open_lake(self.project, &resolver)?;
        let extraction = socle_connect::Extraction {
            warehouse: self.warehouse,
            meta: self.meta,
            lake: &lake,
            root: &self.project.root,
            resolver: &resolver,
            progress: self.progress.clone(),
            cancel: self.cancel.clone(),
        };
        extraction
            .run(sources, selection, options)
            .await
            .map_err(|e| Box::new(e).into())
    }
}

/// The warehouse, opened when first needed; clones share it.
#[derive(Clone)]
pub struct LazyWarehouse {
    cell: Arc<OnceCell<Warehouse>>,
    project: Arc<Project>,
    meta: MetaDb,
    access: Access,
}

impl LazyWarehouse {
    /// Opens on first use, for the project's own SQL ([`Access::Project`]).
    pub fn new(project: Arc<Project>, meta: MetaDb) -> Self {
        Self::with_access(project, meta, Access::Project)
    }

    /// Opens on first use, for SQL of the given origin ([`Access::Server`]: what arrives
    /// over HTTP).
    pub fn with_access(project: Arc<Project>, meta: MetaDb, access: Access) -> Self {
        Self {
            cell: Arc::new(OnceCell::new()),
            project,
            meta,
            access,
        }
    }

    /// An already open warehouse.
    pub fn ready(warehouse: Warehouse, project: Arc<Project>, meta: MetaDb) -> Self {
        Self {
            access: warehouse.access(),
            cell: Arc::new(OnceCell::new_with(Some(warehouse))),
            project,
            meta,
        }
    }

    /// What model runs use: the warehouse (opened on first use), the lake, the metadata
    /// database.
    pub async fn models(&self) -> Result<ml::Models, AppError> {
        let warehouse = self.get().await?;
        let lake = open_lake(&self.project, &resolver(&self.project))?;
        Ok(ml::Models {
            project: self.project.clone(),
            warehouse,
            lake,
            meta: self.meta.clone(),
        })
    }

    /// The warehouse, opened on the first call (a failure is tried again on the next).
    pub async fn get(&self) -> Result<Warehouse, AppError> {
        self.cell
            .get_or_try_init(|| async {
                let lake = open_lake(&self.project, &resolver(&self.project))?;
                open_warehouse(&self.project, lake, self.meta.clone(), self.access).await
            })
            .await
            .cloned()
    }
}
