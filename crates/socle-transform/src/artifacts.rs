//! `target/manifest.json` and `target/run_results.json`, shaped like dbt's (manifest v12,
//! run results v6) so that tools reading them keep working.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::docs::render_description;
use crate::error::{Result, TransformError};
use crate::loader::Loaded;
use crate::nodes::{Kind, Node};
use crate::resolver::relation_of;
use crate::run::RunReport;

/// Docs blocks by name, for `{{ doc('...') }}` in descriptions.
type Docs = std::collections::BTreeMap<String, String>;

const DBT_VERSION: &str = "1.10.0";

/// An id for one invocation (time and process id, as hex).
pub fn invocation_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let raw = format!("{:032x}", nanos ^ ((std::process::id() as u128) << 96));
    format!(
        "{}-{}-{}-{}-{}",
        &raw[0..8],
        &raw[8..12],
        &raw[12..16],
        &raw[16..20],
        &raw[20..32]
    )
}

fn metadata(kind: &str, invocation: &str) -> Value {
    json!({
        "dbt_schema_version": format!("https://schemas.getdbt.com/dbt/{kind}.json"),
        "dbt_version": DBT_VERSION,
        "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "invocation_id": invocation,
        "env": {},
        "adapter_type": "duckdb",
    })
}

fn columns(cols: &[crate::schema::Column], docs: &Docs) -> Value {
    let mut out = Map::new();
    for c in cols {
        out.insert(
            c.name.clone(),
            json!({"name": c.name, "description": render_description(&c.description, docs), "meta": c.meta, "data_type": c.data_type,
                   "constraints": [], "quote": null, "tags": []}),
        );
    }
    Value::Object(out)
}

fn node_json(node: &Node, docs: &Docs) -> Value {
    let rel = relation_of(node);
    let relation_name = (node.kind != Kind::Test && rel.kind != "cte").then(|| rel.rendered());
    let mut v = json!({
        "database": "socle",
        "schema": node.schema,
        "name": node.name,
        "resource_type": node.kind.as_str(),
        "package_name": node.package,
        "path": node.path,
        "original_file_path": node.path,
        "unique_id": node.unique_id,
        "fqn": std::iter::once(node.package.clone()).chain(node.fqn.iter().cloned()).collect::<Vec<_>>(),
        "alias": node.alias,
        "checksum": {"name": "none", "checksum": ""},
        "config": node.config.0,
        "tags": node.config.tags(),
        "description": render_description(&node.description, docs),
        "columns": columns(&node.columns, docs),
        "meta": node.config.get("meta").cloned().unwrap_or(json!({})),
        "relation_name": relation_name,
        "raw_code": node.raw_sql,
        "language": "sql",
        "refs": node.refs.iter().map(|(p, n)| json!({"name": n, "package": p, "version": null})).collect::<Vec<_>>(),
        "sources": node.sources.iter().map(|(s, t)| json!([s, t])).collect::<Vec<_>>(),
        "depends_on": {"macros": [], "nodes": node.depends_on},
        "compiled_path": null,
    });
    if let Some(t) = &node.test {
        let (namespace, name) = match t.test.split_once('.') {
            Some((ns, n)) => (Value::String(ns.to_string()), n.to_string()),
            None => (Value::Null, t.test.clone()),
        };
        v["test_metadata"] = json!({"name": name, "kwargs": t.kwargs, "namespace": namespace});
        v["column_name"] = json!(t.column_name);
        v["attached_node"] = json!(t.attached);
    }
    v
}

fn write(path: &Path, value: &Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| TransformError::io(dir, e))?;
    }
    let text =
        serde_json::to_string_pretty(value).map_err(|e| TransformError::Other(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| TransformError::io(path, e))
}

/// Writes `target/manifest.json`.
pub fn write_manifest(loaded: &Loaded, invocation: &str) -> Result<()> {
    let mut nodes = Map::new();
    let mut parent_map = Map::new();
    let mut child_map: Map<String, Value> = Map::new();
    for (id, n) in &loaded.nodes.nodes {
        nodes.insert(id.clone(), node_json(n, &loaded.nodes.docs));
        parent_map.insert(id.clone(), json!(n.depends_on));
        child_map.entry(id.clone()).or_insert(json!([]));
        for d in &n.depends_on {
            let entry = child_map.entry(d.clone()).or_insert(json!([]));
            if let Value::Array(items) = entry {
                items.push(json!(id));
            }
        }
    }
    let mut sources = Map::new();
    for (id, s) in &loaded.nodes.sources {
        sources.insert(
            id.clone(),
            json!({"database": "socle", "schema": s.schema, "name": s.name, "source_name": s.source_name,
                   "resource_type": "source", "package_name": s.package, "unique_id": id,
                   "identifier": s.identifier, "description": render_description(&s.description, &loaded.nodes.docs), "columns": columns(&s.columns, &loaded.nodes.docs),
                   "relation_name": format!("{}.{}", crate::nodes::quote(&s.schema), crate::nodes::quote(&s.identifier)),
                   "fqn": [s.package, s.source_name, s.name]}),
        );
        child_map.entry(id.clone()).or_insert(json!([]));
        parent_map.insert(id.clone(), json!([]));
    }
    let docs: Map<String, Value> = loaded
        .nodes
        .docs
        .iter()
        .map(|(k, v)| {
            (
                format!("doc.{}.{k}", loaded.root.name),
                json!({"name": k, "block_contents": v}),
            )
        })
        .collect();
    let manifest = json!({
        "metadata": metadata("manifest/v12", invocation),
        "nodes": nodes, "sources": sources, "macros": {}, "docs": docs, "exposures": {}, "metrics": {},
        "groups": {}, "selectors": {}, "disabled": {}, "parent_map": parent_map, "child_map": child_map,
        "group_map": {}, "saved_queries": {}, "semantic_models": {}, "unit_tests": {},
    });
    write(
        &loaded
            .root
            .root
            .join(&loaded.root.target_path)
            .join("manifest.json"),
        &manifest,
    )
}

/// Writes `target/run_results.json`.
pub fn write_run_results(
    loaded: &Loaded,
    report: &RunReport,
    invocation: &str,
    command: &str,
) -> Result<()> {
    let results: Vec<Value> = report
        .results
        .iter()
        .map(|r| {
            let node = loaded.nodes.nodes.get(&r.unique_id);
            let relation_name = node
                .filter(|n| n.kind != Kind::Test)
                .map(|n| relation_of(n).rendered());
            json!({
                "status": r.status.as_str(),
                "timing": [],
                "thread_id": "Thread-1",
                "execution_time": r.duration.as_secs_f64(),
                "adapter_response": {},
                "message": r.message,
                "failures": r.failures,
                "unique_id": r.unique_id,
                "compiled": r.compiled_sql.is_some(),
                "compiled_code": r.compiled_sql,
                "relation_name": relation_name,
                "batch_results": null,
            })
        })
        .collect();
    let doc = json!({
        "metadata": metadata("run-results/v6", invocation),
        "results": results,
        "elapsed_time": report.elapsed.as_secs_f64(),
        "args": {"which": command},
    });
    write(
        &loaded
            .root
            .root
            .join(&loaded.root.target_path)
            .join("run_results.json"),
        &doc,
    )
}
