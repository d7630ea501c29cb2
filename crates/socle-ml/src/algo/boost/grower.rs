//! Growing one tree, leaf-wise (best first), as scikit-learn 1.9's `TreeGrower` (`grower.py`):
//!
//! - the leaf with the largest gain is split next (a heap ordered as Python's `heapq`, so
//!   ties fall the same way), until `max_leaf_nodes` leaves, `max_depth`, or no leaf with a
//!   positive gain; a node with fewer than `2 · min_samples_leaf` samples is not split; the
//!   root's node value is taken as 0 in its gain, as sklearn does;
//! - when the split feature had no missing values in training, missing values at prediction
//!   go to the child with more training samples;
//! - samples are partitioned in place, stably (the order sklearn's threads also give), and
//!   the smaller child's histogram is built while the larger one's is its parent's minus it;
//!   the split search itself is in `splitting.rs`.
//!
//! Threads: for a large enough node, the histograms and split searches of its children are
//! shared out feature by feature over the fit's thread pool (`pool.rs`). What the threads
//! share is in [`Shared`]: the histograms live there feature by feature, and the calling
//! thread changes the partition and the gradients only between parallel steps.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::binning::{BinMapper, Bitset, clear_bit};
use super::histogram::{self, EMPTY, FeatureHist, NodeSamples};
use super::loss::numpy_sum;
use super::pool::{Job, Pool};
use super::predict::{Node, Tree};
use super::splitting::{NodeStats, SplitInfo, Splitter, best_of, node_value};

/// A node is split only if its hessian sum is at least this (sklearn's default).
const MIN_HESSIAN_TO_SPLIT: f64 = 1e-3;
/// Work (in histogram additions) worth about one feature's split search.
const SCAN_WORK: usize = 2_000;
/// Below this much work, a step stays on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 15;

/// The growth limits and regularisation of every tree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub max_leaf_nodes: Option<usize>,
    pub max_depth: Option<usize>,
    pub min_samples_leaf: usize,
    pub l2: f64,
    pub shrinkage: f64,
}

/// The binned training data and what is known of each feature.
pub(crate) struct TrainData<'a> {
    /// One column of `n_rows` bins per feature.
    pub binned: &'a [u8],
    pub n_rows: usize,
    pub mapper: &'a BinMapper,
    /// Whether the feature has missing values in the training rows.
    pub has_missing: &'a [bool],
    /// The features in the order in which they win ties: categorical ones first, as in
    /// sklearn, whose preprocessing puts them first.
    pub tie_order: &'a [usize],
}

impl TrainData<'_> {
    pub(crate) fn column(&self, f: usize) -> &[u8] {
        &self.binned[f * self.n_rows..(f + 1) * self.n_rows]
    }

    fn n_features(&self) -> usize {
        self.has_missing.len()
    }
}

/// Gradients and hessians (`h` empty when the hessian is constant).
#[derive(Debug, Default)]
pub(crate) struct Grads {
    pub g: Vec<f32>,
    pub h: Vec<f32>,
}

/// One feature's share of the grower's state: its histograms (indexed by histogram id) and
/// the best splits found on it for the two children of the last step.
#[derive(Default)]
struct FeatureSlot {
    hists: Vec<FeatureHist>,
    found: [Option<SplitInfo>; 2],
}

impl FeatureSlot {
    fn hist(&mut self, id: usize) -> &mut FeatureHist {
        if self.hists.len() <= id {
            self.hists.resize(id + 1, EMPTY);
        }
        &mut self.hists[id]
    }
}

/// What the threads of a fit share.
pub(crate) struct Shared<'a> {
    pub data: TrainData<'a>,
    /// The gradients of the current iteration: one column of `n_rows` per tree.
    pub grads: RwLock<Grads>,
    /// The samples of the tree's nodes: each node's are a range of it.
    partition: RwLock<Vec<u32>>,
    /// The gradients of the node whose histograms are being built, in its sample order.
    ordered: RwLock<Grads>,
    features: Vec<Mutex<FeatureSlot>>,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<'a> Shared<'a> {
    /// The shared state for `data`, with room for `n_trees` gradient columns.
    pub(crate) fn new(data: TrainData<'a>, n_trees: usize, constant_hessian: bool) -> Self {
        let n = data.n_rows;
        let grads = Grads {
            g: vec![0.0; n * n_trees],
            h: if constant_hessian {
                Vec::new()
            } else {
                vec![0.0; n * n_trees]
            },
        };
        let ordered = Grads {
            g: vec![0.0; n],
            h: if constant_hessian {
                Vec::new()
            } else {
                vec![0.0; n]
            },
        };
        let features = (0..data.n_features()).map(|_| Mutex::default()).collect();
        Self {
            data,
            grads: RwLock::new(grads),
            partition: RwLock::new(Vec::with_capacity(n)),
            ordered: RwLock::new(ordered),
            features,
        }
    }

    /// The best split over the features found by the last step for child `k` (0 or 1).
    fn best_found(&self, k: usize) -> Option<SplitInfo> {
        best_of(
            self.data
                .tie_order
                .iter()
                .filter_map(|&f| lock(&self.features[f]).found[k]),
        )
    }
}

/// Buffers of the calling thread, reused from tree to tree.
pub(crate) struct Workspace {
    buffer: Vec<u32>,
    free_hists: Vec<usize>,
    n_hists: usize,
}

impl Workspace {
    pub(crate) fn new(n_rows: usize) -> Self {
        Self {
            buffer: vec![0; n_rows],
            free_hists: Vec::new(),
            n_hists: 0,
        }
    }

    fn take_hist(&mut self) -> usize {
        self.free_hists.pop().unwrap_or_else(|| {
            self.n_hists += 1;
            self.n_hists - 1
        })
    }
}

/// A node while the tree grows.
struct GrowNode {
    depth: usize,
    /// The node's samples are `partition[start..stop]`.
    start: usize,
    stop: usize,
    sum_g: f64,
    sum_h: f64,
    value: f64,
    split: Option<SplitInfo>,
    /// The id of the node's histograms while it may still be split.
    hist: Option<usize>,
    children: Option<(usize, usize)>,
    is_leaf: bool,
}

impl GrowNode {
    fn n_samples(&self) -> usize {
        self.stop - self.start
    }

    fn gain(&self) -> f64 {
        self.split.map_or(-1.0, |s| s.gain)
    }

    fn stats(&self) -> NodeStats {
        NodeStats {
            n: self.n_samples() as u32,
            sum_g: self.sum_g,
            sum_h: self.sum_h,
            value: self.value,
        }
    }
}

/// Grows the tree of gradient column `column` (the class, for a multinomial loss), adds its
/// (shrunk) leaf values to `raw` (the raw scores of the training rows for that column) and
/// each split's loss reduction to `gains` (per feature).
pub(crate) fn grow<'env, 'a: 'env>(
    shared: &'env Shared<'a>,
    column: usize,
    params: &Params,
    pool: &Pool<'env>,
    ws: &mut Workspace,
    raw: &mut [f64],
    gains: &mut [f64],
) -> Tree {
    let constant_hessian = read(&shared.grads).h.is_empty();
    let splitter = Splitter {
        data: &shared.data,
        min_samples_leaf: u32::try_from(params.min_samples_leaf).unwrap_or(u32::MAX),
        l2: params.l2,
        constant_hessian,
    };
    let mut grower = Grower {
        shared,
        splitter,
        pool,
        params,
        ws,
        column,
        nodes: Vec::new(),
        heap: Vec::new(),
        n_finalized: 0,
    };
    grower.init_root();
    while let Some(i) = grower.heap_pop() {
        grower.split_next(i);
    }
    grower.finish(raw, gains)
}

struct Grower<'g, 'env, 'a> {
    shared: &'env Shared<'a>,
    splitter: Splitter<'env, 'a>,
    pool: &'g Pool<'env>,
    params: &'g Params,
    ws: &'g mut Workspace,
    column: usize,
    nodes: Vec<GrowNode>,
    /// Indices of the nodes that may be split, a binary heap as Python's `heapq` with the
    /// largest gain first.
    heap: Vec<usize>,
    n_finalized: usize,
}

impl<'env, 'a: 'env> Grower<'_, 'env, 'a> {
    /// Runs `job` for every feature, on the pool when `work` is large enough.
    fn run(&self, work: usize, job: Job<'env>) {
        let n_features = self.shared.data.n_features();
        if work >= PARALLEL_MIN_WORK && self.pool.is_parallel() {
            self.pool.run(n_features, job);
        } else {
            for f in 0..n_features {
                job(f);
            }
        }
    }

    fn init_root(&mut self) {
        let shared = self.shared;
        let n = shared.data.n_rows;
        {
            let mut partition = write(&shared.partition);
            partition.clear();
            partition.extend(0..n as u32);
        }
        let id = self.ws.take_hist();
        let cols = self.column * n..(self.column + 1) * n;
        let n_features = shared.data.n_features();
        self.run(
            n * n_features,
            Arc::new(move |f| {
                let grads = read(&shared.grads);
                let samples = NodeSamples {
                    rows: None,
                    g: &grads.g[cols.clone()],
                    h: (!grads.h.is_empty()).then(|| &grads.h[cols.clone()]),
                };
                let mut slot = lock(&shared.features[f]);
                histogram::build_feature(slot.hist(id), shared.data.column(f), samples);
            }),
        );
        // As sklearn: the sums from feature 0's histogram (all bins, NumPy's summation).
        let (sum_g, sum_h) = {
            let mut slot = lock(&shared.features[0]);
            let bins = &slot.hist(id)[..shared.data.mapper.max_bins + 1];
            let sum_g = numpy_sum(&bins.iter().map(|b| b.sum_g).collect::<Vec<_>>());
            let sum_h = if self.splitter.constant_hessian {
                n as f64
            } else {
                numpy_sum(&bins.iter().map(|b| b.sum_h).collect::<Vec<_>>())
            };
            (sum_g, sum_h)
        };
        self.nodes.push(GrowNode {
            depth: 0,
            start: 0,
            stop: n,
            sum_g,
            sum_h,
            value: 0.0,
            split: None,
            hist: Some(id),
            children: None,
            is_leaf: false,
        });
        if n < self.params.min_samples_leaf.saturating_mul(2) || sum_h < MIN_HESSIAN_TO_SPLIT {
            self.finalize(0);
            return;
        }
        let stats = self.nodes[0].stats();
        let splitter = self.splitter;
        self.run(
            SCAN_WORK * n_features,
            Arc::new(move |f| {
                let mut slot = lock(&shared.features[f]);
                let found = splitter.scan(f, slot.hist(id), stats);
                slot.found = [Some(found), None];
            }),
        );
        self.nodes[0].split = shared.best_found(0);
        self.push_or_finalize(0);
    }

    fn split_next(&mut self, i: usize) {
        let Some(split) = self.nodes[i].split else {
            return;
        };
        let (start, stop) = (self.nodes[i].start, self.nodes[i].stop);
        let n_left = self.partition(&split, start, stop);
        let depth = self.nodes[i].depth + 1;
        let n_leaf_nodes = self.n_finalized + self.heap.len() + 2;
        let child = |start: usize, stop: usize, sum_g: f64, sum_h: f64, value: f64| GrowNode {
            depth,
            start,
            stop,
            sum_g,
            sum_h,
            value,
            split: None,
            hist: None,
            children: None,
            is_leaf: false,
        };
        let mid = start + n_left;
        let left = child(start, mid, split.g_left, split.h_left, split.value_left);
        let right = child(mid, stop, split.g_right, split.h_right, split.value_right);
        let (n_left, n_right) = (left.n_samples(), right.n_samples());
        if !self.shared.data.has_missing[split.feature]
            && let Some(s) = self.nodes[i].split.as_mut()
        {
            s.missing_left = n_left > n_right;
        }
        let (li, ri) = (self.nodes.len(), self.nodes.len() + 1);
        self.nodes.push(left);
        self.nodes.push(right);
        self.nodes[i].children = Some((li, ri));

        if self.params.max_leaf_nodes == Some(n_leaf_nodes) {
            self.finalize(li);
            self.finalize(ri);
            while let Some(j) = self.heap.pop() {
                self.finalize(j);
            }
            self.release_hist(i);
            return;
        }
        if self.params.max_depth == Some(depth) {
            self.finalize(li);
            self.finalize(ri);
            self.release_hist(i);
            return;
        }
        let min_split = self.params.min_samples_leaf.saturating_mul(2);
        if n_left < min_split {
            self.finalize(li);
        }
        if n_right < min_split {
            self.finalize(ri);
        }
        let (split_left, split_right) = (!self.nodes[li].is_leaf, !self.nodes[ri].is_leaf);
        if !(split_left || split_right) {
            self.release_hist(i);
            return;
        }
        let (small, large) = if n_left < n_right { (li, ri) } else { (ri, li) };
        let scan = |c: usize| if c == li { split_left } else { split_right };
        self.children_histograms(i, small, large, scan(small), scan(large));
        for c in [li, ri] {
            if !self.nodes[c].is_leaf {
                self.push_or_finalize(c);
            }
        }
        for c in [li, ri] {
            if self.nodes[c].is_leaf {
                self.release_hist(c);
            }
        }
    }

    /// Builds the smaller child's histograms, turns the parent's into the larger child's,
    /// and finds the best split of each child asked for: feature by feature, the features
    /// shared out between threads when the node is large enough.
    fn children_histograms(
        &mut self,
        parent: usize,
        small: usize,
        large: usize,
        scan_small: bool,
        scan_large: bool,
    ) {
        let shared = self.shared;
        let small_id = self.ws.take_hist();
        let large_id = match self.nodes[parent].hist.take() {
            Some(id) => id,
            None => self.ws.take_hist(),
        };
        let small_stats = scan_small.then(|| self.nodes[small].stats());
        let large_stats = scan_large.then(|| self.nodes[large].stats());
        let (start, stop) = (self.nodes[small].start, self.nodes[small].stop);
        let n = stop - start;
        {
            let partition = read(&shared.partition);
            let rows = &partition[start..stop];
            let grads = read(&shared.grads);
            let mut ordered = write(&shared.ordered);
            let Grads { g: og, h: oh } = &mut *ordered;
            let offset = self.column * shared.data.n_rows;
            for (o, &r) in og[..n].iter_mut().zip(rows) {
                *o = grads.g[offset + r as usize];
            }
            if !grads.h.is_empty() {
                for (o, &r) in oh[..n].iter_mut().zip(rows) {
                    *o = grads.h[offset + r as usize];
                }
            }
        }
        let n_features = shared.data.n_features();
        let scans = usize::from(scan_small) + usize::from(scan_large);
        let splitter = self.splitter;
        self.run(
            n * n_features + SCAN_WORK * n_features * scans,
            Arc::new(move |f| {
                let partition = read(&shared.partition);
                let ordered = read(&shared.ordered);
                let samples = NodeSamples {
                    rows: Some(&partition[start..stop]),
                    g: &ordered.g[..n],
                    h: (!ordered.h.is_empty()).then(|| &ordered.h[..n]),
                };
                let mut slot = lock(&shared.features[f]);
                slot.hist(small_id.max(large_id));
                let [s, l] = slot
                    .hists
                    .get_disjoint_mut([small_id, large_id])
                    .expect("two different histogram ids");
                histogram::build_feature(s, shared.data.column(f), samples);
                histogram::subtract_feature(l, s);
                let found = [
                    small_stats.map(|st| splitter.scan(f, s, st)),
                    large_stats.map(|st| splitter.scan(f, l, st)),
                ];
                slot.found = found;
            }),
        );
        self.nodes[small].hist = Some(small_id);
        self.nodes[large].hist = Some(large_id);
        self.nodes[small].split = shared.best_found(0);
        self.nodes[large].split = shared.best_found(1);
    }

    /// Reorders `partition[start..stop]` so that the samples going left come first, both
    /// sides keeping their order; returns how many go left. Branch-free: every sample is
    /// written to both sides and the side it belongs to advances.
    fn partition(&mut self, split: &SplitInfo, start: usize, stop: usize) -> usize {
        let data = &self.shared.data;
        let column = data.column(split.feature);
        let missing = data.mapper.missing_bin();
        let mut goes_left = [false; 256];
        for (b, left) in (0..=255u8).zip(goes_left.iter_mut()) {
            *left = if split.categorical {
                super::binning::in_bitset(&split.left_bins, b)
            } else {
                (split.missing_left && b == missing) || b <= split.bin
            };
        }
        let mut partition = write(&self.shared.partition);
        let rows = &mut partition[start..stop];
        let buffer = &mut self.ws.buffer[..rows.len()];
        let (mut n_left, mut n_right) = (0, 0);
        let mut k = 0;
        while k < rows.len() {
            let r = rows[k];
            let left = goes_left[usize::from(column[r as usize])];
            rows[n_left] = r;
            buffer[n_right] = r;
            n_left += usize::from(left);
            n_right += usize::from(!left);
            k += 1;
        }
        rows[n_left..].copy_from_slice(&buffer[..n_right]);
        n_left
    }

    /// sklearn's `_compute_best_split_and_push` once the split is known: a node without a
    /// split of positive gain becomes a leaf, the others wait in the heap.
    fn push_or_finalize(&mut self, i: usize) {
        if self.nodes[i].gain() <= 0.0 {
            self.finalize(i);
        } else {
            self.heap_push(i);
        }
    }

    fn finalize(&mut self, i: usize) {
        self.nodes[i].is_leaf = true;
        self.n_finalized += 1;
        self.release_hist(i);
    }

    fn release_hist(&mut self, i: usize) {
        if let Some(id) = self.nodes[i].hist.take() {
            self.ws.free_hists.push(id);
        }
    }

    /// Python's `heapq.heappush` with "less" meaning "larger gain".
    fn heap_push(&mut self, i: usize) {
        self.heap.push(i);
        let last = self.heap.len() - 1;
        self.sift_down(0, last);
    }

    /// Python's `heapq.heappop`.
    fn heap_pop(&mut self) -> Option<usize> {
        let last = self.heap.pop()?;
        if self.heap.is_empty() {
            return Some(last);
        }
        let top = std::mem::replace(&mut self.heap[0], last);
        self.sift_up(0);
        Some(top)
    }

    fn before(&self, a: usize, b: usize) -> bool {
        self.nodes[a].gain() > self.nodes[b].gain()
    }

    /// `heapq._siftdown`: moves the item at `pos` up towards `start`.
    fn sift_down(&mut self, start: usize, mut pos: usize) {
        let item = self.heap[pos];
        while pos > start {
            let parent = (pos - 1) >> 1;
            if self.before(item, self.heap[parent]) {
                self.heap[pos] = self.heap[parent];
                pos = parent;
            } else {
                break;
            }
        }
        self.heap[pos] = item;
    }

    /// `heapq._siftup`: moves the smaller child up until a leaf, then sifts down.
    fn sift_up(&mut self, mut pos: usize) {
        let end = self.heap.len();
        let start = pos;
        let item = self.heap[pos];
        let mut child = 2 * pos + 1;
        while child < end {
            let right = child + 1;
            if right < end && !self.before(self.heap[child], self.heap[right]) {
                child = right;
            }
            self.heap[pos] = self.heap[child];
            pos = child;
            child = 2 * pos + 1;
        }
        self.heap[pos] = item;
        self.sift_down(start, pos);
    }

    /// The flat tree (nodes in depth-first order, left first, as sklearn's predictor), the
    /// leaves' values added to `raw`, the gains to `gains`.
    fn finish(self, raw: &mut [f64], gains: &mut [f64]) -> Tree {
        let partition = read(&self.shared.partition);
        let mut tree = Tree {
            nodes: Vec::with_capacity(self.nodes.len()),
            category_sets: Vec::new(),
        };
        let mut stack = vec![(0usize, None::<(usize, bool)>)];
        while let Some((i, parent)) = stack.pop() {
            let at = tree.nodes.len();
            if let Some((p, is_left)) = parent {
                if is_left {
                    tree.nodes[p].left = at as u32;
                } else {
                    tree.nodes[p].right = at as u32;
                }
            }
            let node = &self.nodes[i];
            let mut out = Node::leaf(node.value, node.n_samples() as u32);
            match (node.children, node.split) {
                (Some((l, r)), Some(split)) if !node.is_leaf => {
                    self.describe_split(&split, node, &mut out, &mut tree.category_sets);
                    gains[split.feature] += self.reduction(node, &split);
                    tree.nodes.push(out);
                    stack.push((r, Some((at, false))));
                    stack.push((l, Some((at, true))));
                }
                _ => {
                    let value = node.value * self.params.shrinkage;
                    out.value = value;
                    tree.nodes.push(out);
                    for &r in &partition[node.start..node.stop] {
                        raw[r as usize] += value;
                    }
                }
            }
        }
        tree
    }

    fn describe_split(
        &self,
        split: &SplitInfo,
        node: &GrowNode,
        out: &mut Node,
        category_sets: &mut Vec<Bitset>,
    ) {
        let f = split.feature;
        out.feature = f as u32;
        out.bin = split.bin;
        out.missing_left = split.missing_left;
        out.value = node.value;
        if split.categorical {
            let mut set = split.left_bins;
            clear_bit(&mut set, self.shared.data.mapper.missing_bin());
            out.categories = Some(category_sets.len() as u32);
            category_sets.push(set);
        } else {
            let thresholds = &self.shared.data.mapper.thresholds[f];
            out.threshold = thresholds
                .get(usize::from(split.bin))
                .copied()
                .unwrap_or(f64::MAX);
        }
    }

    /// The loss reduction of a split, `G_L²/(H_L+λ) + G_R²/(H_R+λ) − G²/(H+λ)` (as the gain
    /// sklearn computes, except at the root, whose value sklearn takes as 0).
    fn reduction(&self, node: &GrowNode, split: &SplitInfo) -> f64 {
        if node.depth == 0 {
            let v = node_value(node.sum_g, node.sum_h, self.params.l2);
            split.gain + node.sum_g * v
        } else {
            split.gain
        }
    }
}
