//! Writing a version's output tables: one version of a model at a time, and all of them or
//! none.
//!
//! Each table moves by one Delta commit, but a model writes several (`rules` and
//! `itemsets`, a forecast and its components, ...). So that readers never see the tables of
//! two versions side by side for long, and two trainings of one model never interleave:
//! 1. the version takes the model's writing right in the metadata database
//!    ([`MetaDb::begin_writing`]: one `writing` version per model), waiting for another
//!    version that holds it, or taking it over from a process that is gone;
//! 2. it records each table's Delta version before it writes (`outputs_before`);
//! 3. it writes the tables, one commit each;
//! 4. `ready` (or `failed`) gives the right back.
//!
//! A write that fails puts the tables written so far back as they were (Delta restore, or
//! drop for a table that did not exist) before the version is marked `failed`. A process
//! killed while writing leaves its version `writing`: the next training, prediction or
//! listing of that model finds its process gone and does the same. Should the restore
//! itself fail, the version stays `writing` and the next one tries again.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use socle_core::process::{Runner, runner_id, runner_state};
use socle_meta::MetaDb;
use socle_meta::models::{Begin, Writer};
use socle_warehouse::Warehouse;

use crate::error::MlError;

/// How long a training waits for another version of the same model to finish writing.
const WAIT: Duration = Duration::from_secs(600);
/// How often it looks again meanwhile.
const POLL: Duration = Duration::from_millis(200);

/// The reason recorded on a version whose process stopped while writing.
pub const ABANDONED: &str =
    "its process stopped while writing the output tables; they were put back as they were";

/// An output table and its Delta version before the writing began (`None`: no such table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Before {
    pub table: String,
    pub version: Option<i64>,
}

/// Takes the writing right of `model` for `version` and records where `tables` stand.
pub async fn begin(
    meta: &MetaDb,
    wh: &Warehouse,
    model: &str,
    version: i64,
    tables: &[String],
    progress: &(dyn Fn(usize, usize, &str) + Sync),
) -> Result<Vec<Before>, MlError> {
    let deadline = Instant::now() + WAIT;
    let mut told = false;
    loop {
        let holder = match meta.begin_writing(model, version, runner_id()).await? {
            Begin::Acquired => break,
            Begin::Held(holder) => holder,
        };
        if runner_state(holder.writer.as_deref()) == Runner::Dead {
            recover(meta, wh, model, &holder).await?;
            continue;
        }
        if Instant::now() >= deadline {
            return Err(MlError::Conflict(format!(
                "model `{model}`: version {} has been writing the output tables for more than {} s ({}); try again once it ends",
                holder.version,
                WAIT.as_secs(),
                holder
                    .writer
                    .as_deref()
                    .map_or("unknown process".to_string(), |w| format!("process {w}")),
            )));
        }
        if !told {
            progress(
                2,
                3,
                &format!(
                    "waiting for version {} to finish writing the output tables",
                    holder.version
                ),
            );
            told = true;
        }
        tokio::time::sleep(POLL).await;
    }
    let mut before = Vec::with_capacity(tables.len());
    for table in tables {
        before.push(Before {
            table: table.clone(),
            version: wh.table_version(table).await?,
        });
    }
    let json = serde_json::to_string(&before).unwrap_or_default();
    meta.record_outputs_before(model, version, &json).await?;
    Ok(before)
}

/// Puts `before`'s tables back as they were, newest written first.
pub async fn restore(wh: &Warehouse, before: &[Before]) -> Result<(), MlError> {
    for b in before.iter().rev() {
        wh.restore_table(&b.table, b.version).await?;
    }
    Ok(())
}

/// Undoes a version of `model` whose writer is gone, if there is one: called before a
/// training, a prediction or a listing of the model.
pub async fn recover_abandoned(
    meta: &MetaDb,
    wh: &Warehouse,
    model: &str,
) -> Result<Option<i64>, MlError> {
    match meta.writing_version(model).await? {
        Some(holder) if runner_state(holder.writer.as_deref()) == Runner::Dead => {
            recover(meta, wh, model, &holder).await?;
            Ok(Some(holder.version))
        }
        _ => Ok(None),
    }
}

/// Takes `holder`'s writing over (only one process does), puts its tables back and marks
/// it failed.
async fn recover(
    meta: &MetaDb,
    wh: &Warehouse,
    model: &str,
    holder: &Writer,
) -> Result<(), MlError> {
    if !meta
        .take_over_writing(model, holder.version, holder.writer.as_deref(), runner_id())
        .await?
    {
        return Ok(()); // another process took it over, or it ended
    }
    let before: Vec<Before> = match holder.outputs_before.as_deref() {
        None => Vec::new(), // nothing was written yet
        Some(text) => serde_json::from_str(text).map_err(|e| MlError::Artefact {
            model: model.to_string(),
            version: holder.version,
            message: format!("its record of the output tables does not read back: {e}"),
        })?,
    };
    restore(wh, &before).await?;
    meta.fail_version(model, holder.version, ABANDONED, None)
        .await?;
    tracing::warn!(
        model,
        version = holder.version,
        writer = holder.writer.as_deref().unwrap_or(""),
        tables = before.len(),
        "a training stopped while writing its output tables; they were put back"
    );
    Ok(())
}
