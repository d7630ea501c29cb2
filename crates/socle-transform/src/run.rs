//! Running selected nodes in DAG order on a pool of threads: compile (render with the
//! warehouse behind `ref` and `run_query`), materialize, test; skip what depends on a
//! failure; report like dbt (PASS / WARN / ERROR / SKIP).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use socle_warehouse::Warehouse;
use tokio::task::JoinSet;

use crate::error::{Result, TransformError};
use crate::graph::{Graph, select};
use crate::jinja::Scope;
use crate::loader::Loaded;
use crate::materialize;
use crate::nodes::{Kind, Node};
use crate::resolver::{WarehouseResolver, relation_of};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    /// Kinds of node executed (others in the selection are ignored).
    pub kinds: BTreeSet<Kind>,
    pub threads: usize,
    pub full_refresh: bool,
    pub fail_fast: bool,
    /// Compile only (`socle compile`): nothing is written to the warehouse.
    pub compile_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Pass,
    Warn,
    Fail,
    Error,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }

    pub fn is_failure(self) -> bool {
        matches!(self, Status::Fail | Status::Error)
    }
}

#[derive(Debug, Clone)]
pub struct NodeResult {
    pub unique_id: String,
    pub status: Status,
    pub message: String,
    pub duration: Duration,
    pub compiled_sql: Option<String>,
    /// Failing rows of a test.
    pub failures: Option<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub results: Vec<NodeResult>,
    pub elapsed: Duration,
}

impl RunReport {
    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }

    pub fn success(&self) -> bool {
        !self.results.iter().any(|r| r.status.is_failure())
    }
}

/// Where progress goes (the CLI prints dbt-style lines).
pub trait Progress: Send + Sync {
    fn started(&self, node: &Node, index: usize, total: usize);
    fn finished(&self, node: &Node, result: &NodeResult, index: usize, total: usize);
}

pub async fn run(
    loaded: Arc<Loaded>,
    wh: Warehouse,
    options: RunOptions,
    progress: Arc<dyn Progress>,
) -> Result<RunReport> {
    let started = Instant::now();
    let graph = Graph::new(&loaded.nodes);
    let order = graph.order(&loaded.nodes)?;
    let selected = select(&loaded.nodes, &graph, &options.select, &options.exclude)?;
    let todo: Vec<String> = order
        .into_iter()
        .filter(|id| selected.contains(id))
        .filter(|id| {
            loaded
                .nodes
                .nodes
                .get(id)
                .is_some_and(|n| options.kinds.contains(&n.kind))
        })
        .filter(|id| {
            !(loaded.nodes.nodes[id].kind == Kind::Model
                && loaded.nodes.nodes[id].config.materialized() == "ephemeral")
                || options.compile_only
        })
        .collect();
    let total = todo.len();
    let resolver = Arc::new(WarehouseResolver {
        wh: wh.clone(),
        handle: tokio::runtime::Handle::current(),
        nodes: Arc::new(loaded.nodes.clone()),
    });
    if !options.compile_only {
        project_hooks(
            &loaded,
            &resolver,
            &loaded.root.on_run_start,
            "on-run-start",
            Vec::new(),
        )
        .await?;
    }
    let todo_set: BTreeSet<String> = todo.iter().cloned().collect();
    // Each node's nearest executed ancestors, computed once (the scheduler looks at the
    // pending nodes after every completion).
    let parents_of: BTreeMap<String, Vec<String>> = todo
        .iter()
        .map(|id| (id.clone(), upstream_in(&loaded, id, &todo_set)))
        .collect();
    let mut done: BTreeMap<String, Status> = BTreeMap::new();
    let mut results: Vec<NodeResult> = Vec::new();
    let mut pending: Vec<String> = todo;
    let mut running: JoinSet<NodeResult> = JoinSet::new();
    let mut index = 0usize;
    let mut indexes: BTreeMap<String, usize> = BTreeMap::new();
    let mut stop = false;
    loop {
        // Start every node whose executed parents are done.
        let mut i = 0;
        while i < pending.len() && running.len() < options.threads.max(1) && !stop {
            let parents = &parents_of[&pending[i]];
            if parents.iter().any(|p| !done.contains_key(p)) {
                i += 1;
                continue;
            }
            let id = pending.remove(i);
            let node = loaded.nodes.nodes[&id].clone();
            index += 1;
            if let Some(bad) = parents
                .iter()
                .find(|p| done[*p].is_failure() || done[*p] == Status::Skipped)
            {
                let result = NodeResult {
                    unique_id: id.clone(),
                    status: Status::Skipped,
                    message: format!("skipped: upstream `{}` did not succeed", short(bad)),
                    duration: Duration::ZERO,
                    compiled_sql: None,
                    failures: None,
                };
                progress.finished(&node, &result, index, total);
                done.insert(id, Status::Skipped);
                results.push(result);
                continue;
            }
            progress.started(&node, index, total);
            indexes.insert(id.clone(), index);
            let (loaded, wh, resolver, options) = (
                loaded.clone(),
                wh.clone(),
                resolver.clone(),
                options.clone(),
            );
            running.spawn(async move {
                let t = Instant::now();
                let outcome = execute(&loaded, &wh, resolver, &node, &options).await;
                let (status, message, compiled_sql, failures) = match outcome {
                    Ok(o) => (o.status, o.message, o.compiled_sql, o.failures),
                    Err(e) => (Status::Error, e.to_string(), None, None),
                };
                NodeResult {
                    unique_id: node.unique_id.clone(),
                    status,
                    message,
                    duration: t.elapsed(),
                    compiled_sql,
                    failures,
                }
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let result =
            joined.map_err(|e| TransformError::Other(format!("a node's task panicked: {e}")))?;
        let node = &loaded.nodes.nodes[&result.unique_id];
        progress.finished(
            node,
            &result,
            indexes.get(&result.unique_id).copied().unwrap_or(0),
            total,
        );
        if options.fail_fast && result.status.is_failure() {
            stop = true;
        }
        done.insert(result.unique_id.clone(), result.status);
        results.push(result);
    }
    if stop {
        for id in pending {
            results.push(NodeResult {
                unique_id: id,
                status: Status::Skipped,
                message: "skipped: --fail-fast after a failure".into(),
                duration: Duration::ZERO,
                compiled_sql: None,
                failures: None,
            });
        }
    }
    if !options.compile_only {
        let extra = end_context(&loaded, &results);
        project_hooks(
            &loaded,
            &resolver,
            &loaded.root.on_run_end,
            "on-run-end",
            extra,
        )
        .await?;
    }
    Ok(RunReport {
        results,
        elapsed: started.elapsed(),
    })
}

/// `on-run-start` / `on-run-end` of dbt_project.yml: rendered in the root project's scope
/// and run in order.
async fn project_hooks(
    loaded: &Arc<Loaded>,
    resolver: &Arc<WarehouseResolver>,
    hooks: &[String],
    which: &str,
    extra: Vec<(String, serde_json::Value)>,
) -> Result<()> {
    for (i, hook) in hooks.iter().enumerate() {
        let sql = {
            let (task_loaded, resolver, hook) = (loaded.clone(), resolver.clone(), hook.clone());
            let extra = extra.clone();
            let name = format!("__{which}__{i}");
            tokio::task::spawn_blocking(move || {
                let scope = Scope::new(
                    &task_loaded.root.name,
                    true,
                    None,
                    false,
                    serde_json::Map::new(),
                    json!({"name": name, "resource_type": "operation"}),
                    task_loaded.target(),
                    task_loaded.vars(),
                    false,
                    resolver,
                );
                *scope.extra.lock().expect("extra lock") = extra;
                task_loaded.jinja.render_str(&name, &hook, &scope)
            })
            .await
            .map_err(|e| TransformError::Other(e.to_string()))?
            .map_err(|e| TransformError::Jinja {
                file: loaded.root.root.join("dbt_project.yml"),
                line: 0,
                message: format!("{which} hook {}: {}", i + 1, e.message),
            })?
        };
        if !sql.trim().is_empty() {
            resolver
                .wh
                .execute(&sql)
                .await
                .map_err(|e| TransformError::Other(format!("{which} hook {}: {e}", i + 1)))?;
        }
    }
    Ok(())
}

/// dbt's `results` (one per executed node: `node`, `status`, `message`, `execution_time`,
/// `failures`), `schemas` and `database_schemas` for `on-run-end` hooks.
fn end_context(loaded: &Loaded, results: &[NodeResult]) -> Vec<(String, serde_json::Value)> {
    let mut schemas: Vec<String> = Vec::new();
    let list: Vec<serde_json::Value> = results
        .iter()
        .filter_map(|r| {
            let node = loaded.nodes.nodes.get(&r.unique_id)?;
            // dbt puts tests in `<schema>_dbt_test__audit`, and counts the schemas of the
            // nodes that did not fail.
            let schema = if node.kind == Kind::Test {
                format!("{}_dbt_test__audit", node.schema)
            } else {
                node.schema.clone()
            };
            if !r.status.is_failure() && r.status != Status::Skipped && !schemas.contains(&schema) {
                schemas.push(schema.clone());
            }
            Some(json!({
                "node": {
                    "unique_id": node.unique_id, "name": node.name,
                    "resource_type": node.kind.as_str(), "package_name": node.package,
                    "schema": schema, "alias": node.alias, "path": node.path,
                    "config": node.config.0, "tags": node.config.tags(),
                },
                "status": r.status.as_str(),
                "message": r.message,
                "execution_time": r.duration.as_secs_f64(),
                "failures": r.failures,
                "adapter_response": {},
            }))
        })
        .collect();
    let database_schemas: Vec<serde_json::Value> =
        schemas.iter().map(|s| json!(["socle", s])).collect();
    vec![
        ("results".into(), serde_json::Value::Array(list)),
        ("schemas".into(), json!(schemas)),
        ("database_schemas".into(), json!(database_schemas)),
    ]
}

fn short(id: &str) -> &str {
    id.rsplit('.').next().unwrap_or(id)
}

/// The nearest executed ancestors of `id` (through nodes not being executed, such as
/// ephemeral models, which are inlined).
fn upstream_in(loaded: &Loaded, id: &str, todo: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<String> = loaded
        .nodes
        .nodes
        .get(id)
        .map(|n| n.depends_on.clone())
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    while let Some(p) = stack.pop() {
        if !seen.insert(p.clone()) {
            continue;
        }
        if todo.contains(&p) {
            out.push(p);
        } else if let Some(n) = loaded.nodes.nodes.get(&p) {
            stack.extend(n.depends_on.iter().cloned());
        }
    }
    out
}

pub struct Outcome {
    pub status: Status,
    pub message: String,
    pub compiled_sql: Option<String>,
    pub failures: Option<u64>,
}

async fn execute(
    loaded: &Arc<Loaded>,
    wh: &Warehouse,
    resolver: Arc<WarehouseResolver>,
    node: &Node,
    options: &RunOptions,
) -> Result<Outcome> {
    if node.kind == Kind::Seed {
        if options.compile_only {
            return Ok(Outcome {
                status: Status::Success,
                message: "seed".into(),
                compiled_sql: None,
                failures: None,
            });
        }
        return materialize::seed(wh, node, options.full_refresh).await;
    }
    let rel = relation_of(node);
    let incremental = node.kind == Kind::Model
        && node.config.materialized() == "incremental"
        && !options.full_refresh
        && !options.compile_only
        && materialize::exists(wh, &rel.schema, &rel.identifier).await?;
    let sql = {
        let (loaded, node, resolver) = (loaded.clone(), node.clone(), resolver.clone());
        let full_refresh = options.full_refresh;
        tokio::task::spawn_blocking(move || {
            compile(&loaded, resolver, &node, incremental, full_refresh)
        })
        .await
        .map_err(|e| TransformError::Other(format!("compile task failed: {e}")))??
    };
    write_compiled(loaded, node, &sql);
    if options.compile_only || node.kind == Kind::Analysis {
        return Ok(Outcome {
            status: Status::Success,
            message: "compiled".into(),
            compiled_sql: Some(sql),
            failures: None,
        });
    }
    let hooks = |key: &str| node.config.hooks(key);
    for hook in hooks("pre_hook") {
        run_hook(loaded, &resolver, node, &hook).await?;
    }
    let outcome = match node.kind {
        Kind::Test => materialize::test(wh, node, &sql).await,
        Kind::Snapshot => crate::snapshot::run(wh, node, &rel, &sql).await,
        _ => materialize::model(wh, node, &rel, &sql, incremental).await,
    }
    .map_err(|e| sql_error(loaded, node, &sql, e))?;
    for hook in hooks("post_hook") {
        run_hook(loaded, &resolver, node, &hook).await?;
    }
    Ok(Outcome {
        compiled_sql: Some(sql),
        ..outcome
    })
}

/// Renders a node for running, with its ephemeral ancestors inlined as CTEs.
pub fn compile(
    loaded: &Loaded,
    resolver: Arc<WarehouseResolver>,
    node: &Node,
    incremental: bool,
    full_refresh: bool,
) -> Result<String> {
    let scope = scope_for(loaded, resolver.clone(), node, incremental, full_refresh);
    let sql = loaded
        .jinja
        .render(&node.unique_id, &scope)
        .map_err(|e| TransformError::Jinja {
            file: if e.template == node.unique_id {
                node.file.clone()
            } else {
                loaded.root.root.join(&e.template)
            },
            line: e.line,
            message: e.message,
        })?;
    let mut ctes = Vec::new();
    let mut seen = BTreeSet::new();
    collect_ephemeral(loaded, resolver, node, full_refresh, &mut ctes, &mut seen)?;
    Ok(inject_ctes(&sql, &ctes))
}

fn collect_ephemeral(
    loaded: &Loaded,
    resolver: Arc<WarehouseResolver>,
    node: &Node,
    full_refresh: bool,
    out: &mut Vec<(String, String)>,
    seen: &mut BTreeSet<String>,
) -> Result<()> {
    for dep in &node.depends_on {
        let Some(parent) = loaded.nodes.nodes.get(dep) else {
            continue;
        };
        if parent.kind != Kind::Model
            || parent.config.materialized() != "ephemeral"
            || !seen.insert(dep.clone())
        {
            continue;
        }
        collect_ephemeral(loaded, resolver.clone(), parent, full_refresh, out, seen)?;
        let scope = scope_for(loaded, resolver.clone(), parent, false, full_refresh);
        let sql = loaded
            .jinja
            .render(&parent.unique_id, &scope)
            .map_err(|e| TransformError::Jinja {
                file: parent.file.clone(),
                line: e.line,
                message: e.message,
            })?;
        out.push((format!("__dbt__cte__{}", parent.name), sql));
    }
    Ok(())
}

/// Puts `with a as (...), b as (...)` in front of `sql`, merging with its own WITH.
pub fn inject_ctes(sql: &str, ctes: &[(String, String)]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    let defs: Vec<String> = ctes
        .iter()
        .map(|(name, body)| format!("{name} as (\n{}\n)", body.trim()))
        .collect();
    let trimmed = sql.trim_start();
    let starts_with_with = trimmed.len() >= 5
        && trimmed[..4].eq_ignore_ascii_case("with")
        && trimmed[4..].starts_with(char::is_whitespace);
    if starts_with_with {
        format!("with {},\n{}", defs.join(",\n"), &trimmed[5..])
    } else {
        format!("with {}\n{}", defs.join(",\n"), sql)
    }
}

fn scope_for(
    loaded: &Loaded,
    resolver: Arc<WarehouseResolver>,
    node: &Node,
    incremental: bool,
    full_refresh: bool,
) -> Arc<Scope> {
    let rel = relation_of(node);
    let model = json!({
        "name": node.name, "unique_id": node.unique_id, "resource_type": node.kind.as_str(),
        "package_name": node.package, "path": node.path, "original_file_path": node.path,
        "fqn": node.fqn, "schema": node.schema, "alias": node.alias, "config": node.config.0,
        "description": node.description, "tags": node.config.tags(),
    });
    Scope::new(
        &node.package,
        true,
        (node.kind != Kind::Test).then_some(rel),
        incremental,
        node.config.0.clone(),
        model,
        loaded.target(),
        loaded.vars(),
        full_refresh,
        resolver,
    )
}

async fn run_hook(
    loaded: &Arc<Loaded>,
    resolver: &Arc<WarehouseResolver>,
    node: &Node,
    hook: &str,
) -> Result<()> {
    let sql = {
        let (loaded, node, resolver, hook) = (
            loaded.clone(),
            node.clone(),
            resolver.clone(),
            hook.to_string(),
        );
        tokio::task::spawn_blocking(move || {
            let scope = scope_for(&loaded, resolver, &node, false, false);
            loaded
                .jinja
                .render_str(&format!("__hook__{}", node.unique_id), &hook, &scope)
                .map_err(|e| TransformError::Jinja {
                    file: node.file.clone(),
                    line: e.line,
                    message: format!("hook: {}", e.message),
                })
        })
        .await
        .map_err(|e| TransformError::Other(e.to_string()))??
    };
    if !sql.trim().is_empty() {
        resolver
            .wh
            .execute(&sql)
            .await
            .map_err(|e| sql_error(loaded, node, &sql, e.into()))?;
    }
    Ok(())
}

fn sql_error(loaded: &Loaded, node: &Node, sql: &str, e: TransformError) -> TransformError {
    let _ = loaded;
    match e {
        TransformError::Warehouse(w) if matches!(*w, socle_warehouse::WarehouseError::Sql(_)) => {
            let socle_warehouse::WarehouseError::Sql(s) = *w else {
                unreachable!("matched above")
            };
            let line = s.position.map_or(1, |(l, _)| l as usize);
            TransformError::Sql {
                file: node.file.clone(),
                line,
                message: format!("{} (line {line} of the compiled SQL)", s.message),
                excerpt: crate::error::excerpt(sql, line),
            }
        }
        other => other,
    }
}

fn write_compiled(loaded: &Loaded, node: &Node, sql: &str) {
    let dir = loaded
        .root
        .root
        .join(&loaded.root.target_path)
        .join("compiled")
        .join(&node.package);
    let file = if node.test.is_some() {
        dir.join(&node.path).join(format!("{}.sql", node.name))
    } else {
        dir.join(&node.path)
    };
    if let Some(parent) = file.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    if let Err(e) = std::fs::write(&file, sql) {
        tracing::warn!(file = %file.display(), "cannot write compiled SQL: {e}");
    }
}
