//! `recommend`: implicit-feedback matrix factorisation (ALS) or item-kNN (cosine) from
//! (user, item, weight) rows, as `implicit` 0.7 (see [`crate::algo::recommend`]); top-N per
//! user without what they already have, and recommendations for a new user from a handful
//! of items without retraining (fold-in).
//!
//! ```yaml
//! kind: recommend
//! input: { table: raw.ratings }
//! columns: { user: user_id, item: movie_id, weight: rating, time: rated_at }
//! params: { method: als, n: 10, factors: 64, min_weight: 4 }
//! validation: { method: holdout, test_fraction: 0.2 }   # the last 20% of each user's rows
//! ```
//!
//! Training writes `<output>`: `user`, `item`, `rank`, `score`, the top `n` of every user.
//! Predicting reads (user, item[, weight]) rows: known users get their top `n`, a user the
//! model has not seen is folded in from their rows. Validation holds out each user's last
//! rows (by `time`, or input order) and records `precision@n`, `recall@n`, `map@n` and
//! `ndcg@n` over the held-out items with a weight of at least `relevant_weight`.

use std::collections::BTreeMap;

use datafusion::arrow::array::RecordBatch;
use serde::{Deserialize, Serialize};
use socle_core::fields::Fields;

use super::{Kind, TrainContext, Trained, role};
use crate::algo::recommend::als::{AlsModel, AlsParams};
use crate::algo::recommend::interactions::{Id, Interactions};
use crate::algo::recommend::knn::{KnnModel, KnnParams};
use crate::algo::recommend::ranking::{relevant_items, evaluate};
use crate::algo::recommend::{RecommendError, Recommender};
use crate::error::MlError;
use crate::frame::{Frame, OutColumn, batch};

/// A `recommend` model's columns and parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Recommend {
    pub user: Option<String>,
    pub item: Option<String>,
    pub weight: Option<String>,
    pub time: Option<String>,
    pub method: String,
    pub n: usize,
    /// Rows whose weight is below it are left out of training (e.g. ratings under 4).
    pub min_weight: Option<f64>,
    /// Held-out rows count as relevant from this weight (validation).
    pub relevant_weight: Option<f64>,
    pub factors: usize,
    pub regularization: f64,
    pub alpha: f64,
    pub iterations: usize,
    pub k: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
enum Fitted {
    Als { model: AlsModel, int_ids: bool },
    Knn { model: KnnModel, int_ids: bool },
}

impl Fitted {
    fn recommender(&self) -> (&dyn Recommender, bool) {
        match self {
            Fitted::Als { model, int_ids } => (model, *int_ids),
            Fitted::Knn { model, int_ids } => (model, *int_ids),
        }
    }
}

impl Kind for Recommend {
    const NAME: &'static str = "recommend";
    const ROLES: &'static [&'static str] = &["user", "item", "weight", "time"];
    const PARAMS: &'static [&'static str] = &[
        "method",
        "n",
        "min_weight",
        "relevant_weight",
        "factors",
        "regularization",
        "alpha",
        "iterations",
        "k",
    ];
    const FORMAT: u32 = 1;

    fn parse(columns: &mut Fields, params: &mut Fields) -> Self {
        let als = AlsParams::default();
        Self {
            user: role(columns, "user"),
            item: role(columns, "item"),
            weight: role(columns, "weight"),
            time: role(columns, "time"),
            method: params.value("method").unwrap_or_else(|| "als".into()),
            n: params.value("n").unwrap_or(10),
            min_weight: params.value("min_weight"),
            relevant_weight: params.value("relevant_weight"),
            factors: params.value("factors").unwrap_or(als.factors),
            regularization: params.value("regularization").unwrap_or(als.regularization),
            alpha: params.value("alpha").unwrap_or(als.alpha),
            iterations: params.value("iterations").unwrap_or(als.iterations),
            k: params.value("k").unwrap_or(20),
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.user.is_none() || self.item.is_none() {
            return Err("a `recommend` model needs `columns: { user, item }`".into());
        }
        if !["als", "knn"].contains(&self.method.as_str()) {
            return Err(format!("`method: {}` is not one of: als, knn", self.method));
        }
        if self.n == 0 {
            return Err("`n` must be at least 1".into());
        }
        Ok(())
    }

    fn input_columns(&self) -> Vec<String> {
        [&self.user, &self.item, &self.weight, &self.time]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn train(&self, frame: &Frame, ctx: &TrainContext) -> Result<Trained, MlError> {
        let rows = self.rows(ctx.model, frame)?;
        let int_ids = rows.int_ids;
        let mut metrics = BTreeMap::new();
        let mut notes = Vec::new();
        let kept: Vec<usize> = (0..rows.users.len())
            .filter(|&i| self.min_weight.is_none_or(|m| rows.weights[i] >= m))
            .collect();
        if kept.len() < rows.users.len() {
            notes.push(format!(
                "{} rows with a weight under min_weight were left out",
                rows.users.len() - kept.len()
            ));
        }
        if let Some(v) = ctx.validation {
            let fraction = match &v.method {
                crate::validation::Method::Holdout { test_fraction, .. } => *test_fraction,
                crate::validation::Method::Kfold { folds, .. }
                | crate::validation::Method::TimeSeries { folds, .. } => 1.0 / *folds as f64,
            };
            (ctx.progress)(0, 2, "validating");
            let (train, test) = rows.split_per_user(fraction);
            let train: Vec<usize> = train.into_iter().filter(|i| kept.binary_search(i).is_ok()).collect();
            let fitted = self.fit(ctx.model, &rows, &train, ctx.seed, int_ids)?;
            let (rec, _) = fitted.recommender();
            let relevant_from = self.relevant_weight.or(self.min_weight);
            let pairs = test
                .iter()
                .filter(|&&i| relevant_from.is_none_or(|m| rows.weights[i] >= m))
                .map(|&i| (rows.users[i].clone(), rows.items[i].clone()));
            let relevant = relevant_items(rec.users(), rec.items(), pairs);
            let m = evaluate(rec, &relevant, self.n).map_err(|e| data(ctx.model, e))?;
            let n = self.n;
            metrics.insert(format!("precision@{n}"), m.precision);
            metrics.insert(format!("recall@{n}"), m.recall);
            metrics.insert(format!("map@{n}"), m.map);
            metrics.insert(format!("ndcg@{n}"), m.ndcg);
            metrics.insert("validation_users".into(), m.users as f64);
        }
        (ctx.progress)(1, 2, "fitting on every row");
        let fitted = self.fit(ctx.model, &rows, &kept, ctx.seed, int_ids)?;
        let (rec, _) = fitted.recommender();
        let mut out = Rows::default();
        for u in 0..rec.users().len() as u32 {
            let list = rec.recommend_index(u, self.n, true).map_err(|e| data(ctx.model, e))?;
            let user = rec.users().id(u).expect("a user").clone();
            out.push(&user, rec, &list);
        }
        metrics.insert("users".into(), rec.users().len() as f64);
        metrics.insert("items".into(), rec.items().len() as f64);
        metrics.insert("rows".into(), kept.len() as f64);
        if let Fitted::Als { model, .. } = &fitted {
            metrics.insert("loss".into(), model.loss());
        }
        Ok(Trained {
            fitted: serde_json::to_vec(&fitted).expect("model serializes"),
            metrics,
            params: serde_json::to_value(self).expect("params serialize"),
            notes,
            outputs: vec![("", out.table(int_ids))],
        })
    }

    fn predict(
        &self,
        model: &str,
        fitted: &[u8],
        frame: &Frame,
    ) -> Result<Vec<(&'static str, RecordBatch)>, MlError> {
        let fitted: Fitted = super::read_fitted(model, fitted)?;
        let (rec, int_ids) = fitted.recommender();
        let rows = self.rows(model, frame)?;
        // Each user's rows, in first-seen order.
        let mut by_user: BTreeMap<Id, Vec<(u32, f64)>> = BTreeMap::new();
        let mut order = Vec::new();
        for i in 0..rows.users.len() {
            let entry = by_user.entry(rows.users[i].clone()).or_insert_with(|| {
                order.push(rows.users[i].clone());
                Vec::new()
            });
            if let Some(item) = rec.items().index(&rows.items[i]) {
                entry.push((item, rows.weights[i]));
            }
        }
        let mut out = Rows::default();
        for user in order {
            let list = match rec.users().index(&user) {
                Some(u) => rec.recommend_index(u, self.n, true),
                None => rec.recommend_new_user_index(&by_user[&user], self.n, true),
            }
            .map_err(|e| data(model, e))?;
            out.push(&user, rec, &list);
        }
        Ok(vec![("", out.table(int_ids))])
    }
}

fn data(model: &str, e: RecommendError) -> MlError {
    MlError::data(model, e.to_string())
}

/// The input's (user, item, weight) rows, in time order when there is a time column.
struct Input {
    users: Vec<Id>,
    items: Vec<Id>,
    weights: Vec<f64>,
    int_ids: bool,
}

impl Input {
    /// Each user's first `1 − fraction` of rows to train on, the rest to test on.
    fn split_per_user(&self, fraction: f64) -> (Vec<usize>, Vec<usize>) {
        let mut by_user: BTreeMap<&Id, Vec<usize>> = BTreeMap::new();
        for (i, u) in self.users.iter().enumerate() {
            by_user.entry(u).or_default().push(i);
        }
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for rows in by_user.values() {
            let cut = ((rows.len() as f64) * (1.0 - fraction)).ceil() as usize;
            train.extend_from_slice(&rows[..cut.min(rows.len())]);
            test.extend_from_slice(&rows[cut.min(rows.len())..]);
        }
        train.sort_unstable();
        test.sort_unstable();
        (train, test)
    }
}

impl Recommend {
    fn rows(&self, model: &str, frame: &Frame) -> Result<Input, MlError> {
        let (user, item) = (
            self.user.as_deref().unwrap_or_default(),
            self.item.as_deref().unwrap_or_default(),
        );
        let int_ids = frame.column(user)?.data_type().is_integer()
            && frame.column(item)?.data_type().is_integer();
        let ids = |col: &str| -> Result<Vec<Option<Id>>, MlError> {
            Ok(frame
                .strings(col)?
                .into_iter()
                .map(|v| {
                    v.map(|s| match (int_ids, s.parse::<i64>()) {
                        (true, Ok(n)) => Id::Int(n),
                        _ => Id::Str(s),
                    })
                })
                .collect())
        };
        let (users, items) = (ids(user)?, ids(item)?);
        let weights = match &self.weight {
            Some(w) => frame.f64s(w)?,
            None => vec![1.0; frame.rows()],
        };
        let mut order: Vec<usize> = (0..frame.rows())
            .filter(|&i| users[i].is_some() && items[i].is_some() && !weights[i].is_nan())
            .collect();
        if let Some(t) = &self.time {
            let times = frame.times(t)?;
            order.sort_by_key(|&i| (times[i], i));
        }
        if order.is_empty() {
            return Err(MlError::data(model, "the input has no row with a user, an item and a weight"));
        }
        Ok(Input {
            users: order.iter().map(|&i| users[i].clone().expect("kept")).collect(),
            items: order.iter().map(|&i| items[i].clone().expect("kept")).collect(),
            weights: order.iter().map(|&i| weights[i]).collect(),
            int_ids,
        })
    }

    fn fit(&self, model: &str, rows: &Input, take: &[usize], seed: u64, int_ids: bool) -> Result<Fitted, MlError> {
        let triples = take
            .iter()
            .map(|&i| (rows.users[i].clone(), rows.items[i].clone(), rows.weights[i]));
        let interactions = Interactions::from_triples(triples).map_err(|e| data(model, e))?;
        Ok(match self.method.as_str() {
            "knn" => Fitted::Knn {
                model: KnnModel::fit(&interactions, &KnnParams { k: self.k, num_threads: 0 })
                    .map_err(|e| data(model, e))?,
                int_ids,
            },
            _ => Fitted::Als {
                model: AlsModel::fit(
                    &interactions,
                    &AlsParams {
                        factors: self.factors,
                        regularization: self.regularization,
                        alpha: self.alpha,
                        iterations: self.iterations,
                        seed,
                        ..AlsParams::default()
                    },
                )
                .map_err(|e| data(model, e))?,
                int_ids,
            },
        })
    }
}

/// The output's rows.
#[derive(Default)]
struct Rows {
    user: Vec<Id>,
    item: Vec<Id>,
    rank: Vec<Option<i64>>,
    score: Vec<Option<f64>>,
}

impl Rows {
    fn push(&mut self, user: &Id, rec: &dyn Recommender, list: &[(u32, f64)]) {
        for (r, (item, score)) in list.iter().enumerate() {
            self.user.push(user.clone());
            self.item.push(rec.items().id(*item).expect("an item").clone());
            self.rank.push(Some(r as i64 + 1));
            self.score.push(Some(*score));
        }
    }

    fn table(self, int_ids: bool) -> RecordBatch {
        let column = |ids: Vec<Id>| {
            if int_ids {
                OutColumn::Int(
                    ids.into_iter()
                        .map(|id| match id {
                            Id::Int(n) => Some(n),
                            Id::Str(_) => None,
                        })
                        .collect(),
                )
            } else {
                OutColumn::Text(ids.into_iter().map(|id| Some(id.to_string())).collect())
            }
        };
        batch(vec![
            ("user", column(self.user)),
            ("item", column(self.item)),
            ("rank", OutColumn::Int(self.rank)),
            ("score", OutColumn::Float(self.score)),
        ])
    }
}
