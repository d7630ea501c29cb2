//! Recommenders from implicit feedback (plays, views, purchases, ratings used as weights),
//! following the Python library `implicit`, version 0.7:
//!
//! - [`interactions`]: (user, item, weight) triples with string or integer ids, interned to dense
//!   indices and stored as sparse matrices by user and by item (scipy's CSR layout).
//! - [`knn`]: item-item cosine nearest neighbours, as implicit 0.7's `CosineRecommender`.
//! - [`als`]: matrix factorisation by alternating least squares with a conjugate-gradient solver,
//!   as implicit 0.7's `AlternatingLeastSquares` on the CPU, with an exact fold-in of new users.
//! - [`ranking`]: precision, recall, MAP, NDCG and AUC at k, as implicit 0.7's
//!   `ranking_metrics_at_k`, and a most-popular baseline.
//!
//! Every fitted model answers through [`Recommender`]: the top N items for a user seen in
//! training, or for a new user from a handful of items they like (fold-in, no retraining). An
//! unknown user is its own error, [`RecommendError::UnknownUser`], so that a caller can fold the
//! user in instead. Fitted models serialize to JSON (format [`FORMAT`]) with their id maps and the
//! training rows they filter with, so a stored model version answers on its own.
//!
//! Deliberate differences from implicit, shared by the models:
//! - With filtering, items the user already liked are left out of the list. implicit keeps them at
//!   the end (score 0 for kNN, the lowest float for ALS) when fewer than N other items can be
//!   scored, so our lists may be shorter than N.
//! - Equal scores are ordered by item index, lower first, and the N-th place goes to the lower
//!   index. implicit orders equal scores higher index first and, at the N-th place, keeps the item
//!   its scan met first.
//! - A weight of 0 is no interaction; negative weights (implicit's "dislikes") are rejected.

pub mod als;
mod als_solve;
pub mod interactions;
pub mod knn;
pub mod ranking;

use std::num::NonZeroUsize;
use std::ops::Range;

use serde::{Deserialize, Serialize};

pub use als::{AlsModel, AlsParams};
pub use interactions::{Csr, Id, IdMap, Interactions};
pub use knn::{KnnModel, KnnParams};
pub use ranking::{
    PopularityModel, RankingMetrics, evaluate, ranking_metrics_at_k, relevant_items,
};

/// The version of the JSON layout of fitted recommenders. A stored model of another version is
/// refused with [`RecommendError::UnsupportedFormat`].
pub const FORMAT: u32 = 1;

/// What can go wrong when building interactions, fitting, recommending or evaluating.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecommendError {
    #[error("there are no interactions to learn from (no triple has a weight above zero)")]
    NoInteractions,
    #[error(
        "the weight {weight} of user {user} for item {item} is not a finite number of zero or more"
    )]
    InvalidWeight {
        user: String,
        item: String,
        weight: f64,
    },
    #[error("the weights of user {user} for item {item} add up to more than the largest number")]
    WeightOverflow { user: String, item: String },
    #[error("user {0} is not in the training data: recommend from the user's items (fold-in)")]
    UnknownUser(String),
    #[error("item {0} is not in the training data")]
    UnknownItem(String),
    #[error("user index {index} is out of range: the model has {count} users")]
    UserIndexOutOfRange { index: u32, count: usize },
    #[error("item index {index} is out of range: the model has {count} items")]
    ItemIndexOutOfRange { index: u32, count: usize },
    #[error("the weight {weight} given for item {item} is not a finite number of zero or more")]
    InvalidItemWeight { item: String, weight: f64 },
    #[error(
        "none of the {given} items given is in the training data with a weight above zero, \
         so there is nothing to recommend from"
    )]
    NoKnownItems { given: usize },
    #[error("factors = 0: the model needs at least one latent factor")]
    ZeroFactors,
    #[error("N = 0: ask for at least one recommendation")]
    ZeroN,
    #[error("K = 0: each item needs at least one neighbour")]
    ZeroNeighbours,
    #[error("k = 0: ranking metrics need a cut-off of at least one item")]
    ZeroCutoff,
    #[error("{name} = {value} is invalid: expected {expected}")]
    InvalidParameter {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(
        "the new user's {size} × {size} system is not positive definite (pivot {pivot}): \
         increase the regularization"
    )]
    NotPositiveDefinite { pivot: usize, size: usize },
    #[error("training produced factors that are not finite numbers: increase the regularization")]
    Diverged,
    #[error("no user has held-out items to evaluate")]
    NoTestUsers,
    #[error("id {0} appears twice in an id map")]
    DuplicateId(String),
    #[error("there are more than 4,294,967,295 distinct {0}")]
    TooManyIds(&'static str),
    #[error("the stored recommender is inconsistent: {0}")]
    CorruptModel(String),
    #[error("recommender format {found} is not supported (this socle reads format {supported})")]
    UnsupportedFormat { found: u32, supported: u32 },
}

/// One recommended item and its score (higher is better; the scale depends on the model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub item: Id,
    pub score: f64,
}

/// A fitted recommender. Index-level methods work on the dense indices of
/// [`Recommender::users`] and [`Recommender::items`] and return `(item index, score)` pairs,
/// best first; the id-level methods wrap them.
pub trait Recommender {
    /// The users seen in training, in index order.
    fn users(&self) -> &IdMap;

    /// The items seen in training, in index order.
    fn items(&self) -> &IdMap;

    /// The top `n` items for training user `user`, leaving out the items the user interacted
    /// with when `filter_liked`.
    fn recommend_index(
        &self,
        user: u32,
        n: usize,
        filter_liked: bool,
    ) -> Result<Vec<(u32, f64)>, RecommendError>;

    /// The top `n` items for a user who is not in the training data, from the `(item index,
    /// weight)` pairs they liked (any order; duplicates summed; weight 0 ignored).
    fn recommend_new_user_index(
        &self,
        liked: &[(u32, f64)],
        n: usize,
        filter_liked: bool,
    ) -> Result<Vec<(u32, f64)>, RecommendError>;

    /// The top `n` items for training user `user`; [`RecommendError::UnknownUser`] when the user
    /// was not in the training data (fold them in with [`Recommender::recommend_new_user`]).
    fn recommend(
        &self,
        user: &Id,
        n: usize,
        filter_liked: bool,
    ) -> Result<Vec<Recommendation>, RecommendError> {
        let index = self
            .users()
            .index(user)
            .ok_or_else(|| RecommendError::UnknownUser(user.to_string()))?;
        let scored = self.recommend_index(index, n, filter_liked)?;
        Ok(to_recommendations(self.items(), &scored))
    }

    /// The top `n` items for a new user from the `(item, weight)` pairs they liked. Items not
    /// in the training data are ignored; [`RecommendError::NoKnownItems`] when none is left.
    fn recommend_new_user(
        &self,
        liked: &[(Id, f64)],
        n: usize,
        filter_liked: bool,
    ) -> Result<Vec<Recommendation>, RecommendError> {
        let mut known = Vec::with_capacity(liked.len());
        for (item, weight) in liked {
            if !weight.is_finite() || *weight < 0.0 {
                return Err(RecommendError::InvalidItemWeight {
                    item: item.to_string(),
                    weight: *weight,
                });
            }
            if let Some(index) = self.items().index(item) {
                known.push((index, *weight));
            }
        }
        let scored = match self.recommend_new_user_index(&known, n, filter_liked) {
            Err(RecommendError::NoKnownItems { .. }) => {
                return Err(RecommendError::NoKnownItems { given: liked.len() });
            }
            other => other?,
        };
        Ok(to_recommendations(self.items(), &scored))
    }
}

/// Index-level results as ids.
pub(crate) fn to_recommendations(items: &IdMap, scored: &[(u32, f64)]) -> Vec<Recommendation> {
    scored
        .iter()
        .filter_map(|&(i, score)| {
            items.id(i).map(|id| Recommendation {
                item: id.clone(),
                score,
            })
        })
        .collect()
}

pub(crate) fn check_n(n: usize) -> Result<(), RecommendError> {
    if n == 0 {
        Err(RecommendError::ZeroN)
    } else {
        Ok(())
    }
}

pub(crate) fn check_user(user: u32, count: usize) -> Result<usize, RecommendError> {
    let index = user as usize;
    if index < count {
        Ok(index)
    } else {
        Err(RecommendError::UserIndexOutOfRange { index: user, count })
    }
}

pub(crate) fn check_item(item: u32, count: usize) -> Result<usize, RecommendError> {
    let index = item as usize;
    if index < count {
        Ok(index)
    } else {
        Err(RecommendError::ItemIndexOutOfRange { index: item, count })
    }
}

/// A new user's liked items, checked, sorted by index, duplicates summed and zeros dropped.
pub(crate) fn normalize_liked(
    liked: &[(u32, f64)],
    n_items: usize,
) -> Result<Vec<(u32, f64)>, RecommendError> {
    let mut out: Vec<(u32, f64)> = Vec::with_capacity(liked.len());
    for &(item, weight) in liked {
        check_item(item, n_items)?;
        if !weight.is_finite() || weight < 0.0 {
            return Err(RecommendError::InvalidItemWeight {
                item: format!("#{item}"),
                weight,
            });
        }
        if weight > 0.0 {
            out.push((item, weight));
        }
    }
    out.sort_by_key(|&(item, _)| item);
    let mut merged: Vec<(u32, f64)> = Vec::with_capacity(out.len());
    for (item, weight) in out {
        match merged.last_mut() {
            Some(last) if last.0 == item => last.1 += weight,
            _ => merged.push((item, weight)),
        }
    }
    if let Some(&(item, weight)) = merged.iter().find(|(_, w)| !w.is_finite()) {
        return Err(RecommendError::InvalidItemWeight {
            item: format!("#{item}"),
            weight,
        });
    }
    Ok(merged)
}

/// Best first: higher score, then lower index.
fn best_first(a: &(u32, f64), b: &(u32, f64)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// The `n` best of `scored`, best first (partial selection, then a sort of the `n` kept).
pub(crate) fn top_n(mut scored: Vec<(u32, f64)>, n: usize) -> Vec<(u32, f64)> {
    if n == 0 {
        return Vec::new();
    }
    if scored.len() > n {
        scored.select_nth_unstable_by(n - 1, best_first);
        scored.truncate(n);
    }
    scored.sort_unstable_by(best_first);
    scored
}

/// The number of threads to use: `requested`, or the machine's parallelism when 0.
pub(crate) fn thread_count(requested: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
    }
}

/// Splits `0..n` into at most `parts` contiguous ranges of about equal total `cost`. Results
/// never depend on the split: each row is computed on its own.
pub(crate) fn balanced_ranges(
    n: usize,
    parts: usize,
    cost: impl Fn(usize) -> u64,
) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    let costs: Vec<u64> = (0..n).map(cost).collect();
    let total: u128 = costs.iter().map(|&c| u128::from(c)).sum();
    let mut ranges = Vec::with_capacity(parts);
    let (mut start, mut acc) = (0, 0u128);
    for (i, &c) in costs.iter().enumerate() {
        acc += u128::from(c);
        let done = ranges.len() + 1;
        if done < parts && acc * parts as u128 >= total * done as u128 {
            ranges.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < n || ranges.is_empty() {
        ranges.push(start..n);
    }
    ranges
}

/// `f` over each range, on one scoped thread per range when there are several; results in
/// range order.
pub(crate) fn map_ranges<T, F>(ranges: &[Range<usize>], f: F) -> Vec<T>
where
    T: Send,
    F: Fn(Range<usize>) -> T + Sync,
{
    if ranges.len() <= 1 {
        return ranges.iter().map(|r| f(r.clone())).collect();
    }
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = ranges
            .iter()
            .map(|r| {
                let r = r.clone();
                scope.spawn(move || f(r))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(value) => value,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// Checks the format version of a stored model.
pub(crate) fn check_format(found: u32) -> Result<(), RecommendError> {
    if found == FORMAT {
        Ok(())
    } else {
        Err(RecommendError::UnsupportedFormat {
            found,
            supported: FORMAT,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_n_orders_by_score_then_index() {
        let scored = vec![(4, 1.0), (1, 3.0), (2, 1.0), (0, 2.0), (3, 1.0)];
        assert_eq!(top_n(scored.clone(), 3), vec![(1, 3.0), (0, 2.0), (2, 1.0)]);
        assert_eq!(top_n(scored.clone(), 10).len(), 5);
        assert_eq!(top_n(scored.clone(), 5)[4], (4, 1.0));
        assert!(top_n(scored, 0).is_empty());
    }

    #[test]
    fn liked_items_are_checked_sorted_and_merged() {
        let liked = normalize_liked(&[(3, 1.0), (1, 2.0), (3, 0.5), (2, 0.0)], 4).unwrap();
        assert_eq!(liked, vec![(1, 2.0), (3, 1.5)]);
        assert_eq!(
            normalize_liked(&[(4, 1.0)], 4),
            Err(RecommendError::ItemIndexOutOfRange { index: 4, count: 4 })
        );
        assert!(matches!(
            normalize_liked(&[(0, -1.0)], 4),
            Err(RecommendError::InvalidItemWeight { .. })
        ));
        assert!(matches!(
            normalize_liked(&[(0, f64::NAN)], 4),
            Err(RecommendError::InvalidItemWeight { .. })
        ));
        assert!(matches!(
            normalize_liked(&[(0, f64::MAX), (0, f64::MAX)], 4),
            Err(RecommendError::InvalidItemWeight { .. })
        ));
    }

    #[test]
    fn ranges_cover_everything_once() {
        for n in [0, 1, 5, 17, 100] {
            for parts in [1, 2, 3, 8, 200] {
                let ranges = balanced_ranges(n, parts, |i| (i % 7) as u64 + 1);
                assert!(ranges.len() <= parts.max(1));
                let flat: Vec<usize> = ranges.iter().flat_map(|r| r.clone()).collect();
                assert_eq!(flat, (0..n).collect::<Vec<_>>(), "n {n} parts {parts}");
            }
        }
        // Equal costs split evenly.
        assert_eq!(balanced_ranges(10, 2, |_| 1), vec![0..5, 5..10]);
    }

    #[test]
    fn map_ranges_keeps_range_order() {
        let ranges = vec![0..3, 3..4, 4..10];
        let sums = map_ranges(&ranges, |r| r.sum::<usize>());
        assert_eq!(sums, vec![3, 3, 39]);
        let single = 0..2;
        assert_eq!(
            map_ranges(std::slice::from_ref(&single), |r| r.len()),
            vec![2]
        );
    }

    #[test]
    fn errors_speak_in_user_terms() {
        assert_eq!(
            RecommendError::UnknownUser("42".into()).to_string(),
            "user 42 is not in the training data: recommend from the user's items (fold-in)"
        );
        assert_eq!(
            RecommendError::ZeroN.to_string(),
            "N = 0: ask for at least one recommendation"
        );
        assert!(check_format(FORMAT).is_ok());
        assert_eq!(
            check_format(9),
            Err(RecommendError::UnsupportedFormat {
                found: 9,
                supported: FORMAT
            })
        );
    }
}
