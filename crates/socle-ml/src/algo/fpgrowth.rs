//! Frequent itemsets by FP-growth, as mlxtend 0.25's
//! `fpgrowth(df, min_support, use_colnames=True, max_len)`: the same itemsets with the same
//! supports. The rules built from them are in [`super::rules`].
//!
//! 1. [`Transactions::from_baskets`] interns item names to `u32` ids in name order (so sorting
//!    ids sorts names) and keeps each basket as a sorted, deduplicated slice.
//! 2. [`frequent_itemsets`] counts each item, drops the infrequent ones, inserts every basket's
//!    frequent items (most frequent first) into an FP-tree, then mines it: for each item, the
//!    itemset "prefix + item" is frequent, and the tree of the paths leading to that item
//!    (its conditional tree, again pruned of infrequent items) gives the longer ones. A tree
//!    that is a single path yields every combination of its items directly.
//!
//! The support of an itemset is the number of baskets holding all its items divided by the
//! number of baskets, empty baskets included; an itemset is frequent when that support is
//! `>= min_support`. Work and memory follow the frequent itemsets: items below the threshold
//! never enter a tree, so a huge basket costs only its frequent items, and nothing enumerates
//! the subsets of a basket. [`frequent_itemsets_with_limit`] stops with an error instead of
//! growing the output past a bound (a low `min_support` over a few very large baskets can make
//! the number of frequent itemsets itself explode).
//!
//! Deliberate differences from mlxtend:
//! - The threshold is exactly `count / n >= min_support` (in `f64`) at every size, as mlxtend's
//!   documentation says and its `apriori` (default `low_memory=False`) does. mlxtend's
//!   `fpgrowth` prunes its conditional trees with `ceil(min_support * n)` computed in floating
//!   point, which is one too many when the product rounds up past an integer
//!   (`0.07 * 100 = 7.000000000000001`): there it drops the itemsets of two or more items whose
//!   support equals `min_support` exactly. We keep them (on the groceries data at
//!   `min_support = 28 / 9835`: 2475 itemsets, as `apriori`; mlxtend's `fpgrowth` finds 2341).
//!   Elsewhere the itemsets are the same.
//! - Input is a list of baskets of item names rather than a one-hot DataFrame; an item
//!   repeated in a basket counts once. `null_values` (NaN cells) is not offered.
//! - Output order is fixed: by size, then by item names (mlxtend's follows its tree).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

/// What is wrong with the input of frequent-itemset mining ([`frequent_itemsets`]) or of rule
/// generation ([`super::rules::association_rules`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RulesError {
    #[error("there are no baskets: frequent itemsets and rules need at least one transaction")]
    NoTransactions,
    #[error("min_support = {0} must be greater than 0 and at most 1 (a fraction of the baskets)")]
    MinSupport(f64),
    #[error("max_len = 0: an itemset holds at least one item")]
    MaxLen,
    #[error("min_threshold = {0} must be a finite number")]
    MinThreshold(f64),
    #[error("{count} distinct or stored items are more than the {limit} a transaction set holds")]
    TooManyItems { count: usize, limit: usize },
    #[error("more than {limit} frequent itemsets: raise min_support or set a smaller max_len")]
    TooManyItemsets { limit: usize },
    #[error("more than {limit} rules: raise min_threshold or min_support")]
    TooManyRules { limit: usize },
    #[error("itemset #{index} is empty or its item ids are not strictly increasing")]
    BadItemset { index: usize },
    #[error("itemset #{index} has support {support}, which is not in (0, 1]")]
    BadSupport { index: usize, support: f64 },
    #[error("itemset #{index} is listed twice")]
    DuplicateItemset { index: usize },
    #[error("itemset #{index} has a subset missing from the itemsets, so its rules lack supports")]
    MissingSubset { index: usize },
    #[error("unknown metric {0:?}: expected one of {names}", names = METRIC_NAMES)]
    UnknownMetric(String),
}

/// The metric names that [`RulesError::UnknownMetric`] lists (mlxtend's).
const METRIC_NAMES: &str = "antecedent support, consequent support, support, confidence, lift, \
    representativity, leverage, conviction, zhangs_metric, jaccard, certainty, kulczynski";

/// The most distinct items, and the most item occurrences over all baskets (after removing
/// repeats), that [`Transactions`] holds: ids and tree nodes are `u32`.
pub const MAX_ITEMS: usize = u32::MAX as usize - 1;

/// No rank: the item is not in the tree.
const NONE: u32 = u32::MAX;

/// Baskets of items. Items are interned to `u32` ids given in the (byte-wise) order of their
/// names, so id order is name order; each basket is kept sorted and without repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transactions {
    /// Item names, sorted; an item's id is its index.
    names: Vec<String>,
    /// Basket `b` is `items[bounds[b]..bounds[b + 1]]`.
    bounds: Vec<usize>,
    items: Vec<u32>,
}

impl Transactions {
    /// Interns `baskets` (each a list of item names, repeats allowed, empty allowed).
    /// Fails only past [`MAX_ITEMS`].
    pub fn from_baskets<S: AsRef<str>>(baskets: &[Vec<S>]) -> Result<Self, RulesError> {
        let mut ids: HashMap<&str, u32, FxBuild> = HashMap::default();
        let mut first_seen: Vec<&str> = Vec::new();
        let mut raw: Vec<u32> = Vec::new();
        let mut raw_bounds = Vec::with_capacity(baskets.len() + 1);
        raw_bounds.push(0);
        for basket in baskets {
            for item in basket {
                let name = item.as_ref();
                let id = match ids.get(name) {
                    Some(&id) => id,
                    None => {
                        if first_seen.len() >= MAX_ITEMS {
                            return Err(RulesError::TooManyItems {
                                count: first_seen.len() + 1,
                                limit: MAX_ITEMS,
                            });
                        }
                        let id = first_seen.len() as u32;
                        ids.insert(name, id);
                        first_seen.push(name);
                        id
                    }
                };
                raw.push(id);
            }
            raw_bounds.push(raw.len());
        }
        // Ids in name order.
        let mut order: Vec<u32> = (0..first_seen.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| first_seen[a as usize].cmp(first_seen[b as usize]));
        let mut remap = vec![0u32; first_seen.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old as usize] = new as u32;
        }
        let names = order
            .iter()
            .map(|&old| first_seen[old as usize].to_owned())
            .collect();
        let mut items = Vec::with_capacity(raw.len());
        let mut bounds = Vec::with_capacity(raw_bounds.len());
        bounds.push(0);
        let mut basket: Vec<u32> = Vec::new();
        for w in raw_bounds.windows(2) {
            basket.clear();
            basket.extend(raw[w[0]..w[1]].iter().map(|&old| remap[old as usize]));
            basket.sort_unstable();
            basket.dedup();
            items.extend_from_slice(&basket);
            bounds.push(items.len());
        }
        if items.len() > MAX_ITEMS {
            return Err(RulesError::TooManyItems {
                count: items.len(),
                limit: MAX_ITEMS,
            });
        }
        Ok(Self {
            names,
            bounds,
            items,
        })
    }

    /// The number of baskets, empty ones included: the denominator of every support.
    pub fn len(&self) -> usize {
        self.bounds.len() - 1
    }

    /// Whether there is no basket at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of distinct items.
    pub fn n_items(&self) -> usize {
        self.names.len()
    }

    /// The name of item `id`. Panics when `id` was not given by this value.
    pub fn item_name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// The id of the item named `name`, if some basket holds it.
    pub fn item_id(&self, name: &str) -> Option<u32> {
        self.names
            .binary_search_by(|n| n.as_str().cmp(name))
            .ok()
            .map(|i| i as u32)
    }

    /// The names of `ids`, in the same order.
    pub fn item_names(&self, ids: &[u32]) -> Vec<&str> {
        ids.iter().map(|&id| self.item_name(id)).collect()
    }

    /// Basket `b`'s item ids, sorted, without repeats. Panics when `b >= self.len()`.
    pub fn basket(&self, b: usize) -> &[u32] {
        &self.items[self.bounds[b]..self.bounds[b + 1]]
    }
}

/// A frequent itemset: its item ids (sorted, hence in name order), the number of baskets that
/// hold all of them, and that number divided by the number of baskets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Itemset {
    pub items: Vec<u32>,
    pub count: u64,
    pub support: f64,
}

/// Every itemset whose support is `>= min_support` and whose size is at most `max_len`
/// (`None`: any size), sorted by size, then by item ids (that is, by item names).
///
/// Errors: no basket, `min_support` outside `(0, 1]` (or NaN), `max_len == Some(0)`.
pub fn frequent_itemsets(
    t: &Transactions,
    min_support: f64,
    max_len: Option<usize>,
) -> Result<Vec<Itemset>, RulesError> {
    frequent_itemsets_with_limit(t, min_support, max_len, usize::MAX)
}

/// [`frequent_itemsets`], failing with [`RulesError::TooManyItemsets`] as soon as more than
/// `max_itemsets` itemsets are found, so that memory stays bounded whatever the data.
pub fn frequent_itemsets_with_limit(
    t: &Transactions,
    min_support: f64,
    max_len: Option<usize>,
    max_itemsets: usize,
) -> Result<Vec<Itemset>, RulesError> {
    if t.is_empty() {
        return Err(RulesError::NoTransactions);
    }
    let valid = min_support > 0.0 && min_support <= 1.0;
    if !valid {
        return Err(RulesError::MinSupport(min_support));
    }
    let max_len = match max_len {
        Some(0) => return Err(RulesError::MaxLen),
        Some(k) => k,
        None => usize::MAX,
    };
    let n = t.len();
    let min_count = min_count(min_support, n);

    let mut counts = vec![0u64; t.n_items()];
    for &item in &t.items {
        counts[item as usize] += 1;
    }
    // Local items of the root tree: the frequent ones, most frequent first (ties by id).
    let mut frequent: Vec<u32> = (0..t.n_items() as u32)
        .filter(|&i| counts[i as usize] >= min_count)
        .collect();
    frequent.sort_unstable_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
    let mut rank = vec![NONE; t.n_items()];
    for (r, &item) in frequent.iter().enumerate() {
        rank[item as usize] = r as u32;
    }
    let tree = {
        let mut paths = Paths::new();
        for w in t.bounds.windows(2) {
            for &item in &t.items[w[0]..w[1]] {
                let r = rank[item as usize];
                if r != NONE {
                    paths.items.push(r);
                }
            }
            paths.close(1);
        }
        let item_count = frequent.iter().map(|&i| counts[i as usize]).collect();
        FpTree::build(&paths, frequent, item_count)
    };

    let mut miner = Miner {
        min_count,
        max_len,
        max_itemsets,
        n: n as f64,
        prefix: Vec::new(),
        out: Vec::new(),
    };
    miner.mine(&tree)?;
    let mut out = miner.out;
    for set in &mut out {
        set.items.sort_unstable();
    }
    out.sort_unstable_by(|a, b| {
        a.items
            .len()
            .cmp(&b.items.len())
            .then_with(|| a.items.cmp(&b.items))
    });
    Ok(out)
}

/// The least count `c` with `c / n >= min_support` in `f64`, for `min_support` in `(0, 1]`:
/// comparing counts to it is comparing supports to `min_support`.
fn min_count(min_support: f64, n: usize) -> u64 {
    let nf = n as f64;
    let n = n as u64;
    let mut c = ((min_support * nf).ceil() as u64).clamp(1, n);
    while c > 1 && (c - 1) as f64 / nf >= min_support {
        c -= 1;
    }
    while c < n && (c as f64 / nf) < min_support {
        c += 1;
    }
    c
}

/// Weighted item paths (local ranks, sorted ascending within a path) to build a tree from.
struct Paths {
    items: Vec<u32>,
    /// Path `p` is `items[bounds[p]..bounds[p + 1]]`; the items after the last bound are the
    /// path being written.
    bounds: Vec<usize>,
    weights: Vec<u64>,
}

impl Paths {
    fn new() -> Self {
        Self {
            items: Vec::new(),
            bounds: vec![0],
            weights: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.items.clear();
        self.bounds.clear();
        self.bounds.push(0);
        self.weights.clear();
    }

    /// Ends the path being written (the items pushed since the last close), with `weight`.
    /// An empty path is dropped: it adds no node.
    fn close(&mut self, weight: u64) {
        let start = self.bounds[self.bounds.len() - 1];
        if self.items.len() == start {
            return;
        }
        self.items[start..].sort_unstable();
        self.bounds.push(self.items.len());
        self.weights.push(weight);
    }

    fn len(&self) -> usize {
        self.weights.len()
    }

    fn path(&self, p: usize) -> &[u32] {
        &self.items[self.bounds[p]..self.bounds[p + 1]]
    }
}

/// An FP-tree in flat arrays. Node 0 is the root; a node's item is a local index (0 = the
/// most frequent item of this tree), increasing from the root down every path.
struct FpTree {
    item: Vec<u32>,
    count: Vec<u64>,
    parent: Vec<u32>,
    /// The nodes of local item `i` are `header_nodes[header_bounds[i]..header_bounds[i + 1]]`.
    header_bounds: Vec<usize>,
    header_nodes: Vec<u32>,
    /// Local item → global item id.
    global: Vec<u32>,
    /// Local item → number of baskets (in this tree's condition) holding it.
    item_count: Vec<u64>,
    /// Every node has at most one child.
    single_path: bool,
}

impl FpTree {
    /// Inserts `paths` in lexicographic order: then a path shares with the tree exactly its
    /// common prefix with the previous path, so no child lookup is needed.
    fn build(paths: &Paths, global: Vec<u32>, item_count: Vec<u64>) -> Self {
        let mut order: Vec<u32> = (0..paths.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| paths.path(a as usize).cmp(paths.path(b as usize)));
        let capacity = paths.items.len() + 1;
        let mut item = Vec::with_capacity(capacity);
        let mut count = Vec::with_capacity(capacity);
        let mut parent = Vec::with_capacity(capacity);
        item.push(NONE);
        count.push(0u64);
        parent.push(0u32);
        let mut stack: Vec<u32> = Vec::new();
        let mut prev: &[u32] = &[];
        for &p in &order {
            let path = paths.path(p as usize);
            let weight = paths.weights[p as usize];
            let common = prev.iter().zip(path).take_while(|(a, b)| a == b).count();
            stack.truncate(common);
            for &node in &stack {
                count[node as usize] += weight;
            }
            for &it in &path[common..] {
                let node = item.len() as u32;
                item.push(it);
                count.push(weight);
                parent.push(stack.last().copied().unwrap_or(0));
                stack.push(node);
            }
            prev = path;
        }
        let single_path = parent
            .iter()
            .enumerate()
            .skip(1)
            .all(|(k, &p)| p as usize + 1 == k);

        let n_local = global.len();
        let mut header_bounds = vec![0usize; n_local + 1];
        for &it in &item[1..] {
            header_bounds[it as usize + 1] += 1;
        }
        for i in 0..n_local {
            header_bounds[i + 1] += header_bounds[i];
        }
        let mut fill = header_bounds.clone();
        let mut header_nodes = vec![0u32; item.len() - 1];
        for (node, &it) in item.iter().enumerate().skip(1) {
            header_nodes[fill[it as usize]] = node as u32;
            fill[it as usize] += 1;
        }
        Self {
            item,
            count,
            parent,
            header_bounds,
            header_nodes,
            global,
            item_count,
            single_path,
        }
    }

    fn n_local(&self) -> usize {
        self.global.len()
    }

    fn header(&self, local: usize) -> &[u32] {
        &self.header_nodes[self.header_bounds[local]..self.header_bounds[local + 1]]
    }

    /// The tree of the paths above the nodes of `local`, each weighted by that node's count,
    /// keeping the items whose weighted count reaches `min_count`; `None` when none does.
    fn conditional(&self, local: usize, min_count: u64, s: &mut Scratch) -> Option<FpTree> {
        let nodes = self.header(local);
        s.touched.clear();
        for &node in nodes {
            let weight = self.count[node as usize];
            let mut p = self.parent[node as usize];
            while p != 0 {
                let it = self.item[p as usize] as usize;
                if s.count[it] == 0 {
                    s.touched.push(it as u32);
                }
                s.count[it] += weight;
                p = self.parent[p as usize];
            }
        }
        let mut kept: Vec<u32> = s
            .touched
            .iter()
            .copied()
            .filter(|&it| s.count[it as usize] >= min_count)
            .collect();
        kept.sort_unstable_by(|&a, &b| {
            s.count[b as usize]
                .cmp(&s.count[a as usize])
                .then(a.cmp(&b))
        });
        for (r, &it) in kept.iter().enumerate() {
            s.rank[it as usize] = r as u32;
        }
        let tree = if kept.is_empty() {
            None
        } else {
            s.paths.clear();
            for &node in nodes {
                let mut p = self.parent[node as usize];
                while p != 0 {
                    let r = s.rank[self.item[p as usize] as usize];
                    if r != NONE {
                        s.paths.items.push(r);
                    }
                    p = self.parent[p as usize];
                }
                s.paths.close(self.count[node as usize]);
            }
            let global = kept.iter().map(|&it| self.global[it as usize]).collect();
            let item_count = kept.iter().map(|&it| s.count[it as usize]).collect();
            Some(FpTree::build(&s.paths, global, item_count))
        };
        for &it in &s.touched {
            s.count[it as usize] = 0;
            s.rank[it as usize] = NONE;
        }
        tree
    }
}

/// Buffers for the conditional trees of one tree, indexed by its local items; reset after
/// each use through `touched`.
struct Scratch {
    count: Vec<u64>,
    rank: Vec<u32>,
    touched: Vec<u32>,
    paths: Paths,
}

impl Scratch {
    fn new(n_local: usize) -> Self {
        Self {
            count: vec![0; n_local],
            rank: vec![NONE; n_local],
            touched: Vec::new(),
            paths: Paths::new(),
        }
    }
}

/// The recursive FP-growth walk; `prefix` holds the global ids of the condition.
struct Miner {
    min_count: u64,
    max_len: usize,
    max_itemsets: usize,
    n: f64,
    prefix: Vec<u32>,
    out: Vec<Itemset>,
}

impl Miner {
    fn emit(&mut self, count: u64) -> Result<(), RulesError> {
        debug_assert!(count >= self.min_count);
        if self.out.len() >= self.max_itemsets {
            return Err(RulesError::TooManyItemsets {
                limit: self.max_itemsets,
            });
        }
        self.out.push(Itemset {
            items: self.prefix.clone(),
            count,
            support: count as f64 / self.n,
        });
        Ok(())
    }

    fn mine(&mut self, tree: &FpTree) -> Result<(), RulesError> {
        if tree.single_path {
            let room = self.max_len - self.prefix.len();
            return self.mine_path(tree, 1, room);
        }
        let mut scratch = Scratch::new(tree.n_local());
        for local in (0..tree.n_local()).rev() {
            self.prefix.push(tree.global[local]);
            self.emit(tree.item_count[local])?;
            if self.prefix.len() < self.max_len
                && let Some(cond) = tree.conditional(local, self.min_count, &mut scratch)
            {
                self.mine(&cond)?;
            }
            self.prefix.pop();
        }
        Ok(())
    }

    /// Every combination of at most `room` nodes of a single-path tree from node `first` on,
    /// added to the prefix; its count is its deepest node's.
    fn mine_path(&mut self, tree: &FpTree, first: usize, room: usize) -> Result<(), RulesError> {
        for node in first..tree.item.len() {
            self.prefix.push(tree.global[tree.item[node] as usize]);
            self.emit(tree.count[node])?;
            if room > 1 {
                self.mine_path(tree, node + 1, room - 1)?;
            }
            self.prefix.pop();
        }
        Ok(())
    }
}

/// FxHash (rustc's): a fast hasher for the crate's own lookups of interned ids and names.
/// Lookup only: no map iterated with it decides any output order.
#[derive(Default)]
pub(super) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

pub(super) type FxBuild = BuildHasherDefault<FxHasher>;

#[cfg(test)]
#[path = "fpgrowth_tests.rs"]
mod tests;
