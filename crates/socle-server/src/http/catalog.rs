//! The catalog: project, sources and streams, schemas, tables and columns with row counts,
//! freshness and descriptions, search, the lineage graph and test results.
//!
//! Reading it ([`socle_app::catalog`]) means opening every Delta table and compiling the
//! dbt project, so it is built once and kept as a [`Snapshot`]. When data changed since
//! (a run or an extraction ended, a write went through the API) it is read again before
//! answering; when it is merely older than `catalog_ttl`, it is read again in the
//! background while callers get the old one (stale-while-revalidate). An idle server
//! rebuilds nothing.
//!
//! `socle serve` builds the snapshot in a child process (`socle catalog-snapshot`, see
//! [`Options::catalog_command`](super::Options)) and keeps only the result: reading 200 Delta
//! logs and compiling a dbt project would otherwise leave the daemon holding ~150 MiB of
//! query-engine code and allocator pages it no longer needs. It is then read once as the
//! server starts, so that the first visitor does not wait. Without a command (the
//! library's default) it is built in process by [`read`], at the first request.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use socle_app::catalog::{Snapshot, read};
use socle_core::frames;
use tokio::io::AsyncReadExt;

use super::{ApiError, AppState, Caller, Params, internal};
use crate::auth::Role;

/// The current snapshot and whether a rebuild is under way or asked for.
#[derive(Default)]
pub struct Cache {
    current: RwLock<Option<Arc<Snapshot>>>,
    building: tokio::sync::Mutex<()>,
    stale: AtomicBool,
    /// When the run history was last asked whether a run ended after the snapshot.
    checked: std::sync::Mutex<Option<Instant>>,
}

/// How often the run history is asked whether data changed since the snapshot.
const CHECK_EVERY: Duration = Duration::from_secs(1);

impl Cache {
    /// The snapshot served now, if one was built.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.read().expect("catalog").clone()
    }

    /// Makes `s` the snapshot served.
    fn set(&self, s: Snapshot) -> Arc<Snapshot> {
        let s = Arc::new(s);
        *self.current.write().expect("catalog") = Some(s.clone());
        s
    }

    /// Asks for a rebuild at the next read (data changed).
    pub fn invalidate(&self) {
        self.stale.store(true, Ordering::Relaxed);
    }
}

/// The catalog to answer from. The current snapshot while it is younger than
/// `catalog_ttl` (then read again in the background, the caller served the old one), or
/// read again now when data changed since it was read (a run or an extraction ended, a
/// write went through the API): the caller waits for the new one, and so do the callers
/// that come meanwhile. The first time, one read now.
pub async fn snapshot(state: &Arc<AppState>) -> Result<Arc<Snapshot>, ApiError> {
    if let Some(s) = state.catalog.current() {
        if state.catalog.stale.load(Ordering::Relaxed) || changed_since(state, &s).await {
            return match read_now(state, Some(&s)).await {
                Ok(new) => Ok(new),
                Err(e) => {
                    tracing::warn!("catalog not refreshed: {}", e.1);
                    Ok(s)
                }
            };
        }
        if s.built.elapsed() > state.options.catalog_ttl
            && let Ok(guard) = state.catalog.building.try_lock()
        {
            drop(guard);
            let state = state.clone();
            tokio::spawn(async move {
                let Ok(_guard) = state.catalog.building.try_lock() else {
                    return;
                };
                match build(&state).await {
                    Ok(s) => {
                        state.catalog.set(s);
                    }
                    Err(e) => tracing::warn!("catalog not refreshed: {}", e.1),
                }
            });
        }
        return Ok(s);
    }
    read_now(state, None).await
}

/// Reads the catalog now, unless another caller replaced `seen` (the snapshot this one
/// judged out of date; `None`: there was none) while this one waited its turn.
async fn read_now(
    state: &AppState,
    seen: Option<&Arc<Snapshot>>,
) -> Result<Arc<Snapshot>, ApiError> {
    let _guard = state.catalog.building.lock().await;
    if let Some(now) = state.catalog.current()
        && seen.is_none_or(|s| !Arc::ptr_eq(&now, s))
    {
        return Ok(now);
    }
    state.catalog.stale.store(false, Ordering::Relaxed);
    Ok(state.catalog.set(build(state).await?))
}

/// Longest a child process may take to read the catalog.
const CHILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Longest catalog a reader may answer: 512 MiB of JSON (about a million columns).
const MAX_CATALOG: usize = 512 << 20;

/// Whether a pipeline run or an extraction (the scheduler's, or another process's) ended
/// after `s` was read; asked of the database at most every [`CHECK_EVERY`].
async fn changed_since(state: &AppState, s: &Snapshot) -> bool {
    {
        let mut checked = state.catalog.checked.lock().expect("catalog");
        if checked.is_some_and(|t| t.elapsed() < CHECK_EVERY) {
            return false;
        }
        *checked = Some(Instant::now());
    }
    match state.meta.last_ended_at().await {
        Ok(Some(ended)) => ended > s.generated_at,
        Ok(None) => false,
        Err(e) => {
            tracing::warn!("catalog: the run history does not answer: {e}");
            false
        }
    }
}

async fn build(state: &AppState) -> Result<Snapshot, ApiError> {
    let Some(argv) = &state.options.catalog_command else {
        let wh = state.warehouse.get().await.map_err(internal)?;
        let project = &state.project;
        return read(
            &project.root,
            &project.config.name,
            &project.config.warehouse.default_schema,
            &wh,
        )
        .await
        .map_err(internal);
    };
    let started = Instant::now();
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| internal("empty catalog command"))?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| internal(format!("cannot start the catalog reader: {e}")))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    // Its answer is one frame (see `socle_core::frames`); what else it prints is ignored.
    let answer = async {
        let mut from_child = frames::Reader::with_max(stdout, "catalog reader", MAX_CATALOG);
        let mut snapshot = None;
        while let Some(incoming) = from_child.next::<Snapshot>().await.map_err(internal)? {
            if let frames::Incoming::Frame(s) = incoming {
                snapshot = Some(s);
            }
        }
        Ok::<_, ApiError>(snapshot)
    };
    let errors = async {
        let mut text = Vec::new();
        let _ = (&mut stderr).take(1 << 20).read_to_end(&mut text).await;
        text
    };
    let (snapshot, errors, status) = tokio::time::timeout(CHILD_TIMEOUT, async {
        tokio::join!(answer, errors, child.wait())
    })
    .await
    .map_err(|_| internal("the catalog reader took longer than 10 minutes"))?;
    let status = status.map_err(|e| internal(format!("the catalog reader failed: {e}")))?;
    if !status.success() {
        let stderr = String::from_utf8_lossy(&errors);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        return Err(internal(format!(
            "the catalog reader failed ({status}): {}",
            last.unwrap_or("no message")
        )));
    }
    let mut snapshot =
        snapshot?.ok_or_else(|| internal("the catalog reader ended without an answer"))?;
    snapshot.build_ms = started.elapsed().as_millis() as u64;
    Ok(snapshot)
}

/// `GET /api/project` (viewer): the project and what it holds.
pub async fn project(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Viewer)?;
    let root = &state.project.root;
    let pipelines = socle_orchestrate::pipeline::load_all(root)
        .map(|p| p.len())
        .unwrap_or(0);
    let sources = socle_connect::load_sources(root)
        .map(|s| s.len())
        .unwrap_or(0);
    let catalog = state.catalog.current();
    Ok(Json(json!({
        "name": state.project_name(),
        "version": env!("CARGO_PKG_VERSION"),
        "default_schema": state.project.config.warehouse.default_schema,
        "pipelines": pipelines,
        "sources": sources,
        "dbt_project": root.join("dbt_project.yml").is_file(),
        "tables": catalog.as_ref().map(|c| c.tables.len()),
        "catalog_generated_at": catalog.as_ref().map(|c| c.generated_at.clone()),
        "catalog_read_ms": catalog.as_ref().map(|c| c.build_ms),
        "limits": {
            "query_timeout_seconds": state.options.query_timeout.as_secs_f64(),
            "max_rows": state.options.max_rows,
            "query_queue_wait_seconds": state.options.query_queue_wait.as_secs_f64(),
            "max_answer_bytes": state.options.max_answer_bytes,
        },
    })))
}

/// `GET /api/sources` (viewer): sources, their streams and each stream's latest extraction.
pub async fn sources(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Viewer)?;
    let root = state.project.root.clone();
    let sources = tokio::task::spawn_blocking(move || socle_connect::load_sources(&root))
        .await
        .map_err(internal)?
        .map_err(|e| ApiError::bad_request(format!("the source files do not load: {e}")))?;
    let runs = state
        .meta
        .list_extract_runs(None, 1000)
        .await
        .map_err(internal)?;
    let mut out = Vec::new();
    for s in &sources {
        let c = s.common();
        let streams: Vec<Value> = c
            .streams
            .iter()
            .map(|st| {
                let last = runs
                    .iter()
                    .find(|r| r.source == c.name && r.stream == st.name);
                json!({
                    "name": st.name,
                    "description": st.description,
                    "table": st.table,
                    "write": st.write.as_str(),
                    "primary_key": st.primary_key,
                    "last_extraction": last.map(|r| json!({
                        "run_id": r.run_id, "status": r.status, "rows_loaded": r.rows_loaded,
                        "rows_rejected": r.rows_rejected, "started_at": r.started_at,
                        "ended_at": r.ended_at, "error": r.error,
                    })),
                })
            })
            .collect();
        out.push(json!({
            "name": c.name,
            "kind": c.kind,
            "description": c.description,
            "schema": c.schema,
            "streams": streams,
        }));
    }
    Ok(Json(json!(out)))
}

#[derive(Deserialize)]
pub struct TablesQuery {
    schema: Option<String>,
}

fn test_summary(node: Option<&Value>) -> Value {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    if let Some(n) = node {
        let column_tests = n["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["tests"].as_array().into_iter().flatten());
        for t in n["tests"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(column_tests)
        {
            *counts
                .entry(t["status"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
    }
    json!(counts)
}

/// `GET /api/tables[?schema=]` (viewer): tables and views with row counts, freshness and
/// test outcomes; no columns (see `/api/tables/{schema}/{name}`).
pub async fn tables(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params(q): Params<TablesQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Viewer)?;
    let snap = snapshot(&state).await?;
    let tables: Vec<Value> = snap
        .tables
        .iter()
        .filter(|t| q.schema.as_ref().is_none_or(|s| *s == t.schema))
        .map(|t| {
            let node = t.node.as_deref().and_then(|id| snap.node(id));
            json!({
                "schema": t.schema, "name": t.name, "kind": t.kind, "rows": t.rows,
                "version": t.version, "last_modified": t.last_modified,
                "description": t.description, "columns": t.columns.len(), "node": t.node,
                "materialized": node.map(|n| n["materialized"].clone()),
                "tests": test_summary(node),
            })
        })
        .collect();
    let mut schemas: Vec<&str> = snap.tables.iter().map(|t| t.schema.as_str()).collect();
    schemas.dedup();
    Ok(Json(json!({
        "generated_at": snap.generated_at,
        "schemas": schemas,
        "tables": tables,
        "notes": snap.notes,
    })))
}

/// `GET /api/tables/{schema}/{name}` (viewer): columns with types, descriptions, tests and
/// column-level lineage, and the dbt node's SQL, dependencies and tests.
pub async fn table(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path((schema, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Viewer)?;
    let snap = snapshot(&state).await?;
    let Some(t) = snap
        .tables
        .iter()
        .find(|t| t.schema.eq_ignore_ascii_case(&schema) && t.name.eq_ignore_ascii_case(&name))
    else {
        let all = snap
            .tables
            .iter()
            .map(|t| format!("{}.{}", t.schema, t.name));
        let wanted = format!("{schema}.{name}");
        let hint = socle_core::diag::did_you_mean(
            &wanted,
            all.collect::<Vec<_>>().iter().map(String::as_str),
        )
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
        return Err(ApiError::not_found(format!(
            "no table or view `{wanted}` in the catalog{hint}"
        )));
    };
    let node = t.node.as_deref().and_then(|id| snap.node(id));
    let documented = |col: &str| {
        node.and_then(|n| {
            n["columns"].as_array()?.iter().find(|c| {
                c["name"]
                    .as_str()
                    .is_some_and(|x| x.eq_ignore_ascii_case(col))
            })
        })
    };
    let columns: Vec<Value> = t
        .columns
        .iter()
        .map(|c| {
            let d = documented(&c.name);
            let description = c
                .description
                .clone()
                .filter(|s| !s.is_empty())
                .or_else(|| d.and_then(|d| d["description"].as_str().map(str::to_string)))
                .unwrap_or_default();
            json!({
                "name": c.name, "type": c.data_type, "nullable": c.nullable,
                "description": description,
                "tests": d.map(|d| d["tests"].clone()).unwrap_or(json!([])),
                "lineage": d.map(|d| d["lineage"].clone()).unwrap_or(Value::Null),
            })
        })
        .collect();
    let downstream: Vec<&str> = match &t.node {
        Some(id) => snap
            .nodes
            .iter()
            .filter(|n| {
                n["depends_on"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|x| x == id))
            })
            .filter_map(|n| n["id"].as_str())
            .collect(),
        None => Vec::new(),
    };
    Ok(Json(json!({
        "schema": t.schema, "name": t.name, "kind": t.kind, "rows": t.rows,
        "version": t.version, "files": t.files, "last_modified": t.last_modified,
        "description": t.description, "columns": columns,
        "node": node.map(|n| json!({
            "id": n["id"], "kind": n["kind"], "name": n["name"], "path": n["path"],
            "materialized": n["materialized"], "tags": n["tags"],
            "depends_on": n["depends_on"], "downstream": downstream,
            // Compiled SQL may hold a value a template read from a secret: masked.
            "raw_sql": n["raw_sql"],
            "compiled_sql": n["compiled_sql"].as_str().map(socle_core::secrets::redact),
            "tests": n["tests"], "lineage_error": n["lineage_error"],
        })),
        "generated_at": snap.generated_at,
    })))
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    limit: Option<usize>,
}

/// How well `text` matches `q` (lower case): 3 equal, 2 prefix, 1 contains, 0 not.
fn score(text: &str, q: &str) -> u8 {
    let text = text.to_lowercase();
    if text == q {
        3
    } else if text.starts_with(q) {
        2
    } else if text.contains(q) {
        1
    } else {
        0
    }
}

/// `GET /api/search?q=` (viewer): tables, columns and descriptions matching the words,
/// best first (names before descriptions, exact before prefix before anywhere).
pub async fn search(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Params(q): Params<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Viewer)?;
    let needle = q.q.trim().to_lowercase();
    if needle.is_empty() {
        return Err(ApiError::bad_request("give the words to look for: ?q=..."));
    }
    if needle.len() > 200 {
        return Err(ApiError::bad_request(
            "the search text is too long (200 characters at most)",
        ));
    }
    let snap = snapshot(&state).await?;
    let mut hits: Vec<(u8, Value)> = Vec::new();
    for t in &snap.tables {
        let full = format!("{}.{}", t.schema, t.name);
        let s = score(&t.name, &needle).max(score(&full, &needle));
        let d = score(&t.description, &needle);
        if s > 0 || d > 0 {
            hits.push((
                if s > 0 { 10 + s } else { d },
                json!({"type": t.kind, "schema": t.schema, "table": t.name, "match": if s > 0 { "name" } else { "description" }, "description": t.description}),
            ));
        }
        for c in &t.columns {
            let s = score(&c.name, &needle);
            let desc = c.description.clone().unwrap_or_default();
            let d = score(&desc, &needle);
            if s > 0 || d > 0 {
                hits.push((
                    if s > 0 { 5 + s } else { d },
                    json!({"type": "column", "schema": t.schema, "table": t.name, "column": c.name, "data_type": c.data_type, "match": if s > 0 { "name" } else { "description" }, "description": desc}),
                ));
            }
        }
    }
    // Descriptions written in schema YAML (columns the warehouse does not describe).
    for n in &snap.nodes {
        let Some(rel) = n["relation"].as_str() else {
            continue;
        };
        let (schema, table) = rel.split_once('.').unwrap_or(("", rel));
        for c in n["columns"].as_array().into_iter().flatten() {
            let desc = c["description"].as_str().unwrap_or("");
            let col = c["name"].as_str().unwrap_or("");
            let already = hits.iter().any(|(_, h)| {
                h["type"] == "column"
                    && h["table"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(table))
                    && h["column"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(col))
            });
            if !already && score(desc, &needle) > 0 {
                hits.push((
                    score(desc, &needle),
                    json!({"type": "column", "schema": schema, "table": table, "column": col, "data_type": c["type"], "match": "description", "description": desc}),
                ));
            }
        }
    }
    hits.sort_by_key(|h| std::cmp::Reverse(h.0));
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let total = hits.len();
    Ok(Json(json!({
        "query": q.q,
        "total": total,
        "hits": hits.into_iter().take(limit).map(|(_, h)| h).collect::<Vec<_>>(),
    })))
}

/// `GET /api/lineage` (viewer): the model-level graph (nodes with their dependencies);
/// column-level lineage is in each table's columns.
pub async fn lineage(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Viewer)?;
    let snap = snapshot(&state).await?;
    let nodes: Vec<Value> = snap
        .nodes
        .iter()
        .map(|n| {
            json!({
                "id": n["id"], "kind": n["kind"], "name": n["name"], "relation": n["relation"],
                "materialized": n["materialized"], "depends_on": n["depends_on"],
            })
        })
        .collect();
    let edges: Vec<Value> = snap
        .nodes
        .iter()
        .flat_map(|n| {
            n["depends_on"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |d| json!({"from": d, "to": n["id"]}))
        })
        .collect();
    Ok(Json(
        json!({"nodes": nodes, "edges": edges, "generated_at": snap.generated_at}),
    ))
}

/// `GET /api/tests` (viewer): every data test with its latest outcome.
pub async fn tests(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.need(Role::Viewer)?;
    let snap = snapshot(&state).await?;
    let mut out = Vec::new();
    for n in &snap.nodes {
        for t in n["tests"].as_array().into_iter().flatten() {
            out.push(json!({"id": t["id"], "name": t["name"], "node": n["id"], "relation": n["relation"], "column": null, "status": t["status"], "message": t["message"]}));
        }
        for c in n["columns"].as_array().into_iter().flatten() {
            for t in c["tests"].as_array().into_iter().flatten() {
                out.push(json!({"id": t["id"], "name": t["name"], "node": n["id"], "relation": n["relation"], "column": c["name"], "status": t["status"], "message": t["message"]}));
            }
        }
    }
    Ok(Json(json!({"results_at": snap.results_at, "tests": out})))
}
