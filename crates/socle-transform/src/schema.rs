//! Schema YAML (version 2): properties of models, seeds and snapshots, sources, and the
//! generic tests attached to them.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Result, TransformError};

/// Everything the schema files of a project say, by resource.
#[derive(Debug, Clone, Default)]
pub struct SchemaFiles {
    /// Properties of models, seeds and snapshots by name.
    pub resources: Vec<Properties>,
    pub sources: Vec<Source>,
    /// `{% docs name %}` blocks are read elsewhere; this holds `macros:` descriptions.
    pub files: Vec<PathBuf>,
}

/// `models: - name: ...` (also seeds and snapshots).
#[derive(Debug, Clone)]
pub struct Properties {
    pub kind: &'static str,
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    pub config: Map<String, Value>,
    pub columns: Vec<Column>,
    /// Tests on the whole resource.
    pub tests: Vec<TestDef>,
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub description: String,
    pub data_type: Option<String>,
    pub tests: Vec<TestDef>,
    pub meta: Map<String, Value>,
}

/// One generic test as written: `unique`, `{accepted_values: {values: [..]}}`, or
/// `{dbt_utils.expression_is_true: {expression: ..}}`.
#[derive(Debug, Clone)]
pub struct TestDef {
    /// Test name, possibly namespaced (`dbt_utils.unique_combination_of_columns`).
    pub test: String,
    /// Arguments passed to the test macro (besides `model` and `column_name`).
    pub kwargs: Map<String, Value>,
    pub config: Map<String, Value>,
    /// A user-chosen name (`name:` key).
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub schema: String,
    pub file: PathBuf,
    pub description: String,
    pub config: Map<String, Value>,
    pub tables: Vec<SourceTable>,
}

#[derive(Debug, Clone)]
pub struct SourceTable {
    pub name: String,
    pub identifier: String,
    pub description: String,
    pub columns: Vec<Column>,
    pub tests: Vec<TestDef>,
}

/// Config keys that may be written at the top of a test definition instead of in `config:`.
const TEST_CONFIG_KEYS: &[&str] = &[
    "severity",
    "warn_if",
    "error_if",
    "where",
    "limit",
    "store_failures",
    "enabled",
    "tags",
    "meta",
];

impl SchemaFiles {
    /// Reads one schema file and adds what it declares.
    pub fn add_file(&mut self, file: &Path) -> Result<()> {
        let doc = crate::yaml::read(file)?;
        self.files.push(file.to_path_buf());
        let Value::Object(map) = doc else {
            return Ok(());
        };
        for (key, kind) in [
            ("models", "model"),
            ("seeds", "seed"),
            ("snapshots", "snapshot"),
        ] {
            for item in items(map.get(key)) {
                self.resources.push(properties(file, kind, item)?);
            }
        }
        for item in items(map.get("sources")) {
            self.sources.push(source(file, item)?);
        }
        Ok(())
    }
}

fn items(v: Option<&Value>) -> impl Iterator<Item = &Map<String, Value>> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

fn text(map: &Map<String, Value>, key: &str) -> String {
    map.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn name_of(file: &Path, kind: &str, map: &Map<String, Value>) -> Result<String> {
    match map.get("name") {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(TransformError::project(
            file,
            0,
            format!("a {kind} entry without `name`"),
        )),
    }
}

fn config_of(map: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(Value::Object(c)) = map.get("config") {
        crate::config::merge(&mut out, c);
    }
    for key in ["tags", "meta", "docs"] {
        if let Some(v) = map.get(key) {
            crate::config::merge_key(&mut out, key, v.clone());
        }
    }
    out
}

fn properties(file: &Path, kind: &'static str, map: &Map<String, Value>) -> Result<Properties> {
    Ok(Properties {
        kind,
        name: name_of(file, kind, map)?,
        file: file.to_path_buf(),
        description: text(map, "description"),
        config: config_of(map),
        columns: columns(file, map)?,
        tests: tests(file, map)?,
    })
}

fn columns(file: &Path, map: &Map<String, Value>) -> Result<Vec<Column>> {
    items(map.get("columns"))
        .map(|c| {
            Ok(Column {
                name: name_of(file, "column", c)?,
                description: text(c, "description"),
                data_type: c
                    .get("data_type")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                tests: tests(file, c)?,
                meta: c
                    .get("meta")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn tests(file: &Path, map: &Map<String, Value>) -> Result<Vec<TestDef>> {
    let mut out = Vec::new();
    for key in ["tests", "data_tests"] {
        for t in map.get(key).and_then(Value::as_array).into_iter().flatten() {
            out.push(test_def(file, t)?);
        }
    }
    Ok(out)
}

fn test_def(file: &Path, value: &Value) -> Result<TestDef> {
    match value {
        Value::String(name) => Ok(TestDef {
            test: name.clone(),
            kwargs: Map::new(),
            config: Map::new(),
            name: None,
        }),
        Value::Object(map) => {
            // `{test_name: X, name: Y, ...}` or `{X: {args}}`.
            let (test, body) = if let Some(Value::String(t)) = map.get("test_name") {
                (t.clone(), map.clone())
            } else if map.len() == 1 {
                let (k, v) = map.iter().next().expect("one entry");
                (k.clone(), v.as_object().cloned().unwrap_or_default())
            } else {
                return Err(TransformError::project(
                    file,
                    0,
                    format!(
                        "cannot read the test {value}: write `- test_name` or `- test_name: {{arguments}}`"
                    ),
                ));
            };
            let mut kwargs = Map::new();
            let mut config = Map::new();
            let mut name = None;
            for (k, v) in body {
                match k.as_str() {
                    "config" => {
                        if let Value::Object(c) = v {
                            crate::config::merge(&mut config, &c);
                        }
                    }
                    "arguments" => {
                        if let Value::Object(a) = v {
                            kwargs.extend(a);
                        }
                    }
                    "name" => name = v.as_str().map(str::to_string),
                    "test_name" | "description" => {}
                    k if TEST_CONFIG_KEYS.contains(&k) => {
                        crate::config::merge_key(&mut config, k, v)
                    }
                    _ => {
                        kwargs.insert(k, v);
                    }
                }
            }
            Ok(TestDef {
                test,
                kwargs,
                config,
                name,
            })
        }
        other => Err(TransformError::project(
            file,
            0,
            format!("cannot read the test {other}"),
        )),
    }
}

fn source(file: &Path, map: &Map<String, Value>) -> Result<Source> {
    let name = name_of(file, "source", map)?;
    let schema = map
        .get("schema")
        .and_then(Value::as_str)
        .unwrap_or(&name)
        .to_string();
    let mut tables = Vec::new();
    for t in items(map.get("tables")) {
        let tname = name_of(file, "source table", t)?;
        tables.push(SourceTable {
            identifier: t
                .get("identifier")
                .and_then(Value::as_str)
                .unwrap_or(&tname)
                .to_string(),
            name: tname,
            description: text(t, "description"),
            columns: columns(file, t)?,
            tests: tests(file, t)?,
        });
    }
    Ok(Source {
        name,
        schema,
        file: file.to_path_buf(),
        description: text(map, "description"),
        config: config_of(map),
        tables,
    })
}
