//! The run-time [`Resolver`]: refs and sources resolve to the relations the loader named,
//! and `run_query` / `adapter` calls go to the warehouse.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::ScalarValue;
use minijinja::Value;
use socle_warehouse::Warehouse;
use tokio::runtime::Handle;

use crate::jinja::{QueryTable, Relation, Resolver};
use crate::nodes::{Kind, Nodes};

pub struct WarehouseResolver {
    pub wh: Warehouse,
    pub handle: Handle,
    pub nodes: Arc<Nodes>,
}

/// The relation a node writes (`cte` for ephemeral models).
pub fn relation_of(node: &crate::nodes::Node) -> Relation {
    let materialized = node.config.materialized();
    if node.kind == Kind::Model && materialized == "ephemeral" {
        return Relation {
            database: "socle".into(),
            schema: String::new(),
            identifier: format!("__dbt__cte__{}", node.name),
            kind: "cte".into(),
        };
    }
    let kind = match (node.kind, materialized) {
        (Kind::Model, "view") => "view",
        _ => "table",
    };
    Relation {
        database: "socle".into(),
        schema: node.schema.clone(),
        identifier: node.alias.clone(),
        kind: kind.into(),
    }
}

impl Resolver for WarehouseResolver {
    fn resolve_ref(
        &self,
        from_package: &str,
        package: Option<&str>,
        name: &str,
    ) -> Result<Relation, String> {
        let candidates: Vec<_> = self
            .nodes
            .nodes
            .values()
            .filter(|n| {
                n.name == name && matches!(n.kind, Kind::Model | Kind::Seed | Kind::Snapshot)
            })
            .collect();
        let found = match package {
            Some(p) => candidates.iter().find(|n| n.package == p),
            None => candidates
                .iter()
                .find(|n| n.package == from_package)
                .or(candidates.first()),
        };
        found
            .map(|n| relation_of(n))
            .ok_or_else(|| format!("`{name}` is not a model, seed or snapshot"))
    }

    fn resolve_source(&self, source: &str, table: &str) -> Result<Relation, String> {
        self.nodes
            .sources
            .values()
            .find(|s| s.source_name == source && s.name == table)
            .map(|s| Relation {
                database: "socle".into(),
                schema: s.schema.clone(),
                identifier: s.identifier.clone(),
                kind: "source".into(),
            })
            .ok_or_else(|| format!("source `{source}.{table}` is not declared"))
    }

    fn run_query(&self, sql: &str) -> Result<QueryTable, String> {
        let batches = self
            .handle
            .block_on(self.wh.query(sql))
            .map_err(|e| e.to_string())?;
        Ok(to_table(&batches))
    }

    fn get_relation(&self, schema: &str, identifier: &str) -> Option<Relation> {
        let kind = self
            .handle
            .block_on(self.wh.relation_kind(&format!("{schema}.{identifier}")))
            .ok()??;
        Some(Relation {
            database: "socle".into(),
            schema: schema.to_ascii_lowercase(),
            identifier: identifier.to_ascii_lowercase(),
            kind: kind.to_string(),
        })
    }

    fn columns(&self, relation: &Relation) -> Result<Vec<(String, String)>, String> {
        if relation.kind == "cte" {
            return Err(format!(
                "{} is an ephemeral model: it has no columns to look up",
                relation.identifier
            ));
        }
        let name = format!("{}.{}", relation.schema, relation.identifier);
        let d = self
            .handle
            .block_on(self.wh.describe(&name))
            .map_err(|e| e.to_string())?;
        Ok(d.columns
            .into_iter()
            .map(|c| (c.name, c.data_type))
            .collect())
    }

    fn doc(&self, name: &str) -> Option<String> {
        self.nodes.docs.get(name).cloned()
    }
}

/// Query results as a table of template values.
pub fn to_table(batches: &[RecordBatch]) -> QueryTable {
    let column_names = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            let row = b
                .columns()
                .iter()
                .map(|col| match ScalarValue::try_from_array(col, r) {
                    Ok(v) => scalar_to_value(&v),
                    Err(_) => Value::from(()),
                })
                .collect();
            rows.push(row);
        }
    }
    QueryTable { column_names, rows }
}

fn scalar_to_value(v: &ScalarValue) -> Value {
    if v.is_null() {
        return Value::from(());
    }
    match v {
        ScalarValue::Boolean(Some(b)) => Value::from(*b),
        ScalarValue::Int8(Some(i)) => Value::from(*i as i64),
        ScalarValue::Int16(Some(i)) => Value::from(*i as i64),
        ScalarValue::Int32(Some(i)) => Value::from(*i as i64),
        ScalarValue::Int64(Some(i)) => Value::from(*i),
        ScalarValue::UInt8(Some(i)) => Value::from(*i as i64),
        ScalarValue::UInt16(Some(i)) => Value::from(*i as i64),
        ScalarValue::UInt32(Some(i)) => Value::from(*i as i64),
        ScalarValue::UInt64(Some(i)) => Value::from(*i),
        ScalarValue::Float32(Some(f)) => Value::from(*f as f64),
        ScalarValue::Float64(Some(f)) => Value::from(*f),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Value::from(s.clone()),
        other => Value::from(other.to_string()),
    }
}
