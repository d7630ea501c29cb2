//! Ranking metrics at a cut-off `k`, as implicit 0.7's `ranking_metrics_at_k`
//! (`implicit/evaluation.pyx`), and a most-popular baseline recommender.
//!
//! Every user with at least one held-out (relevant) item is evaluated on their top `k`
//! recommendations, training items filtered out. With `R` the user's relevant items and a hit a
//! recommended item in `R`:
//! - precision@k = Σ hits / Σ min(k, |R|), summed over the users before dividing (implicit divides
//!   by min(k, |R|), not k, so that a user with fewer than k relevant items can score 1);
//! - recall@k = the mean over users of hits / |R| (implicit has no recall; the usual definition);
//! - MAP@k = the mean of (Σ over hits at rank i of (hits up to i) / i) / min(k, |R|);
//! - NDCG@k = the mean of Σ over hits at rank i of 1 / log2(i + 1), divided by the same sum for
//!   min(k, |R|) hits at the top (binary relevance);
//! - AUC@k = implicit's AUC truncated at k: the remaining relevant items count as if they sat
//!   halfway down the unranked items. Every position up to k without a hit (recommended or not)
//!   is a miss, as implicit's lists always hold k items, but never more misses than there are
//!   irrelevant items (k above the catalogue); a user with no irrelevant item scores 1 (implicit
//!   divides by zero).

use serde::{Deserialize, Serialize};

use super::interactions::{Csr, Id, IdMap, Interactions};
use super::{
    FORMAT, RecommendError, Recommender, check_format, check_n, check_user, normalize_liked,
};

/// The metrics of [`ranking_metrics_at_k`], each in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RankingMetrics {
    /// The cut-off.
    pub k: usize,
    /// The users evaluated (those with held-out items).
    pub users: usize,
    pub precision: f64,
    pub recall: f64,
    pub map: f64,
    pub ndcg: f64,
    pub auc: f64,
}

/// The metrics at `k` of `recommend` (user index → `(item index, score)` pairs, best first)
/// against `relevant[u]`, the held-out item indices of user `u` (any order; users without any
/// are skipped), over a catalogue of `n_items` items.
pub fn ranking_metrics_at_k<F>(
    k: usize,
    n_items: usize,
    relevant: &[Vec<u32>],
    mut recommend: F,
) -> Result<RankingMetrics, RecommendError>
where
    F: FnMut(u32) -> Result<Vec<(u32, f64)>, RecommendError>,
{
    if k == 0 {
        return Err(RecommendError::ZeroCutoff);
    }
    let gains: Vec<f64> = (0..k).map(|i| 1.0 / ((i + 2) as f64).log2()).collect();
    let ideal: Vec<f64> = gains
        .iter()
        .scan(0.0, |sum, g| {
            *sum += g;
            Some(*sum)
        })
        .collect();
    let (mut hits_total, mut divisor) = (0.0, 0.0);
    let (mut recall, mut map, mut ndcg, mut auc, mut users) = (0.0, 0.0, 0.0, 0.0, 0usize);
    let mut likes: Vec<u32> = Vec::new();
    for (u, items) in relevant.iter().enumerate() {
        likes.clear();
        likes.extend_from_slice(items);
        likes.sort_unstable();
        likes.dedup();
        if likes.is_empty() {
            continue;
        }
        if let Some(&item) = likes.iter().find(|&&i| i as usize >= n_items) {
            return Err(RecommendError::ItemIndexOutOfRange {
                index: item,
                count: n_items,
            });
        }
        let recs = recommend(u as u32)?;
        let positives = likes.len() as f64;
        let negatives = (n_items - likes.len()) as f64;
        let cutoff = k.min(likes.len());
        let idcg = ideal[cutoff - 1];
        let (mut hit, mut miss, mut ap, mut user_auc, mut user_ndcg) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (i, &gain) in gains.iter().enumerate() {
            let is_hit = recs
                .get(i)
                .is_some_and(|&(item, _)| likes.binary_search(&item).is_ok());
            if is_hit {
                hit += 1.0;
                ap += hit / (i + 1) as f64;
                user_ndcg += gain / idcg;
            } else if miss < negatives {
                miss += 1.0;
                user_auc += hit;
            }
        }
        user_auc += (hit + positives) / 2.0 * (negatives - miss);
        hits_total += hit;
        divisor += cutoff as f64;
        recall += hit / positives;
        map += ap / cutoff as f64;
        ndcg += user_ndcg;
        auc += if negatives > 0.0 {
            user_auc / (positives * negatives)
        } else {
            1.0
        };
        users += 1;
    }
    if users == 0 {
        return Err(RecommendError::NoTestUsers);
    }
    let n = users as f64;
    Ok(RankingMetrics {
        k,
        users,
        precision: hits_total / divisor,
        recall: recall / n,
        map: map / n,
        ndcg: ndcg / n,
        auc: auc / n,
    })
}

/// The metrics at `k` of a fitted recommender, its training items filtered out (as implicit).
pub fn evaluate<R: Recommender + ?Sized>(
    model: &R,
    relevant: &[Vec<u32>],
    k: usize,
) -> Result<RankingMetrics, RecommendError> {
    let n_items = model.items().len();
    ranking_metrics_at_k(k, n_items, relevant, |u| model.recommend_index(u, k, true))
}

/// Held-out `(user, item)` pairs as the `relevant` argument of [`ranking_metrics_at_k`]: one
/// sorted, duplicate-free list of item indices per training user. Pairs whose user or item was not
/// in the training data are dropped (they cannot be recommended or evaluated).
pub fn relevant_items<U, I, T>(users: &IdMap, items: &IdMap, pairs: T) -> Vec<Vec<u32>>
where
    U: Into<Id>,
    I: Into<Id>,
    T: IntoIterator<Item = (U, I)>,
{
    let mut out = vec![Vec::new(); users.len()];
    for (user, item) in pairs {
        if let (Some(u), Some(i)) = (users.index(&user.into()), items.index(&item.into())) {
            out[u as usize].push(i);
        }
    }
    for list in &mut out {
        list.sort_unstable();
        list.dedup();
    }
    out
}

/// The baseline: every user gets the items with the most distinct users, most first (ties by
/// index), less the ones they liked. A new user with no known item gets the overall top.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PopularityData")]
pub struct PopularityModel {
    format: u32,
    users: IdMap,
    items: IdMap,
    user_items: Csr,
    /// Distinct users per item.
    #[serde(skip)]
    popularity: Vec<u32>,
    /// Items by decreasing popularity.
    #[serde(skip)]
    ranked: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PopularityData {
    format: u32,
    users: IdMap,
    items: IdMap,
    user_items: Csr,
}

impl TryFrom<PopularityData> for PopularityModel {
    type Error = RecommendError;

    fn try_from(d: PopularityData) -> Result<Self, Self::Error> {
        check_format(d.format)?;
        let x = Interactions::from_parts(d.users, d.items, d.user_items)?;
        Ok(Self::fit(&x))
    }
}

impl PopularityModel {
    /// Counts the users of every item.
    pub fn fit(interactions: &Interactions) -> Self {
        let by_item = interactions.by_item();
        let popularity: Vec<u32> = (0..by_item.rows())
            .map(|i| by_item.row_len(i) as u32)
            .collect();
        let mut ranked: Vec<u32> = (0..popularity.len() as u32).collect();
        ranked.sort_unstable_by(|&a, &b| {
            let (pa, pb) = (popularity[a as usize], popularity[b as usize]);
            pb.cmp(&pa).then(a.cmp(&b))
        });
        Self {
            format: FORMAT,
            users: interactions.users().clone(),
            items: interactions.items().clone(),
            user_items: interactions.by_user().clone(),
            popularity,
            ranked,
        }
    }

    /// The number of distinct users of each item, in item order.
    pub fn popularity(&self) -> &[u32] {
        &self.popularity
    }

    /// The top `n`, leaving out `liked` (sorted) when `filter`; scores are user counts.
    fn top(&self, liked: &[u32], n: usize, filter: bool) -> Vec<(u32, f64)> {
        let mut out = Vec::with_capacity(n.min(self.ranked.len()));
        for &i in &self.ranked {
            if out.len() == n {
                break;
            }
            if filter && liked.binary_search(&i).is_ok() {
                continue;
            }
            out.push((i, f64::from(self.popularity[i as usize])));
        }
        out
    }
}

impl Recommender for PopularityModel {
    fn users(&self) -> &IdMap {
        &self.users
    }

    fn items(&self) -> &IdMap {
        &self.items
    }

    fn recommend_index(
        &self,
        user: u32,
        n: usize,
        filter_liked: bool,
    ) -> Result<Vec<(u32, f64)>, RecommendError> {
        check_n(n)?;
        let u = check_user(user, self.users.len())?;
        Ok(self.top(self.user_items.row(u).0, n, filter_liked))
    }

    fn recommend_new_user_index(
        &self,
        liked: &[(u32, f64)],
        n: usize,
        filter_liked: bool,
    ) -> Result<Vec<(u32, f64)>, RecommendError> {
        check_n(n)?;
        let liked: Vec<u32> = normalize_liked(liked, self.items.len())?
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        Ok(self.top(&liked, n, filter_liked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference: implicit 0.7.3, `ranking_metrics_at_k(model, train, test, K=3)` with a model
    // whose `recommend` returns these lists: precision 2/3, MAP 0.41666…, NDCG 0.46228…, AUC
    // 0.61111…; recall by hand: (1/2 + 3/4 + 0) / 3.
    #[test]
    fn metrics_match_implicit_on_a_hand_made_example() {
        let recs: [Vec<u32>; 4] = [vec![1, 2, 3], vec![4, 5, 6], vec![0, 1, 2], vec![7, 8, 9]];
        let relevant = vec![vec![5, 2], vec![4, 5, 6, 7], vec![9], vec![]];
        let m = ranking_metrics_at_k(3, 10, &relevant, |u| {
            Ok(recs[u as usize].iter().map(|&i| (i, 0.0)).collect())
        })
        .unwrap();
        assert_eq!((m.k, m.users), (3, 3));
        assert!((m.precision - 0.6666666666666666).abs() < 1e-15, "{m:?}");
        assert!((m.map - 0.4166666666666667).abs() < 1e-15, "{m:?}");
        assert!((m.ndcg - 0.46228426907818054).abs() < 1e-15, "{m:?}");
        assert!((m.auc - 0.611111111111111).abs() < 1e-15, "{m:?}");
        assert!((m.recall - 1.25 / 3.0).abs() < 1e-15, "{m:?}");
    }

    #[test]
    fn short_lists_empty_users_and_bad_input() {
        // One relevant item found first in a one-item list: everything perfect at k = 5.
        let relevant = vec![vec![3], vec![]];
        let m = ranking_metrics_at_k(5, 4, &relevant, |_| Ok(vec![(3, 1.0)])).unwrap();
        assert_eq!((m.precision, m.recall, m.map, m.ndcg), (1.0, 1.0, 1.0, 1.0));
        // 3 misses (all the irrelevant items) after the hit: AUC 1.
        assert!((m.auc - 1.0).abs() < 1e-15, "{m:?}");
        let never = |_| Ok(Vec::new());
        assert_eq!(
            ranking_metrics_at_k(0, 4, &relevant, never),
            Err(RecommendError::ZeroCutoff)
        );
        assert_eq!(
            ranking_metrics_at_k(5, 4, &[vec![], vec![]], never),
            Err(RecommendError::NoTestUsers)
        );
        assert_eq!(
            ranking_metrics_at_k(5, 4, &[vec![4]], never),
            Err(RecommendError::ItemIndexOutOfRange { index: 4, count: 4 })
        );
        let failing = |u| Err(RecommendError::UserIndexOutOfRange { index: u, count: 0 });
        assert!(ranking_metrics_at_k(5, 4, &relevant, failing).is_err());
    }

    fn shop() -> Interactions {
        // Item "c" has 3 users, "a" and "b" 2 each, "d" 1.
        let triples = [
            (1, "a", 1.0),
            (1, "c", 1.0),
            (2, "b", 1.0),
            (2, "c", 5.0),
            (3, "a", 1.0),
            (3, "b", 1.0),
            (3, "c", 1.0),
            (4, "d", 1.0),
        ];
        Interactions::from_triples(triples).unwrap()
    }

    #[test]
    fn popularity_ranks_by_distinct_users_and_filters_liked_items() {
        let model = PopularityModel::fit(&shop());
        assert_eq!(model.popularity(), &[2, 2, 3, 1]);
        let ids = |recs: Vec<super::super::Recommendation>| -> Vec<Id> {
            recs.into_iter().map(|r| r.item).collect()
        };
        let top = model.recommend(&Id::Int(4), 3, true).unwrap();
        assert_eq!(top[0].score, 3.0);
        assert_eq!(ids(top), vec![Id::from("c"), Id::from("a"), Id::from("b")]);
        let filtered = model.recommend(&Id::Int(1), 5, true).unwrap();
        assert_eq!(ids(filtered), vec![Id::from("b"), Id::from("d")]);
        let unfiltered = model.recommend(&Id::Int(1), 2, false).unwrap();
        assert_eq!(ids(unfiltered), vec![Id::from("c"), Id::from("a")]);
        // A new user: liked items left out; nothing known is the cold start.
        let new = model
            .recommend_new_user(&[(Id::from("c"), 1.0)], 1, true)
            .unwrap();
        assert_eq!(ids(new), vec![Id::from("a")]);
        let cold = model
            .recommend_new_user(&[(Id::from("zz"), 1.0)], 1, true)
            .unwrap();
        assert_eq!(ids(cold), vec![Id::from("c")]);
        assert_eq!(
            model.recommend(&Id::Int(9), 1, true),
            Err(RecommendError::UnknownUser("9".into()))
        );
        let back: PopularityModel =
            serde_json::from_str(&serde_json::to_string(&model).unwrap()).unwrap();
        assert_eq!(back, model);
    }

    #[test]
    fn evaluate_a_model_on_held_out_pairs() {
        let x = shop();
        let model = PopularityModel::fit(&x);
        // User 4 held out "c" and "a" (its top 2 after "d"); user 1 held out "b"; unknown
        // users and items are dropped.
        let held_out = [(4, "c"), (4, "a"), (1, "b"), (9, "a"), (1, "zz"), (4, "c")];
        let relevant = relevant_items(x.users(), x.items(), held_out);
        assert_eq!(relevant, vec![vec![1], vec![], vec![], vec![0, 2]]);
        let m = evaluate(&model, &relevant, 2).unwrap();
        assert_eq!(m.users, 2);
        // User 1 gets [b, d]: 1 hit of min(2, 1); user 4 gets [c, a]: 2 hits of 2.
        assert_eq!((m.precision, m.recall, m.map), (1.0, 1.0, 1.0));
        assert!((m.ndcg - 1.0).abs() < 1e-12, "{m:?}");
    }
}
