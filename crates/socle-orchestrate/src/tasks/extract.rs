//! `extract`: runs sources of `sources/*.yml` for the run's logical date (see
//! `docs/sources.md`), each stream landed and loaded in one commit with its state.
//!
//! ```yaml
//! extract:
//!   kind: extract
//!   sources: [shop_files, crm.contacts]   # sources or source.stream; default: all
//!   full_refresh: false
//! ```
//!
//! The attempt fails when any stream fails; streams that succeeded stay loaded and a retry
//! reads only what they have not loaded yet (their state advanced with their data).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use socle_connect::{ExtractOptions, Progress, StreamReport};

use super::{Fields, Kind, Log, TaskContext, TaskFailure};
use crate::pipeline::{StringOrList, TaskSpec};

/// An `extract` task's own fields.
#[derive(Debug, Clone)]
pub struct Extract {
    pub sources: Vec<String>,
    pub full_refresh: bool,
}

/// Writes each stream's outcome to the attempt's log.
struct LogProgress(Log);

impl Progress for LogProgress {
    fn stream_finished(&self, r: &StreamReport) {
        self.0.line(&format!(
            "{}.{} -> {}: {} read, {} inserted, {} updated, {} rejected, {} files, {:.2}s {}{}",
            r.source,
            r.stream,
            r.table,
            r.rows_read,
            r.rows_inserted,
            r.rows_updated,
            r.rejected,
            r.files,
            r.duration_ms as f64 / 1000.0,
            r.status.as_str().to_uppercase(),
            r.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
        for w in &r.warnings {
            self.0
                .line(&format!("{}.{}: warning: {w}", r.source, r.stream));
        }
    }
    fn note(&self, message: &str) {
        self.0.line(&format!("note: {message}"));
    }
}

impl Kind for Extract {
    const NAME: &'static str = "extract";
    const FIELDS: &'static [&'static str] = &["sources", "full_refresh"];

    fn parse(f: &mut Fields) -> Self {
        Self {
            sources: f
                .value::<StringOrList>("sources")
                .map(|s| s.to_vec())
                .unwrap_or_default(),
            full_refresh: f.value("full_refresh").unwrap_or(false),
        }
    }

    fn templates(&self) -> Vec<String> {
        self.sources.clone()
    }

    fn uses_warehouse(&self) -> bool {
        true
    }

    async fn run(&self, _spec: &TaskSpec, ctx: &TaskContext) -> Result<String, TaskFailure> {
        let root = ctx.project.root.clone();
        let sources =
            socle_connect::load_sources(&root).map_err(|e| TaskFailure::new(e.to_string()))?;
        let selection: Vec<String> = self
            .sources
            .iter()
            .map(|s| ctx.render(s))
            .collect::<Result<_, _>>()?;
        let warehouse = ctx.warehouse().await?;
        let meta = match &ctx.meta {
            Some((m, _, _)) => m.clone(),
            None => socle_app::open_meta(&ctx.project, &socle_app::resolver(&ctx.project))
                .await
                .map_err(|e| TaskFailure::new(e.to_string()))?,
        };
        let mut options = ExtractOptions::new(ctx.dates, self.full_refresh);
        options.run_id = format!("{}-{}", ctx.run_id, options.run_id);
        let extraction = socle_app::Extract {
            project: &ctx.project,
            warehouse: &warehouse,
            meta: &meta,
            progress: Arc::new(LogProgress(ctx.log.clone())),
            cancel: Arc::new(AtomicBool::new(false)),
        };
        let reports = extraction
            .run(&sources, &selection, &options)
            .await
            .map_err(|e| TaskFailure::new(e.to_string()))?;
        let failed: Vec<&StreamReport> = reports
            .iter()
            .filter(|r| r.status != socle_meta::StreamState::Success)
            .collect();
        let rows: u64 = reports
            .iter()
            .map(|r| r.rows_inserted + r.rows_updated)
            .sum();
        let rejected: u64 = reports.iter().map(|r| r.rejected).sum();
        if !failed.is_empty() {
            return Err(TaskFailure::new(format!(
                "{} of {} streams failed: {}",
                failed.len(),
                reports.len(),
                failed
                    .iter()
                    .map(|r| r.error.clone().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        Ok(format!(
            "{} streams, {rows} rows loaded, {rejected} rejected",
            reports.len()
        ))
    }
}
