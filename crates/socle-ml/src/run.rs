//! Training and prediction runs: read the input from the warehouse, fit or apply the
//! model, keep the version in the lake and the metadata database, write the output tables.
//!
//! A training run:
//! 1. plans the input and notes the Delta version of every table it reads;
//! 2. reads the rows and fits the model (on a blocking thread: fits are CPU work);
//! 3. claims the next version number (two trainings at once get two numbers);
//! 4. writes `models/<name>/<version>/fitted.json` (the fitted model, in the kind's
//!    versioned format) and `model.json` (which kind and format) to the lake;
//! 5. writes its output tables (one Delta commit each);
//! 6. writes `version.json` (parameters, metrics, input and output versions, spec hash,
//!    who, how long) and marks the version `ready`.
//!
//! Step 5 is one version of a model at a time, and all tables or none ([`crate::outputs`]).
//! A failure marks the claimed version `failed` (never used) after putting back any output
//! table it had written. The spec's and the data's failures all happen in the fit, before
//! anything is written. A process killed while fitting leaves the version `training`
//! (never used); one killed while writing the tables leaves it `writing`, and the next
//! training, prediction or listing of the model puts the tables back and marks it
//! `failed`. Nothing half-written is read: a table moves by whole commits, a version is
//! used only once `ready`.

use std::collections::BTreeMap;
use std::time::Instant;

use datafusion::arrow::array::RecordBatch;
use datafusion::logical_expr::LogicalPlan;
use serde::{Deserialize, Serialize};
use socle_lake::Lake;
use socle_meta::MetaDb;
use socle_warehouse::{Warehouse, WriteMode};

use crate::error::MlError;
use crate::frame::Frame;
use crate::kinds::TrainContext;
use crate::outputs;
use crate::spec::{Input, ModelSpec};

/// The format of `model.json` and `version.json` (the kind's own format is in `format`).
pub const FILE_FORMAT: u32 = 1;

/// A table a model read, at the Delta version it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTable {
    pub table: String,
    /// `None` for a view (its tables are listed too).
    pub version: Option<i64>,
}

/// `version.json`: what a version is, for people and for the registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionInfo {
    pub file_format: u32,
    pub model: String,
    pub version: i64,
    pub kind: String,
    /// The kind's format of `model.json`.
    pub format: u32,
    /// The kind's columns and parameters as the spec gave them.
    pub spec: serde_json::Value,
    pub spec_hash: String,
    /// The parameters fitted with (a grid search's choice included).
    pub params: serde_json::Value,
    pub metrics: BTreeMap<String, f64>,
    pub notes: Vec<String>,
    pub inputs: Vec<InputTable>,
    pub rows: usize,
    pub created_by: String,
    pub created_at: String,
    pub duration_ms: u64,
    /// Output tables written at training, with the Delta version each reached.
    pub outputs: Vec<InputTable>,
}

/// `model.json`: what `fitted.json` next to it holds (the kind and its format's version).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelFile {
    pub file_format: u32,
    pub kind: String,
    pub format: u32,
}

/// Where a version's files are in the lake.
pub fn version_dir(model: &str, version: i64) -> String {
    format!("models/{model}/{version}")
}

/// What a training run needs besides the spec.
pub struct Env<'a> {
    pub warehouse: &'a Warehouse,
    pub lake: &'a Lake,
    pub meta: &'a MetaDb,
    /// Who trains (recorded with the version).
    pub who: &'a str,
    /// The relation of a dbt model by name (`Input::Model`).
    pub relation_of: &'a (dyn Fn(&str) -> Option<String> + Sync),
    pub progress: &'a (dyn Fn(usize, usize, &str) + Sync),
}

/// The SELECT that reads `input`.
pub fn input_sql(model: &str, input: &Input, env: &Env) -> Result<String, MlError> {
    match input {
        Input::Model(m) => match (env.relation_of)(m) {
            Some(relation) => Ok(format!("SELECT * FROM {relation}")),
            None => Err(MlError::data(
                model,
                format!("`input.model`: the dbt project has no model `{m}`"),
            )),
        },
        other => Ok(other.sql()),
    }
}

/// The tables (and views) `sql` reads, each at its current version.
pub async fn input_tables(wh: &Warehouse, sql: &str) -> Result<Vec<InputTable>, MlError> {
    let plan = wh.logical_plan(sql).await?;
    let mut names = std::collections::BTreeSet::new();
    collect_scans(&plan, &mut names);
    let mut out = Vec::new();
    for name in names {
        let version = match wh.describe(&name).await {
            Ok(d) => d.version,
            Err(_) => None,
        };
        out.push(InputTable {
            table: name,
            version,
        });
    }
    Ok(out)
}

fn collect_scans(plan: &LogicalPlan, names: &mut std::collections::BTreeSet<String>) {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let t = &scan.table_name;
            names.insert(match t.schema() {
                Some(s) => format!("{s}.{}", t.table()),
                None => t.table().to_string(),
            });
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

/// The columns `spec`'s kind uses that its input (`sql`) does not have, each with a
/// "did you mean" when one is close: found by planning the input, without reading it.
pub async fn missing_columns(
    spec: &ModelSpec,
    wh: &Warehouse,
    sql: &str,
) -> Result<Vec<String>, MlError> {
    let plan = wh.logical_plan(sql).await?;
    let have: Vec<String> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    Ok(spec
        .kind
        .input_columns()
        .into_iter()
        .filter(|c| !have.contains(c))
        .map(
            |c| match socle_core::diag::did_you_mean(&c, have.iter().map(String::as_str)) {
                Some(best) => format!("no column `{c}` (did you mean `{best}`?)"),
                None => format!("no column `{c}` (the input's columns: {})", have.join(", ")),
            },
        )
        .collect())
}

/// Reads the rows of `sql` as a frame.
pub async fn read(model: &str, wh: &Warehouse, sql: &str) -> Result<Frame, MlError> {
    let batches = wh.query(sql).await?;
    Frame::from_batches(model, &batches)
}

/// What a training run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub model: String,
    pub version: i64,
    pub kind: String,
    pub rows: usize,
    pub metrics: BTreeMap<String, f64>,
    pub notes: Vec<String>,
    pub outputs: Vec<InputTable>,
    pub duration_ms: u64,
}

/// Trains `spec`: a new version, its files and its output tables.
pub async fn train(spec: &ModelSpec, env: &Env<'_>) -> Result<TrainReport, MlError> {
    let started = Instant::now();
    outputs::recover_abandoned(env.meta, env.warehouse, &spec.name).await?;
    let sql = input_sql(&spec.name, &spec.input, env)?;
    let inputs = input_tables(env.warehouse, &sql).await?;
    (env.progress)(0, 3, "reading the input");
    let frame = read(&spec.name, env.warehouse, &sql).await?;
    let version = env
        .meta
        .claim_version(&spec.name, spec.kind.name(), &spec.hash, env.who)
        .await?;
    socle_core::failpoint::hit("ml-after-claim");
    // The output tables' versions before this training wrote them, once it may write.
    let mut began: Option<Vec<outputs::Before>> = None;
    let done = async {
        (env.progress)(1, 3, "fitting");
        let trained = fit(spec, frame.clone(), env).await?;
        (env.progress)(2, 3, "writing the version");
        // The fitted model first, then the tables (each one commit), then what the version
        // is: errors of the user's spec or data all come from the fit, before any write.
        let dir = version_dir(&spec.name, version);
        let file = ModelFile {
            file_format: FILE_FORMAT,
            kind: spec.kind.name().to_string(),
            format: spec.kind.format(),
        };
        // Compact JSON as the kind wrote it: a recommender's factors are megabytes.
        env.lake
            .put(&format!("{dir}/fitted.json"), trained.fitted)
            .await?;
        env.lake
            .put(&format!("{dir}/model.json"), to_json(&file))
            .await?;
        let tables: Vec<String> = trained
            .outputs
            .iter()
            .map(|(suffix, _)| spec.output.table(suffix))
            .collect();
        let before = outputs::begin(
            env.meta,
            env.warehouse,
            &spec.name,
            version,
            &tables,
            env.progress,
        )
        .await?;
        began = Some(before);
        let mut written = Vec::new();
        for (table, (_, batch)) in tables.into_iter().zip(trained.outputs) {
            if !written.is_empty() {
                socle_core::failpoint::hit("ml-between-outputs");
            }
            let report = write(env.warehouse, &table, batch).await?;
            written.push(InputTable {
                table,
                version: Some(report),
            });
        }
        socle_core::failpoint::hit("ml-after-outputs");
        let info = VersionInfo {
            file_format: FILE_FORMAT,
            model: spec.name.clone(),
            version,
            kind: spec.kind.name().to_string(),
            format: spec.kind.format(),
            spec: serde_json::to_value(&spec.kind).unwrap_or_default(),
            spec_hash: spec.hash.clone(),
            params: trained.params,
            metrics: trained.metrics,
            notes: trained.notes,
            inputs,
            rows: frame.rows(),
            created_by: env.who.to_string(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            duration_ms: started.elapsed().as_millis() as u64,
            outputs: written,
        };
        env.lake
            .put(&format!("{dir}/version.json"), to_json(&info))
            .await?;
        socle_core::failpoint::hit("ml-before-ready");
        Ok::<_, MlError>(info)
    }
    .await;
    let elapsed = started.elapsed().as_millis() as i64;
    match done {
        Ok(info) => {
            let metrics = serde_json::to_string(&info.metrics).unwrap_or_default();
            env.meta
                .finish_version(&spec.name, version, &metrics, elapsed)
                .await?;
            (env.progress)(3, 3, "done");
            Ok(TrainReport {
                model: spec.name.clone(),
                version,
                kind: info.kind,
                rows: info.rows,
                metrics: info.metrics,
                notes: info.notes,
                outputs: info.outputs,
                duration_ms: info.duration_ms,
            })
        }
        Err(e) => {
            if let Some(before) = &began
                && let Err(restore) = outputs::restore(env.warehouse, before).await
            {
                // Left `writing`: the next training of the model tries again.
                tracing::warn!(
                    "model {} version {version}: output tables not put back yet: {restore}",
                    spec.name
                );
                return Err(e);
            }
            if let Err(record) = env
                .meta
                .fail_version(&spec.name, version, &e.to_string(), Some(elapsed))
                .await
            {
                tracing::warn!(
                    "model {} version {version}: not marked failed: {record}",
                    spec.name
                );
            }
            Err(e)
        }
    }
}

/// What an evaluation measured.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluateReport {
    pub model: String,
    pub kind: String,
    pub rows: usize,
    /// The validation used (the spec's, or a holdout of the last 20% of rows).
    pub validation: crate::validation::Validation,
    pub metrics: BTreeMap<String, f64>,
    pub notes: Vec<String>,
    pub duration_ms: u64,
}

/// Validates `spec` on its input as a training would, keeping nothing: no version, no
/// table. Without a `validation:` section, the last 20% of rows are held out.
pub async fn evaluate(spec: &ModelSpec, env: &Env<'_>) -> Result<EvaluateReport, MlError> {
    let started = Instant::now();
    let sql = input_sql(&spec.name, &spec.input, env)?;
    (env.progress)(0, 2, "reading the input");
    let frame = read(&spec.name, env.warehouse, &sql).await?;
    let mut spec = spec.clone();
    let validation = spec
        .validation
        .get_or_insert_with(|| crate::validation::Validation {
            method: crate::validation::Method::Holdout {
                test_fraction: 0.2,
                shuffle: false,
            },
            metric: None,
            grid: BTreeMap::new(),
        })
        .clone();
    let rows = frame.rows();
    let trained = fit(&spec, frame, env).await?;
    Ok(EvaluateReport {
        model: spec.name.clone(),
        kind: spec.kind.name().to_string(),
        rows,
        validation,
        metrics: trained.metrics,
        notes: trained.notes,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

async fn fit(
    spec: &ModelSpec,
    frame: Frame,
    env: &Env<'_>,
) -> Result<crate::kinds::Trained, MlError> {
    let kind = spec.kind.clone();
    let (name, seed, validation) = (spec.name.clone(), spec.seed, spec.validation.clone());
    // The progress callback is not 'static: fits report through a channel, forwarded here
    // as each line comes (so that its time is right), the last ones before the result.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize, String)>();
    let task = tokio::task::spawn_blocking(move || {
        let report = move |done: usize, total: usize, what: &str| {
            let _ = tx.send((done, total, what.to_string()));
        };
        let ctx = TrainContext {
            model: &name,
            seed,
            validation: validation.as_ref(),
            progress: &report,
        };
        kind.train(&frame, &ctx)
    });
    tokio::pin!(task);
    loop {
        tokio::select! {
            biased;
            Some((done, total, what)) = rx.recv() => (env.progress)(done, total, &what),
            result = &mut task => {
                while let Ok((done, total, what)) = rx.try_recv() {
                    (env.progress)(done, total, &what);
                }
                return result.map_err(|e| MlError::data(&spec.name, format!("the fit stopped: {e}")))?;
            }
        }
    }
}

async fn write(wh: &Warehouse, table: &str, batch: RecordBatch) -> Result<i64, MlError> {
    let report = wh
        .load_batches(table, vec![batch], WriteMode::Overwrite)
        .await?;
    Ok(report.version)
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("model files serialize")
}

/// Reads a ready version's fitted model, `version` or the newest ready one: its number,
/// `model.json` and the bytes of `fitted.json`.
pub async fn load_version(
    model: &str,
    version: Option<i64>,
    lake: &Lake,
    meta: &MetaDb,
) -> Result<(i64, ModelFile, Vec<u8>), MlError> {
    let record = meta.ready_version(model, version).await?.ok_or_else(|| {
        MlError::NotFound(match version {
            Some(v) => format!("model `{model}` has no ready version {v}"),
            None => format!(
                "model `{model}` has no version yet: train it with `socle ml train {model}`"
            ),
        })
    })?;
    let bytes = lake
        .get(&format!(
            "{}/model.json",
            version_dir(model, record.version)
        ))
        .await?;
    let file: ModelFile = serde_json::from_slice(&bytes).map_err(|e| MlError::Artefact {
        model: model.to_string(),
        version: record.version,
        message: format!("model.json does not read: {e}"),
    })?;
    if file.file_format > FILE_FORMAT {
        return Err(MlError::Artefact {
            model: model.to_string(),
            version: record.version,
            message: format!(
                "written by a newer socle (file format {}, this one reads {FILE_FORMAT})",
                file.file_format
            ),
        });
    }
    let fitted = lake
        .get(&format!(
            "{}/fitted.json",
            version_dir(model, record.version)
        ))
        .await?;
    Ok((record.version, file, fitted))
}

/// What a prediction run did.
#[derive(Debug, Clone, Serialize)]
pub struct PredictReport {
    pub model: String,
    pub version: i64,
    pub rows: usize,
    pub outputs: Vec<InputTable>,
}

/// Applies version `version` (or the newest ready one) of `spec` to `input` (default: the
/// spec's input), writing the kind's prediction tables; `output` renames the main one.
pub async fn predict(
    spec: &ModelSpec,
    version: Option<i64>,
    input: Option<&Input>,
    output: Option<&str>,
    env: &Env<'_>,
) -> Result<PredictReport, MlError> {
    outputs::recover_abandoned(env.meta, env.warehouse, &spec.name).await?;
    let (version, file, fitted) = load_version(&spec.name, version, env.lake, env.meta).await?;
    if file.kind != spec.kind.name() {
        return Err(MlError::Conflict(format!(
            "model `{}` version {version} is a `{}` model; ml/{}.yml now says `{}`: train it again",
            spec.name,
            file.kind,
            spec.name,
            spec.kind.name()
        )));
    }
    if file.format > spec.kind.format() {
        return Err(MlError::Artefact {
            model: spec.name.clone(),
            version,
            message: format!(
                "its model format {} is newer than this socle reads ({})",
                file.format,
                spec.kind.format()
            ),
        });
    }
    let sql = input_sql(&spec.name, input.unwrap_or(&spec.input), env)?;
    (env.progress)(0, 3, "reading the input");
    let frame = read(&spec.name, env.warehouse, &sql).await?;
    let rows = frame.rows();
    let kind = spec.kind.clone();
    let name = spec.name.clone();
    (env.progress)(1, 3, "predicting");
    let tables = tokio::task::spawn_blocking(move || kind.predict(&name, &fitted, &frame))
        .await
        .map_err(|e| MlError::data(&spec.name, format!("the prediction stopped: {e}")))??;
    (env.progress)(2, 3, "writing the predictions");
    let mut outputs = Vec::new();
    for (suffix, batch) in tables {
        let table = match (suffix, output) {
            ("", Some(o)) => o.to_string(),
            _ => spec.output.table(&format!("{suffix}_predictions")),
        };
        let v = write(env.warehouse, &table, batch).await?;
        outputs.push(InputTable {
            table,
            version: Some(v),
        });
    }
    (env.progress)(3, 3, "done");
    Ok(PredictReport {
        model: spec.name.clone(),
        version,
        rows,
        outputs,
    })
}
