//! `association_rules`: frequent itemsets (FP-Growth) and the rules between them, as
//! mlxtend 0.25's `fpgrowth` + `association_rules` (see [`crate::algo::fpgrowth`]).
//!
//! ```yaml
//! kind: association_rules
//! input: { table: marts.order_lines }
//! columns: { basket: order_id, item: category }   # or { items: a list or text column }
//! params: { min_support: 0.01, min_confidence: 0.2, max_len: 3 }
//! ```
//!
//! Training writes `<output>_itemsets` (`itemsets`, `support`, `count`, `length`) and
//! `<output>_rules` (`antecedents`, `consequents`, `antecedent_support`,
//! `consequent_support`, `support`, `confidence`, `lift`, `representativity`, `leverage`,
//! `conviction`, `zhangs_metric`, `jaccard`, `certainty`, `kulczynski`), items as lists.
//! Predicting takes baskets and gives, per basket, the items the rules suggest that it
//! does not hold yet: `basket`, `item`, `rank`, `confidence`, `lift`, `antecedents`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use socle_core::fields::Fields;

use super::{Kind, TrainContext, Trained, role};
use crate::algo::fpgrowth::{Transactions, frequent_itemsets_with_limit};
use crate::algo::rules::{Metric, association_rules_with_limit};
use crate::error::MlError;
use crate::frame::{Frame, OutColumn, batch};

/// Most itemsets and rules kept (past it: raise `min_support`).
const MAX_OUTPUT: usize = 5_000_000;

/// An `association_rules` model's columns and parameters.
#[derive(Debug, Clone, Serialize)]
pub struct AssociationRules {
    /// The basket id column (with `item`), one row per item of a basket.
    pub basket: Option<String>,
    pub item: Option<String>,
    /// A column holding each basket's items: a list, or text split by `separator`.
    pub items: Option<String>,
    pub separator: String,
    pub min_support: f64,
    pub metric: String,
    pub min_threshold: f64,
    pub max_len: Option<usize>,
}

/// The fitted model: the rules, items by name.
#[derive(Debug, Serialize, Deserialize)]
struct Fitted {
    rules: Vec<NamedRule>,
}

#[derive(Debug, Serialize, Deserialize)]
struct NamedRule {
    antecedents: Vec<String>,
    consequents: Vec<String>,
    confidence: f64,
    lift: f64,
}

impl Kind for AssociationRules {
    const NAME: &'static str = "association_rules";
    const ROLES: &'static [&'static str] = &["basket", "item", "items"];
    const PARAMS: &'static [&'static str] = &[
        "min_support",
        "min_confidence",
        "metric",
        "min_threshold",
        "max_len",
        "separator",
    ];
    const FORMAT: u32 = 1;

    fn parse(columns: &mut Fields, params: &mut Fields) -> Self {
        let min_confidence: Option<f64> = params.value("min_confidence");
        let metric: Option<String> = params.value("metric");
        let min_threshold: Option<f64> = params.value("min_threshold");
        Self {
            basket: role(columns, "basket"),
            item: role(columns, "item"),
            items: role(columns, "items"),
            separator: params.value("separator").unwrap_or_else(|| ",".into()),
            min_support: params.value("min_support").unwrap_or(0.01),
            metric: metric.unwrap_or_else(|| "confidence".into()),
            min_threshold: min_threshold.or(min_confidence).unwrap_or(0.8),
            max_len: params.value("max_len"),
        }
    }

    fn check(&self) -> Result<(), String> {
        match (&self.basket, &self.item, &self.items) {
            (Some(_), Some(_), None) | (None, None, Some(_)) => {}
            _ => {
                return Err(
                    "give `columns: { basket, item }` (one row per item) or `columns: { items }` \
                     (one row per basket)"
                        .into(),
                );
            }
        }
        if !(self.min_support > 0.0 && self.min_support <= 1.0) {
            return Err(format!(
                "`min_support` = {} must be above 0 and at most 1",
                self.min_support
            ));
        }
        if self.max_len == Some(0) {
            return Err("`max_len` must be at least 1".into());
        }
        self.metric
            .parse::<Metric>()
            .map(|_| ())
            .map_err(|e| format!("`metric`: {e}"))
    }

    fn input_columns(&self) -> Vec<String> {
        [&self.basket, &self.item, &self.items]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn train(&self, frame: &Frame, ctx: &TrainContext) -> Result<Trained, MlError> {
        let (_, baskets) = self.baskets(ctx.model, frame)?;
        let t = Transactions::from_baskets(&baskets).map_err(|e| MlError::data(ctx.model, e.to_string()))?;
        (ctx.progress)(0, 2, "frequent itemsets");
        let itemsets = frequent_itemsets_with_limit(&t, self.min_support, self.max_len, MAX_OUTPUT)
            .map_err(|e| MlError::data(ctx.model, e.to_string()))?;
        (ctx.progress)(1, 2, "rules");
        let metric: Metric = self
            .metric
            .parse()
            .map_err(|e: crate::algo::fpgrowth::RulesError| MlError::data(ctx.model, e.to_string()))?;
        let rules =
            association_rules_with_limit(&itemsets, t.len(), metric, self.min_threshold, MAX_OUTPUT)
                .map_err(|e| MlError::data(ctx.model, e.to_string()))?;
        let names = |ids: &[u32]| -> Vec<String> {
            t.item_names(ids).into_iter().map(str::to_string).collect()
        };
        let itemset_table = batch(vec![
            (
                "itemsets",
                OutColumn::TextList(itemsets.iter().map(|s| names(&s.items)).collect()),
            ),
            (
                "support",
                OutColumn::Float(itemsets.iter().map(|s| Some(s.support)).collect()),
            ),
            (
                "count",
                OutColumn::Int(itemsets.iter().map(|s| Some(s.count as i64)).collect()),
            ),
            (
                "length",
                OutColumn::Int(itemsets.iter().map(|s| Some(s.items.len() as i64)).collect()),
            ),
        ]);
        let metric_column = |m: Metric| {
            OutColumn::Float(rules.iter().map(|r| Some(r.metric(m))).collect())
        };
        let mut columns = vec![
            (
                "antecedents",
                OutColumn::TextList(rules.iter().map(|r| names(&r.antecedents)).collect()),
            ),
            (
                "consequents",
                OutColumn::TextList(rules.iter().map(|r| names(&r.consequents)).collect()),
            ),
        ];
        for m in Metric::ALL {
            columns.push((column_name(m), metric_column(m)));
        }
        let rule_table = batch(columns);
        let fitted = Fitted {
            rules: rules
                .iter()
                .map(|r| NamedRule {
                    antecedents: names(&r.antecedents),
                    consequents: names(&r.consequents),
                    confidence: r.confidence,
                    lift: r.lift,
                })
                .collect(),
        };
        let mut metrics = BTreeMap::new();
        metrics.insert("baskets".to_string(), t.len() as f64);
        metrics.insert("items".to_string(), t.n_items() as f64);
        metrics.insert("itemsets".to_string(), itemsets.len() as f64);
        metrics.insert("rules".to_string(), rules.len() as f64);
        Ok(Trained {
            fitted: serde_json::to_vec(&fitted).expect("rules serialize"),
            metrics,
            params: serde_json::to_value(self).expect("params serialize"),
            notes: Vec::new(),
            outputs: vec![("_itemsets", itemset_table), ("_rules", rule_table)],
        })
    }

    fn predict(
        &self,
        model: &str,
        fitted: &[u8],
        frame: &Frame,
    ) -> Result<Vec<(&'static str, datafusion::arrow::array::RecordBatch)>, MlError> {
        let fitted: Fitted = super::read_fitted(model, fitted)?;
        let (ids, baskets) = self.baskets(model, frame)?;
        let (mut basket_col, mut item_col, mut rank_col) = (Vec::new(), Vec::new(), Vec::new());
        let (mut conf_col, mut lift_col, mut ante_col) = (Vec::new(), Vec::new(), Vec::new());
        for (id, items) in ids.iter().zip(&baskets) {
            let held: std::collections::BTreeSet<&str> = items.iter().map(String::as_str).collect();
            // The best rule per suggested item: highest confidence, then lift.
            let mut best: BTreeMap<&str, &NamedRule> = BTreeMap::new();
            for r in &fitted.rules {
                if !r.antecedents.iter().all(|a| held.contains(a.as_str())) {
                    continue;
                }
                for c in &r.consequents {
                    if held.contains(c.as_str()) {
                        continue;
                    }
                    let better = best.get(c.as_str()).is_none_or(|b| {
                        (r.confidence, r.lift) > (b.confidence, b.lift)
                    });
                    if better {
                        best.insert(c, r);
                    }
                }
            }
            let mut ranked: Vec<(&str, &NamedRule)> = best.into_iter().collect();
            ranked.sort_by(|a, b| {
                b.1.confidence
                    .total_cmp(&a.1.confidence)
                    .then(b.1.lift.total_cmp(&a.1.lift))
                    .then(a.0.cmp(b.0))
            });
            for (rank, (item, rule)) in ranked.into_iter().enumerate() {
                basket_col.push(Some(id.clone()));
                item_col.push(Some(item.to_string()));
                rank_col.push(Some(rank as i64 + 1));
                conf_col.push(Some(rule.confidence));
                lift_col.push(Some(rule.lift));
                ante_col.push(rule.antecedents.clone());
            }
        }
        Ok(vec![(
            "",
            batch(vec![
                ("basket", OutColumn::Text(basket_col)),
                ("item", OutColumn::Text(item_col)),
                ("rank", OutColumn::Int(rank_col)),
                ("confidence", OutColumn::Float(conf_col)),
                ("lift", OutColumn::Float(lift_col)),
                ("antecedents", OutColumn::TextList(ante_col)),
            ]),
        )])
    }
}

/// A metric's output column: mlxtend's name with `_` for spaces.
fn column_name(m: Metric) -> &'static str {
    match m.name() {
        "antecedent support" => "antecedent_support",
        "consequent support" => "consequent_support",
        other => other,
    }
}

impl AssociationRules {
    /// The baskets of `frame`: their ids (in first-seen order) and items. NULL items are
    /// skipped; a NULL basket id is an error.
    fn baskets(&self, model: &str, frame: &Frame) -> Result<(Vec<String>, Vec<Vec<String>>), MlError> {
        if let Some(col) = &self.items {
            let lists = frame.string_lists(col, &self.separator)?;
            let ids = (1..=lists.len()).map(|i| i.to_string()).collect();
            return Ok((ids, lists));
        }
        let (basket, item) = (
            self.basket.as_deref().unwrap_or_default(),
            self.item.as_deref().unwrap_or_default(),
        );
        let ids = frame.strings(basket)?;
        let items = frame.strings(item)?;
        let nulls = ids.iter().filter(|i| i.is_none()).count();
        if nulls > 0 {
            return Err(MlError::data(
                model,
                format!("column `{basket}` has {nulls} NULL basket ids"),
            ));
        }
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut baskets: Vec<Vec<String>> = Vec::new();
        for (id, it) in ids.iter().zip(&items) {
            let id = id.as_deref().expect("checked");
            let at = *index.entry(id).or_insert_with(|| {
                order.push(id.to_string());
                baskets.push(Vec::new());
                baskets.len() - 1
            });
            if let Some(it) = it {
                baskets[at].push(it.clone());
            }
        }
        Ok((order, baskets))
    }
}
