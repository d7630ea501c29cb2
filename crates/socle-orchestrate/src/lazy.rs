//! The warehouse, opened when a task first needs it: the scheduler daemon waits for hours
//! between runs and should stay small (DataFusion's session is tens of MiB).

use std::sync::Arc;

use socle_core::Project;
use socle_core::secrets::store::StoreResolver;
use socle_meta::MetaDb;
use socle_warehouse::{Access, Warehouse};
use tokio::sync::OnceCell;

#[derive(Clone)]
pub struct LazyWarehouse {
    cell: Arc<OnceCell<Warehouse>>,
    project: Arc<Project>,
    meta: MetaDb,
    access: Access,
}

impl LazyWarehouse {
    /// Opens on first use.
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

    pub async fn get(&self) -> Result<Warehouse, String> {
        self.cell
            .get_or_try_init(|| async {
                let lake = socle_lake::Lake::open(
                    &self.project.config.lake,
                    &StoreResolver::for_project(&self.project.root),
                )
                .map_err(|e| e.to_string())?;
                Warehouse::open_with(
                    lake,
                    self.meta.clone(),
                    &self.project.config.warehouse,
                    self.access,
                )
                .await
                .map_err(|e| e.to_string())
            })
            .await
            .cloned()
    }
}
