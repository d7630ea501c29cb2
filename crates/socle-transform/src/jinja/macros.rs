//! Macros across files and packages, dbt's `return()`, and `adapter.dispatch`.
//!
//! minijinja macros are bound to the render that defined them, so every render goes
//! through a driver template that imports every macro file and registers its macros in
//! the render's state; globals ([`GlobalMacro`], [`PackageNs`]) find them there at call
//! time. `return(v)` raises an error carrying `v`, which the [`DbtMacro`] wrapper that each
//! macro is given (by a source rewrite after `{% endmacro %}`) turns into its result.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Kwargs, Object, Value, from_args};
use minijinja::{Error, ErrorKind, State};

/// The error payload of `return(value)`.
#[derive(Debug)]
pub struct MacroReturn(pub Value);

impl fmt::Display for MacroReturn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "return() called outside of a macro")
    }
}

impl std::error::Error for MacroReturn {}

pub fn dbt_return(value: Option<Value>) -> Result<Value, Error> {
    let value = value.unwrap_or(Value::from(()));
    Err(Error::new(
        ErrorKind::InvalidOperation,
        "return() called outside of a macro",
    )
    .with_source(MacroReturn(value)))
}

fn take_return(err: &Error) -> Option<Value> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<MacroReturn>() {
            return Some(r.0.clone());
        }
        cur = e.source();
    }
    None
}

/// A macro whose `return()` becomes its value.
#[derive(Debug)]
pub struct DbtMacro(pub Value);

impl Object for DbtMacro {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        match self.0.call(state, args) {
            Ok(rendered) => Ok(rendered),
            Err(err) => take_return(&err).ok_or(err),
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0.get_attr(key.as_str()?).ok()
    }
}

pub fn wrap(m: Value) -> Value {
    Value::from_object(DbtMacro(m))
}

/// Adds `{% set NAME = __dbt_wrap(NAME) %}` after each `{% endmacro %}` (on the same line,
/// so line numbers stay true) and rewrites `{% set x = [] %}`-style literals into mutable
/// lists and dicts. Returns the new source and the names of the top-level macros.
pub fn rewrite_source(src: &str) -> (String, Vec<String>) {
    let tests = test_blocks_as_macros(src);
    let src = tests.as_str();
    let mut out = String::with_capacity(src.len() + 64);
    let mut stack: Vec<String> = Vec::new();
    let mut top = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{%") {
        // The `%}` after the `{%`: in `{%}` they share the `%`, and that is no tag.
        let Some(end_rel) = rest[start + 2..].find("%}") else {
            break;
        };
        let end = start + 2 + end_rel + 2;
        let tag = &rest[start..end];
        let inner =
            tag[2..tag.len() - 2].trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        if inner == "raw" {
            // Copy a raw block untouched.
            let Some(close) = rest[end..].find("endraw") else {
                break;
            };
            let Some(close_end) = rest[end + close..].find("%}") else {
                break;
            };
            let stop = end + close + close_end + 2;
            out.push_str(&rest[..stop]);
            rest = &rest[stop..];
            continue;
        }
        out.push_str(&rest[..start]);
        out.push_str(&mutable_literals(tag, inner));
        if let Some(r) = inner.strip_prefix("macro ") {
            let name: String = r
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            stack.push(name);
        } else if (inner == "endmacro" || inner.starts_with("endmacro "))
            && let Some(name) = stack.pop()
        {
            let close = if tag.ends_with("-%}") { "-%}" } else { "%}" };
            out.push_str(&format!("{{% set {name} = __dbt_wrap({name}) {close}"));
            if stack.is_empty() {
                top.push(name);
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    (out, top)
}

/// `{% test name(model, column_name) %}...{% endtest %}` is a macro `test_name`.
fn test_blocks_as_macros(src: &str) -> String {
    if !src.contains("test") {
        return src.to_string();
    }
    let open =
        regex::Regex::new(r"\{%(-?)(\s*)test\s+([A-Za-z_][A-Za-z0-9_]*)").expect("test regex");
    let close = regex::Regex::new(r"\{%(-?)(\s*)endtest(\s*)(-?)%\}").expect("endtest regex");
    let out = open.replace_all(src, "{%${1}${2}macro test_${3}");
    close
        .replace_all(&out, "{%${1}${2}endmacro${3}${4}%}")
        .into_owned()
}

/// `{% set x = [..] %}` / `{% set x = {..} %}`: Jinja in Python lets templates append to
/// such lists (`{% do x.append(1) %}`); minijinja's literals are immutable, so the literal
/// is wrapped in a mutable list or dict.
fn mutable_literals(tag: &str, inner: &str) -> String {
    let Some(rest) = inner.strip_prefix("set ") else {
        return tag.to_string();
    };
    let Some((target, value)) = rest.split_once('=') else {
        return tag.to_string();
    };
    let value = value.trim();
    let wrapper = if value.starts_with('[') && value.ends_with(']') {
        "__mutable_list"
    } else if value.starts_with('{') && value.ends_with('}') {
        "__mutable_dict"
    } else {
        return tag.to_string();
    };
    let open = if tag.starts_with("{%-") { "{%-" } else { "{%" };
    let close = if tag.ends_with("-%}") { "-%}" } else { "%}" };
    format!("{open} set {} = {wrapper}({value}) {close}", target.trim())
}

/// `__register(pkg, module)`: the driver stores each imported macro in the state.
pub fn register(state: &mut State, pkg: String, module: Value) -> Result<(), Error> {
    for key in module.try_iter()? {
        let Some(name) = key.as_str() else { continue };
        let value = module.get_attr(name)?;
        state.set_temp(&format!("macro:{pkg}.{name}"), value);
    }
    Ok(())
}

fn lookup(state: &State, pkgs: &[String], name: &str) -> Option<Value> {
    pkgs.iter()
        .find_map(|p| state.get_temp(&format!("macro:{p}.{name}")))
}

/// A macro called by its bare name: found in the current package, the root project, then
/// socle's built-in macros.
#[derive(Debug)]
pub struct GlobalMacro {
    pub search: Vec<String>,
    pub name: String,
}

impl Object for GlobalMacro {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        match lookup(state, &self.search, &self.name) {
            Some(m) => m.call(state, args),
            None => Err(Error::new(
                ErrorKind::UnknownFunction,
                format!("macro `{}` is not loaded", self.name),
            )),
        }
    }
}

/// `dbt_utils.star(...)`: a package's macros by name.
#[derive(Debug)]
pub struct PackageNs {
    pub pkg: String,
    pub names: Vec<String>,
}

impl Object for PackageNs {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let k = key.as_str()?;
        self.names.iter().any(|n| n == k).then(|| {
            Value::from_object(GlobalMacro {
                search: vec![self.pkg.clone()],
                name: k.to_string(),
            })
        })
    }
}

/// What `adapter.dispatch(name, namespace)` returns: tries `duckdb__name`, then
/// `default__name`, in each package of the search order.
#[derive(Debug)]
pub struct Dispatcher {
    pub search: Vec<String>,
    pub candidates: Vec<String>,
}

impl Object for Dispatcher {
    fn call(self: &Arc<Self>, state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        for pkg in &self.search {
            for c in &self.candidates {
                if let Some(m) = state.get_temp(&format!("macro:{pkg}.{c}")) {
                    return m.call(state, args);
                }
            }
        }
        Err(Error::new(
            ErrorKind::UnknownFunction,
            format!(
                "adapter.dispatch found none of {} in {}",
                self.candidates.join(", "),
                self.search.join(", ")
            ),
        ))
    }
}

/// Arguments of `adapter.dispatch(macro_name, macro_namespace=None)`.
pub fn dispatch_args(args: &[Value]) -> Result<(String, Option<String>), Error> {
    let (name, ns, kwargs): (String, Option<String>, Kwargs) = from_args(args)?;
    let ns = match ns {
        Some(ns) => Some(ns),
        None => kwargs.get::<Option<String>>("macro_namespace")?,
    };
    Ok((name, ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_macros_and_list_literals() {
        let (out, names) = rewrite_source(
            "{% macro a(x) %}{% set l = [] %}{{ x }}{% endmacro %}\n{%- macro b() -%}{%- endmacro -%}",
        );
        assert_eq!(names, vec!["a", "b"]);
        assert!(out.contains("{% set l = __mutable_list([]) %}"), "{out}");
        assert!(
            out.contains("{% endmacro %}{% set a = __dbt_wrap(a) %}"),
            "{out}"
        );
        assert!(
            out.contains("{%- endmacro -%}{% set b = __dbt_wrap(b) -%}"),
            "{out}"
        );
    }

    /// Found while writing the fuzz tests: in `{%}` the `%}` overlaps the `{%`, and cutting the
    /// tag's inside panicked on a slice that ends before it starts (any model holding `{%}`).
    #[test]
    fn regression_a_tag_end_that_overlaps_its_start() {
        assert_eq!(rewrite_source("{%}"), ("{%}".to_string(), vec![]));
        assert_eq!(rewrite_source("a {%} b %} c").0, "a {%} b %} c");
        assert_eq!(
            rewrite_source("{%}{% set l = [] %}").0,
            "{%}{% set l = [] %}"
        );
    }
}
