//! Node configs: dbt's merge rules and typed access.
//!
//! Configs arrive as JSON maps from `dbt_project.yml`, schema YAML and `{{ config() }}`;
//! [`merge_key`] applies dbt's rules (tags and hooks add up, `meta` and `column_types`
//! merge by key, everything else is replaced by the more specific value).

use serde_json::{Map, Value};

/// Merges one config key into `out` with dbt's rules.
pub fn merge_key(out: &mut Map<String, Value>, key: &str, value: Value) {
    let key = match key {
        "pre-hook" => "pre_hook",
        "post-hook" => "post_hook",
        other => other,
    };
    match key {
        "tags" | "pre_hook" | "post_hook" => {
            let mut list = match out.remove(key) {
                Some(Value::Array(items)) => items,
                Some(Value::Null) | None => Vec::new(),
                Some(other) => vec![other],
            };
            match value {
                Value::Array(items) => list.extend(items),
                Value::Null => {}
                other => list.push(other),
            }
            if key == "tags" {
                let mut seen = std::collections::HashSet::new();
                list.retain(|t| seen.insert(t.to_string()));
            }
            out.insert(key.to_string(), Value::Array(list));
        }
        "meta" | "column_types" | "docs" | "persist_docs" => match (out.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(new)) => {
                for (k, v) in new {
                    existing.insert(k, v);
                }
            }
            (_, value) => {
                out.insert(key.to_string(), value);
            }
        },
        _ => {
            out.insert(key.to_string(), value);
        }
    }
}

/// Merges every key of `more` into `out`.
pub fn merge(out: &mut Map<String, Value>, more: &Map<String, Value>) {
    for (k, v) in more {
        merge_key(out, k, v.clone());
    }
}

/// Typed reads over a merged config map.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig(pub Map<String, Value>);

impl NodeConfig {
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.0.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" => Some(true),
                "false" | "no" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.bool("enabled").unwrap_or(true)
    }

    pub fn materialized(&self) -> &str {
        self.str("materialized").unwrap_or("view")
    }

    pub fn tags(&self) -> Vec<String> {
        list_of_strings(self.0.get("tags"))
    }

    /// `unique_key` as a list of columns (dbt accepts a string or a list).
    pub fn unique_key(&self) -> Vec<String> {
        list_of_strings(self.0.get("unique_key"))
    }

    pub fn hooks(&self, key: &str) -> Vec<String> {
        match self.0.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|h| match h {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o.get("sql").and_then(Value::as_str).map(str::to_string),
                    _ => None,
                })
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
}

/// A string or a list of strings as a list.
pub fn list_of_strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_add_up_and_scalars_are_replaced() {
        let mut out = Map::new();
        merge_key(&mut out, "tags", json!("a"));
        merge_key(&mut out, "tags", json!(["b", "a"]));
        merge_key(&mut out, "materialized", json!("view"));
        merge_key(&mut out, "materialized", json!("table"));
        merge_key(&mut out, "meta", json!({"x": 1}));
        merge_key(&mut out, "meta", json!({"y": 2}));
        assert_eq!(
            Value::Object(out),
            json!({"tags": ["a", "b"], "materialized": "table", "meta": {"x": 1, "y": 2}})
        );
    }
}
