//! The catalog use case: reading a [`Snapshot`] of what a project holds, every table and
//! view of the warehouse with its columns, row count, freshness and description, and
//! (when the project has a `dbt_project.yml`) the dbt nodes documenting them (columns,
//! tests, lineage).
//!
//! Reading it means opening every Delta table and compiling the dbt project: the server
//! keeps the snapshot and decides when to read it again (its `http::catalog`), in process
//! or in the child `socle catalog-snapshot`, which prints it as JSON.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use socle_warehouse::{ColumnInfo, Warehouse, WarehouseError};

/// One table or view of the warehouse.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableEntry {
    pub schema: String,
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
    pub rows: Option<u64>,
    pub version: Option<i64>,
    pub files: Option<usize>,
    /// When its newest data file was written.
    pub last_modified: Option<String>,
    pub description: String,
    pub columns: Vec<ColumnInfo>,
    /// The dbt node (model, seed, snapshot or source) documenting it.
    pub node: Option<String>,
}

/// The catalog as read at one time.
#[derive(Serialize, Deserialize)]
pub struct Snapshot {
    /// When it was built in this process (or received from the child that read it): the
    /// server's cache measures its age from here. Not serialized.
    #[serde(skip, default = "Instant::now")]
    pub built: Instant,
    pub generated_at: String,
    pub build_ms: u64,
    pub tables: Vec<TableEntry>,
    /// The dbt project's nodes as `socle docs` describes them (columns, tests, lineage).
    pub nodes: Vec<Value>,
    pub results_at: Option<String>,
    /// What could not be read (a table that would not open, a model that did not compile).
    pub notes: Vec<String>,
}

impl Snapshot {
    /// The dbt node whose `id` is `id`.
    pub fn node(&self, id: &str) -> Option<&Value> {
        self.nodes.iter().find(|n| n["id"] == id)
    }
}

/// Now, as written in [`Snapshot::generated_at`] (RFC 3339, milliseconds, UTC).
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Reads the catalog: every relation of the warehouse with its columns, row count and
/// freshness, and (when the project has a `dbt_project.yml`) the dbt nodes documenting
/// them. What cannot be read is listed in [`Snapshot::notes`], not fatal.
pub async fn read(
    root: &std::path::Path,
    project_name: &str,
    default_schema: &str,
    wh: &Warehouse,
) -> Result<Snapshot, WarehouseError> {
    let started = Instant::now();
    // As of when reading began: what changes while it reads makes it stale.
    let generated_at = now();
    wh.refresh().await?;
    let mut notes = Vec::new();
    let mut tables = Vec::new();
    for r in wh.list_relations(None).await? {
        let name = format!("{}.{}", r.schema, r.name);
        match wh.describe(&name).await {
            Ok(d) => tables.push(TableEntry {
                schema: d.schema,
                name: d.name,
                kind: d.kind.to_string(),
                rows: d.rows,
                version: d.version,
                files: d.files,
                last_modified: d.last_modified,
                description: d.description.unwrap_or_default(),
                columns: d.columns,
                node: None,
            }),
            Err(e) => notes.push(format!("{name}: {e}")),
        }
    }
    let (mut nodes, mut results_at) = (Vec::new(), None);
    if root.join("dbt_project.yml").is_file() {
        match socle_transform::docs::project_data(root, project_name, default_schema, wh).await {
            Ok((data, report)) => {
                for (id, why) in report.untraced {
                    notes.push(format!("{id}: {why}"));
                }
                results_at = data["results_at"].as_str().map(str::to_string);
                if let Value::Array(n) = data["nodes"].clone() {
                    nodes = n;
                }
            }
            Err(e) => notes.push(format!("dbt project: {e}")),
        }
    }
    let by_relation: BTreeMap<String, String> = nodes
        .iter()
        .filter_map(|n| {
            Some((
                n["relation"].as_str()?.to_lowercase(),
                n["id"].as_str()?.to_string(),
            ))
        })
        .collect();
    for t in &mut tables {
        t.node = by_relation
            .get(&format!("{}.{}", t.schema, t.name).to_lowercase())
            .cloned();
        if t.description.is_empty()
            && let Some(n) = t
                .node
                .as_ref()
                .and_then(|id| nodes.iter().find(|n| n["id"] == **id))
        {
            t.description = n["description"].as_str().unwrap_or("").to_string();
        }
    }
    Ok(Snapshot {
        built: Instant::now(),
        generated_at,
        build_ms: started.elapsed().as_millis() as u64,
        tables,
        nodes,
        results_at,
        notes,
    })
}
