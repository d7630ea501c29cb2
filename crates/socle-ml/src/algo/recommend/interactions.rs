//! The training data of a recommender: (user, item, weight) triples with string or integer ids,
//! interned to dense `u32` indices, stored twice as compressed sparse rows: by user (scipy's
//! `csr_matrix` of users × items, as implicit 0.7 takes it) and by item (its transpose, the CSC
//! of the same matrix), with `indptr`, `indices` and `data` as in scipy.
//!
//! - Ids are sorted (integers before strings, integers by value) before they get their index, so
//!   the same triples in any order give the same matrices.
//! - Duplicate (user, item) pairs are summed, in input order, as scipy sums duplicates.
//! - A weight of 0 is no interaction and the triple is skipped (implicit would treat a stored 0
//!   as a confidence of 0); negative and non-finite weights are errors.
//! - Columns within a row are sorted and unique.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::RecommendError;

/// A user or item id as the data has it: an integer or a string (a JSON number or string).
/// Integers sort before strings, integers by value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    Int(i64),
    Str(String),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Int(v) => write!(f, "{v}"),
            Id::Str(s) => f.write_str(s),
        }
    }
}

impl From<i64> for Id {
    fn from(v: i64) -> Self {
        Id::Int(v)
    }
}

impl From<i32> for Id {
    fn from(v: i32) -> Self {
        Id::Int(i64::from(v))
    }
}

impl From<u32> for Id {
    fn from(v: u32) -> Self {
        Id::Int(i64::from(v))
    }
}

impl From<&str> for Id {
    fn from(v: &str) -> Self {
        Id::Str(v.to_owned())
    }
}

impl From<String> for Id {
    fn from(v: String) -> Self {
        Id::Str(v)
    }
}

/// Ids and their dense indices, both ways. Serializes as the list of ids in index order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IdMap {
    ids: Vec<Id>,
    index: HashMap<Id, u32>,
}

impl IdMap {
    /// The map giving `ids[i]` the index `i`; an error when an id appears twice.
    pub fn from_ids(ids: Vec<Id>) -> Result<Self, RecommendError> {
        if ids.len() > u32::MAX as usize {
            return Err(RecommendError::TooManyIds("ids"));
        }
        let mut index = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if index.insert(id.clone(), i as u32).is_some() {
                return Err(RecommendError::DuplicateId(id.to_string()));
            }
        }
        Ok(Self { ids, index })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The index of `id`, if known.
    pub fn index(&self, id: &Id) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The id at `index`, if in range.
    pub fn id(&self, index: u32) -> Option<&Id> {
        self.ids.get(index as usize)
    }

    /// All ids, in index order.
    pub fn ids(&self) -> &[Id] {
        &self.ids
    }
}

impl Serialize for IdMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.ids.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for IdMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ids = Vec::<Id>::deserialize(deserializer)?;
        IdMap::from_ids(ids).map_err(serde::de::Error::custom)
    }
}

/// A sparse matrix in compressed sparse row form, as scipy's `csr_matrix`: row `r` holds the
/// columns `indices[indptr[r]..indptr[r + 1]]` (sorted, unique) with values `data[..]` (finite).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CsrData")]
pub struct Csr {
    rows: usize,
    cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CsrData {
    rows: usize,
    cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    data: Vec<f64>,
}

impl TryFrom<CsrData> for Csr {
    type Error = RecommendError;

    fn try_from(d: CsrData) -> Result<Self, Self::Error> {
        Csr::new(d.rows, d.cols, d.indptr, d.indices, d.data)
    }
}

impl Csr {
    /// A matrix from its parts, checked: `indptr` has `rows + 1` non-decreasing offsets from 0
    /// to `indices.len() == data.len()`, columns are below `cols` and increasing within a row,
    /// values are finite.
    pub fn new(
        rows: usize,
        cols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        data: Vec<f64>,
    ) -> Result<Self, RecommendError> {
        let bad = |what: String| Err(RecommendError::CorruptModel(what));
        if indptr.len() != rows + 1 {
            return bad(format!(
                "indptr has {} offsets for {rows} rows",
                indptr.len()
            ));
        }
        if indices.len() != data.len() {
            return bad(format!(
                "{} indices but {} values",
                indices.len(),
                data.len()
            ));
        }
        if indptr.first() != Some(&0) || indptr.last() != Some(&indices.len()) {
            return bad(format!("indptr does not run from 0 to {}", indices.len()));
        }
        if indptr.windows(2).any(|w| w[0] > w[1]) {
            return bad("indptr decreases".to_owned());
        }
        for w in indptr.windows(2) {
            let row = &indices[w[0]..w[1]];
            if row.windows(2).any(|p| p[0] >= p[1]) {
                return bad("the columns of a row are not increasing".to_owned());
            }
            if row.last().is_some_and(|&c| c as usize >= cols) {
                return bad(format!("a column index is not below {cols}"));
            }
        }
        if data.iter().any(|v| !v.is_finite()) {
            return bad("a value is not finite".to_owned());
        }
        Ok(Self {
            rows,
            cols,
            indptr,
            indices,
            data,
        })
    }

    /// An unchecked matrix from parts built correctly by this module.
    fn from_parts(
        rows: usize,
        cols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        data: Vec<f64>,
    ) -> Self {
        debug_assert_eq!(indptr.len(), rows + 1);
        Self {
            rows,
            cols,
            indptr,
            indices,
            data,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The number of stored values.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    pub fn data(&self) -> &[f64] {
        &self.data
    }

    /// Row `r` (below [`Csr::rows`]): its columns and values.
    pub fn row(&self, r: usize) -> (&[u32], &[f64]) {
        let (start, end) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[start..end], &self.data[start..end])
    }

    /// The number of values stored in row `r`.
    pub fn row_len(&self, r: usize) -> usize {
        self.indptr[r + 1] - self.indptr[r]
    }

    /// The transpose (scipy's `.T.tocsr()`): columns become rows, each with increasing columns.
    pub fn transpose(&self) -> Csr {
        let mut indptr = vec![0usize; self.cols + 1];
        for &c in &self.indices {
            indptr[c as usize + 1] += 1;
        }
        let mut total = 0;
        for p in indptr.iter_mut() {
            total += *p;
            *p = total;
        }
        let mut next = indptr[..self.cols].to_vec();
        let mut indices = vec![0u32; self.nnz()];
        let mut data = vec![0.0; self.nnz()];
        for r in 0..self.rows {
            let (cols, values) = self.row(r);
            for (&c, &v) in cols.iter().zip(values) {
                let slot = &mut next[c as usize];
                indices[*slot] = r as u32;
                data[*slot] = v;
                *slot += 1;
            }
        }
        Csr::from_parts(self.cols, self.rows, indptr, indices, data)
    }
}

/// Ids in first-seen order while reading triples.
#[derive(Default)]
struct Interner {
    ids: Vec<Id>,
    index: HashMap<Id, u32>,
}

impl Interner {
    fn intern(&mut self, id: Id, what: &'static str) -> Result<u32, RecommendError> {
        if let Some(&i) = self.index.get(&id) {
            return Ok(i);
        }
        if self.ids.len() >= u32::MAX as usize {
            return Err(RecommendError::TooManyIds(what));
        }
        let i = self.ids.len() as u32;
        self.index.insert(id.clone(), i);
        self.ids.push(id);
        Ok(i)
    }

    /// The ids sorted, and for each first-seen index its place among them.
    fn into_sorted(self) -> (Vec<Id>, Vec<u32>) {
        let ids = self.ids;
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| ids[a as usize].cmp(&ids[b as usize]));
        let mut rank = vec![0u32; ids.len()];
        for (place, &first_seen) in order.iter().enumerate() {
            rank[first_seen as usize] = place as u32;
        }
        let sorted = order.iter().map(|&i| ids[i as usize].clone()).collect();
        (sorted, rank)
    }
}

/// Who interacted with what, and how much: the input of every recommender here.
#[derive(Debug, Clone, PartialEq)]
pub struct Interactions {
    users: IdMap,
    items: IdMap,
    by_user: Csr,
    by_item: Csr,
}

impl Interactions {
    /// From `(user, item, weight)` triples. Duplicates are summed; weight 0 is skipped;
    /// [`RecommendError::InvalidWeight`] for a negative or non-finite weight,
    /// [`RecommendError::NoInteractions`] when no triple has a weight above zero.
    pub fn from_triples<U, I, T>(triples: T) -> Result<Self, RecommendError>
    where
        U: Into<Id>,
        I: Into<Id>,
        T: IntoIterator<Item = (U, I, f64)>,
    {
        let (mut users, mut items) = (Interner::default(), Interner::default());
        let mut entries: Vec<(u32, u32, f64)> = Vec::new();
        for (user, item, weight) in triples {
            let (user, item) = (user.into(), item.into());
            if !weight.is_finite() || weight < 0.0 {
                return Err(RecommendError::InvalidWeight {
                    user: user.to_string(),
                    item: item.to_string(),
                    weight,
                });
            }
            if weight == 0.0 {
                continue;
            }
            let u = users.intern(user, "users")?;
            let i = items.intern(item, "items")?;
            entries.push((u, i, weight));
        }
        if entries.is_empty() {
            return Err(RecommendError::NoInteractions);
        }
        let (user_ids, user_rank) = users.into_sorted();
        let (item_ids, item_rank) = items.into_sorted();
        let (n_users, n_items) = (user_ids.len(), item_ids.len());

        // Bucket by user, keeping input order within a user (a stable counting sort).
        let mut starts = vec![0usize; n_users + 1];
        for e in &mut entries {
            e.0 = user_rank[e.0 as usize];
            e.1 = item_rank[e.1 as usize];
            starts[e.0 as usize + 1] += 1;
        }
        let mut total = 0;
        for p in starts.iter_mut() {
            total += *p;
            *p = total;
        }
        let mut next = starts[..n_users].to_vec();
        let mut bucketed = vec![(0u32, 0.0f64); entries.len()];
        for &(u, i, w) in &entries {
            let slot = &mut next[u as usize];
            bucketed[*slot] = (i, w);
            *slot += 1;
        }
        drop(entries);

        // Sort each row by item (stably) and sum duplicates.
        let mut indptr = Vec::with_capacity(n_users + 1);
        indptr.push(0);
        let mut indices = Vec::with_capacity(bucketed.len());
        let mut data: Vec<f64> = Vec::with_capacity(bucketed.len());
        for (u, w) in starts.windows(2).enumerate() {
            let row = &mut bucketed[w[0]..w[1]];
            row.sort_by_key(|&(i, _)| i);
            let row_start = indices.len();
            for &(i, weight) in row.iter() {
                if indices.len() > row_start && indices.last() == Some(&i) {
                    if let Some(last) = data.last_mut() {
                        *last += weight;
                        if !last.is_finite() {
                            return Err(RecommendError::WeightOverflow {
                                user: user_ids[u].to_string(),
                                item: item_ids[i as usize].to_string(),
                            });
                        }
                    }
                } else {
                    indices.push(i);
                    data.push(weight);
                }
            }
            indptr.push(indices.len());
        }
        let by_user = Csr::from_parts(n_users, n_items, indptr, indices, data);
        let by_item = by_user.transpose();
        Ok(Self {
            users: IdMap::from_ids(user_ids)?,
            items: IdMap::from_ids(item_ids)?,
            by_user,
            by_item,
        })
    }

    /// From id maps and the users × items matrix, checked against each other.
    pub fn from_parts(users: IdMap, items: IdMap, by_user: Csr) -> Result<Self, RecommendError> {
        if by_user.rows() != users.len() || by_user.cols() != items.len() {
            return Err(RecommendError::CorruptModel(format!(
                "a {} × {} matrix for {} users and {} items",
                by_user.rows(),
                by_user.cols(),
                users.len(),
                items.len()
            )));
        }
        if by_user.data().iter().any(|&w| w <= 0.0) {
            return Err(RecommendError::CorruptModel(
                "a stored weight is not above zero".to_owned(),
            ));
        }
        let by_item = by_user.transpose();
        Ok(Self {
            users,
            items,
            by_user,
            by_item,
        })
    }

    /// The users, in index order.
    pub fn users(&self) -> &IdMap {
        &self.users
    }

    /// The items, in index order.
    pub fn items(&self) -> &IdMap {
        &self.items
    }

    pub fn n_users(&self) -> usize {
        self.users.len()
    }

    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    /// The number of distinct (user, item) pairs.
    pub fn nnz(&self) -> usize {
        self.by_user.nnz()
    }

    /// Users × items (one row per user).
    pub fn by_user(&self) -> &Csr {
        &self.by_user
    }

    /// Items × users (one row per item): the transpose of [`Interactions::by_user`].
    pub fn by_item(&self) -> &Csr {
        &self.by_item
    }
}

impl Serialize for Interactions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Data<'a> {
            users: &'a IdMap,
            items: &'a IdMap,
            by_user: &'a Csr,
        }
        Data {
            users: &self.users,
            items: &self.items,
            by_user: &self.by_user,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Interactions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Data {
            users: IdMap,
            items: IdMap,
            by_user: Csr,
        }
        let d = Data::deserialize(deserializer)?;
        Interactions::from_parts(d.users, d.items, d.by_user).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn triples_become_sorted_summed_sparse_rows() {
        let x = Interactions::from_triples(vec![
            ("bob", 30, 1.0),
            ("amy", 10, 2.0),
            ("bob", 10, 0.5),
            ("amy", 10, 1.5), // duplicate: summed
            ("cat", 20, 0.0), // no interaction: skipped, cat and 20 unknown
            ("amy", 30, 4.0),
        ])
        .unwrap();
        assert_eq!(x.users().ids(), &[Id::from("amy"), Id::from("bob")]);
        assert_eq!(x.items().ids(), &[Id::Int(10), Id::Int(30)]);
        assert_eq!(x.users().index(&Id::from("cat")), None);
        assert_eq!(x.by_user().indptr(), &[0, 2, 4]);
        assert_eq!(x.by_user().indices(), &[0, 1, 0, 1]);
        assert_eq!(x.by_user().data(), &[3.5, 4.0, 0.5, 1.0]);
        assert_eq!(x.by_item().indptr(), &[0, 2, 4]);
        assert_eq!(x.by_item().indices(), &[0, 1, 0, 1]);
        assert_eq!(x.by_item().data(), &[3.5, 0.5, 4.0, 1.0]);
        assert_eq!((x.n_users(), x.n_items(), x.nnz()), (2, 2, 4));
        assert_eq!(x.by_user().row(1), (&[0u32, 1][..], &[0.5, 1.0][..]));
    }

    #[test]
    fn integers_sort_by_value_and_before_strings() {
        let x = Interactions::from_triples(vec![
            (Id::Int(10), Id::from("b"), 1.0),
            (Id::Int(9), Id::Int(2), 1.0),
            (Id::from("7"), Id::from("a"), 1.0),
            (Id::Int(-1), Id::Int(100), 1.0),
        ])
        .unwrap();
        assert_eq!(
            x.users().ids(),
            &[Id::Int(-1), Id::Int(9), Id::Int(10), Id::from("7")]
        );
        assert_eq!(
            x.items().ids(),
            &[Id::Int(2), Id::Int(100), Id::from("a"), Id::from("b")]
        );
        assert_eq!(Id::from("7").to_string(), "7");
        assert_eq!(Id::from(-3).to_string(), "-3");
    }

    #[test]
    fn bad_weights_and_empty_input_are_errors() {
        let none: Vec<(i64, i64, f64)> = Vec::new();
        assert_eq!(
            Interactions::from_triples(none),
            Err(RecommendError::NoInteractions)
        );
        assert_eq!(
            Interactions::from_triples(vec![(1, 1, 0.0), (2, 1, 0.0)]),
            Err(RecommendError::NoInteractions)
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = Interactions::from_triples(vec![(1, 1, 1.0), (7, 3, bad)]).unwrap_err();
            match err {
                RecommendError::InvalidWeight { user, item, .. } => {
                    assert_eq!((user.as_str(), item.as_str()), ("7", "3"));
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            Interactions::from_triples(vec![(1, 2, f64::MAX), (1, 2, f64::MAX)]),
            Err(RecommendError::WeightOverflow {
                user: "1".into(),
                item: "2".into()
            })
        );
    }

    #[test]
    fn id_maps_and_interactions_round_trip_through_json() {
        let x =
            Interactions::from_triples(vec![(1, "a", 1.0), (2, "b", 2.5), (2, "a", 1.0)]).unwrap();
        let json = serde_json::to_string(x.users()).unwrap();
        assert_eq!(json, "[1,2]");
        assert_eq!(serde_json::from_str::<IdMap>(&json).unwrap(), *x.users());
        assert!(serde_json::from_str::<IdMap>("[1,\"x\",1]").is_err());
        let back: Interactions = serde_json::from_str(&serde_json::to_string(&x).unwrap()).unwrap();
        assert_eq!(back, x);
    }

    #[test]
    fn corrupt_matrices_are_refused() {
        assert!(Csr::new(2, 2, vec![0, 1, 2], vec![0, 1], vec![1.0, 1.0]).is_ok());
        assert!(Csr::new(2, 2, vec![0, 1], vec![0], vec![1.0]).is_err());
        assert!(Csr::new(2, 2, vec![0, 2, 1], vec![0, 1], vec![1.0, 1.0]).is_err());
        assert!(Csr::new(1, 2, vec![0, 2], vec![1, 0], vec![1.0, 1.0]).is_err());
        assert!(Csr::new(1, 2, vec![0, 1], vec![2], vec![1.0]).is_err());
        assert!(Csr::new(1, 2, vec![0, 1], vec![0], vec![f64::NAN]).is_err());
        let json = r#"{"rows":1,"cols":2,"indptr":[0,1],"indices":[5],"data":[1.0]}"#;
        assert!(serde_json::from_str::<Csr>(json).is_err());
        let users = IdMap::from_ids(vec![Id::Int(1)]).unwrap();
        let items = IdMap::from_ids(vec![Id::Int(1), Id::Int(2)]).unwrap();
        let m = Csr::new(1, 2, vec![0, 1], vec![0], vec![1.0]).unwrap();
        assert!(Interactions::from_parts(users.clone(), items.clone(), m).is_ok());
        let wrong = Csr::new(1, 3, vec![0, 1], vec![0], vec![1.0]).unwrap();
        assert!(Interactions::from_parts(users, items, wrong).is_err());
    }

    proptest! {
        #[test]
        fn every_pair_is_stored_once_with_its_summed_weight(
            triples in proptest::collection::vec((0i64..6, 0i64..5, 0.0f64..3.0), 1..40)
        ) {
            let positive: Vec<_> = triples.iter().filter(|t| t.2 > 0.0).cloned().collect();
            prop_assume!(!positive.is_empty());
            let x = Interactions::from_triples(triples).unwrap();
            prop_assert_eq!(x.by_item(), &x.by_user().transpose());
            prop_assert_eq!(&x.by_item().transpose(), x.by_user());
            let mut expected = std::collections::BTreeMap::new();
            for &(u, i, w) in &positive {
                *expected.entry((u, i)).or_insert(0.0) += w;
            }
            prop_assert_eq!(x.nnz(), expected.len());
            for ((u, i), w) in expected {
                let ui = x.users().index(&Id::Int(u)).unwrap() as usize;
                let ii = x.items().index(&Id::Int(i)).unwrap();
                let (cols, vals) = x.by_user().row(ui);
                let at = cols.iter().position(|&c| c == ii).unwrap();
                prop_assert!((vals[at] - w).abs() < 1e-12);
            }
        }
    }
}
