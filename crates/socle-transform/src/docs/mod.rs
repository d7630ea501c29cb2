//! `socle docs`: a static documentation site that works offline (one `index.html` with its
//! data, styles and scripts inline, plus `docs.json` for other tools).
//!
//! It shows every model, seed, snapshot and source with its description (docs blocks
//! rendered), columns (types from the warehouse, descriptions from schema YAML), tests and
//! their last results (`target/run_results.json`), compiled SQL, a model-level lineage
//! graph and column-level lineage ([`crate::lineage`]) traced through CTEs, joins,
//! aggregates and `*`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Value, json};
use socle_warehouse::Warehouse;

use crate::error::{Result, TransformError};
use crate::lineage::{ColumnLineage, column_lineage};
use crate::loader::Loaded;
use crate::nodes::{Kind, Node, Nodes};
use crate::resolver::relation_of;

const TEMPLATE: &str = include_str!("site.html");

/// What was written.
#[derive(Debug)]
pub struct DocsReport {
    pub dir: PathBuf,
    pub nodes: usize,
    pub columns: usize,
    /// Columns whose sources were traced.
    pub traced_columns: usize,
    /// Nodes whose lineage could not be traced, with the reason.
    pub untraced: Vec<(String, String)>,
}

/// Replaces `{{ doc('name') }}` in a description with the docs block's text.
pub fn render_description(text: &str, docs: &BTreeMap<String, String>) -> String {
    static DOC: OnceLock<Regex> = OnceLock::new();
    let re = DOC.get_or_init(|| {
        Regex::new(r#"\{\{\s*doc\(\s*['"]([^'"]+)['"]\s*\)\s*\}\}"#).expect("valid regex")
    });
    re.replace_all(text, |c: &regex::Captures| {
        docs.get(&c[1])
            .map(|d| d.trim().to_string())
            .unwrap_or_else(|| c[0].to_string())
    })
    .into_owned()
}

/// Builds the site's data and writes `dir/index.html` and `dir/docs.json`.
///
/// `compiled` holds each node's compiled SQL (from a compile-only run). Relations that do
/// not exist yet (never built) are documented from the project alone, without types or
/// lineage.
pub async fn generate(
    loaded: &Loaded,
    wh: &Warehouse,
    compiled: &BTreeMap<String, String>,
    dir: &Path,
) -> Result<DocsReport> {
    let (data, mut report) = data(loaded, wh, compiled).await?;
    report.dir = dir.to_path_buf();
    write_site(dir, &data)?;
    Ok(report)
}

/// Loads the dbt project at `root`, compiles its models and snapshots (nothing runs; the
/// compiled SQL lands under `target/compiled` as with `socle compile`) and returns the
/// site's data: what the server's catalog and lineage show. Nodes that do not compile are
/// listed in the report's `untraced`.
pub async fn project_data(
    root: &Path,
    name: &str,
    target_schema: &str,
    wh: &Warehouse,
) -> Result<(Value, DocsReport)> {
    let options = crate::loader::LoadOptions {
        target_schema: target_schema.to_string(),
        target_name: "dev".into(),
        threads: 4,
        cli_vars: serde_json::Map::new(),
    };
    let (root, name) = (root.to_path_buf(), name.to_string());
    let loaded = tokio::task::spawn_blocking(move || crate::loader::load(&root, &name, options))
        .await
        .map_err(|e| TransformError::Other(e.to_string()))??;
    let loaded = std::sync::Arc::new(loaded);
    let options = crate::run::RunOptions {
        select: Vec::new(),
        exclude: Vec::new(),
        kinds: [Kind::Model, Kind::Snapshot].into(),
        threads: 4,
        full_refresh: false,
        fail_fast: false,
        compile_only: true,
    };
    let run = crate::run::run(
        loaded.clone(),
        wh.clone(),
        options,
        std::sync::Arc::new(Quiet),
    )
    .await?;
    let mut compiled = BTreeMap::new();
    let mut failed = Vec::new();
    for r in run.results {
        match r.compiled_sql {
            Some(sql) => {
                compiled.insert(r.unique_id, sql);
            }
            None if r.status.is_failure() => failed.push((r.unique_id, first_line(&r.message))),
            None => {}
        }
    }
    let (data, mut report) = data(&loaded, wh, &compiled).await?;
    report.untraced.extend(failed);
    Ok((data, report))
}

struct Quiet;

impl crate::run::Progress for Quiet {
    fn started(&self, _: &Node, _: usize, _: usize) {}
    fn finished(&self, _: &Node, _: &crate::run::NodeResult, _: usize, _: usize) {}
}

/// The site's data (`docs.json`) for `loaded`, given each node's compiled SQL.
pub async fn data(
    loaded: &Loaded,
    wh: &Warehouse,
    compiled: &BTreeMap<String, String>,
) -> Result<(Value, DocsReport)> {
    let nodes = &loaded.nodes;
    let results = last_results(&loaded.root.root.join("target").join("run_results.json"));
    // relation `schema.name` → documented node, to link lineage sources back to nodes.
    let mut by_relation: BTreeMap<String, String> = BTreeMap::new();
    for node in nodes.nodes.values() {
        if node.kind == Kind::Model && node.config.materialized() == "ephemeral" {
            by_relation.insert(
                format!("{}{}", crate::lineage::EPHEMERAL_PREFIX, node.name).to_lowercase(),
                node.unique_id.clone(),
            );
        } else if matches!(node.kind, Kind::Model | Kind::Seed | Kind::Snapshot) {
            let rel = relation_of(node);
            by_relation.insert(
                format!("{}.{}", rel.schema, rel.identifier).to_lowercase(),
                node.unique_id.clone(),
            );
        }
    }
    for source in nodes.sources.values() {
        by_relation.insert(
            format!("{}.{}", source.schema, source.identifier).to_lowercase(),
            source.unique_id.clone(),
        );
    }
    let known: std::collections::BTreeSet<String> = by_relation.keys().cloned().collect();
    let mut report = DocsReport {
        dir: PathBuf::new(),
        nodes: 0,
        columns: 0,
        traced_columns: 0,
        untraced: Vec::new(),
    };
    let mut out_nodes = Vec::new();
    for node in nodes.nodes.values() {
        if !matches!(node.kind, Kind::Model | Kind::Seed | Kind::Snapshot) {
            continue;
        }
        let rel = relation_of(node);
        let ephemeral = rel.kind == "cte";
        let relation = format!("{}.{}", rel.schema, rel.identifier);
        let actual = if ephemeral {
            None
        } else {
            wh.describe(&relation).await.ok()
        };
        let sql = compiled.get(&node.unique_id);
        let lineage: std::result::Result<Vec<ColumnLineage>, String> = match (node.kind, sql) {
            (Kind::Seed, _) => Ok(Vec::new()),
            (_, Some(sql)) => match wh.logical_plan(sql).await {
                Ok(plan) => Ok(column_lineage(&plan, wh.default_schema(), &known)),
                Err(e) => Err(first_line(&e.to_string())),
            },
            (_, None) => Err("not compiled".into()),
        };
        if let Err(why) = &lineage {
            report.untraced.push((node.unique_id.clone(), why.clone()));
        }
        let lineage_of: Vec<&ColumnLineage> = lineage
            .as_ref()
            .map(|l| l.iter().collect())
            .unwrap_or_default();
        let columns = columns_json(
            nodes,
            node,
            &node.columns,
            actual.as_ref().map(|d| d.columns.as_slice()),
            &lineage_of,
            &by_relation,
            &results,
            &mut report,
        );
        out_nodes.push(json!({
            "id": node.unique_id,
            "kind": node.kind.as_str(),
            "name": node.name,
            "package": node.package,
            "path": node.path,
            "folder": node.fqn[..node.fqn.len().saturating_sub(1)].join("/"),
            "relation": (!ephemeral).then_some(relation),
            "materialized": if node.kind == Kind::Model { node.config.materialized() } else { node.kind.as_str() },
            "built": actual.is_some(),
            "rows": actual.as_ref().and_then(|d| d.rows),
            "description": render_description(&node.description, &nodes.docs),
            "tags": node.config.tags(),
            "depends_on": node.depends_on,
            "raw_sql": node.raw_sql,
            "compiled_sql": sql,
            "columns": columns,
            "tests": tests_of(nodes, &node.unique_id, None, &results),
            "lineage_error": lineage.err(),
        }));
    }
    for source in nodes.sources.values() {
        let actual = wh
            .describe(&format!("{}.{}", source.schema, source.identifier))
            .await
            .ok();
        let mut columns = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for c in &source.columns {
            seen.insert(c.name.to_lowercase());
            let ty = actual.as_ref().and_then(|d| {
                d.columns
                    .iter()
                    .find(|a| a.name.eq_ignore_ascii_case(&c.name))
                    .map(|a| a.data_type.clone())
            });
            columns.push(json!({
                "name": c.name, "type": ty.or(c.data_type.clone()),
                "description": render_description(&c.description, &nodes.docs),
                "tests": tests_of(nodes, &source.unique_id, Some(&c.name), &results),
                "lineage": null,
            }));
        }
        for a in actual.iter().flat_map(|d| d.columns.iter()) {
            if seen.insert(a.name.to_lowercase()) {
                columns.push(json!({"name": a.name, "type": a.data_type, "description": "", "tests": [], "lineage": null}));
            }
        }
        report.columns += columns.len();
        out_nodes.push(json!({
            "id": source.unique_id,
            "kind": "source",
            "name": format!("{}.{}", source.source_name, source.name),
            "package": source.package,
            "path": source.file.strip_prefix(&loaded.root.root).unwrap_or(&source.file).display().to_string(),
            "folder": source.source_name,
            "relation": format!("{}.{}", source.schema, source.identifier),
            "materialized": "source",
            "built": actual.is_some(),
            "rows": actual.as_ref().and_then(|d| d.rows),
            "description": render_description(&source.description, &nodes.docs),
            "tags": [],
            "depends_on": [],
            "raw_sql": null,
            "compiled_sql": null,
            "columns": columns,
            "tests": tests_of(nodes, &source.unique_id, None, &results),
            "lineage_error": null,
        }));
    }
    report.nodes = out_nodes.len();
    let data = json!({
        "project": loaded.root.name,
        "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "results_at": results.get("__generated_at").map(|r| r.0.clone()),
        "nodes": out_nodes,
    });
    Ok((data, report))
}

/// A model's columns: those the warehouse has (in its order), described by schema YAML,
/// with their tests and lineage; YAML-only columns (not built yet, or misspelled) last.
#[allow(clippy::too_many_arguments)]
fn columns_json(
    nodes: &Nodes,
    node: &Node,
    documented: &[crate::schema::Column],
    actual: Option<&[socle_warehouse::ColumnInfo]>,
    lineage: &[&ColumnLineage],
    by_relation: &BTreeMap<String, String>,
    results: &BTreeMap<String, (String, String)>,
    report: &mut DocsReport,
) -> Vec<Value> {
    let doc_of = |name: &str| {
        documented
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    };
    let mut names: Vec<(String, Option<String>)> = match actual {
        Some(cols) => cols
            .iter()
            .map(|c| (c.name.clone(), Some(c.data_type.clone())))
            .collect(),
        None => lineage.iter().map(|l| (l.column.clone(), None)).collect(),
    };
    for c in documented {
        if !names.iter().any(|(n, _)| n.eq_ignore_ascii_case(&c.name)) {
            names.push((c.name.clone(), c.data_type.clone()));
        }
    }
    let mut out = Vec::new();
    for (name, ty) in names {
        let doc = doc_of(&name);
        let lin = lineage
            .iter()
            .find(|l| l.column.eq_ignore_ascii_case(&name))
            .map(|l| {
                report.traced_columns += 1;
                json!({
                    "transform": l.transform,
                    "sources": l.sources.iter().map(|s| json!({
                        "node": by_relation.get(&s.relation.to_lowercase()),
                        "relation": s.relation,
                        "column": s.column,
                    })).collect::<Vec<_>>(),
                })
            });
        out.push(json!({
            "name": name,
            "type": ty.or_else(|| doc.and_then(|d| d.data_type.clone())),
            "description": doc.map(|d| render_description(&d.description, &nodes.docs)).unwrap_or_default(),
            "documented_only": actual.is_some() && lin.is_none() && doc.is_some(),
            "tests": tests_of(nodes, &node.unique_id, Some(&name), results),
            "lineage": lin,
        }));
    }
    report.columns += out.len();
    out
}

/// Tests attached to a node (or to one of its columns), with their last result.
fn tests_of(
    nodes: &Nodes,
    attached: &str,
    column: Option<&str>,
    results: &BTreeMap<String, (String, String)>,
) -> Vec<Value> {
    nodes
        .nodes
        .values()
        .filter(|n| n.kind == Kind::Test)
        .filter(|n| {
            let on_node = n.test.as_ref().is_some_and(|t| t.attached == attached)
                || (n.test.is_none() && n.depends_on.iter().any(|d| d == attached));
            let col = n.test.as_ref().and_then(|t| t.column_name.as_deref());
            on_node
                && match column {
                    Some(c) => col.is_some_and(|x| x.eq_ignore_ascii_case(c)),
                    None => col.is_none(),
                }
        })
        .map(|n| {
            let (status, message) = results
                .get(&n.unique_id)
                .cloned()
                .unwrap_or_else(|| ("not run".into(), String::new()));
            json!({
                "id": n.unique_id,
                "name": n.test.as_ref().map(|t| t.test.clone()).unwrap_or_else(|| n.name.clone()),
                "full_name": n.name,
                "status": status,
                "message": message,
            })
        })
        .collect()
}

/// `unique_id → (status, message)` from the last run (`__generated_at` → its time).
fn last_results(path: &Path) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return out;
    };
    if let Some(at) = v.pointer("/metadata/generated_at").and_then(Value::as_str) {
        out.insert("__generated_at".into(), (at.to_string(), String::new()));
    }
    for r in v
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(id) = r.get("unique_id").and_then(Value::as_str) {
            let status = r.get("status").and_then(Value::as_str).unwrap_or("");
            let message = r.get("message").and_then(Value::as_str).unwrap_or("");
            out.insert(id.to_string(), (status.to_string(), message.to_string()));
        }
    }
    out
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

fn write_site(dir: &Path, data: &Value) -> Result<()> {
    let io = |e: std::io::Error| TransformError::io(dir, e);
    std::fs::create_dir_all(dir).map_err(io)?;
    let json = serde_json::to_string(data).map_err(|e| TransformError::Other(e.to_string()))?;
    // Inside <script>, `</` would end the element early.
    let embedded = json.replace("</", "<\\/");
    let html = TEMPLATE.replace("/*__SOCLE_DOCS_DATA__*/null", &embedded);
    std::fs::write(dir.join("index.html"), html).map_err(io)?;
    let pretty =
        serde_json::to_string_pretty(data).map_err(|e| TransformError::Other(e.to_string()))?;
    std::fs::write(dir.join("docs.json"), pretty).map_err(io)?;
    Ok(())
}
