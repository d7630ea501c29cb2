//! `dbt_project.yml`: names, paths, vars and the folder hierarchy of configs.
//!
//! dbt reads configs from three places, most general first: `dbt_project.yml` (by folder,
//! keys prefixed with `+`), schema YAML `config:` blocks, and `{{ config() }}` in the SQL
//! file. This module holds the first; [`ConfigTree::for_path`] flattens it for one file.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Result, TransformError};
use crate::yaml;

/// The parts of `dbt_project.yml` socle uses. Unknown keys are kept (dbt ignores many).
#[derive(Debug, Clone)]
pub struct DbtProject {
    pub root: PathBuf,
    pub name: String,
    pub profile: Option<String>,
    pub model_paths: Vec<String>,
    pub seed_paths: Vec<String>,
    pub test_paths: Vec<String>,
    pub macro_paths: Vec<String>,
    pub snapshot_paths: Vec<String>,
    pub analysis_paths: Vec<String>,
    pub target_path: String,
    pub packages_install_path: String,
    /// Global vars and per-package vars (`vars: {pkg: {..}}`) as written.
    pub vars: Map<String, Value>,
    pub models: ConfigTree,
    pub seeds: ConfigTree,
    pub data_tests: ConfigTree,
    pub snapshots: ConfigTree,
    /// `dispatch: [{macro_namespace: dbt_utils, search_order: [...]}]`.
    pub dispatch: Vec<(String, Vec<String>)>,
    pub on_run_start: Vec<String>,
    pub on_run_end: Vec<String>,
}

impl DbtProject {
    /// The project a folder without `dbt_project.yml` has: a name and dbt's default paths.
    pub fn defaults(root: &Path, name: &str) -> Self {
        Self {
            root: root.to_path_buf(),
            name: name.replace('-', "_"),
            profile: None,
            model_paths: vec!["models".into()],
            seed_paths: vec!["seeds".into()],
            test_paths: vec!["tests".into()],
            macro_paths: vec!["macros".into()],
            snapshot_paths: vec!["snapshots".into()],
            analysis_paths: vec!["analyses".into()],
            target_path: "target".into(),
            packages_install_path: "dbt_packages".into(),
            vars: Map::new(),
            models: ConfigTree::default(),
            seeds: ConfigTree::default(),
            data_tests: ConfigTree::default(),
            snapshots: ConfigTree::default(),
            dispatch: Vec::new(),
            on_run_start: Vec::new(),
            on_run_end: Vec::new(),
        }
    }

    /// Reads `<root>/dbt_project.yml`, or returns the defaults when there is none.
    pub fn load(root: &Path, fallback_name: &str) -> Result<Self> {
        let file = root.join("dbt_project.yml");
        if !file.exists() {
            return Ok(Self::defaults(root, fallback_name));
        }
        let doc = yaml::read(&file)?;
        let Value::Object(map) = doc else {
            return Err(TransformError::project(
                &file,
                1,
                "dbt_project.yml must be a mapping",
            ));
        };
        let mut p = Self::defaults(root, fallback_name);
        let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_string);
        if let Some(name) = text("name") {
            p.name = name;
        }
        p.profile = text("profile");
        let paths = |key: &str, default: &mut Vec<String>| {
            if let Some(Value::Array(items)) = map.get(key) {
                *default = items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
            }
        };
        paths("model-paths", &mut p.model_paths);
        paths("source-paths", &mut p.model_paths);
        paths("seed-paths", &mut p.seed_paths);
        paths("data-paths", &mut p.seed_paths);
        paths("test-paths", &mut p.test_paths);
        paths("macro-paths", &mut p.macro_paths);
        paths("snapshot-paths", &mut p.snapshot_paths);
        paths("analysis-paths", &mut p.analysis_paths);
        if let Some(t) = text("target-path") {
            p.target_path = t;
        }
        if let Some(t) = text("packages-install-path") {
            p.packages_install_path = t;
        }
        if let Some(Value::Object(vars)) = map.get("vars") {
            p.vars = vars.clone();
        }
        let tree = |key: &str| map.get(key).cloned().map(ConfigTree).unwrap_or_default();
        p.models = tree("models");
        p.seeds = tree("seeds");
        p.data_tests = match map.get("data_tests") {
            Some(v) => ConfigTree(v.clone()),
            None => tree("tests"),
        };
        p.snapshots = tree("snapshots");
        if let Some(Value::Array(items)) = map.get("dispatch") {
            for item in items {
                let ns = item.get("macro_namespace").and_then(Value::as_str);
                let order = item.get("search_order").and_then(Value::as_array);
                if let (Some(ns), Some(order)) = (ns, order) {
                    p.dispatch.push((
                        ns.to_string(),
                        order
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect(),
                    ));
                }
            }
        }
        p.on_run_start = crate::config::list_of_strings(map.get("on-run-start"));
        p.on_run_end = crate::config::list_of_strings(map.get("on-run-end"));
        Ok(p)
    }
}

/// A `models:` / `seeds:` / ... tree of `dbt_project.yml`: the first level names packages,
/// deeper levels name folders; `+key` entries are configs (unprefixed keys that are known
/// config names are configs too, as dbt accepts).
#[derive(Debug, Clone, Default)]
pub struct ConfigTree(pub Value);

/// Config names dbt accepts without the `+` prefix inside resource trees.
const CONFIG_KEYS: &[&str] = &[
    "materialized",
    "schema",
    "alias",
    "database",
    "tags",
    "enabled",
    "unique_key",
    "incremental_strategy",
    "on_schema_change",
    "pre-hook",
    "post-hook",
    "pre_hook",
    "post_hook",
    "column_types",
    "full_refresh",
    "persist_docs",
    "severity",
    "warn_if",
    "error_if",
    "where",
    "limit",
    "store_failures",
    "strategy",
    "updated_at",
    "check_cols",
    "target_schema",
    "target_database",
    "quote_columns",
    "delimiter",
    "meta",
    "docs",
    "contract",
    "grants",
    "sql_header",
];

impl ConfigTree {
    /// The configs that apply to a file of `package` at `folders` (its folders below the
    /// resource path, then its own name), most specific last.
    pub fn for_path(&self, package: &str, folders: &[&str]) -> Map<String, Value> {
        let mut out = Map::new();
        let Value::Object(top) = &self.0 else {
            return out;
        };
        apply_level(&mut out, top);
        let Some(Value::Object(mut level)) = top.get(package).cloned() else {
            return out;
        };
        apply_level(&mut out, &level);
        for folder in folders {
            match level.get(*folder) {
                Some(Value::Object(next)) => {
                    level = next.clone();
                    apply_level(&mut out, &level);
                }
                _ => break,
            }
        }
        out
    }
}

fn apply_level(out: &mut Map<String, Value>, level: &Map<String, Value>) {
    for (key, value) in level {
        let name = match key.strip_prefix('+') {
            Some(name) => name,
            None if CONFIG_KEYS.contains(&key.as_str()) && !value.is_object() => key.as_str(),
            None if matches!(
                key.as_str(),
                "column_types" | "meta" | "docs" | "persist_docs" | "contract"
            ) =>
            {
                key
            }
            None => continue,
        };
        crate::config::merge_key(out, &name.replace('-', "_"), value.clone());
    }
}
