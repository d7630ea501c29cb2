//! Item-item nearest neighbours on cosine similarity, as implicit 0.7's `CosineRecommender`
//! (`implicit/nearest_neighbours.py`, `_nearest_neighbours.pyx`, `nearest_neighbours.h`).
//!
//! Fitting normalises each item's column of weights to unit length, then for each item computes
//! its dot product with every item sharing a user and keeps the `K` largest (implicit's
//! `all_pairs_knn`). An item is its own neighbour (similarity 1) and takes one of the `K` places.
//! The candidates are offered to the top-K heap in implicit's order (the reverse of the order in
//! which the sparse accumulator first met them) with its rule (replace the smallest only for a
//! strictly larger score; among equal scores the lower index is dropped first), so that ties at
//! the K-th place keep the same neighbours as implicit, and all sums are in f64 in its order.
//!
//! A user's scores are their row of raw weights times the similarity matrix:
//! `score(j) = Σ_i w(u, i) · sim(i, j)`. Only items reached through a neighbour are scored.
//! See the parent module for how the list differs from implicit's (liked items left out, ties).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use super::interactions::{Csr, Id, IdMap, Interactions};
use super::{
    FORMAT, RecommendError, Recommendation, Recommender, balanced_ranges, check_format, check_item,
    check_n, check_user, map_ranges, normalize_liked, thread_count, to_recommendations, top_n,
};

/// The settings of [`KnnModel::fit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnnParams {
    /// Neighbours kept per item, the item itself included (implicit's `K`, default 20).
    pub k: usize,
    /// Threads for fitting; 0 uses every core. The result does not depend on it.
    pub num_threads: usize,
}

impl Default for KnnParams {
    fn default() -> Self {
        Self {
            k: 20,
            num_threads: 0,
        }
    }
}

/// A fitted item-kNN recommender: the neighbour lists of every item and the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "KnnModelData")]
pub struct KnnModel {
    format: u32,
    params: KnnParams,
    users: IdMap,
    items: IdMap,
    /// The training weights, users × items.
    user_items: Csr,
    /// Items × items: row `i` holds the neighbours of `i` by index and their cosine similarity.
    similarity: Csr,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KnnModelData {
    format: u32,
    params: KnnParams,
    users: IdMap,
    items: IdMap,
    user_items: Csr,
    similarity: Csr,
}

impl TryFrom<KnnModelData> for KnnModel {
    type Error = RecommendError;

    fn try_from(d: KnnModelData) -> Result<Self, Self::Error> {
        check_format(d.format)?;
        let (n_users, n_items) = (d.users.len(), d.items.len());
        if d.user_items.rows() != n_users || d.user_items.cols() != n_items {
            return Err(RecommendError::CorruptModel(format!(
                "the training rows are {} × {} for {n_users} users and {n_items} items",
                d.user_items.rows(),
                d.user_items.cols()
            )));
        }
        if d.similarity.rows() != n_items || d.similarity.cols() != n_items {
            return Err(RecommendError::CorruptModel(format!(
                "the similarity matrix is {} × {} for {n_items} items",
                d.similarity.rows(),
                d.similarity.cols()
            )));
        }
        Ok(Self {
            format: d.format,
            params: d.params,
            users: d.users,
            items: d.items,
            user_items: d.user_items,
            similarity: d.similarity,
        })
    }
}

/// An entry of the top-K heap, ordered so that the heap's top is the smallest (score, index).
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: f64,
    index: u32,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(other.index.cmp(&self.index))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// implicit's `TopK` functor: keep `k`, replace the smallest only by a strictly larger score.
fn offer(heap: &mut BinaryHeap<Candidate>, k: usize, candidate: Candidate) {
    if heap.len() < k {
        heap.push(candidate);
    } else if heap.peek().is_some_and(|min| candidate.score > min.score) {
        heap.pop();
        heap.push(candidate);
    }
}

/// The cosine-normalised weights, aligned with `by_user.data()` and `by_item.data()`.
struct Normalised<'a> {
    by_user: &'a Csr,
    by_item: &'a Csr,
    user_values: Vec<f64>,
    item_values: Vec<f64>,
}

/// The neighbour lists of the items in `range`: row lengths, columns, similarities.
fn neighbours(
    x: &Normalised<'_>,
    k: usize,
    range: std::ops::Range<usize>,
) -> (Vec<usize>, Vec<u32>, Vec<f64>) {
    let n_items = x.by_item.rows();
    let mut sums = vec![0.0f64; n_items];
    let mut seen = vec![false; n_items];
    let mut touched: Vec<u32> = Vec::new();
    let mut heap = BinaryHeap::with_capacity(k.min(n_items) + 1);
    let mut kept: Vec<Candidate> = Vec::with_capacity(k.min(n_items));
    let mut lens = Vec::with_capacity(range.len());
    let (mut indices, mut data) = (Vec::new(), Vec::new());
    let (user_ptr, item_ptr) = (x.by_user.indptr(), x.by_item.indptr());
    for i in range {
        let (start, end) = (item_ptr[i], item_ptr[i + 1]);
        for (&u, &w1) in x.by_item.indices()[start..end]
            .iter()
            .zip(&x.item_values[start..end])
        {
            let (lo, hi) = (user_ptr[u as usize], user_ptr[u as usize + 1]);
            for (&j, &w2) in x.by_user.indices()[lo..hi]
                .iter()
                .zip(&x.user_values[lo..hi])
            {
                let slot = j as usize;
                sums[slot] += w2 * w1;
                if !seen[slot] {
                    seen[slot] = true;
                    touched.push(j);
                }
            }
        }
        heap.clear();
        for &j in touched.iter().rev() {
            let slot = j as usize;
            let candidate = Candidate {
                score: sums[slot],
                index: j,
            };
            offer(&mut heap, k, candidate);
            sums[slot] = 0.0;
            seen[slot] = false;
        }
        touched.clear();
        kept.clear();
        kept.extend(heap.drain());
        kept.sort_unstable_by_key(|c| c.index);
        lens.push(kept.len());
        indices.extend(kept.iter().map(|c| c.index));
        data.extend(kept.iter().map(|c| c.score));
    }
    (lens, indices, data)
}

impl KnnModel {
    /// Computes the `K` nearest neighbours of every item (implicit's `CosineRecommender.fit`).
    pub fn fit(interactions: &Interactions, params: &KnnParams) -> Result<Self, RecommendError> {
        if params.k == 0 {
            return Err(RecommendError::ZeroNeighbours);
        }
        let (by_user, by_item) = (interactions.by_user(), interactions.by_item());
        let n_items = by_item.rows();
        // Column norms, summed over users in increasing order (numpy's bincount order).
        let norms: Vec<f64> = (0..n_items)
            .map(|i| by_item.row(i).1.iter().map(|w| w * w).sum::<f64>().sqrt())
            .collect();
        let user_values = by_user
            .indices()
            .iter()
            .zip(by_user.data())
            .map(|(&i, &w)| w / norms[i as usize])
            .collect();
        let mut item_values = Vec::with_capacity(by_item.nnz());
        for (i, &norm) in norms.iter().enumerate() {
            item_values.extend(by_item.row(i).1.iter().map(|&w| w / norm));
        }
        let normalised = Normalised {
            by_user,
            by_item,
            user_values,
            item_values,
        };
        let cost = |i: usize| -> u64 {
            let users = by_item.row(i).0;
            users
                .iter()
                .map(|&u| by_user.row_len(u as usize) as u64)
                .sum::<u64>()
                + 1
        };
        let parts = thread_count(params.num_threads).min(n_items / 8).max(1);
        let ranges = balanced_ranges(n_items, parts, cost);
        let parts = map_ranges(&ranges, |range| neighbours(&normalised, params.k, range));
        let mut indptr = Vec::with_capacity(n_items + 1);
        indptr.push(0);
        let (mut indices, mut data) = (Vec::new(), Vec::new());
        for (lens, part_indices, part_data) in parts {
            for len in lens {
                let last = indptr.last().copied().unwrap_or(0);
                indptr.push(last + len);
            }
            indices.extend(part_indices);
            data.extend(part_data);
        }
        let similarity = Csr::new(n_items, n_items, indptr, indices, data)?;
        Ok(Self {
            format: FORMAT,
            params: *params,
            users: interactions.users().clone(),
            items: interactions.items().clone(),
            user_items: by_user.clone(),
            similarity,
        })
    }

    /// The settings the model was fitted with.
    pub fn params(&self) -> &KnnParams {
        &self.params
    }

    /// Items × items: row `i` holds the neighbours of item `i` and their cosine similarity.
    pub fn similarity(&self) -> &Csr {
        &self.similarity
    }

    /// The training weights, users × items.
    pub fn user_items(&self) -> &Csr {
        &self.user_items
    }

    /// The `n` nearest neighbours of item `item` (itself first when nothing ties with it), as
    /// implicit's `similar_items`.
    pub fn similar_items_index(
        &self,
        item: u32,
        n: usize,
    ) -> Result<Vec<(u32, f64)>, RecommendError> {
        check_n(n)?;
        let i = check_item(item, self.items.len())?;
        let (cols, sims) = self.similarity.row(i);
        Ok(top_n(
            cols.iter().copied().zip(sims.iter().copied()).collect(),
            n,
        ))
    }

    /// The `n` nearest neighbours of `item`, by id.
    pub fn similar_items(
        &self,
        item: &Id,
        n: usize,
    ) -> Result<Vec<Recommendation>, RecommendError> {
        let index = self
            .items
            .index(item)
            .ok_or_else(|| RecommendError::UnknownItem(item.to_string()))?;
        let scored = self.similar_items_index(index, n)?;
        Ok(to_recommendations(&self.items, &scored))
    }

    /// Scores from liked `items` (sorted, unique) with `weights`: their rows of the similarity
    /// matrix, weighted and summed (implicit's `NearestNeighboursScorer.recommend`).
    fn score(&self, items: &[u32], weights: &[f64], n: usize, filter: bool) -> Vec<(u32, f64)> {
        let n_items = self.items.len();
        let mut sums = vec![0.0f64; n_items];
        let mut seen = vec![false; n_items];
        let mut touched: Vec<u32> = Vec::new();
        for (&i, &w) in items.iter().zip(weights) {
            let (cols, sims) = self.similarity.row(i as usize);
            for (&j, &s) in cols.iter().zip(sims) {
                let slot = j as usize;
                sums[slot] += s * w;
                if !seen[slot] {
                    seen[slot] = true;
                    touched.push(j);
                }
            }
        }
        if filter {
            for &i in items {
                seen[i as usize] = false;
            }
        }
        let scored = touched
            .into_iter()
            .filter(|&j| seen[j as usize])
            .map(|j| (j, sums[j as usize]))
            .collect();
        top_n(scored, n)
    }
}

impl Recommender for KnnModel {
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
        let (items, weights) = self.user_items.row(u);
        Ok(self.score(items, weights, n, filter_liked))
    }

    fn recommend_new_user_index(
        &self,
        liked: &[(u32, f64)],
        n: usize,
        filter_liked: bool,
    ) -> Result<Vec<(u32, f64)>, RecommendError> {
        check_n(n)?;
        let liked = normalize_liked(liked, self.items.len())?;
        if liked.is_empty() {
            return Err(RecommendError::NoKnownItems { given: 0 });
        }
        let (items, weights): (Vec<u32>, Vec<f64>) = liked.into_iter().unzip();
        Ok(self.score(&items, &weights, n, filter_liked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 5 users × 6 items, the matrix of the reference values below.
    fn small() -> Interactions {
        let triples = [
            (0, 0, 1.0),
            (0, 1, 2.0),
            (0, 2, 1.0),
            (1, 1, 1.0),
            (1, 2, 1.0),
            (1, 3, 3.0),
            (2, 0, 2.0),
            (2, 3, 1.0),
            (3, 3, 1.0),
            (3, 4, 1.0),
            (3, 5, 2.0),
            (4, 0, 1.0),
            (4, 5, 1.0),
        ];
        Interactions::from_triples(triples).unwrap()
    }

    fn fit(x: &Interactions, k: usize) -> KnnModel {
        KnnModel::fit(x, &KnnParams { k, num_threads: 1 }).unwrap()
    }

    fn assert_scored(got: &[(u32, f64)], want: &[(u32, f64)]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.0, w.0, "{got:?} vs {want:?}");
            assert!((g.1 - w.1).abs() < 1e-12, "{got:?} vs {want:?}");
        }
    }

    fn dense(m: &Csr) -> Vec<Vec<f64>> {
        (0..m.rows())
            .map(|r| {
                let mut row = vec![0.0; m.cols()];
                let (cols, vals) = m.row(r);
                for (&c, &v) in cols.iter().zip(vals) {
                    row[c as usize] = v;
                }
                row
            })
            .collect()
    }

    // Reference: implicit 0.7.3, `CosineRecommender(K=20).fit(m)` on the matrix of `small()`,
    // `.similarity.toarray()`, and `recommend(u, m[u], N=10)` with the liked items (returned by
    // implicit with score 0) removed.
    #[test]
    fn similarity_and_recommendations_match_implicit() {
        let model = fit(&small(), 20);
        // The upper triangle of the (symmetric) similarity matrix; every other entry is 0.
        let upper = [
            (0, 0, 1.0),
            (0, 1, 0.36514837167011077),
            (0, 2, 0.2886751345948129),
            (0, 3, 0.2461829819586655),
            (0, 5, 0.18257418583505539),
            (1, 1, 1.0),
            (1, 2, 0.9486832980505137),
            (1, 3, 0.40451991747794525),
            (2, 2, 1.0),
            (2, 3, 0.6396021490668312),
            (3, 3, 1.0),
            (3, 4, 0.30151134457776363),
            (3, 5, 0.26967994498529685),
            (4, 4, 1.0),
            (4, 5, 0.8944271909999159),
            (5, 5, 1.0),
        ];
        let mut want = vec![vec![0.0; 6]; 6];
        for (i, j, v) in upper {
            want[i][j] = v;
            want[j][i] = v;
        }
        for (got, want) in dense(model.similarity()).iter().zip(&want) {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
            }
        }
        assert_eq!(model.similarity().nnz(), 26);
        let expected: [&[(u32, f64)]; 5] = [
            &[(3, 1.6948249659813874), (5, 0.18257418583505539)],
            &[
                (0, 1.3923724521409202),
                (4, 0.9045340337332909),
                (5, 0.8090398349558905),
            ],
            &[
                (2, 1.216952418256457),
                (1, 1.1348166608181667),
                (5, 0.6348283166554076),
                (4, 0.30151134457776363),
            ],
            &[
                (2, 0.6396021490668312),
                (0, 0.6113313536287763),
                (1, 0.40451991747794525),
            ],
            &[
                (4, 0.8944271909999159),
                (3, 0.5158629269439623),
                (1, 0.36514837167011077),
                (2, 0.2886751345948129),
            ],
        ];
        for (u, want) in expected.iter().enumerate() {
            assert_scored(&model.recommend_index(u as u32, 10, true).unwrap(), want);
        }
        // N cuts the list.
        assert_scored(
            &model.recommend_index(2, 2, true).unwrap(),
            &[(2, 1.216952418256457), (1, 1.1348166608181667)],
        );
        // Unfiltered, the liked items come back with their scores.
        let all = model.recommend_index(0, 10, false).unwrap();
        assert_eq!(all.len(), 5);
        assert!(all.iter().any(|&(i, _)| i == 1));
    }

    // Reference: implicit 0.7.3, `CosineRecommender(K=2)` on the same matrix.
    #[test]
    fn k_keeps_the_nearest_including_the_item_itself() {
        let model = fit(&small(), 2);
        let rows: Vec<Vec<(u32, f64)>> = (0..6)
            .map(|i| {
                let (c, v) = model.similarity().row(i);
                c.iter().copied().zip(v.iter().copied()).collect()
            })
            .collect();
        assert_scored(&rows[0], &[(0, 1.0), (1, 0.36514837167011077)]);
        assert_scored(&rows[1], &[(1, 1.0), (2, 0.9486832980505137)]);
        assert_scored(&rows[3], &[(2, 0.6396021490668312), (3, 1.0)]);
        assert_scored(&rows[5], &[(4, 0.8944271909999159), (5, 1.0)]);
        // User 0 liked 0, 1 and 2, whose neighbours are all among them: nothing to recommend.
        assert!(model.recommend_index(0, 5, true).unwrap().is_empty());
        assert_scored(
            &model.recommend_index(2, 5, true).unwrap(),
            &[(1, 0.7302967433402215), (2, 0.6396021490668312)],
        );
        assert_scored(
            &model.recommend_index(4, 5, true).unwrap(),
            &[(4, 0.8944271909999159), (1, 0.36514837167011077)],
        );
    }

    // Reference: implicit 0.7.3 on a 0/1 matrix where item 0 is equally similar (1/√6) to items
    // 1 and 3: with K = 2 it keeps 3, with K = 3 it keeps 1 and 3 (not 2, at 1/3).
    #[test]
    fn ties_at_the_kth_place_keep_what_implicit_keeps() {
        let pairs = [
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 2),
            (2, 0),
            (2, 3),
            (3, 1),
            (3, 2),
            (3, 3),
        ];
        let mut triples: Vec<(i32, i32, f64)> = pairs.iter().map(|&(u, i)| (u, i, 1.0)).collect();
        triples.extend([(4, 4, 1.0), (4, 2, 1.0)]);
        let x = Interactions::from_triples(triples).unwrap();
        let k2 = fit(&x, 2);
        assert_eq!(k2.similarity().row(0).0, &[0, 3]);
        assert_eq!(k2.similarity().row(1).0, &[1, 3]);
        assert_eq!(k2.similarity().row(2).0, &[2, 4]);
        let k3 = fit(&x, 3);
        assert_eq!(k3.similarity().row(0).0, &[0, 1, 3]);
        assert_scored(
            &k3.recommend_index(1, 5, true).unwrap(),
            &[
                (3, 0.816496580927726),
                (4, 0.5773502691896258),
                (1, 0.408248290463863),
            ],
        );
    }

    #[test]
    fn similar_items_are_the_neighbour_list_best_first() {
        let model = fit(&small(), 20);
        assert_scored(
            &model.similar_items_index(3, 3).unwrap(),
            &[(3, 1.0), (2, 0.6396021490668312), (1, 0.40451991747794525)],
        );
        let by_id = model.similar_items(&Id::Int(4), 2).unwrap();
        assert_eq!(by_id[1].item, Id::Int(5));
        assert_eq!(
            model.similar_items(&Id::Int(9), 2),
            Err(RecommendError::UnknownItem("9".into()))
        );
        assert!(model.similar_items_index(6, 2).is_err());
    }

    #[test]
    fn a_new_user_is_scored_from_their_items() {
        let model = fit(&small(), 20);
        // The same items as user 2, in another order and with a duplicate split in two.
        let liked = [(Id::Int(3), 1.0), (Id::Int(0), 1.5), (Id::Int(0), 0.5)];
        let new = model.recommend_new_user(&liked, 10, true).unwrap();
        let known = model.recommend(&Id::Int(2), 10, true).unwrap();
        assert_eq!(new, known);
        assert_eq!(new[0].item, Id::Int(2));
        // Unknown items are ignored; none known is an error; bad weights too.
        let with_unknown = [(Id::Int(3), 1.0), (Id::Int(0), 2.0), (Id::from("x"), 5.0)];
        assert_eq!(
            model.recommend_new_user(&with_unknown, 10, true).unwrap(),
            known
        );
        assert_eq!(
            model.recommend_new_user(&[(Id::from("x"), 1.0), (Id::Int(0), 0.0)], 3, true),
            Err(RecommendError::NoKnownItems { given: 2 })
        );
        assert!(matches!(
            model.recommend_new_user(&[(Id::Int(0), f64::NAN)], 3, true),
            Err(RecommendError::InvalidItemWeight { .. })
        ));
    }

    #[test]
    fn errors_and_unknown_users() {
        let x = small();
        assert_eq!(
            KnnModel::fit(
                &x,
                &KnnParams {
                    k: 0,
                    num_threads: 1
                }
            ),
            Err(RecommendError::ZeroNeighbours)
        );
        let model = fit(&x, 20);
        assert_eq!(
            model.recommend(&Id::Int(99), 3, true),
            Err(RecommendError::UnknownUser("99".into()))
        );
        assert_eq!(
            model.recommend(&Id::Int(1), 0, true),
            Err(RecommendError::ZeroN)
        );
        assert_eq!(
            model.recommend_index(5, 3, true),
            Err(RecommendError::UserIndexOutOfRange { index: 5, count: 5 })
        );
    }

    #[test]
    fn threads_and_json_do_not_change_the_model() {
        let mut triples = Vec::new();
        for u in 0..40i64 {
            for k in 0..6i64 {
                let item = (u * 7 + k * k * 3) % 41;
                triples.push((u, item, 1.0 + ((u + k) % 4) as f64));
            }
        }
        let x = Interactions::from_triples(triples).unwrap();
        let one = KnnModel::fit(
            &x,
            &KnnParams {
                k: 5,
                num_threads: 1,
            },
        )
        .unwrap();
        let three = KnnModel::fit(
            &x,
            &KnnParams {
                k: 5,
                num_threads: 3,
            },
        )
        .unwrap();
        // The same model, whatever the thread count (which it records).
        assert_eq!(one.similarity(), three.similarity());
        assert_eq!(one.user_items, three.user_items);
        assert!(
            one.similarity()
                .indptr()
                .windows(2)
                .all(|w| w[1] - w[0] <= 5)
        );
        let json = serde_json::to_string(&one).unwrap();
        let back: KnnModel = serde_json::from_str(&json).unwrap();
        for u in 0..40 {
            let (a, b) = (
                one.recommend_index(u, 5, true),
                back.recommend_index(u, 5, true),
            );
            assert_scored(&a.unwrap(), &b.unwrap());
        }
        let wrong = json.replacen("\"format\":1", "\"format\":2", 1);
        assert!(serde_json::from_str::<KnnModel>(&wrong).is_err());
    }
}
