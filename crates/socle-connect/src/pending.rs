//! A load in flight: what it records before its commit (its table, raw parts and writer),
//! and its reconciliation by the next extraction of the stream (step 1 of
//! [`crate::run`]): finished when its commit is in the table, discarded with its raw
//! parts when not. A pending load is reconciled only once its writer is gone, so a second
//! extraction of the same stream never discards the first one's load (and its raw parts)
//! while that one is still writing it.

use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use crate::run::{Extraction, app_id, rejected_table};
use crate::sink::Part;
use crate::{ConnectError, Result};

/// What a pending load needs to be reconciled after a crash.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PendingDetail {
    pub table: String,
    pub parts: Vec<Part>,
    pub reject_parts: Vec<Part>,
    pub data_rows: u64,
    /// The writing process and its host (absent in loads recorded by older versions).
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub host: Option<String>,
}

impl PendingDetail {
    pub fn new(table: String, parts: Vec<Part>, reject_parts: Vec<Part>, data_rows: u64) -> Self {
        Self {
            table,
            parts,
            reject_parts,
            data_rows,
            pid: Some(std::process::id()),
            host: host(),
        }
    }

    /// The process that wrote this load runs on this host (it is still loading). A writer
    /// on another host, or one that cannot be checked, counts as gone.
    pub fn writer_alive(&self) -> Option<u32> {
        let pid = self.pid?;
        if pid == std::process::id() || self.host.is_none() || self.host != host() {
            return None;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let zombie = status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains('Z'));
        (!zombie).then_some(pid)
    }
}

fn host() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// How long an extraction waits for another one's load of the same stream to end.
const LIVE_LOAD_WAIT: Duration = Duration::from_secs(15 * 60);

impl Extraction<'_> {
    /// Finishes or discards a load a crash left pending. A load another extraction is
    /// still writing is waited for (up to [`LIVE_LOAD_WAIT`]), never discarded.
    pub(crate) async fn reconcile(&self, source: &str, stream: &str) -> Result<()> {
        let started = Instant::now();
        let mut told = false;
        let (pending, detail) = loop {
            let Some(pending) = self.meta.pending_load(source, stream).await? else {
                return Ok(());
            };
            let detail: PendingDetail = serde_json::from_str(&pending.detail).map_err(|e| {
                ConnectError::Other(format!("pending load of {source}.{stream}: {e}"))
            })?;
            let Some(pid) = detail.writer_alive() else {
                break (pending, detail);
            };
            if started.elapsed() > LIVE_LOAD_WAIT {
                return Err(ConnectError::Other(format!(
                    "{source}.{stream}: another extraction (process {pid}) is still loading it; run this one again once it ends"
                )));
            }
            if !told {
                self.progress.note(&format!(
                    "{source}.{stream}: waiting for the load of another extraction (process {pid}) to end"
                ));
                told = true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let app = app_id(source, stream);
        let data_in = self
            .warehouse
            .txn_version(&detail.table, &app)
            .await?
            .unwrap_or(0)
            >= pending.seq;
        let rejected_table = rejected_table(&detail.table);
        let rejects_in = detail.reject_parts.is_empty()
            || self
                .warehouse
                .txn_version(&rejected_table, &app)
                .await?
                .unwrap_or(0)
                >= pending.seq;
        if data_in || (detail.data_rows == 0 && rejects_in && !detail.reject_parts.is_empty()) {
            if !rejects_in {
                self.load_rejects(&rejected_table, &detail.reject_parts, &app, pending.seq)
                    .await?;
            }
            self.meta.confirm_load(source, stream).await?;
            self.progress.note(&format!(
                "{source}.{stream}: finished the load of run {} interrupted earlier",
                pending.run_id
            ));
        } else {
            // The raw parts go first: a failure to remove one leaves the load pending, so
            // the next run tries again rather than keeping raw data no table holds.
            self.remove_parts(&detail.parts).await?;
            self.remove_parts(&detail.reject_parts).await?;
            self.meta.discard_load(source, stream).await?;
            self.progress.note(&format!(
                "{source}.{stream}: discarded the unfinished load of run {} (nothing of it was committed)",
                pending.run_id
            ));
        }
        Ok(())
    }

    /// Removes landed raw parts. Each is one file: [`socle_lake::Lake::delete_prefix`]
    /// would take its path for a folder and remove nothing.
    pub(crate) async fn remove_parts(&self, parts: &[Part]) -> Result<()> {
        let store = self.lake.store();
        for p in parts {
            let path = self.lake.path_of(&p.path)?;
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(socle_lake::LakeError::Io {
                        path: p.path.clone(),
                        source,
                    }
                    .into());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_writer_is_told_from_a_gone_one() {
        let mut d = PendingDetail::new("t".into(), Vec::new(), Vec::new(), 0);
        assert_eq!(d.writer_alive(), None, "this process is not another writer");
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        d.pid = Some(child.id());
        if d.host.is_some() {
            assert_eq!(d.writer_alive(), Some(child.id()));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(d.writer_alive(), None);
        let old: PendingDetail =
            serde_json::from_str(r#"{"table":"t","parts":[],"reject_parts":[],"data_rows":0}"#)
                .unwrap();
        assert_eq!(old.writer_alive(), None);
    }
}
