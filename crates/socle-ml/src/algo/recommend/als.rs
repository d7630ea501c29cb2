//! Matrix factorisation for implicit feedback by alternating least squares, as implicit 0.7's
//! `AlternatingLeastSquares` on the CPU with its defaults (`implicit/cpu/als.py`,
//! `implicit/cpu/_als.pyx`): the model of Hu, Koren and Volinsky, "Collaborative Filtering for
//! Implicit Feedback Datasets" (2008), solved with the conjugate-gradient steps of Takács, Pilászy
//! and Tikk (2011).
//!
//! - Confidence: implicit 0.7 multiplies the weights by `alpha` and uses the product as the
//!   confidence `c = alpha · w` of an observed pair (it does not add the paper's 1); an unobserved
//!   pair has confidence 1 and preference 0. A weight below `1 / alpha` thus counts less than an
//!   unobserved pair, as in implicit.
//! - Start: user then item factors drawn uniform in `[0, 0.01)` as `f32` (implicit:
//!   `random_state.random((n, factors), dtype=float32) * 0.01`), from the seeded [`Rng`].
//! - Each iteration updates every user given the items, then every item given the users: for user
//!   `u`, `cg_steps` conjugate-gradient steps on `(YᵀY + Yᵀ(Cᵤ − I)Y + λI)·x = YᵀCᵤp(u)`,
//!   warm-started from the current factor, with `YᵀY` computed once per half-iteration.
//! - Scores are dot products of user and item factors.
//! - Fold-in of a new user solves that system exactly (Cholesky, in `f64`), as implicit's
//!   `recalculate_user` does with LAPACK's `posv`; `YᵀY` is computed once when the model is
//!   fitted or loaded, so a fold-in costs `O(factors³ + items · factors)`.
//!
//! Threads split the rows of a half-iteration; each row is computed on its own, so the factors are
//! bit-identical for any number of threads.

use serde::{Deserialize, Serialize};

use super::als_solve::{self, Confidence};
use super::interactions::{Csr, Id, IdMap, Interactions};
use super::{
    FORMAT, RecommendError, Recommendation, Recommender, check_format, check_item, check_n,
    check_user, normalize_liked, thread_count, to_recommendations, top_n,
};
use crate::algo::Rng;

/// The settings of [`AlsModel::fit`]; the defaults are implicit 0.7's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlsParams {
    /// Latent factors per user and item (default 100).
    pub factors: usize,
    /// λ, the weight of the squared norms of the factors (default 0.01).
    pub regularization: f64,
    /// The confidence of an observed pair is `alpha · weight` (default 1).
    pub alpha: f64,
    /// Alternations of the user and item updates (default 15).
    pub iterations: usize,
    /// Conjugate-gradient steps per row and half-iteration (default 3).
    pub cg_steps: usize,
    /// Seed of the initial factors.
    pub seed: u64,
    /// Threads; 0 uses every core. The result does not depend on it.
    pub num_threads: usize,
}

impl Default for AlsParams {
    fn default() -> Self {
        Self {
            factors: 100,
            regularization: 0.01,
            alpha: 1.0,
            iterations: 15,
            cg_steps: 3,
            seed: 0,
            num_threads: 0,
        }
    }
}

impl AlsParams {
    /// Checks the settings: factors, iterations and steps at least 1, λ ≥ 0, alpha > 0.
    pub fn validate(&self) -> Result<(), RecommendError> {
        fn invalid(
            name: &'static str,
            value: String,
            expected: &'static str,
        ) -> Result<(), RecommendError> {
            Err(RecommendError::InvalidParameter {
                name,
                value,
                expected,
            })
        }
        if self.factors == 0 {
            return Err(RecommendError::ZeroFactors);
        }
        if !self.regularization.is_finite() || self.regularization < 0.0 {
            let value = self.regularization.to_string();
            return invalid("regularization", value, "a finite number of zero or more");
        }
        if !self.alpha.is_finite() || self.alpha <= 0.0 {
            return invalid(
                "alpha",
                self.alpha.to_string(),
                "a finite number above zero",
            );
        }
        if self.iterations == 0 {
            return invalid("iterations", "0".to_owned(), "at least 1");
        }
        if self.cg_steps == 0 {
            return invalid("cg_steps", "0".to_owned(), "at least 1");
        }
        Ok(())
    }
}

/// A fitted ALS recommender: user and item factors (row-major `f32`), the id maps and the
/// training rows (to leave out what a user already liked).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "AlsModelData")]
pub struct AlsModel {
    format: u32,
    params: AlsParams,
    users: IdMap,
    items: IdMap,
    user_items: Csr,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
    /// `YᵀY` of the item factors (for the fold-in), computed when fitted or loaded.
    #[serde(skip)]
    gram: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlsModelData {
    format: u32,
    params: AlsParams,
    users: IdMap,
    items: IdMap,
    user_items: Csr,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
}

impl TryFrom<AlsModelData> for AlsModel {
    type Error = RecommendError;

    fn try_from(d: AlsModelData) -> Result<Self, Self::Error> {
        check_format(d.format)?;
        d.params.validate()?;
        let (n_users, n_items, f) = (d.users.len(), d.items.len(), d.params.factors);
        let corrupt = |what: String| Err(RecommendError::CorruptModel(what));
        if d.user_items.rows() != n_users || d.user_items.cols() != n_items {
            return corrupt(format!(
                "the training rows are {} × {} for {n_users} users and {n_items} items",
                d.user_items.rows(),
                d.user_items.cols()
            ));
        }
        if d.user_factors.len() != n_users * f || d.item_factors.len() != n_items * f {
            return corrupt(format!(
                "{} user and {} item factors for {n_users} users, {n_items} items, {f} factors",
                d.user_factors.len(),
                d.item_factors.len()
            ));
        }
        if d.user_factors
            .iter()
            .chain(&d.item_factors)
            .any(|v| !v.is_finite())
        {
            return corrupt("a factor is not a finite number".to_owned());
        }
        Ok(Self {
            format: d.format,
            params: d.params,
            users: d.users,
            items: d.items,
            user_items: d.user_items,
            gram: als_solve::gram(&d.item_factors, f),
            user_factors: d.user_factors,
            item_factors: d.item_factors,
        })
    }
}

impl AlsModel {
    /// Factorises the interactions (implicit's `AlternatingLeastSquares(...).fit(user_items)`).
    pub fn fit(interactions: &Interactions, params: &AlsParams) -> Result<Self, RecommendError> {
        params.validate()?;
        let f = params.factors;
        let mut rng = Rng::new(params.seed);
        let mut init = |rows: usize| -> Vec<f32> {
            (0..rows * f).map(|_| rng.uniform() as f32 * 0.01).collect()
        };
        let user_factors = init(interactions.n_users());
        let item_factors = init(interactions.n_items());
        Self::fit_from(interactions, params, user_factors, item_factors)
    }

    /// The iterations from given initial factors (`params` already checked).
    fn fit_from(
        interactions: &Interactions,
        params: &AlsParams,
        mut user_factors: Vec<f32>,
        mut item_factors: Vec<f32>,
    ) -> Result<Self, RecommendError> {
        let f = params.factors;
        let alpha = params.alpha as f32;
        let (by_user, by_item) = (interactions.by_user(), interactions.by_item());
        let user_conf: Vec<f32> = by_user.data().iter().map(|&w| w as f32 * alpha).collect();
        let item_conf: Vec<f32> = by_item.data().iter().map(|&w| w as f32 * alpha).collect();
        let cui = Confidence {
            indptr: by_user.indptr(),
            indices: by_user.indices(),
            values: &user_conf,
        };
        let ciu = Confidence {
            indptr: by_item.indptr(),
            indices: by_item.indices(),
            values: &item_conf,
        };
        let (reg, steps) = (params.regularization, params.cg_steps);
        let threads = thread_count(params.num_threads);
        for _ in 0..params.iterations {
            let (x, y) = (&mut user_factors, &item_factors);
            als_solve::least_squares_cg(&cui, x, y, f, reg, steps, threads);
            let (x, y) = (&mut item_factors, &user_factors);
            als_solve::least_squares_cg(&ciu, x, y, f, reg, steps, threads);
        }
        if user_factors
            .iter()
            .chain(&item_factors)
            .any(|v| !v.is_finite())
        {
            return Err(RecommendError::Diverged);
        }
        Ok(Self {
            format: FORMAT,
            params: *params,
            users: interactions.users().clone(),
            items: interactions.items().clone(),
            user_items: by_user.clone(),
            gram: als_solve::gram(&item_factors, f),
            user_factors,
            item_factors,
        })
    }

    /// The settings the model was fitted with.
    pub fn params(&self) -> &AlsParams {
        &self.params
    }

    /// The user factors, row-major (`users × factors`).
    pub fn user_factors(&self) -> &[f32] {
        &self.user_factors
    }

    /// The item factors, row-major (`items × factors`).
    pub fn item_factors(&self) -> &[f32] {
        &self.item_factors
    }

    /// The training weights, users × items.
    pub fn user_items(&self) -> &Csr {
        &self.user_items
    }

    fn item_factor(&self, i: usize) -> &[f32] {
        let f = self.params.factors;
        &self.item_factors[i * f..(i + 1) * f]
    }

    /// implicit's training loss (`calculate_loss`) on the training data: the confidence-weighted
    /// squared error over all pairs plus the regularisation, per unit of confidence.
    pub fn loss(&self) -> f64 {
        let alpha = self.params.alpha as f32;
        let values: Vec<f32> = self
            .user_items
            .data()
            .iter()
            .map(|&w| w as f32 * alpha)
            .collect();
        let conf = Confidence {
            indptr: self.user_items.indptr(),
            indices: self.user_items.indices(),
            values: &values,
        };
        let (f, reg) = (self.params.factors, self.params.regularization);
        als_solve::loss(&conf, &self.user_factors, &self.item_factors, f, reg)
    }

    /// The factor of a new user who liked `(item index, weight)` pairs, solved exactly
    /// (implicit's `recalculate_user`).
    pub fn fold_in_index(&self, liked: &[(u32, f64)]) -> Result<Vec<f32>, RecommendError> {
        let liked = normalize_liked(liked, self.items.len())?;
        if liked.is_empty() {
            return Err(RecommendError::NoKnownItems { given: 0 });
        }
        self.solve_user(&liked)
    }

    /// `(YᵀY + λI + Σ (c − 1)·y·yᵀ)·x = Σ c·y` over the liked items (sorted, unique, known).
    fn solve_user(&self, liked: &[(u32, f64)]) -> Result<Vec<f32>, RecommendError> {
        let f = self.params.factors;
        let mut a = self.gram.clone();
        for v in a.iter_mut().step_by(f + 1) {
            *v += self.params.regularization;
        }
        let mut b = vec![0.0f64; f];
        let mut y = vec![0.0f64; f];
        for &(i, w) in liked {
            let c = self.params.alpha * w;
            for (d, &v) in y.iter_mut().zip(self.item_factor(i as usize)) {
                *d = f64::from(v);
            }
            for (bj, &yj) in b.iter_mut().zip(&y) {
                *bj += c * yj;
            }
            for (row, &yj) in a.chunks_exact_mut(f).zip(&y) {
                let s = (c - 1.0) * yj;
                for (v, &yk) in row.iter_mut().zip(&y) {
                    *v += s * yk;
                }
            }
        }
        als_solve::cholesky_solve(&mut a, &mut b, f)
            .map_err(|pivot| RecommendError::NotPositiveDefinite { pivot, size: f })?;
        if b.iter().any(|v| !v.is_finite()) {
            return Err(RecommendError::NotPositiveDefinite { pivot: f, size: f });
        }
        Ok(b.iter().map(|&v| v as f32).collect())
    }

    /// The top `n` items for factor `x`, leaving out `liked` (increasing indices) if `filter`.
    fn score(
        &self,
        x: &[f32],
        liked: impl Iterator<Item = u32>,
        n: usize,
        filter: bool,
    ) -> Vec<(u32, f64)> {
        let mut dots = Vec::with_capacity(self.items.len());
        als_solve::dot_rows(x, &self.item_factors, &mut dots);
        let mut skip = liked.peekable();
        let mut scored = Vec::with_capacity(dots.len());
        for (i, &score) in dots.iter().enumerate() {
            let i = i as u32;
            if filter {
                while skip.next_if(|&l| l < i).is_some() {}
                if skip.next_if_eq(&i).is_some() {
                    continue;
                }
            }
            scored.push((i, f64::from(score)));
        }
        top_n(scored, n)
    }

    /// The `n` items whose factors have the largest cosine with item `item`'s (itself included),
    /// as implicit's `similar_items`.
    pub fn similar_items_index(
        &self,
        item: u32,
        n: usize,
    ) -> Result<Vec<(u32, f64)>, RecommendError> {
        check_n(n)?;
        let q = self.item_factor(check_item(item, self.items.len())?);
        let q_norm = als_solve::dot(q, q).sqrt();
        let scored = self
            .item_factors
            .chunks_exact(self.params.factors)
            .enumerate()
            .map(|(j, y)| {
                let norm = als_solve::dot(y, y).sqrt() * q_norm;
                let cosine = if norm > 0.0 {
                    als_solve::dot(y, q) / norm
                } else {
                    0.0
                };
                (j as u32, f64::from(cosine))
            })
            .collect();
        Ok(top_n(scored, n))
    }

    /// The `n` items most similar to `item`, by id.
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
}

impl Recommender for AlsModel {
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
        let f = self.params.factors;
        let x = &self.user_factors[u * f..(u + 1) * f];
        let liked = self.user_items.row(u).0.iter().copied();
        Ok(self.score(x, liked, n, filter_liked))
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
        let x = self.solve_user(&liked)?;
        Ok(self.score(&x, liked.iter().map(|&(i, _)| i), n, filter_liked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 5 × 6 matrix of the implicit reference values.
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

    /// The deterministic start given to implicit: `0.01 · (1 + (3r + 7k + offset) mod 11) / 11`.
    fn reference_start(rows: usize, offset: usize, f: usize) -> Vec<f32> {
        (0..rows)
            .flat_map(|r| (0..f).map(move |k| (r, k)))
            .map(|(r, k)| (0.01 * (1 + (r * 3 + k * 7 + offset) % 11) as f64 / 11.0) as f32)
            .collect()
    }

    fn assert_close(got: &[f32], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < tol, "{got:?} vs {want:?}");
        }
    }

    /// Two groups of 10 users, each user liking 3 of the 5 items of their group.
    fn planted() -> Interactions {
        let mut triples = Vec::new();
        for u in 0..20i64 {
            let group = if u < 10 { 0 } else { 5 };
            for k in 0..3 {
                triples.push((u, group + (u + k) % 5, 1.0 + ((u + k) % 3) as f64));
            }
        }
        Interactions::from_triples(triples).unwrap()
    }

    fn planted_params(iterations: usize) -> AlsParams {
        AlsParams {
            factors: 2,
            iterations,
            seed: 42,
            num_threads: 1,
            ..AlsParams::default()
        }
    }

    // Reference: implicit 0.7.3, `implicit.cpu.als.AlternatingLeastSquares(factors=3,
    // regularization=0.1, alpha=2.0, iterations=1, num_threads=1)` with `user_factors` and
    // `item_factors` set to `reference_start` before `fit`, then `recalculate_user(2, m[2])`,
    // `recommend(2, m[2], N=3)` and `_als.calculate_loss`.
    #[test]
    fn one_iteration_matches_implicit() {
        let params = AlsParams {
            factors: 3,
            regularization: 0.1,
            alpha: 2.0,
            iterations: 1,
            num_threads: 1,
            ..AlsParams::default()
        };
        let (users, items) = (reference_start(5, 0, 3), reference_start(6, 5, 3));
        let model = AlsModel::fit_from(&small(), &params, users, items).unwrap();
        #[rustfmt::skip]
        let want_users = [
            0.45081669092178345, 0.36061909794807434, 0.2702251374721527,
            0.3940892815589905, 0.8260564208030701, 0.46558359265327454,
            0.2879403531551361, 0.2700731158256531, 0.4509486258029938,
            0.5578960180282593, 0.4678105413913727, 0.37772494554519653,
            0.28917059302330017, 0.1441374272108078, 0.19858653843402863,
        ];
        #[rustfmt::skip]
        let want_items = [
            1.4110080003738403, -1.2359168529510498, 1.7051376104354858,
            0.8820365071296692, 1.0499180555343628, -0.5389270782470703,
            0.42771264910697937, 1.1270980834960938, -0.38971206545829773,
            0.11859608441591263, 0.391061007976532, 1.3756309747695923,
            1.1254266500473022, -0.10945746302604675, -0.180121511220932,
            1.9743071794509888, -0.6469071507453918, 0.03454950824379921,
        ];
        assert_close(model.user_factors(), &want_users, 5e-4);
        assert_close(model.item_factors(), &want_items, 5e-4);
        let folded = model.fold_in_index(&[(3, 1.0), (0, 2.0)]).unwrap();
        let want = [0.09210991859436035, 0.2092112898826599, 0.6551414132118225];
        assert_close(&folded, &want, 5e-4);
        let recs = model.recommend_index(2, 3, true).unwrap();
        assert_eq!(recs.iter().map(|r| r.0).collect::<Vec<_>>(), vec![5, 1, 2]);
        let scores: Vec<f32> = recs.iter().map(|r| r.1 as f32).collect();
        let want = [0.40935051441192627, 0.2945001423358917, 0.25181451439857483];
        assert_close(&scores, &want, 1e-3);
        assert!(
            (model.loss() - 0.1666395801566215).abs() < 1e-4,
            "{}",
            model.loss()
        );
    }

    // Reference: as above with regularization=0.01, alpha=1.0, iterations=3.
    #[test]
    fn three_iterations_match_implicit() {
        let params = AlsParams {
            factors: 3,
            iterations: 3,
            num_threads: 1,
            ..AlsParams::default()
        };
        let (users, items) = (reference_start(5, 0, 3), reference_start(6, 5, 3));
        let model = AlsModel::fit_from(&small(), &params, users, items).unwrap();
        #[rustfmt::skip]
        let want_users = [
            1.8891199827194214, 2.621492862701416, 1.416185975074768,
            1.695674180984497, 3.4199540615081787, 1.9942489862442017,
            1.1715489625930786, 1.3069143295288086, 2.1053380966186523,
            1.9823148250579834, 0.8007097244262695, 1.1343153715133667,
            1.6398754119873047, 0.0709034651517868, 0.7915655374526978,
        ];
        #[rustfmt::skip]
        let want_items = [
            0.1553037017583847, -0.24434807896614075, 0.4957914352416992,
            0.09892861545085907, 0.4840344488620758, -0.37130308151245117,
            0.08582371473312378, 0.468745619058609, -0.34886839985847473,
            -0.12352345883846283, -0.05745738744735718, 0.6480861306190491,
            0.3329409956932068, -0.11723397672176361, -0.09838352352380753,
            0.6841214299201965, -0.3159480392932892, -0.14287811517715454,
        ];
        assert_close(model.user_factors(), &want_users, 2e-3);
        assert_close(model.item_factors(), &want_items, 2e-3);
        let folded = model.fold_in_index(&[(0, 2.0), (3, 1.0)]).unwrap();
        let want = [1.093238115310669, 1.241554617881775, 2.045107841491699];
        assert_close(&folded, &want, 2e-3);
        let recs = model.recommend_index(2, 3, true).unwrap();
        assert_eq!(recs.iter().map(|r| r.0).collect::<Vec<_>>(), vec![5, 4, 2]);
        let scores: Vec<f32> = recs.iter().map(|r| r.1 as f32).collect();
        let want = [
            0.08775797486305237,
            0.029711320996284485,
            -0.021328935399651527,
        ];
        assert_close(&scores, &want, 2e-3);
        assert!(
            (model.loss() - 0.09187187513342289).abs() < 1e-4,
            "{}",
            model.loss()
        );
    }

    #[test]
    fn planted_groups_are_recovered_and_the_loss_falls() {
        let x = planted();
        let losses: Vec<f64> = [1, 2, 5, 15]
            .iter()
            .map(|&it| AlsModel::fit(&x, &planted_params(it)).unwrap().loss())
            .collect();
        assert!(losses.windows(2).all(|w| w[1] < w[0]), "{losses:?}");
        let model = AlsModel::fit(&x, &planted_params(15)).unwrap();
        for u in 0..20u32 {
            let recs = model.recommend_index(u, 2, true).unwrap();
            assert_eq!(recs.len(), 2);
            let (liked, _) = model.user_items().row(u as usize);
            for &(i, _) in &recs {
                assert_eq!(i / 5, u / 10, "user {u} got item {i}: {recs:?}");
                assert!(!liked.contains(&i), "user {u} already liked {i}");
            }
        }
        let similar = model.similar_items_index(7, 5).unwrap();
        assert!(similar.iter().all(|&(i, _)| i >= 5), "{similar:?}");
        // Unfiltered, every item is scored and the liked ones come back.
        let all = model.recommend_index(0, 10, false).unwrap();
        assert_eq!(all.len(), 10);
    }

    #[test]
    fn folding_in_a_training_user_gives_nearly_their_factor() {
        let model = AlsModel::fit(&planted(), &planted_params(15)).unwrap();
        let f = 2;
        for u in [0usize, 13] {
            let (items, weights) = model.user_items().row(u);
            let liked: Vec<(u32, f64)> =
                items.iter().copied().zip(weights.iter().copied()).collect();
            let folded = model.fold_in_index(&liked).unwrap();
            let trained = &model.user_factors()[u * f..(u + 1) * f];
            let norm = |v: &[f32]| als_solve::dot(v, v).sqrt();
            let cosine = als_solve::dot(&folded, trained) / (norm(&folded[..]) * norm(trained));
            assert!(cosine > 0.999, "user {u}: {folded:?} vs {trained:?}");
            let diff: Vec<f32> = folded.iter().zip(trained).map(|(a, b)| a - b).collect();
            assert!(
                norm(&diff[..]) < 0.1 * norm(trained),
                "user {u}: {folded:?} vs {trained:?}"
            );
            let new = model.recommend_new_user_index(&liked, 1, true).unwrap();
            let known = model.recommend_index(u as u32, 1, true).unwrap();
            assert_eq!(new[0].0, known[0].0);
        }
        // By id, with an unknown item ignored.
        let liked = [(Id::Int(0), 1.0), (Id::Int(1), 2.0), (Id::from("?"), 1.0)];
        let recs = model.recommend_new_user(&liked, 2, true).unwrap();
        let in_group = |r: &Recommendation| matches!(r.item, Id::Int(i) if (2..5).contains(&i));
        assert!(recs.iter().all(in_group), "{recs:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_model_on_any_number_of_threads() {
        let mut triples = Vec::new();
        for u in 0..100i64 {
            for k in 0..5i64 {
                triples.push((u, (u * 3 + k * k * 7) % 40, 1.0 + (k % 3) as f64));
            }
        }
        let x = Interactions::from_triples(triples).unwrap();
        let params = AlsParams {
            factors: 4,
            iterations: 3,
            seed: 7,
            num_threads: 1,
            ..AlsParams::default()
        };
        let one = AlsModel::fit(&x, &params).unwrap();
        let again = AlsModel::fit(&x, &params).unwrap();
        let three = AlsModel::fit(
            &x,
            &AlsParams {
                num_threads: 3,
                ..params
            },
        )
        .unwrap();
        let other = AlsModel::fit(&x, &AlsParams { seed: 8, ..params }).unwrap();
        assert_eq!(one.user_factors(), again.user_factors());
        assert_eq!(one.user_factors(), three.user_factors());
        assert_eq!(one.item_factors(), three.item_factors());
        assert_ne!(one.user_factors(), other.user_factors());
    }

    #[test]
    fn json_round_trip_and_corrupt_models() {
        let model = AlsModel::fit(&planted(), &planted_params(5)).unwrap();
        let json = serde_json::to_string(&model).unwrap();
        let back: AlsModel = serde_json::from_str(&json).unwrap();
        assert_eq!(back.user_factors(), model.user_factors());
        assert_eq!(back.item_factors(), model.item_factors());
        let liked = [(0, 1.0), (2, 3.0)];
        let a = model.recommend_new_user_index(&liked, 3, true).unwrap();
        let b = back.recommend_new_user_index(&liked, 3, true).unwrap();
        assert_eq!(a, b);
        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        if let Some(factors) = value["user_factors"].as_array_mut() {
            factors.pop();
        }
        let err = serde_json::from_value::<AlsModel>(value).unwrap_err();
        assert!(err.to_string().contains("inconsistent"), "{err}");
    }

    #[test]
    fn bad_settings_and_requests_are_errors() {
        let x = small();
        let with = |p: AlsParams| AlsModel::fit(&x, &p).err();
        let base = AlsParams {
            factors: 2,
            iterations: 1,
            ..AlsParams::default()
        };
        assert_eq!(
            with(AlsParams { factors: 0, ..base }),
            Some(RecommendError::ZeroFactors)
        );
        for p in [
            AlsParams {
                regularization: -0.1,
                ..base
            },
            AlsParams {
                regularization: f64::NAN,
                ..base
            },
            AlsParams { alpha: 0.0, ..base },
            AlsParams {
                alpha: f64::INFINITY,
                ..base
            },
            AlsParams {
                iterations: 0,
                ..base
            },
            AlsParams {
                cg_steps: 0,
                ..base
            },
        ] {
            assert!(
                matches!(with(p), Some(RecommendError::InvalidParameter { .. })),
                "{p:?}"
            );
        }
        let model = AlsModel::fit(&x, &base).unwrap();
        assert_eq!(
            model.recommend(&Id::Int(42), 3, true),
            Err(RecommendError::UnknownUser("42".into()))
        );
        assert_eq!(
            model.recommend(&Id::Int(0), 0, true),
            Err(RecommendError::ZeroN)
        );
        assert_eq!(
            model.recommend_new_user_index(&[(6, 1.0)], 3, true),
            Err(RecommendError::ItemIndexOutOfRange { index: 6, count: 6 })
        );
        assert_eq!(
            model.recommend_new_user_index(&[(1, 0.0)], 3, true),
            Err(RecommendError::NoKnownItems { given: 0 })
        );
        assert_eq!(
            model.similar_items(&Id::Int(9), 1),
            Err(RecommendError::UnknownItem("9".into()))
        );
    }
}
