//! `clustering`: k-means with k-means++ initialisation on standardised features, as
//! scikit-learn's `KMeans` (see [`crate::algo::kmeans`]), with the silhouette score and an
//! option to pick k from a range by silhouette.
//!
//! ```yaml
//! kind: clustering
//! input: { table: marts.postings }
//! columns: { features: [salary, seniority, remote_share] }
//! params: { k: 5 }            # or k_min: 2, k_max: 10 to choose by silhouette
//! ```
//!
//! The output is the input's rows and columns with `cluster_id` (0-based; NULL for a row with
//! a missing feature, left out of the fit and counted) and `distance` (to its centre, in
//! standardised units); training also writes `<output>_centers` (`cluster_id`, `size`, and
//! each feature's centre in the data's own units).

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};
use socle_core::fields::Fields;

use super::{Kind, TrainContext, Trained, numeric_rows, role_list};
use crate::algo::Rng;
use crate::algo::kmeans::{KMeansModel, KMeansOptions, choose_k, kmeans, silhouette_score};
use crate::algo::linear::Scaler;
use crate::error::MlError;
use crate::frame::{Frame, OutColumn, batch};

/// Rows the silhouette is computed on at most (it is quadratic in rows).
const SILHOUETTE_SAMPLE: usize = 10_000;

/// A `clustering` model's columns and parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Clustering {
    pub features: Vec<String>,
    pub k: Option<usize>,
    pub k_min: Option<usize>,
    pub k_max: Option<usize>,
    pub n_init: usize,
    pub max_iter: usize,
    pub tol: f64,
    pub standardize: bool,
}

/// The fitted model.
#[derive(Debug, Serialize, Deserialize)]
struct Fitted {
    features: Vec<String>,
    /// `None` when features are used as they are.
    scaler: Option<Scaler>,
    model: KMeansModel,
}

impl Kind for Clustering {
    const NAME: &'static str = "clustering";
    const ROLES: &'static [&'static str] = &["features"];
    const PARAMS: &'static [&'static str] =
        &["k", "k_min", "k_max", "n_init", "max_iter", "tol", "standardize"];
    const FORMAT: u32 = 1;

    fn parse(columns: &mut Fields, params: &mut Fields) -> Self {
        Self {
            features: role_list(columns, "features"),
            k: params.value("k"),
            k_min: params.value("k_min"),
            k_max: params.value("k_max"),
            n_init: params.value("n_init").unwrap_or(10),
            max_iter: params.value("max_iter").unwrap_or(300),
            tol: params.value("tol").unwrap_or(1e-4),
            standardize: params.value("standardize").unwrap_or(true),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.features.is_empty() {
            return Err("a `clustering` model needs `columns: { features: [...] }`".into());
        }
        match (self.k, self.k_min, self.k_max) {
            (Some(k), None, None) if k >= 1 => Ok(()),
            (None, Some(a), Some(b)) if a >= 2 && a <= b => Ok(()),
            (None, None, None) => Err("give `k`, or `k_min` and `k_max` to choose k".into()),
            _ => Err("give either `k` (at least 1) or `k_min` ≥ 2 and `k_max` ≥ `k_min`".into()),
        }
    }

    fn input_columns(&self) -> Vec<String> {
        self.features.clone()
    }

    fn train(&self, frame: &Frame, ctx: &TrainContext) -> Result<Trained, MlError> {
        let (raw, kept, dropped) = numeric_rows(ctx.model, frame, &self.features)?;
        let scaler = if self.standardize {
            Some(Scaler::fit(&raw).map_err(|e| MlError::data(ctx.model, e.to_string()))?)
        } else {
            None
        };
        let x = scaler.as_ref().map_or_else(|| raw.clone(), |s| s.transform(&raw));
        let mut opts = KMeansOptions::new(self.k.unwrap_or(2));
        opts.n_init = self.n_init;
        opts.max_iter = self.max_iter;
        opts.tol = self.tol;
        let mut rng = Rng::new(ctx.seed);
        let data = |e: crate::algo::kmeans::KMeansError| MlError::data(ctx.model, e.to_string());
        let mut metrics = BTreeMap::new();
        let (fit, chosen) = match (self.k_min, self.k_max) {
            (Some(a), Some(b)) => {
                (ctx.progress)(0, 1, "choosing k");
                let choice =
                    choose_k(&x, a..=b, &opts, Some(SILHOUETTE_SAMPLE), &mut rng).map_err(data)?;
                for s in &choice.scores {
                    if let Some(sil) = s.silhouette {
                        metrics.insert(format!("silhouette.k{}", s.k), sil);
                    }
                    metrics.insert(format!("inertia.k{}", s.k), s.inertia);
                }
                (choice.best, choice.best_k)
            }
            _ => {
                let fit = kmeans(&x, &opts, &mut rng).map_err(data)?;
                (fit, opts.k)
            }
        };
        metrics.insert("k".into(), chosen as f64);
        metrics.insert("inertia".into(), fit.model.inertia);
        metrics.insert("rows".into(), kept.len() as f64);
        metrics.insert("rows_dropped".into(), dropped as f64);
        if chosen >= 2 && chosen < x.rows {
            (ctx.progress)(1, 2, "silhouette");
            let s = silhouette_score(&x, &fit.labels, Some(SILHOUETTE_SAMPLE), ctx.seed)
                .map_err(data)?;
            metrics.insert("silhouette".into(), s);
        }
        let mut notes = Vec::new();
        if dropped > 0 {
            notes.push(format!(
                "{dropped} rows with a missing feature were left out of the fit"
            ));
        }
        let fitted = Fitted {
            features: self.features.clone(),
            scaler,
            model: fit.model,
        };
        let centers = centers_table(&fitted, &fit.labels);
        let assigned = assign(ctx.model, &fitted, frame)?;
        let mut params = serde_json::to_value(self).expect("params serialize");
        params["k"] = chosen.into();
        Ok(Trained {
            fitted: serde_json::to_vec(&fitted).expect("model serializes"),
            metrics,
            params,
            notes,
            outputs: vec![("", assigned), ("_centers", centers)],
        })
    }

    fn predict(
        &self,
        model: &str,
        fitted: &[u8],
        frame: &Frame,
    ) -> Result<Vec<(&'static str, RecordBatch)>, MlError> {
        let fitted: Fitted = super::read_fitted(model, fitted)?;
        Ok(vec![("", assign(model, &fitted, frame)?)])
    }
}

/// The input with each row's cluster and distance to its centre.
fn assign(model: &str, fitted: &Fitted, frame: &Frame) -> Result<RecordBatch, MlError> {
    let (raw, kept, _) = numeric_rows(model, frame, &fitted.features)?;
    let x = fitted.scaler.as_ref().map_or_else(|| raw.clone(), |s| s.transform(&raw));
    let labels = fitted.model.predict(&x);
    let mut cluster = vec![None; frame.rows()];
    let mut distance = vec![None; frame.rows()];
    for (r, (&i, &label)) in kept.iter().zip(&labels).enumerate() {
        let centre = fitted.model.centers.row(label as usize);
        let d2: f64 = x.row(r).iter().zip(centre).map(|(a, b)| (a - b) * (a - b)).sum();
        cluster[i] = Some(i64::from(label));
        distance[i] = Some(d2.sqrt());
    }
    frame.with_columns(vec![
        ("cluster_id", OutColumn::Int(cluster)),
        ("distance", OutColumn::Float(distance)),
    ])
}

/// One row per cluster: its size and its centre in the data's units.
fn centers_table(fitted: &Fitted, labels: &[u32]) -> RecordBatch {
    let k = fitted.model.centers.rows;
    let mut sizes = vec![0i64; k];
    for &l in labels {
        sizes[l as usize] += 1;
    }
    let centers = match &fitted.scaler {
        Some(s) => s.inverse_transform(&fitted.model.centers),
        None => fitted.model.centers.clone(),
    };
    let mut columns = vec![
        ("cluster_id", OutColumn::Int((0..k as i64).map(Some).collect())),
        ("size", OutColumn::Int(sizes.into_iter().map(Some).collect())),
    ];
    for (j, name) in fitted.features.iter().enumerate() {
        columns.push((
            name.as_str(),
            OutColumn::Float(centers.column(j).into_iter().map(Some).collect()),
        ));
    }
    batch(columns)
}
