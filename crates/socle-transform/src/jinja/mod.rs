//! dbt's Jinja on minijinja: the environment (macros of the project, its packages and
//! socle's built-ins), the context functions (`ref`, `source`, `config`, `var`, ...), and
//! rendering with errors that name the file and line.

#[cfg(test)]
mod fuzz;
pub mod limits;
pub mod macros;
mod modules;
pub mod objects;
mod scope;

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::{Kwargs, Object, Value, from_args};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};

pub use objects::{QueryTable, Relation};
pub use scope::{Captured, Resolver, Scope};

/// The package name of socle's built-in macros (dbt's `dbt` namespace).
pub const BUILTIN_PACKAGE: &str = "dbt";

/// socle's own macros: generic tests, schema and alias naming, cross-database helpers.
const BUILTIN_MACROS: &[(&str, &str)] = &[
    ("builtin/tests.sql", include_str!("../../macros/tests.sql")),
    (
        "builtin/naming.sql",
        include_str!("../../macros/naming.sql"),
    ),
    (
        "builtin/cross_db.sql",
        include_str!("../../macros/cross_db.sql"),
    ),
];

/// A macro file of a package.
#[derive(Debug, Clone)]
pub struct MacroFile {
    pub package: String,
    /// Template name: the path relative to the project root.
    pub name: String,
    pub source: String,
}

/// One render failure, located in the innermost template that failed.
#[derive(Debug, Clone)]
pub struct RenderError {
    pub template: String,
    pub line: usize,
    pub message: String,
}

/// The environment shared by every render of a project.
pub struct Jinja {
    env: Environment<'static>,
    /// Macro names by package, for `package.macro(...)` and the driver.
    macro_names: BTreeMap<String, Vec<String>>,
    /// `(template name, package)` of every macro file, in import order.
    macro_files: Vec<(String, String)>,
    root_package: String,
}

impl Jinja {
    pub fn new(
        root_package: &str,
        files: Vec<MacroFile>,
        vars: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        limits::bound(&mut env);
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("default syntax"),
        );
        let mut macro_names: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut macro_files = Vec::new();
        let builtin = BUILTIN_MACROS.iter().map(|(name, source)| MacroFile {
            package: BUILTIN_PACKAGE.to_string(),
            name: (*name).to_string(),
            source: (*source).to_string(),
        });
        for file in builtin.chain(files) {
            let (source, names) = macros::rewrite_source(&file.source);
            env.add_template_owned(file.name.clone(), source)
                .map_err(|e| render_error(&e))?;
            macro_names
                .entry(file.package.clone())
                .or_default()
                .extend(names);
            macro_files.push((file.name, file.package));
        }
        let mut driver = String::new();
        for (i, (name, package)) in macro_files.iter().enumerate() {
            driver.push_str(&format!(
                "{{% import {} as __m{i} %}}{{% do __register({}, __m{i}) %}}",
                literal(name),
                literal(package)
            ));
        }
        driver.push_str("{% include __node %}");
        env.add_template_owned("__driver__", driver)
            .map_err(|e| render_error(&e))?;
        add_globals(&mut env, root_package, &macro_names, vars);
        Ok(Self {
            env,
            macro_names,
            macro_files,
            root_package: root_package.to_string(),
        })
    }

    /// Adds (or replaces) a node's SQL as a template named `name`.
    pub fn add_node(&mut self, name: &str, sql: &str) -> Result<(), RenderError> {
        let (source, _) = macros::rewrite_source(sql);
        self.env
            .add_template_owned(name.to_string(), source)
            .map_err(|e| render_error(&e))
    }

    /// Does a package (or the root project) define a macro of this name?
    pub fn has_macro(&self, package: &str, name: &str) -> bool {
        self.macro_names
            .get(package)
            .is_some_and(|n| n.iter().any(|m| m == name))
    }

    pub fn macro_files(&self) -> &[(String, String)] {
        &self.macro_files
    }

    /// Renders template `name` with the functions of `scope`.
    pub fn render(&self, name: &str, scope: &Arc<Scope>) -> Result<String, RenderError> {
        let driver = self
            .env
            .get_template("__driver__")
            .map_err(|e| render_error(&e))?;
        let ctx = scope::context(scope, name, &self.search_path(&scope.package));
        driver.render(ctx).map_err(|e| render_error(&e))
    }

    /// Renders a snippet (a hook, a test argument) in the scope of a node.
    pub fn render_str(
        &self,
        name: &str,
        text: &str,
        scope: &Arc<Scope>,
    ) -> Result<String, RenderError> {
        let mut env = self.env.clone();
        let (source, _) = macros::rewrite_source(text);
        env.add_template_owned(name.to_string(), source)
            .map_err(|e| render_error(&e))?;
        let driver = env
            .get_template("__driver__")
            .map_err(|e| render_error(&e))?;
        let ctx = scope::context(scope, name, &self.search_path(&scope.package));
        driver.render(ctx).map_err(|e| render_error(&e))
    }

    /// Where bare macro names are looked up from `package`: itself, the root project,
    /// then socle's built-ins.
    fn search_path(&self, package: &str) -> Vec<String> {
        let mut out = vec![package.to_string()];
        if package != self.root_package {
            out.push(self.root_package.clone());
        }
        out.push(BUILTIN_PACKAGE.to_string());
        out
    }
}

/// A Jinja string literal.
fn literal(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The innermost template error (includes and macro calls wrap the real one).
pub fn render_error(err: &Error) -> RenderError {
    let mut best = err;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = cur {
        if let Some(inner) = e.downcast_ref::<Error>()
            && inner.line().is_some()
        {
            best = inner;
        }
        cur = e.source();
    }
    let message = if limits::is_out_of_budget(err) {
        limits::out_of_budget_message()
    } else {
        match best.detail() {
            Some(d) => d.to_string(),
            None => best.kind().to_string(),
        }
    };
    RenderError {
        template: best.name().unwrap_or("?").to_string(),
        line: best.line().unwrap_or(0),
        message,
    }
}

fn add_globals(
    env: &mut Environment<'static>,
    root: &str,
    macro_names: &BTreeMap<String, Vec<String>>,
    vars: serde_json::Map<String, serde_json::Value>,
) {
    env.add_function("return", macros::dbt_return);
    env.add_function("__dbt_wrap", macros::wrap);
    env.add_function("__register", macros::register);
    env.add_function("__mutable_list", objects::mutable_list);
    env.add_function("__mutable_dict", objects::mutable_dict);
    env.add_function(
        "fromjson",
        |s: String, default: Option<Value>| -> Result<Value, Error> {
            match serde_json::from_str::<serde_json::Value>(&s) {
                Ok(v) => Ok(json_to_value(&v)),
                Err(e) => default.ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, format!("fromjson: {e}"))
                }),
            }
        },
    );
    env.add_function("tojson", |v: Value| -> Result<Value, Error> {
        serde_json::to_string(&value_to_json(&v))
            .map(Value::from)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
    });
    env.add_function("zip", |a: Value, b: Value| -> Result<Value, Error> {
        Ok(Value::from(
            a.try_iter()?
                .zip(b.try_iter()?)
                .map(|(x, y)| Value::from(vec![x, y]))
                .collect::<Vec<_>>(),
        ))
    });
    env.add_function("set", |v: Value| -> Result<Value, Error> {
        let mut out: Vec<Value> = Vec::new();
        for item in v.try_iter()? {
            if !out.contains(&item) {
                out.push(item);
            }
        }
        Ok(Value::from(out))
    });
    env.add_function(
        "log",
        |msg: Value, kwargs: Kwargs| -> Result<Value, Error> {
            let info: Option<bool> = kwargs.get("info")?;
            if info.unwrap_or(false) {
                tracing::info!("{msg}");
            } else {
                tracing::debug!("{msg}");
            }
            Ok(Value::from(""))
        },
    );
    env.add_function("print", |msg: Value| {
        eprintln!("{msg}");
        Value::from("")
    });
    env.add_global("exceptions", Value::from_object(Exceptions));
    env.add_global("modules", modules::modules());
    env.add_global("api", Value::from_object(objects::Api));
    env.add_global("project_name", Value::from(root.to_string()));
    env.add_global("__vars", json_to_value(&serde_json::Value::Object(vars)));
    // Bare macro names of every package resolve through the search path at call time;
    // packages are namespaces (`dbt_utils.star(...)`, `dbt.current_timestamp()`).
    let mut seen = std::collections::BTreeSet::new();
    for names in macro_names.values() {
        for name in names {
            if seen.insert(name.clone()) {
                env.add_global(
                    name.clone(),
                    Value::from_object(scope::Bare { name: name.clone() }),
                );
            }
        }
    }
    for (pkg, names) in macro_names {
        env.add_global(
            pkg.clone(),
            Value::from_object(macros::PackageNs {
                pkg: pkg.clone(),
                names: names.clone(),
            }),
        );
    }
}

/// `exceptions.raise_compiler_error(msg)`, `exceptions.warn(msg)`.
#[derive(Debug)]
struct Exceptions;

impl Object for Exceptions {
    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let (msg,): (Value,) = from_args(args)?;
        match method {
            "raise_compiler_error" | "raise_not_implemented" | "raise_fail_fast_error" => {
                Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("compilation error: {msg}"),
                ))
            }
            "warn" => {
                tracing::warn!("{msg}");
                Ok(Value::from(""))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("exceptions has no method `{method}`"),
            )),
        }
    }
}

/// A map (keeping insertion order, as Python's dicts do) as a template value.
pub fn map_value(pairs: impl IntoIterator<Item = (String, Value)>) -> Value {
    Value::from(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect::<indexmap::IndexMap<Value, Value>>(),
    )
}

/// A JSON value (from YAML configs and vars) as a template value.
pub fn json_to_value(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(*b),
        J::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(f)) => Value::from(f),
            _ => Value::from(n.to_string()),
        },
        J::String(s) => Value::from(s.clone()),
        J::Array(items) => Value::from(items.iter().map(json_to_value).collect::<Vec<_>>()),
        J::Object(map) => map_value(map.iter().map(|(k, v)| (k.clone(), json_to_value(v)))),
    }
}

/// A template value as JSON (for `config()` arguments and stored results).
pub fn value_to_json(v: &Value) -> serde_json::Value {
    use minijinja::value::ValueKind;
    use serde_json::Value as J;
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => J::Null,
        ValueKind::Bool => J::Bool(v.is_true()),
        ValueKind::Number => match v.as_i64() {
            Some(i) => J::from(i),
            None => v.to_string().parse::<f64>().map(J::from).unwrap_or(J::Null),
        },
        ValueKind::String => J::String(v.as_str().unwrap_or_default().to_string()),
        ValueKind::Seq | ValueKind::Iterable => J::Array(
            v.try_iter()
                .map(|it| it.map(|x| value_to_json(&x)).collect())
                .unwrap_or_default(),
        ),
        ValueKind::Map => {
            let mut map = serde_json::Map::new();
            if let Ok(keys) = v.try_iter() {
                for k in keys {
                    let val = v.get_item(&k).unwrap_or_default();
                    map.insert(k.to_string(), value_to_json(&val));
                }
            }
            J::Object(map)
        }
        _ => J::String(v.to_string()),
    }
}
