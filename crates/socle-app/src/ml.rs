//! The model use cases (`ml/<name>.yml`): train and predict, set up once for `socle ml`,
//! the pipelines' `ml` task and the server. A spec's `input: { model: name }` is resolved
//! through the project's dbt project here, so the model layer needs no dbt code.

use std::sync::Arc;

use socle_core::Project;
use socle_lake::Lake;
use socle_meta::MetaDb;
use socle_ml::MlError;
use socle_ml::run::{Env, PredictReport, TrainReport};
use socle_ml::spec::{Input, ModelSpec};
use socle_warehouse::Warehouse;

/// What the model runs of one project use.
pub struct Models {
    pub project: Arc<Project>,
    pub warehouse: Warehouse,
    pub lake: Lake,
    pub meta: MetaDb,
}

/// `socle ml`'s progress: `done` of `total` steps, what.
pub type Progress = dyn Fn(usize, usize, &str) + Sync;

impl Models {
    /// Reads `ml/<name>.yml`.
    pub fn spec(&self, name: &str) -> Result<ModelSpec, MlError> {
        socle_ml::spec::load_one(&self.project.root, name).map_err(MlError::Spec)
    }

    /// Trains `spec` as `who`: a new version and its output tables.
    pub async fn train(
        &self,
        spec: &ModelSpec,
        who: &str,
        progress: &Progress,
    ) -> Result<TrainReport, MlError> {
        let relations = self.relations(spec, None).await;
        let relation_of = |m: &str| lookup(&relations, m);
        let env = self.env(who, &relation_of, progress);
        socle_ml::run::train(spec, &env).await
    }

    /// The versions of model `name`, newest first. A version whose process stopped while
    /// writing its output tables is undone first (tables put back, version `failed`).
    pub async fn versions(
        &self,
        name: &str,
    ) -> Result<Vec<socle_meta::models::VersionRecord>, MlError> {
        socle_ml::outputs::recover_abandoned(&self.meta, &self.warehouse, name).await?;
        Ok(self.meta.versions(name).await?)
    }

    /// Validates `spec` as a training would, keeping no version and writing no table.
    pub async fn evaluate(
        &self,
        spec: &ModelSpec,
        progress: &Progress,
    ) -> Result<socle_ml::run::EvaluateReport, MlError> {
        let relations = self.relations(spec, None).await;
        let relation_of = |m: &str| lookup(&relations, m);
        let env = self.env("", &relation_of, progress);
        socle_ml::run::evaluate(spec, &env).await
    }

    /// Applies version `version` (or the newest) of `spec` to `input` (default: the spec's).
    pub async fn predict(
        &self,
        spec: &ModelSpec,
        version: Option<i64>,
        input: Option<&Input>,
        output: Option<&str>,
        progress: &Progress,
    ) -> Result<PredictReport, MlError> {
        let relations = self.relations(spec, input).await;
        let relation_of = |m: &str| lookup(&relations, m);
        let env = self.env("", &relation_of, progress);
        socle_ml::run::predict(spec, version, input, output, &env).await
    }

    fn env<'a>(
        &'a self,
        who: &'a str,
        relation_of: &'a (dyn Fn(&str) -> Option<String> + Sync),
        progress: &'a Progress,
    ) -> Env<'a> {
        Env {
            warehouse: &self.warehouse,
            lake: &self.lake,
            meta: &self.meta,
            who,
            relation_of,
            progress,
        }
    }

    /// The relations of the dbt models a spec's input names (none unless it names one).
    async fn relations(&self, spec: &ModelSpec, input: Option<&Input>) -> Vec<(String, String)> {
        match input.unwrap_or(&spec.input) {
            Input::Model(_) => dbt_models(&self.project).await.unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// Every model of the project's dbt project with its relation (`schema.name`).
pub async fn dbt_models(project: &Project) -> Result<Vec<(String, String)>, crate::AppError> {
    let loaded = crate::load_dbt(project, 1, Default::default()).await?;
    Ok(loaded
        .nodes
        .nodes
        .values()
        .filter(|n| n.kind == socle_transform::nodes::Kind::Model)
        .map(|n| (n.name.clone(), n.relation()))
        .collect())
}

/// The relation of dbt model `name` among `relations` (name, relation).
fn lookup(relations: &[(String, String)], name: &str) -> Option<String> {
    relations
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, r)| r.clone())
}
