//! Looking at and looking after relations: listing, describing, history (the versions time
//! travel can reach), compaction (`optimize`), `vacuum`, drop, restoring an earlier version,
//! and `validate` for `socle check`.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::Warehouse;
use crate::error::{Result, WarehouseError};
use crate::names::RelName;

/// A table or view in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct RelationInfo {
    pub schema: String,
    pub name: String,
    /// `table` or `view`.
    pub kind: &'static str,
    /// Current Delta version (tables only).
    pub version: Option<i64>,
}

/// One column of a relation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
    pub description: Option<String>,
}

/// Everything `describe` knows about a relation.
#[derive(Debug, Clone, Serialize)]
pub struct RelationDetail {
    pub schema: String,
    pub name: String,
    pub kind: &'static str,
    pub description: Option<String>,
    pub version: Option<i64>,
    pub files: Option<usize>,
    pub rows: Option<u64>,
    /// When the newest data file was written (RFC 3339; tables only): the table's freshness.
    pub last_modified: Option<String>,
    /// The view's SQL.
    pub definition: Option<String>,
    /// Where the table's files are.
    pub location: Option<String>,
    pub columns: Vec<ColumnInfo>,
}

/// One committed version of a table.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    pub version: i64,
    pub timestamp: String,
    pub operation: String,
    pub details: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OptimizeReport {
    pub version: i64,
    pub files_added: u64,
    pub files_removed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VacuumReport {
    pub dry_run: bool,
    pub files: Vec<String>,
}

/// What `validate` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ValidationReport {
    pub tables: usize,
    pub views: usize,
    pub problems: Vec<String>,
}

impl Warehouse {
    pub async fn list_schemas(&self) -> Result<Vec<String>> {
        self.refresh().await?;
        Ok(self.shared.schema_names())
    }

    /// Whether `name` is a `"table"`, a `"view"` or nothing, looking at that relation only
    /// (cheaper than [`list_relations`](Self::list_relations), which opens every table).
    pub async fn relation_kind(&self, name: &str) -> Result<Option<&'static str>> {
        let rel = RelName::parse(name, self.default_schema())?;
        if self
            .shared
            .meta
            .get_view(&rel.schema, &rel.name)
            .await?
            .is_some()
        {
            return Ok(Some("view"));
        }
        Ok(self.shared.open_table(&rel, None).await?.map(|_| "table"))
    }

    /// Tables and views, optionally of one schema, sorted.
    pub async fn list_relations(&self, schema: Option<&str>) -> Result<Vec<RelationInfo>> {
        self.refresh().await?;
        let mut out = Vec::new();
        for s in self.shared.schema_names() {
            if schema.is_some_and(|want| want != s) {
                continue;
            }
            for name in self.shared.cached_names(&s) {
                let rel = RelName {
                    schema: s.clone(),
                    name,
                };
                if self
                    .shared
                    .meta
                    .get_view(&rel.schema, &rel.name)
                    .await?
                    .is_some()
                {
                    out.push(RelationInfo {
                        schema: rel.schema,
                        name: rel.name,
                        kind: "view",
                        version: None,
                    });
                } else if let Some(t) = self.shared.open_table(&rel, None).await? {
                    out.push(RelationInfo {
                        schema: rel.schema,
                        name: rel.name,
                        kind: "table",
                        version: t.version().map(|v| v as i64),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Columns, version, size and descriptions of a table or view.
    pub async fn describe(&self, name: &str) -> Result<RelationDetail> {
        let rel = RelName::parse(name, self.default_schema())?;
        let descriptions = self
            .shared
            .meta
            .descriptions(&rel.schema, &rel.name)
            .await?;
        let describe = |col: &str| {
            descriptions
                .iter()
                .find(|(c, _)| c == col)
                .map(|(_, d)| d.clone())
        };
        if let Some(view) = self.shared.meta.get_view(&rel.schema, &rel.name).await? {
            let df = self
                .ctx
                .table(datafusion::common::TableReference::full(
                    crate::CATALOG,
                    rel.schema.as_str(),
                    rel.name.as_str(),
                ))
                .await
                .map_err(|e| WarehouseError::from_datafusion(e, &view.definition))?;
            let columns = df
                .schema()
                .fields()
                .iter()
                .map(|f| ColumnInfo {
                    name: f.name().clone(),
                    data_type: f.data_type().to_string(),
                    nullable: f.is_nullable(),
                    description: describe(f.name()),
                })
                .collect();
            return Ok(RelationDetail {
                description: describe(""),
                schema: rel.schema,
                name: rel.name,
                kind: "view",
                version: None,
                files: None,
                rows: None,
                last_modified: None,
                definition: Some(view.definition),
                location: None,
                columns,
            });
        }
        let Some(table) = self.shared.open_table(&rel, None).await? else {
            return Err(self.not_found(&rel).await);
        };
        let snapshot = table.snapshot().map_err(|source| WarehouseError::Delta {
            table: rel.to_string(),
            source,
        })?;
        let schema = snapshot.snapshot().arrow_schema();
        let log = snapshot.log_data();
        let mut rows = Some(0u64);
        let mut newest: Option<i64> = None;
        for file in log.iter() {
            newest = newest.max(Some(file.modification_time()));
            rows = match (rows, file.num_records()) {
                (Some(r), Some(n)) => Some(r + n as u64),
                _ => None,
            };
        }
        Ok(RelationDetail {
            description: describe(""),
            kind: "table",
            version: table.version().map(|v| v as i64),
            files: Some(log.num_files()),
            rows,
            last_modified: newest
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            definition: None,
            location: Some(table.table_url().to_string()),
            columns: schema
                .fields()
                .iter()
                .map(|f| ColumnInfo {
                    name: f.name().clone(),
                    data_type: f.data_type().to_string(),
                    nullable: f.is_nullable(),
                    description: describe(f.name()),
                })
                .collect(),
            schema: rel.schema,
            name: rel.name,
        })
    }

    /// An error for a missing relation, suggesting a close name.
    async fn not_found(&self, rel: &RelName) -> WarehouseError {
        let all: Vec<String> = self
            .list_relations(None)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| format!("{}.{}", r.schema, r.name))
            .collect();
        let wanted = rel.to_string();
        let suggestion = socle_core::diag::did_you_mean(&wanted, all.iter().map(String::as_str))
            .map(str::to_string);
        WarehouseError::NotFound {
            kind: "table",
            name: wanted,
            suggestion,
        }
    }

    async fn table(&self, name: &str) -> Result<(RelName, deltalake::DeltaTable)> {
        let rel = RelName::parse(name, self.default_schema())?;
        match self.shared.open_table(&rel, None).await? {
            Some(t) => Ok((rel, t)),
            None => Err(self.not_found(&rel).await),
        }
    }

    /// The latest `limit` versions of a table, newest first.
    pub async fn history(&self, name: &str, limit: usize) -> Result<Vec<VersionInfo>> {
        let (rel, table) = self.table(name).await?;
        // delta-rs may return more than `limit` commits; keep the newest `limit`.
        let commits: Vec<_> = table
            .history(Some(limit))
            .take(limit)
            .try_collect()
            .await
            .map_err(|source| WarehouseError::Delta {
                table: rel.to_string(),
                source,
            })?;
        let latest = table.version().map_or(0, |v| v as i64);
        Ok(commits
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let version = c
                    .read_version
                    .map(|v| v as i64 + 1)
                    .unwrap_or(latest - i as i64);
                let timestamp = c
                    .timestamp
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
                    .unwrap_or_default();
                let details = c
                    .info
                    .get("operationMetrics")
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                VersionInfo {
                    version,
                    timestamp,
                    operation: c.operation.unwrap_or_default(),
                    details,
                }
            })
            .collect())
    }

    /// Rewrites small files into larger ones: a new version with the same rows.
    pub async fn optimize(&self, name: &str, target_size: Option<u64>) -> Result<OptimizeReport> {
        let (rel, table) = self.table(name).await?;
        let mut builder = table
            .optimize()
            .with_session_state(Arc::new(self.ctx.state()));
        if let Some(size) = target_size.and_then(std::num::NonZeroU64::new) {
            builder = builder.with_target_size(size);
        }
        let (table, metrics) = builder.await.map_err(|source| WarehouseError::Delta {
            table: rel.to_string(),
            source,
        })?;
        Ok(OptimizeReport {
            version: table.version().map_or(0, |v| v as i64),
            files_added: metrics.num_files_added,
            files_removed: metrics.num_files_removed,
        })
    }

    /// Deletes files that no version from the last `retain_hours` hours needs. Time travel
    /// to older versions is no longer possible afterwards.
    pub async fn vacuum(
        &self,
        name: &str,
        retain_hours: u64,
        dry_run: bool,
    ) -> Result<VacuumReport> {
        let (rel, table) = self.table(name).await?;
        let (_, metrics) = table
            .vacuum()
            .with_retention_period(chrono::Duration::hours(retain_hours as i64))
            .with_enforce_retention_duration(false)
            .with_dry_run(dry_run)
            .await
            .map_err(|source| WarehouseError::Delta {
                table: rel.to_string(),
                source,
            })?;
        Ok(VacuumReport {
            dry_run: metrics.dry_run,
            files: metrics.files_deleted,
        })
    }

    /// Drops a table (its files) or a view (its definition). Returns whether it existed.
    pub async fn drop_relation(&self, name: &str, if_exists: bool) -> Result<bool> {
        let rel = RelName::parse(name, self.default_schema())?;
        if self.shared.meta.drop_view(&rel.schema, &rel.name).await? {
            self.shared.note(&rel.schema, Some(&rel.name), false);
            return Ok(true);
        }
        if self.shared.open_table(&rel, None).await?.is_none() {
            if if_exists {
                return Ok(false);
            }
            return Err(self.not_found(&rel).await);
        }
        // The log goes first: once it is gone the folder is no longer a table, so a crash
        // half-way leaves unreferenced files, never a table missing some of its data.
        self.shared
            .lake
            .delete_prefix(&format!("{}_delta_log/", rel.lake_path()))
            .await?;
        self.shared.lake.delete_prefix(&rel.lake_path()).await?;
        self.shared.note(&rel.schema, Some(&rel.name), false);
        Ok(true)
    }

    /// A table's current Delta version; `None` when there is no such table.
    pub async fn table_version(&self, name: &str) -> Result<Option<i64>> {
        let rel = RelName::parse(name, self.default_schema())?;
        Ok(self
            .shared
            .open_table(&rel, None)
            .await?
            .and_then(|t| t.version())
            .map(|v| v as i64))
    }

    /// Puts a table back as it was at `version` (a new commit with that version's files),
    /// or drops it when `version` is `None` (it did not exist). Returns whether anything
    /// changed: a table already at `version` is left alone.
    pub async fn restore_table(&self, name: &str, version: Option<i64>) -> Result<bool> {
        let Some(version) = version else {
            return self.drop_relation(name, true).await;
        };
        let (rel, table) = self.table(name).await?;
        if table.version().map(|v| v as i64) == Some(version) {
            return Ok(false);
        }
        table
            .restore()
            .with_version_to_restore(version as u64)
            .await
            .map_err(|source| WarehouseError::Delta {
                table: rel.to_string(),
                source,
            })?;
        self.shared.note(&rel.schema, Some(&rel.name), true);
        Ok(true)
    }

    /// Opens every table and plans every view (for `socle check`).
    pub async fn validate(&self) -> Result<ValidationReport> {
        let mut report = ValidationReport::default();
        for r in self.list_relations(None).await? {
            let full = format!("{}.{}", r.schema, r.name);
            match r.kind {
                "view" => {
                    report.views += 1;
                    if let Err(e) = self.describe(&full).await {
                        report.problems.push(format!("view {full}: {e}"));
                    }
                }
                _ => {
                    report.tables += 1;
                    if let Err(e) = self.describe(&full).await {
                        report.problems.push(format!("table {full}: {e}"));
                    }
                }
            }
        }
        Ok(report)
    }
}
