//! Objects a template sees: relations (`{{ ref('x') }}`, `{{ this }}`), the per-render
//! scope behind `ref`, `source` and `config`, mutable lists and dicts, and query results.

use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value, ValueKind, from_args};
use minijinja::{Error, ErrorKind, State};

/// A relation as dbt's `Relation`: prints as `"schema"."identifier"`.
#[derive(Debug, Clone)]
pub struct Relation {
    pub database: String,
    pub schema: String,
    pub identifier: String,
    /// `table`, `view`, `cte` (ephemeral models) or `source`.
    pub kind: String,
}

impl Relation {
    pub fn rendered(&self) -> String {
        if self.kind == "cte" {
            return self.identifier.clone();
        }
        if self.schema.is_empty() {
            return crate::nodes::quote(&self.identifier);
        }
        format!(
            "{}.{}",
            crate::nodes::quote(&self.schema),
            crate::nodes::quote(&self.identifier)
        )
    }
}

impl Object for Relation {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "database" => Some(Value::from(self.database.clone())),
            "schema" => Some(Value::from(self.schema.clone())),
            "identifier" | "name" | "table" => Some(Value::from(self.identifier.clone())),
            "type" => Some(Value::from(self.kind.clone())),
            "is_table" => Some(Value::from(self.kind == "table")),
            "is_view" => Some(Value::from(self.kind == "view")),
            "is_cte" => Some(Value::from(self.kind == "cte")),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "render" => Ok(Value::from(self.rendered())),
            // `include(database=False)` etc.: our relations print schema.identifier anyway.
            "include" | "quote" | "incorporate" => {
                let mut r = (**self).clone();
                if method == "incorporate" {
                    let (_, kwargs): (&[Value], Kwargs) = from_args(args)?;
                    if let Some(path) = kwargs.get::<Option<Value>>("path")? {
                        if let Ok(Some(id)) = path
                            .get_attr("identifier")
                            .map(|v| v.as_str().map(str::to_string))
                        {
                            r.identifier = id;
                        }
                        if let Ok(Some(s)) = path
                            .get_attr("schema")
                            .map(|v| v.as_str().map(str::to_string))
                        {
                            r.schema = s;
                        }
                    }
                    if let Some(kind) = kwargs.get::<Option<String>>("type")? {
                        r.kind = kind;
                    }
                }
                Ok(Value::from_object(r))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("Relation has no method `{method}`"),
            )),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.rendered())
    }
}

/// A list templates may append to (`{% do cols.append(c) %}`), as Python's Jinja allows.
///
/// Its lock is never held while a value is read: a value may be this very list
/// (`l.extend(l)`, `l.index(l)`), and reading it takes the lock again, which would wait
/// forever. Nor may a list or dict come to hold itself ([`holds`]): printing, comparing or
/// `tojson` of a cycle would never end.
#[derive(Debug, Default)]
pub struct MutList(pub Mutex<Vec<Value>>);

impl MutList {
    fn items(&self) -> Vec<Value> {
        self.0.lock().expect("list lock").clone()
    }
}

impl Object for MutList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = key.as_i64()?;
        let items = self.0.lock().expect("list lock");
        let i = if i < 0 { items.len() as i64 + i } else { i };
        items.get(usize::try_from(i).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.items())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.lock().expect("list lock").len())
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let me = Arc::as_ptr(self).cast::<()>();
        match method {
            "append" => {
                let (v,): (Value,) = from_args(args)?;
                refuse_cycle(&v, me)?;
                self.0.lock().expect("list lock").push(v);
                Ok(Value::from(()))
            }
            "extend" => {
                let (v,): (Value,) = from_args(args)?;
                let new: Vec<Value> = v.try_iter()?.collect();
                for item in &new {
                    refuse_cycle(item, me)?;
                }
                self.0.lock().expect("list lock").extend(new);
                Ok(Value::from(()))
            }
            "insert" => {
                let (i, v): (usize, Value) = from_args(args)?;
                refuse_cycle(&v, me)?;
                let mut items = self.0.lock().expect("list lock");
                let at = i.min(items.len());
                items.insert(at, v);
                Ok(Value::from(()))
            }
            "pop" => {
                let (i,): (Option<i64>,) = from_args(args)?;
                let mut items = self.0.lock().expect("list lock");
                let len = items.len() as i64;
                let i = i
                    .map(|i| if i < 0 { len + i } else { i })
                    .unwrap_or(len - 1);
                if i < 0 || i >= len {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "pop from empty list or index out of range",
                    ));
                }
                Ok(items.remove(i as usize))
            }
            "remove" => {
                let (v,): (Value,) = from_args(args)?;
                if let Some(pos) = self.items().iter().position(|x| *x == v) {
                    let mut items = self.0.lock().expect("list lock");
                    if pos < items.len() {
                        items.remove(pos);
                    }
                }
                Ok(Value::from(()))
            }
            "index" => {
                let (v,): (Value,) = from_args(args)?;
                Ok(Value::from(
                    self.items()
                        .iter()
                        .position(|x| *x == v)
                        .map(|p| p as i64)
                        .unwrap_or(-1),
                ))
            }
            "count" => {
                let (v,): (Value,) = from_args(args)?;
                Ok(Value::from(
                    self.items().iter().filter(|x| **x == v).count(),
                ))
            }
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("list has no method `{method}`"),
            )),
        }
    }
}

/// The values [`holds`] looks through, and how deep, before it stops looking (and lets
/// the value in).
const CYCLE_SEARCH_LIMIT: usize = 10_000;
const CYCLE_SEARCH_DEPTH: usize = 64;

/// An error when `value` holds the list or dict at `container` (see [`holds`]).
fn refuse_cycle(value: &Value, container: *const ()) -> Result<(), Error> {
    let mut budget = CYCLE_SEARCH_LIMIT;
    if holds(value, container, &mut budget, 0)? {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "a list or dict cannot hold itself",
        ));
    }
    Ok(())
}

/// Whether `value` is the mutable list or dict at `container`, or holds it in its items,
/// keys or values (through lists, dicts and sequences), looking at no more than `budget`
/// values and [`CYCLE_SEARCH_DEPTH`] levels. Lazy iterables are not walked: walking would
/// use them up.
fn holds(
    value: &Value,
    container: *const (),
    budget: &mut usize,
    depth: usize,
) -> Result<bool, Error> {
    if *budget == 0 || depth > CYCLE_SEARCH_DEPTH {
        return Ok(false);
    }
    *budget -= 1;
    let ptr = value
        .downcast_object_ref::<MutList>()
        .map(|l| std::ptr::from_ref(l).cast::<()>())
        .or_else(|| {
            value
                .downcast_object_ref::<MutDict>()
                .map(|d| std::ptr::from_ref(d).cast::<()>())
        });
    if ptr == Some(container) {
        return Ok(true);
    }
    match value.kind() {
        ValueKind::Seq => {
            for item in value.try_iter()? {
                if holds(&item, container, budget, depth + 1)? {
                    return Ok(true);
                }
            }
        }
        ValueKind::Map => {
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                if holds(&key, container, budget, depth + 1)?
                    || holds(&item, container, budget, depth + 1)?
                {
                    return Ok(true);
                }
            }
        }
        _ => {}
    }
    Ok(false)
}

pub fn mutable_list(v: Option<Value>) -> Result<Value, Error> {
    let items = match v {
        Some(v) if !v.is_undefined() && !v.is_none() => v.try_iter()?.collect(),
        _ => Vec::new(),
    };
    Ok(Value::from_object(MutList(Mutex::new(items))))
}

/// A dict templates may update (`{% do d.update({'a': 1}) %}`); like [`MutList`], its lock
/// is never held while a value is read or compared.
#[derive(Debug, Default)]
pub struct MutDict(pub Mutex<Vec<(Value, Value)>>);

impl MutDict {
    fn entries(&self) -> Vec<(Value, Value)> {
        self.0.lock().expect("dict lock").clone()
    }

    /// The value of `key` (compared outside the lock).
    fn lookup(&self, key: &Value) -> Option<Value> {
        self.entries()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Sets `key` to `value`, both already checked by [`refuse_cycle`].
    fn set(&self, key: Value, value: Value) {
        let pos = self.entries().iter().position(|(k, _)| *k == key);
        let mut entries = self.0.lock().expect("dict lock");
        match pos {
            Some(p) if p < entries.len() => entries[p].1 = value,
            _ => entries.push((key, value)),
        }
    }
}

impl Object for MutDict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.lookup(key)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.entries().into_iter().map(|(k, _)| k).collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.lock().expect("dict lock").len())
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let me = Arc::as_ptr(self).cast::<()>();
        match method {
            "update" => {
                let (other,): (Value,) = from_args(args)?;
                let mut pairs = Vec::new();
                for k in other.try_iter()? {
                    let v = other.get_item(&k)?;
                    refuse_cycle(&k, me)?;
                    refuse_cycle(&v, me)?;
                    pairs.push((k, v));
                }
                for (k, v) in pairs {
                    self.set(k, v);
                }
                Ok(Value::from(()))
            }
            "setdefault" => {
                let (k, v): (Value, Option<Value>) = from_args(args)?;
                if let Some(existing) = self.lookup(&k) {
                    return Ok(existing);
                }
                let v = v.unwrap_or(Value::from(()));
                refuse_cycle(&k, me)?;
                refuse_cycle(&v, me)?;
                self.set(k, v.clone());
                Ok(v)
            }
            "pop" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                match self.entries().iter().position(|(x, _)| *x == k) {
                    Some(p) => {
                        let mut entries = self.0.lock().expect("dict lock");
                        if p < entries.len() {
                            Ok(entries.remove(p).1)
                        } else {
                            Ok(default.unwrap_or(Value::from(())))
                        }
                    }
                    None => Ok(default.unwrap_or(Value::from(()))),
                }
            }
            "get" => {
                let (k, default): (Value, Option<Value>) = from_args(args)?;
                Ok(self
                    .lookup(&k)
                    .unwrap_or(default.unwrap_or(Value::from(()))))
            }
            "keys" => Ok(Value::from(
                self.entries()
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect::<Vec<_>>(),
            )),
            "values" => Ok(Value::from(
                self.entries()
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect::<Vec<_>>(),
            )),
            "items" => Ok(Value::from(
                self.entries()
                    .into_iter()
                    .map(|(k, v)| Value::from(vec![k, v]))
                    .collect::<Vec<_>>(),
            )),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("dict has no method `{method}`"),
            )),
        }
    }
}

pub fn mutable_dict(v: Option<Value>) -> Result<Value, Error> {
    let mut entries = Vec::new();
    if let Some(v) = v.filter(|v| !v.is_undefined() && !v.is_none()) {
        for k in v.try_iter()? {
            let val = v.get_item(&k)?;
            entries.push((k, val));
        }
    }
    Ok(Value::from_object(MutDict(Mutex::new(entries))))
}

/// The result of `run_query` / `load_result(...)['table']`: rows, and columns with
/// `.name` and `.values()`, like the agate tables dbt returns.
#[derive(Debug)]
pub struct QueryTable {
    pub column_names: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Object for QueryTable {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some(i) = key.as_i64() {
            return self
                .rows
                .get(usize::try_from(i).ok()?)
                .map(|r| Value::from(r.clone()));
        }
        match key.as_str()? {
            "rows" => Some(Value::from(
                self.rows
                    .iter()
                    .map(|r| Value::from(r.clone()))
                    .collect::<Vec<_>>(),
            )),
            "column_names" => Some(Value::from(self.column_names.clone())),
            "columns" => Some(Value::from(
                (0..self.column_names.len())
                    .map(|i| {
                        Value::from_object(QueryColumn {
                            name: self.column_names[i].clone(),
                            values: self.rows.iter().map(|r| r[i].clone()).collect(),
                        })
                    })
                    .collect::<Vec<_>>(),
            )),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.rows.iter().map(|r| Value::from(r.clone())).collect())
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        _: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "print_table" => Ok(Value::from(())),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("table has no method `{method}`"),
            )),
        }
    }
}

#[derive(Debug)]
struct QueryColumn {
    name: String,
    values: Vec<Value>,
}

impl Object for QueryColumn {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "name" => Some(Value::from(self.name.clone())),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        _: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "values" => Ok(Value::from(self.values.clone())),
            _ => Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("column has no method `{method}`"),
            )),
        }
    }
}

/// `api.Relation.create(database=, schema=, identifier=, type=)`, as packages build
/// relations by hand.
#[derive(Debug)]
pub struct Api;

impl Object for Api {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        (key.as_str()? == "Relation").then(|| Value::from_object(RelationClass))
    }
}

#[derive(Debug)]
struct RelationClass;

impl Object for RelationClass {
    fn call_method(
        self: &Arc<Self>,
        _: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "create" {
            return Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("api.Relation has no method `{method}` (socle knows `create`)"),
            ));
        }
        let (kwargs,): (Kwargs,) = from_args(args)?;
        let text = |k: &str| -> Result<Option<String>, Error> { kwargs.get::<Option<String>>(k) };
        let relation = Relation {
            database: text("database")?.unwrap_or_else(|| "socle".into()),
            schema: text("schema")?.unwrap_or_default(),
            identifier: text("identifier")?.unwrap_or_default(),
            kind: text("type")?.unwrap_or_else(|| "table".into()),
        };
        Ok(Value::from_object(relation))
    }
}
