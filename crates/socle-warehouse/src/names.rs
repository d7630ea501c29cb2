//! Relation names: `table` (in the default schema) or `schema.table`, lowercase identifiers,
//! and where each table lives in the lake.

use datafusion::common::TableReference;
use socle_core::config::is_identifier;

use crate::error::{Result, WarehouseError};

/// A fully qualified relation name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelName {
    pub schema: String,
    pub name: String,
}

impl RelName {
    /// Parses `schema.table` or `table` typed by a user.
    pub fn parse(text: &str, default_schema: &str) -> Result<Self> {
        let text = text.trim();
        let (schema, name) = match text.split_once('.') {
            Some((s, n)) => (s.trim().to_ascii_lowercase(), n.trim().to_ascii_lowercase()),
            None => (default_schema.to_string(), text.to_ascii_lowercase()),
        };
        Self::checked(schema, name)
    }

    /// From a name DataFusion resolved in a statement.
    pub fn from_reference(r: &TableReference, default_schema: &str) -> Result<Self> {
        match r {
            TableReference::Bare { table } => {
                Self::checked(default_schema.to_string(), table.to_string())
            }
            TableReference::Partial { schema, table } => {
                Self::checked(schema.to_string(), table.to_string())
            }
            TableReference::Full {
                catalog,
                schema,
                table,
            } => {
                if catalog.as_ref() != crate::CATALOG {
                    return Err(WarehouseError::Unsupported(format!(
                        "catalog `{catalog}` does not exist (the warehouse catalog is `{}`)",
                        crate::CATALOG
                    )));
                }
                Self::checked(schema.to_string(), table.to_string())
            }
        }
    }

    fn checked(schema: String, name: String) -> Result<Self> {
        for part in [&schema, &name] {
            if !is_identifier(part) {
                return Err(WarehouseError::Unsupported(format!(
                    "invalid name `{part}`: schema and table names are lowercase letters, digits and `_`, starting with a letter or `_`"
                )));
            }
        }
        Ok(Self { schema, name })
    }

    /// The table's folder in the lake.
    pub fn lake_path(&self) -> String {
        format!("warehouse/{}/{}/", self.schema, self.name)
    }
}

impl std::fmt::Display for RelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            RelName::parse("Raw.Orders", "main").unwrap().to_string(),
            "raw.orders"
        );
        assert_eq!(
            RelName::parse("orders", "main").unwrap().to_string(),
            "main.orders"
        );
        assert!(RelName::parse("a.b-c", "main").is_err());
        assert_eq!(
            RelName::parse("raw.orders", "main").unwrap().lake_path(),
            "warehouse/raw/orders/"
        );
    }
}
