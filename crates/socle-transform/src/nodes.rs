//! The nodes of a project: models, seeds, tests, snapshots and analyses, plus sources.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::config::NodeConfig;
use crate::schema::Column;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Seed,
    Model,
    Snapshot,
    Test,
    Analysis,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Seed => "seed",
            Kind::Model => "model",
            Kind::Snapshot => "snapshot",
            Kind::Test => "test",
            Kind::Analysis => "analysis",
        }
    }
}

/// A generic test's link to what it tests.
#[derive(Debug, Clone)]
pub struct TestMeta {
    /// `not_null`, `dbt_utils.expression_is_true`, ...
    pub test: String,
    pub kwargs: Map<String, Value>,
    /// The tested node (`model.shop.orders`) or source (`source.shop.raw.orders`).
    pub attached: String,
    pub column_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub unique_id: String,
    pub kind: Kind,
    pub package: String,
    pub name: String,
    /// Path relative to the package root, as dbt prints it (`models/staging/stg_x.sql`).
    pub path: String,
    /// Absolute file path.
    pub file: PathBuf,
    /// The SQL (Jinja) as written; for generic tests, generated.
    pub raw_sql: String,
    pub config: NodeConfig,
    pub description: String,
    pub columns: Vec<Column>,
    /// Folders below the resource path, then the name (dbt's fqn without the package).
    pub fqn: Vec<String>,
    /// Filled by parsing: `ref`s and `source`s named in the SQL, and resolved ids.
    pub refs: Vec<(Option<String>, String)>,
    pub sources: Vec<(String, String)>,
    pub depends_on: Vec<String>,
    /// Where the result lives: schema and identifier (tests: none).
    pub schema: String,
    pub alias: String,
    pub test: Option<TestMeta>,
    /// Line in `file` where the node's SQL begins (snapshots and docs blocks start later).
    pub first_line: usize,
}

impl Node {
    pub fn relation(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(&self.alias))
    }
}

/// Quotes an identifier for the warehouse's SQL.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(Debug, Clone)]
pub struct SourceNode {
    pub unique_id: String,
    pub package: String,
    pub source_name: String,
    pub name: String,
    pub schema: String,
    pub identifier: String,
    pub description: String,
    pub columns: Vec<Column>,
    pub file: PathBuf,
}

impl SourceNode {
    pub fn relation(&self) -> String {
        format!("{}.{}", quote(&self.schema), quote(&self.identifier))
    }
}

/// All nodes of a project and its packages, by unique id.
#[derive(Debug, Clone, Default)]
pub struct Nodes {
    pub nodes: BTreeMap<String, Node>,
    pub sources: BTreeMap<String, SourceNode>,
    /// `{% docs name %}` blocks by name.
    pub docs: BTreeMap<String, String>,
}
