//! The warehouse catalog seen by DataFusion: catalog `socle`, one schema per folder under
//! `warehouse/` in the lake (plus schemas created empty), tables = Delta tables, views =
//! definitions kept in the metadata database and planned when used.
//!
//! DataFusion asks for tables asynchronously, so each query opens the Delta tables it
//! names (reading their log) and nothing else; names with `@v3` / `@t=...` suffixes, made
//! by [`crate::time_travel`], open the table as of that version or time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use async_trait::async_trait;
use datafusion::catalog::view::ViewTable;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionState;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use socle_core::config::is_identifier;
use socle_lake::Lake;
use socle_meta::MetaDb;

use crate::error::{Result, WarehouseError};
use crate::names::RelName;
use crate::time_travel::{AsOf, split_name};

/// Views may use views; deeper nesting than this is taken as a cycle.
const MAX_VIEW_DEPTH: usize = 32;

/// State shared by the catalog, its schemas and the warehouse.
#[derive(Debug)]
pub(crate) struct Shared {
    pub lake: Lake,
    pub meta: MetaDb,
    pub default_schema: String,
    /// The session state used to plan view definitions (set once the session exists).
    pub state: OnceLock<SessionState>,
    /// Parses view definitions the way user statements are parsed.
    pub parser: crate::parse::Parser,
    /// schema → relation names; refreshed by [`Shared::refresh`] (DataFusion lists names
    /// synchronously, for `SHOW TABLES` and `information_schema`).
    pub names: RwLock<BTreeMap<String, BTreeSet<String>>>,
    view_depth: AtomicUsize,
}

impl Shared {
    pub fn new(
        lake: Lake,
        meta: MetaDb,
        default_schema: String,
        parser: crate::parse::Parser,
    ) -> Self {
        Self {
            lake,
            meta,
            default_schema,
            state: OnceLock::new(),
            parser,
            names: RwLock::new(BTreeMap::new()),
            view_depth: AtomicUsize::new(0),
        }
    }

    /// Re-reads the list of schemas, tables and views.
    pub async fn refresh(&self) -> Result<()> {
        let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        names.entry(self.default_schema.clone()).or_default();
        for schema in self.meta.list_schemas().await? {
            names.entry(schema).or_default();
        }
        for schema in self.lake.list_dirs("warehouse").await? {
            if !is_identifier(&schema) {
                continue;
            }
            let tables = self.lake.list_dirs(&format!("warehouse/{schema}")).await?;
            names
                .entry(schema)
                .or_default()
                .extend(tables.into_iter().filter(|t| is_identifier(t)));
        }
        for view in self.meta.list_views(None).await? {
            names.entry(view.schema).or_default().insert(view.name);
        }
        *self.names.write().expect("names lock") = names;
        Ok(())
    }

    /// Records that `schema.name` now exists (or no longer does) without re-listing the
    /// lake: statements that create or drop one relation keep the name cache current this
    /// way, which matters when a build creates hundreds of them.
    pub fn note(&self, schema: &str, name: Option<&str>, present: bool) {
        let mut names = self.names.write().expect("names lock");
        match (name, present) {
            (Some(name), true) => {
                names
                    .entry(schema.to_string())
                    .or_default()
                    .insert(name.to_string());
            }
            (Some(name), false) => {
                if let Some(set) = names.get_mut(schema) {
                    set.remove(name);
                }
            }
            (None, true) => {
                names.entry(schema.to_string()).or_default();
            }
            (None, false) => {
                names.remove(schema);
            }
        }
    }

    pub fn schema_names(&self) -> Vec<String> {
        self.names
            .read()
            .expect("names lock")
            .keys()
            .cloned()
            .collect()
    }

    pub fn cached_names(&self, schema: &str) -> Vec<String> {
        self.names
            .read()
            .expect("names lock")
            .get(schema)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Opens a Delta table; `Ok(None)` when there is none at the name.
    pub async fn open_table(
        &self,
        rel: &RelName,
        as_of: Option<&AsOf>,
    ) -> Result<Option<DeltaTable>> {
        let url = self.lake.url_of(&rel.lake_path())?;
        let delta_err = |source| WarehouseError::Delta {
            table: rel.to_string(),
            source,
        };
        let mut table = DeltaTableBuilder::from_url(url.clone())
            .map_err(delta_err)?
            .with_storage_backend(self.lake.store(), url)
            .build()
            .map_err(delta_err)?;
        let mut loaded = match as_of {
            Some(AsOf::Version(v)) => {
                if *v < 0 {
                    return Err(WarehouseError::Unsupported(format!(
                        "version {v} of {rel}: versions start at 0"
                    )));
                }
                table.load_version(*v as u64).await
            }
            Some(AsOf::Timestamp(ts)) => table.load_with_datetime(parse_timestamp(ts)?).await,
            None => table.load().await,
        };
        // A table created by another writer while this one looked: the first look found no
        // folder, the existence check below finds the log. Look again (a few times).
        for _ in 0..3 {
            if as_of.is_some() || loaded.is_ok() {
                break;
            }
            if !table.verify_deltatable_existence().await.unwrap_or(true) {
                return Ok(None);
            }
            loaded = table.load().await;
        }
        match loaded {
            Ok(()) => Ok(Some(table)),
            // An empty folder says NotATable; a missing local folder says the location is
            // invalid. Either way there is no table unless the log exists.
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(_)
                if as_of.is_none()
                    && !table.verify_deltatable_existence().await.unwrap_or(true) =>
            {
                Ok(None)
            }
            Err(e) if as_of.is_some() => Err(WarehouseError::NotFound {
                kind: "version",
                name: format!("{rel} {}", describe_as_of(as_of)),
                suggestion: Some(format!(
                    "`socle table history {rel}` lists the versions ({e})"
                )),
            }),
            Err(e) => Err(delta_err(e)),
        }
    }

    /// Resolves a name for DataFusion: a view, a table, or nothing.
    async fn resolve(&self, schema: &str, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let (table, as_of) = split_name(name);
        let rel = match RelName::parse(&format!("{schema}.{table}"), &self.default_schema) {
            Ok(rel) => rel,
            Err(_) => return Ok(None),
        };
        if as_of.is_none()
            && let Some(view) = self.meta.get_view(&rel.schema, &rel.name).await?
        {
            return self.plan_view(&rel, &view.definition).await.map(Some);
        }
        let Some(table) = self.open_table(&rel, as_of.as_ref()).await? else {
            return Ok(None);
        };
        let state = self
            .state
            .get()
            .ok_or_else(|| WarehouseError::Internal("session not ready".into()))?;
        table
            .update_datafusion_session(state)
            .map_err(|source| WarehouseError::Delta {
                table: rel.to_string(),
                source,
            })?;
        let provider = table
            .table_provider()
            .await
            .map_err(|e| WarehouseError::from_datafusion(e, ""))?;
        Ok(Some(provider))
    }

    async fn plan_view(&self, rel: &RelName, definition: &str) -> Result<Arc<dyn TableProvider>> {
        let depth = self.view_depth.fetch_add(1, Ordering::SeqCst);
        let _guard = DepthGuard(&self.view_depth);
        if depth > MAX_VIEW_DEPTH {
            return Err(WarehouseError::Unsupported(format!(
                "view {rel} nests views more than {MAX_VIEW_DEPTH} deep (a cycle?)"
            )));
        }
        let state = self
            .state
            .get()
            .ok_or_else(|| WarehouseError::Internal("session not ready".into()))?;
        let stmt = self.parser.parse_one(definition)?;
        let plan = state.statement_to_plan(stmt).await.map_err(|e| {
            WarehouseError::Unsupported(format!(
                "view {rel} no longer plans: {} (recreate it with CREATE OR REPLACE VIEW)",
                WarehouseError::from_datafusion(e, definition)
            ))
        })?;
        Ok(Arc::new(ViewTable::new(plan, Some(definition.to_string()))))
    }
}

struct DepthGuard<'a>(&'a AtomicUsize);
impl Drop for DepthGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn describe_as_of(as_of: Option<&AsOf>) -> String {
    match as_of {
        Some(AsOf::Version(v)) => format!("VERSION AS OF {v}"),
        Some(AsOf::Timestamp(t)) => format!("TIMESTAMP AS OF '{t}'"),
        None => String::new(),
    }
}

/// Accepts RFC 3339, `YYYY-MM-DD HH:MM:SS[.fff]` (UTC) and `YYYY-MM-DD` (midnight UTC).
pub fn parse_timestamp(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight")));
    }
    Err(WarehouseError::Unsupported(format!(
        "cannot read the timestamp '{s}': write '2026-11-23 10:00:00' (UTC) or RFC 3339 '2026-11-23T10:00:00+01:00'"
    )))
}

/// Catalog `socle`.
#[derive(Debug)]
pub(crate) struct SocleCatalog {
    pub shared: Arc<Shared>,
}

impl CatalogProvider for SocleCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.shared.schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        is_identifier(name).then(|| {
            Arc::new(SocleSchema {
                name: name.to_string(),
                shared: self.shared.clone(),
            }) as _
        })
    }
}

#[derive(Debug)]
struct SocleSchema {
    name: String,
    shared: Arc<Shared>,
}

#[async_trait]
impl SchemaProvider for SocleSchema {
    fn table_names(&self) -> Vec<String> {
        self.shared.cached_names(&self.name)
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        self.shared
            .resolve(&self.name, name)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.shared
            .cached_names(&self.name)
            .iter()
            .any(|n| n == name)
    }
}
