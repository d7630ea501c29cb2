//! Catalog extras the Delta tables cannot hold: view definitions, descriptions and
//! explicitly created (possibly empty) schemas.

use sqlx::Row;

use crate::{MetaDb, MetaError, now};

/// A persisted view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewDef {
    pub schema: String,
    pub name: String,
    pub definition: String,
}

impl MetaDb {
    /// Creates or replaces a view definition.
    pub async fn put_view(
        &self,
        schema: &str,
        name: &str,
        definition: &str,
    ) -> Result<(), MetaError> {
        let ts = now();
        sqlx::query(
            "INSERT INTO catalog_views (schema_name, view_name, definition, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (schema_name, view_name)
             DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at",
        )
        .bind(schema)
        .bind(name)
        .bind(definition)
        .bind(ts)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn get_view(&self, schema: &str, name: &str) -> Result<Option<ViewDef>, MetaError> {
        let row = sqlx::query(
            "SELECT definition FROM catalog_views WHERE schema_name = $1 AND view_name = $2",
        )
        .bind(schema)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| ViewDef {
            schema: schema.into(),
            name: name.into(),
            definition: r.get("definition"),
        }))
    }

    /// Views, optionally of one schema, ordered by schema and name.
    pub async fn list_views(&self, schema: Option<&str>) -> Result<Vec<ViewDef>, MetaError> {
        let rows = sqlx::query(
            "SELECT schema_name, view_name, definition FROM catalog_views
             WHERE $1 = '' OR schema_name = $1 ORDER BY schema_name, view_name",
        )
        .bind(schema.unwrap_or(""))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ViewDef {
                schema: r.get("schema_name"),
                name: r.get("view_name"),
                definition: r.get("definition"),
            })
            .collect())
    }

    /// Removes a view; returns whether it existed.
    pub async fn drop_view(&self, schema: &str, name: &str) -> Result<bool, MetaError> {
        let done =
            sqlx::query("DELETE FROM catalog_views WHERE schema_name = $1 AND view_name = $2")
                .bind(schema)
                .bind(name)
                .execute(self.pool())
                .await?;
        sqlx::query("DELETE FROM catalog_descriptions WHERE schema_name = $1 AND object_name = $2")
            .bind(schema)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets the description of a table or view (`column` = None) or of one of its columns.
    pub async fn set_description(
        &self,
        schema: &str,
        object: &str,
        column: Option<&str>,
        description: &str,
    ) -> Result<(), MetaError> {
        sqlx::query(
            "INSERT INTO catalog_descriptions (schema_name, object_name, column_name, description, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (schema_name, object_name, column_name)
             DO UPDATE SET description = excluded.description, updated_at = excluded.updated_at",
        )
        .bind(schema)
        .bind(object)
        .bind(column.unwrap_or(""))
        .bind(description)
        .bind(now())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Descriptions of an object: `(column or "" for the object itself, description)`.
    pub async fn descriptions(
        &self,
        schema: &str,
        object: &str,
    ) -> Result<Vec<(String, String)>, MetaError> {
        let rows = sqlx::query(
            "SELECT column_name, description FROM catalog_descriptions
             WHERE schema_name = $1 AND object_name = $2 ORDER BY column_name",
        )
        .bind(schema)
        .bind(object)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get("column_name"), r.get("description")))
            .collect())
    }

    /// Records an explicitly created schema (so an empty one still lists).
    pub async fn create_schema(&self, schema: &str) -> Result<bool, MetaError> {
        let done = sqlx::query(
            "INSERT INTO catalog_schemas (schema_name, created_at) VALUES ($1, $2) ON CONFLICT (schema_name) DO NOTHING",
        )
        .bind(schema)
        .bind(now())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn drop_schema(&self, schema: &str) -> Result<(), MetaError> {
        sqlx::query("DELETE FROM catalog_schemas WHERE schema_name = $1")
            .bind(schema)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn list_schemas(&self) -> Result<Vec<String>, MetaError> {
        let rows = sqlx::query(
            "SELECT schema_name FROM catalog_schemas UNION SELECT schema_name FROM catalog_views ORDER BY 1",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }
}
