//! Association rules from frequent itemsets, as mlxtend 0.25's
//! `association_rules(frequent_itemsets, num_itemsets, metric=..., min_threshold=...)`
//! (without `null_values` or `support_only`); the itemsets come from
//! [`super::fpgrowth::frequent_itemsets`].
//!
//! For every itemset of two or more items and every split of it into a non-empty antecedent
//! A and a non-empty consequent C, the rule A → C gets the metrics below, where sA, sC and sAC
//! are the supports of A, C and A ∪ C (looked up among the itemsets) and n is the number of
//! baskets. The formulas are evaluated in mlxtend's order, so the values are mlxtend's:
//! - confidence = (sAC·n) / (sA·n); lift = confidence / sC; representativity = 1;
//! - leverage = sAC − sA·sC; conviction = (1 − sC) / (1 − confidence), +∞ when
//!   confidence ≥ 1 (as mlxtend, `f64::INFINITY`);
//! - zhangs_metric = leverage / max(sAC·(1 − sA), sA·(sC − sAC)), 0 when that max is 0;
//! - jaccard = sAC / (sA + sC − sAC); certainty = (confidence − sC) / (1 − sC), 0 when sC = 1;
//! - kulczynski = ((sAC·n)/(sA·n) + (sAC·n)/(sC·n)) / 2.
//!
//! A rule is kept when its chosen [`Metric`] is `>= min_threshold`. Subset supports are found
//! in a hash map keyed by sorted item ids, used for lookup only.
//!
//! Deliberate differences from mlxtend:
//! - Rules are sorted: by antecedent size, antecedent item ids (that is, item names),
//!   consequent size, consequent item ids. mlxtend's order follows Python set iteration.
//! - An empty list of itemsets gives no rules instead of an error; an itemset whose subsets
//!   are missing is an error ([`RulesError::MissingSubset`]) rather than a `KeyError`.
//! - [`association_rules_with_limit`] can bound the number of rules.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::fpgrowth::{FxBuild, Itemset, RulesError};

/// A rule metric: the one that filters rules, and the name of each [`Rule`] field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    AntecedentSupport,
    ConsequentSupport,
    Support,
    Confidence,
    Lift,
    Representativity,
    Leverage,
    Conviction,
    ZhangsMetric,
    Jaccard,
    Certainty,
    Kulczynski,
}

impl Metric {
    /// Every metric, in mlxtend's column order.
    pub const ALL: [Metric; 12] = [
        Metric::AntecedentSupport,
        Metric::ConsequentSupport,
        Metric::Support,
        Metric::Confidence,
        Metric::Lift,
        Metric::Representativity,
        Metric::Leverage,
        Metric::Conviction,
        Metric::ZhangsMetric,
        Metric::Jaccard,
        Metric::Certainty,
        Metric::Kulczynski,
    ];

    /// mlxtend's name of the metric (its column name): `"antecedent support"`, `"lift"`, ...
    pub fn name(self) -> &'static str {
        match self {
            Metric::AntecedentSupport => "antecedent support",
            Metric::ConsequentSupport => "consequent support",
            Metric::Support => "support",
            Metric::Confidence => "confidence",
            Metric::Lift => "lift",
            Metric::Representativity => "representativity",
            Metric::Leverage => "leverage",
            Metric::Conviction => "conviction",
            Metric::ZhangsMetric => "zhangs_metric",
            Metric::Jaccard => "jaccard",
            Metric::Certainty => "certainty",
            Metric::Kulczynski => "kulczynski",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = RulesError;

    /// mlxtend's name, case-insensitive, with `_` or a space between words
    /// (`"antecedent support"`, `"antecedent_support"`, `"Lift"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.trim().to_ascii_lowercase().replace(' ', "_");
        Metric::ALL
            .into_iter()
            .find(|m| m.name().replace(' ', "_") == key)
            .ok_or_else(|| RulesError::UnknownMetric(s.to_owned()))
    }
}

/// A rule antecedents → consequents (item ids, sorted) and its metrics (see the module doc).
/// In JSON an infinite conviction is the string `"inf"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub antecedents: Vec<u32>,
    pub consequents: Vec<u32>,
    pub antecedent_support: f64,
    pub consequent_support: f64,
    pub support: f64,
    pub confidence: f64,
    pub lift: f64,
    pub representativity: f64,
    pub leverage: f64,
    #[serde(with = "f64_or_inf")]
    pub conviction: f64,
    pub zhangs_metric: f64,
    pub jaccard: f64,
    pub certainty: f64,
    pub kulczynski: f64,
}

impl Rule {
    /// The metrics of a rule whose itemset, antecedent and consequent have supports `s_ac`,
    /// `s_a` and `s_c` among `n` baskets; antecedents and consequents are left empty.
    fn from_supports(s_ac: f64, s_a: f64, s_c: f64, n: f64) -> Self {
        let confidence = (s_ac * n) / (s_a * n);
        let leverage = s_ac - s_a * s_c;
        let conviction = if confidence < 1.0 {
            (1.0 - s_c) / (1.0 - confidence)
        } else {
            f64::INFINITY
        };
        let zhangs_denominator = (s_ac * (1.0 - s_a)).max(s_a * (s_c - s_ac));
        let zhangs_metric = if zhangs_denominator == 0.0 {
            0.0
        } else {
            leverage / zhangs_denominator
        };
        let certainty = if 1.0 - s_c == 0.0 {
            0.0
        } else {
            (confidence - s_c) / (1.0 - s_c)
        };
        Rule {
            antecedents: Vec::new(),
            consequents: Vec::new(),
            antecedent_support: s_a,
            consequent_support: s_c,
            support: s_ac,
            confidence,
            lift: confidence / s_c,
            representativity: 1.0,
            leverage,
            conviction,
            zhangs_metric,
            jaccard: s_ac / (s_a + s_c - s_ac),
            certainty,
            kulczynski: ((s_ac * n) / (s_a * n) + (s_ac * n) / (s_c * n)) / 2.0,
        }
    }

    /// The value of `metric` for this rule.
    pub fn metric(&self, metric: Metric) -> f64 {
        match metric {
            Metric::AntecedentSupport => self.antecedent_support,
            Metric::ConsequentSupport => self.consequent_support,
            Metric::Support => self.support,
            Metric::Confidence => self.confidence,
            Metric::Lift => self.lift,
            Metric::Representativity => self.representativity,
            Metric::Leverage => self.leverage,
            Metric::Conviction => self.conviction,
            Metric::ZhangsMetric => self.zhangs_metric,
            Metric::Jaccard => self.jaccard,
            Metric::Certainty => self.certainty,
            Metric::Kulczynski => self.kulczynski,
        }
    }
}

/// The rules of `itemsets` (as given by [`super::fpgrowth::frequent_itemsets`] over
/// `n_transactions` baskets) whose `metric` is `>= min_threshold`, sorted by antecedent size,
/// antecedent ids, consequent size, consequent ids.
///
/// Errors: `n_transactions == 0`, a non-finite `min_threshold`, an itemset that is empty,
/// unsorted, listed twice, has a support outside `(0, 1]`, or lacks the support of one of
/// its subsets.
pub fn association_rules(
    itemsets: &[Itemset],
    n_transactions: usize,
    metric: Metric,
    min_threshold: f64,
) -> Result<Vec<Rule>, RulesError> {
    association_rules_with_limit(itemsets, n_transactions, metric, min_threshold, usize::MAX)
}

/// [`association_rules`], failing with [`RulesError::TooManyRules`] as soon as more than
/// `max_rules` rules pass the threshold.
pub fn association_rules_with_limit(
    itemsets: &[Itemset],
    n_transactions: usize,
    metric: Metric,
    min_threshold: f64,
    max_rules: usize,
) -> Result<Vec<Rule>, RulesError> {
    if n_transactions == 0 {
        return Err(RulesError::NoTransactions);
    }
    if !min_threshold.is_finite() {
        return Err(RulesError::MinThreshold(min_threshold));
    }
    let mut supports: HashMap<&[u32], f64, FxBuild> =
        HashMap::with_capacity_and_hasher(itemsets.len(), FxBuild::default());
    for (index, set) in itemsets.iter().enumerate() {
        let sorted = !set.items.is_empty() && set.items.windows(2).all(|w| w[0] < w[1]);
        if !sorted {
            return Err(RulesError::BadItemset { index });
        }
        let valid = set.support > 0.0 && set.support <= 1.0;
        if !valid {
            return Err(RulesError::BadSupport {
                index,
                support: set.support,
            });
        }
        if supports.insert(set.items.as_slice(), set.support).is_some() {
            return Err(RulesError::DuplicateItemset { index });
        }
    }

    let n = n_transactions as f64;
    let mut rules = Vec::new();
    let mut antecedent: Vec<u32> = Vec::new();
    let mut consequent: Vec<u32> = Vec::new();
    for (index, set) in itemsets.iter().enumerate() {
        let k = set.items.len();
        if k < 2 {
            continue;
        }
        // Its 2^k - 1 non-empty subsets must all be listed: fail early when they cannot be.
        if k >= 64 || (1u64 << k) - 1 > itemsets.len() as u64 {
            return Err(RulesError::MissingSubset { index });
        }
        let full = (1u64 << k) - 1;
        for mask in 1..full {
            antecedent.clear();
            consequent.clear();
            for (bit, &item) in set.items.iter().enumerate() {
                if (mask >> bit) & 1 == 1 {
                    antecedent.push(item);
                } else {
                    consequent.push(item);
                }
            }
            let (Some(&s_a), Some(&s_c)) = (
                supports.get(antecedent.as_slice()),
                supports.get(consequent.as_slice()),
            ) else {
                return Err(RulesError::MissingSubset { index });
            };
            let mut rule = Rule::from_supports(set.support, s_a, s_c, n);
            if rule.metric(metric) >= min_threshold {
                if rules.len() >= max_rules {
                    return Err(RulesError::TooManyRules { limit: max_rules });
                }
                rule.antecedents = antecedent.clone();
                rule.consequents = consequent.clone();
                rules.push(rule);
            }
        }
    }
    rules.sort_unstable_by(|a, b| {
        a.antecedents
            .len()
            .cmp(&b.antecedents.len())
            .then_with(|| a.antecedents.cmp(&b.antecedents))
            .then_with(|| a.consequents.len().cmp(&b.consequents.len()))
            .then_with(|| a.consequents.cmp(&b.consequents))
    });
    Ok(rules)
}

/// Serde for an `f64` that may be infinite (JSON has no infinity): a finite value is a
/// number, `±∞` is the string `"inf"` / `"-inf"`, NaN is `"nan"`.
mod f64_or_inf {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            serializer.serialize_f64(*value)
        } else if value.is_nan() {
            serializer.serialize_str("nan")
        } else if *value > 0.0 {
            serializer.serialize_str("inf")
        } else {
            serializer.serialize_str("-inf")
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Text(String),
        }
        match Repr::deserialize(deserializer)? {
            Repr::Number(value) => Ok(value),
            Repr::Text(text) => match text.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                other => Err(serde::de::Error::custom(format!(
                    "expected a number, \"inf\", \"-inf\" or \"nan\", got {other:?}"
                ))),
            },
        }
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
