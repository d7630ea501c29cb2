//! The per-render scope: what `ref`, `source`, `config`, `var`, `this`, `is_incremental`,
//! `run_query` and `adapter` mean for the node being rendered, and what the render
//! captured (the refs, sources and configs dbt reads at parse time).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use minijinja::value::{Kwargs, Object, Value, from_args};
use minijinja::{Error, ErrorKind, State};
use serde_json::Map;

use super::objects::{QueryTable, Relation};
use super::{json_to_value, macros, map_value, value_to_json};

/// What a render needs from the project and the warehouse.
pub trait Resolver: Send + Sync {
    /// `ref(name)` / `ref(package, name)` from a node of `from_package`.
    fn resolve_ref(
        &self,
        from_package: &str,
        package: Option<&str>,
        name: &str,
    ) -> Result<Relation, String>;
    fn resolve_source(&self, source: &str, table: &str) -> Result<Relation, String>;
    fn run_query(&self, sql: &str) -> Result<QueryTable, String>;
    /// The relation at `schema.identifier` if it exists.
    fn get_relation(&self, schema: &str, identifier: &str) -> Option<Relation>;
    /// `(name, data type)` of each column of a relation.
    fn columns(&self, relation: &Relation) -> Result<Vec<(String, String)>, String>;
    fn doc(&self, name: &str) -> Option<String>;
}

/// What a parse-time render recorded.
#[derive(Debug, Default, Clone)]
pub struct Captured {
    pub refs: Vec<(Option<String>, String)>,
    pub sources: Vec<(String, String)>,
    pub config: Map<String, serde_json::Value>,
}

pub struct Scope {
    pub package: String,
    /// dbt's `execute`: false while parsing (no queries run), true when compiling to run.
    pub execute: bool,
    pub this: Option<Relation>,
    pub incremental: bool,
    /// The node's final config (for `config.get` while running).
    pub config: Map<String, serde_json::Value>,
    /// `model` / `node` in the context: name, unique_id, config, ...
    pub model: serde_json::Value,
    pub target: serde_json::Value,
    /// `--vars` from the command line (override the project's).
    pub cli_vars: Map<String, serde_json::Value>,
    /// Project vars (global and per package).
    pub project_vars: Map<String, serde_json::Value>,
    pub full_refresh: bool,
    pub resolver: Arc<dyn Resolver>,
    pub captured: Mutex<Captured>,
    statements: Mutex<BTreeMap<String, Value>>,
    /// More context variables (`results` and `schemas` in `on-run-end`).
    pub extra: Mutex<Vec<(String, serde_json::Value)>>,
}

impl Scope {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        package: &str,
        execute: bool,
        this: Option<Relation>,
        incremental: bool,
        config: Map<String, serde_json::Value>,
        model: serde_json::Value,
        target: serde_json::Value,
        vars: (
            Map<String, serde_json::Value>,
            Map<String, serde_json::Value>,
        ),
        full_refresh: bool,
        resolver: Arc<dyn Resolver>,
    ) -> Arc<Self> {
        Arc::new(Self {
            package: package.to_string(),
            execute,
            this,
            incremental,
            config,
            model,
            target,
            cli_vars: vars.0,
            project_vars: vars.1,
            full_refresh,
            resolver,
            captured: Mutex::new(Captured::default()),
            statements: Mutex::new(BTreeMap::new()),
            extra: Mutex::new(Vec::new()),
        })
    }

    pub fn captured(&self) -> Captured {
        self.captured.lock().expect("capture lock").clone()
    }

    fn var(&self, name: &str) -> Option<serde_json::Value> {
        if let Some(v) = self.cli_vars.get(name) {
            return Some(v.clone());
        }
        if let Some(serde_json::Value::Object(pkg)) = self.project_vars.get(&self.package)
            && let Some(v) = pkg.get(name)
        {
            return Some(v.clone());
        }
        self.project_vars
            .get(name)
            .filter(|v| !v.is_object() || name != self.package)
            .cloned()
    }
}

fn fail(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// The context of one render.
pub fn context(scope: &Arc<Scope>, node: &str, search: &[String]) -> Value {
    let s = scope.clone();
    let mut ctx: Vec<(&str, Value)> = vec![
        ("__node", Value::from(node.to_string())),
        ("__search", Value::from(search.to_vec())),
        ("ref", Value::from_object(Func(s.clone(), FuncKind::Ref))),
        (
            "source",
            Value::from_object(Func(s.clone(), FuncKind::Source)),
        ),
        (
            "config",
            Value::from_object(Func(s.clone(), FuncKind::Config)),
        ),
        ("var", Value::from_object(Func(s.clone(), FuncKind::Var))),
        (
            "env_var",
            Value::from_object(Func(s.clone(), FuncKind::EnvVar)),
        ),
        (
            "is_incremental",
            Value::from_object(Func(s.clone(), FuncKind::IsIncremental)),
        ),
        (
            "should_full_refresh",
            Value::from_object(Func(s.clone(), FuncKind::ShouldFullRefresh)),
        ),
        (
            "run_query",
            Value::from_object(Func(s.clone(), FuncKind::RunQuery)),
        ),
        (
            "statement",
            Value::from_object(Func(s.clone(), FuncKind::Statement)),
        ),
        (
            "load_result",
            Value::from_object(Func(s.clone(), FuncKind::LoadResult)),
        ),
        ("doc", Value::from_object(Func(s.clone(), FuncKind::Doc))),
        ("adapter", Value::from_object(Adapter(s.clone()))),
        ("execute", Value::from(scope.execute)),
        ("target", json_to_value(&scope.target)),
        ("model", json_to_value(&scope.model)),
        ("node", json_to_value(&scope.model)),
        (
            "flags",
            map_value([("FULL_REFRESH".to_string(), Value::from(scope.full_refresh))]),
        ),
    ];
    if let Some(this) = &scope.this {
        ctx.push(("this", Value::from_object(this.clone())));
    }
    let extra: Vec<(String, Value)> = scope
        .extra
        .lock()
        .expect("extra lock")
        .iter()
        .map(|(k, v)| (k.clone(), json_to_value(v)))
        .collect();
    map_value(
        ctx.into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain(extra),
    )
}

#[derive(Debug, Clone, Copy)]
enum FuncKind {
    Ref,
    Source,
    Config,
    Var,
    EnvVar,
    IsIncremental,
    ShouldFullRefresh,
    RunQuery,
    Statement,
    LoadResult,
    Doc,
}

struct Func(Arc<Scope>, FuncKind);

impl std::fmt::Debug for Func {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.1)
    }
}

impl Object for Func {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let scope = &self.0;
        match self.1 {
            FuncKind::Ref => {
                let (a, b, _kwargs): (String, Option<String>, Kwargs) = from_args(args)?;
                let (package, name) = match b {
                    Some(name) => (Some(a), name),
                    None => (None, a),
                };
                scope
                    .captured
                    .lock()
                    .expect("capture lock")
                    .refs
                    .push((package.clone(), name.clone()));
                let rel = scope
                    .resolver
                    .resolve_ref(&scope.package, package.as_deref(), &name)
                    .map_err(fail)?;
                Ok(Value::from_object(rel))
            }
            FuncKind::Source => {
                let (source, table): (String, String) = from_args(args)?;
                scope
                    .captured
                    .lock()
                    .expect("capture lock")
                    .sources
                    .push((source.clone(), table.clone()));
                let rel = scope
                    .resolver
                    .resolve_source(&source, &table)
                    .map_err(fail)?;
                Ok(Value::from_object(rel))
            }
            FuncKind::Config => {
                let (positional, kwargs): (Option<Value>, Kwargs) = from_args(args)?;
                let mut captured = scope.captured.lock().expect("capture lock");
                if let Some(map) = positional.filter(|v| !v.is_undefined() && !v.is_none())
                    && let serde_json::Value::Object(m) = value_to_json(&map)
                {
                    crate::config::merge(&mut captured.config, &m);
                }
                for key in kwargs.args() {
                    let v: Value = kwargs.get(key)?;
                    crate::config::merge_key(&mut captured.config, key, value_to_json(&v));
                }
                Ok(Value::from(""))
            }
            FuncKind::Var => {
                let (name, default): (String, Option<Value>) = from_args(args)?;
                match (scope.var(&name), default) {
                    (Some(v), _) => Ok(json_to_value(&v)),
                    (None, Some(d)) => Ok(d),
                    (None, None) => Err(fail(format!(
                        "required var `{name}` not found: set it under `vars:` in dbt_project.yml or pass --vars '{{{name}: ...}}'"
                    ))),
                }
            }
            FuncKind::EnvVar => {
                let (name, default): (String, Option<Value>) = from_args(args)?;
                match (std::env::var(&name), default) {
                    (Ok(v), _) => Ok(Value::from(v)),
                    (Err(_), Some(d)) => Ok(d),
                    (Err(_), None) => Err(fail(format!(
                        "env var `{name}` is not set and has no default"
                    ))),
                }
            }
            FuncKind::IsIncremental => Ok(Value::from(scope.incremental)),
            FuncKind::ShouldFullRefresh => {
                let own = scope
                    .config
                    .get("full_refresh")
                    .and_then(serde_json::Value::as_bool);
                Ok(Value::from(own.unwrap_or(scope.full_refresh)))
            }
            FuncKind::RunQuery => {
                let (sql,): (String,) = from_args(args)?;
                if !scope.execute {
                    return Ok(Value::from(()));
                }
                let table = scope.resolver.run_query(&sql).map_err(fail)?;
                Ok(Value::from_object(table))
            }
            FuncKind::Statement => {
                let (name, kwargs): (Option<String>, Kwargs) = from_args(args)?;
                let caller: Value = kwargs.get("caller")?;
                let fetch: Option<bool> = kwargs.get("fetch_result")?;
                let sql = caller.call(state, &[])?.to_string();
                if !scope.execute {
                    return Ok(Value::from(""));
                }
                let table = scope.resolver.run_query(&sql).map_err(fail)?;
                let table = Value::from_object(table);
                let data = if fetch.unwrap_or(false) {
                    table.get_attr("rows")?
                } else {
                    Value::from(())
                };
                let result = map_value([
                    ("response".to_string(), Value::from("OK")),
                    ("data".to_string(), data),
                    ("table".to_string(), table),
                    ("sql".to_string(), Value::from(sql)),
                ]);
                scope
                    .statements
                    .lock()
                    .expect("statement lock")
                    .insert(name.unwrap_or_default(), result);
                Ok(Value::from(""))
            }
            FuncKind::LoadResult => {
                let (name,): (String,) = from_args(args)?;
                Ok(scope
                    .statements
                    .lock()
                    .expect("statement lock")
                    .get(&name)
                    .cloned()
                    .unwrap_or_default())
            }
            FuncKind::Doc => {
                let (a, b): (String, Option<String>) = from_args(args)?;
                let name = b.unwrap_or(a);
                Ok(Value::from(scope.resolver.doc(&name).unwrap_or_default()))
            }
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let FuncKind::Config = self.1 else {
            return Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("no method `{method}`"),
            ));
        };
        let scope = &self.0;
        let (key, default): (String, Option<Value>) = from_args(args)?;
        let value = scope
            .config
            .get(&key)
            .cloned()
            .or_else(|| scope.captured().config.get(&key).cloned());
        match (method, value) {
            ("get", Some(v)) if !v.is_null() => Ok(json_to_value(&v)),
            ("get", _) => Ok(default.unwrap_or_default()),
            ("require", Some(v)) => Ok(json_to_value(&v)),
            ("require", None) => Err(fail(format!("config `{key}` is required here"))),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("config has no method `{method}`"),
            )),
        }
    }
}

/// `adapter`: dispatch, quoting and catalog lookups.
struct Adapter(Arc<Scope>);

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("adapter")
    }
}

impl Object for Adapter {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "type" => Some(Value::from("duckdb")),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let scope = &self.0;
        match method {
            "dispatch" => {
                let (name, namespace) = macros::dispatch_args(args)?;
                let search = match namespace {
                    Some(ns) => vec![scope.package.clone(), ns],
                    None => search_path(state),
                };
                Ok(Value::from_object(macros::Dispatcher {
                    search,
                    candidates: vec![
                        format!("duckdb__{name}"),
                        format!("postgres__{name}"),
                        format!("default__{name}"),
                    ],
                }))
            }
            "quote" => {
                let (s,): (String,) = from_args(args)?;
                Ok(Value::from(crate::nodes::quote(&s)))
            }
            "type" => Ok(Value::from("duckdb")),
            "get_relation" => {
                let (_, kwargs): (&[Value], Kwargs) = from_args(args)?;
                let schema: String = kwargs.get("schema")?;
                let identifier: String = kwargs.get("identifier")?;
                let _: Option<Value> = kwargs.get("database")?;
                if !scope.execute {
                    return Ok(Value::from(()));
                }
                Ok(scope
                    .resolver
                    .get_relation(&schema, &identifier)
                    .map(Value::from_object)
                    .unwrap_or_default())
            }
            "get_columns_in_relation" => {
                let (relation,): (Value,) = from_args(args)?;
                if !scope.execute {
                    return Ok(Value::from(Vec::<Value>::new()));
                }
                let Some(rel) = relation.downcast_object_ref::<Relation>() else {
                    return Err(fail("get_columns_in_relation expects a relation"));
                };
                let cols = scope.resolver.columns(rel).map_err(fail)?;
                Ok(Value::from(
                    cols.into_iter()
                        .map(|(name, dtype)| {
                            map_value([
                                ("name".to_string(), Value::from(name.clone())),
                                ("column".to_string(), Value::from(name.clone())),
                                (
                                    "quoted".to_string(),
                                    Value::from(crate::nodes::quote(&name)),
                                ),
                                ("data_type".to_string(), Value::from(dtype.clone())),
                                ("dtype".to_string(), Value::from(dtype)),
                            ])
                        })
                        .collect::<Vec<_>>(),
                ))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("adapter.{method} is not supported by socle"),
            )),
        }
    }
}

fn search_path(state: &State) -> Vec<String> {
    state
        .lookup("__search")
        .and_then(|v| {
            v.try_iter()
                .ok()
                .map(|it| it.filter_map(|x| x.as_str().map(str::to_string)).collect())
        })
        .unwrap_or_default()
}

/// A macro called by its bare name, looked up along the render's search path.
#[derive(Debug)]
pub struct Bare {
    pub name: String,
}

impl Object for Bare {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let search = search_path(state);
        let found = search
            .iter()
            .find_map(|p| state.get_temp(&format!("macro:{p}.{}", self.name)));
        match found {
            Some(m) => m.call(state, args),
            None => Err(Error::new(
                ErrorKind::UnknownFunction,
                format!(
                    "macro `{}` is not available from package `{}`",
                    self.name,
                    search.first().map_or("", String::as_str)
                ),
            )),
        }
    }
}
