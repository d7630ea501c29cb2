//! Growing one tree, leaf-wise (best first), as scikit-learn 1.9's `TreeGrower` (`grower.py`)
//! and `Splitter` (`splitting.pyx`):
//!
//! - the leaf with the largest gain is split next (a heap ordered as Python's `heapq`, so
//!   ties fall the same way), until `max_leaf_nodes` leaves, `max_depth`, or no leaf with a
//!   positive gain; a node with fewer than `2 · min_samples_leaf` samples is not split;
//! - a numeric feature's split is found by scanning its bins left to right (missing values
//!   to the right child) and, when the feature had missing values in training, right to left
//!   (missing values to the left child); the gain is sklearn's
//!   `loss(node) − loss(left) − loss(right)` with `loss = G · value` and
//!   `value = −G / (H + l2 + 1e-15)`, the node value of the root taken as 0 as sklearn does;
//! - a categorical feature's categories with enough support (hessian sum ≥ 10 in sample
//!   units) are sorted by `G / (H + 10)` and scanned from both ends up to the middle, missing
//!   values counting as one more category; the categories with little support go right;
//! - when the feature had no missing values in training, missing values at prediction go to
//!   the child with more training samples;
//! - samples are partitioned in place, stably (the order sklearn's threads also give), and
//!   the smaller child's histogram is built while the larger one's is its parent's minus it.
//!
//! Deliberate difference: categories with equal `G / (H + 10)` stay in code order, where
//! sklearn's `qsort` leaves their order to the C library.

use super::binning::{BinMapper, Bitset, clear_bit, in_bitset, set_bit};
use super::histogram::{self, EMPTY, FeatureHist, NodeSamples, par_for_each};
use super::loss::numpy_sum;
use super::predict::{Node, Tree};

/// A split must leave at least this hessian sum in each child (sklearn's default).
const MIN_HESSIAN_TO_SPLIT: f64 = 1e-3;
/// sklearn's `MIN_CAT_SUPPORT` (LightGBM's `cat_smooth`).
const MIN_CAT_SUPPORT: f64 = 10.0;
/// Work (in histogram additions) worth about one feature's split search.
const SCAN_WORK: usize = 2_000;
/// Below this much work, a split's histograms and searches stay on the calling thread.
const PARALLEL_MIN_WORK: usize = 1 << 17;

/// The growth limits and regularisation of every tree.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub max_leaf_nodes: Option<usize>,
    pub max_depth: Option<usize>,
    pub min_samples_leaf: usize,
    pub l2: f64,
    pub shrinkage: f64,
    pub n_threads: usize,
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
    fn column(&self, f: usize) -> &[u8] {
        &self.binned[f * self.n_rows..(f + 1) * self.n_rows]
    }
}

/// The gradients of one tree's loss, one per training row.
#[derive(Clone, Copy)]
pub(crate) struct Gradients<'a> {
    pub g: &'a [f32],
    /// `None` when the hessian is constant (1).
    pub h: Option<&'a [f32]>,
}

/// Buffers reused from tree to tree.
pub(crate) struct Workspace {
    partition: Vec<u32>,
    buffer: Vec<u32>,
    ordered_g: Vec<f32>,
    ordered_h: Vec<f32>,
    pool: Vec<Vec<FeatureHist>>,
    n_features: usize,
}

impl Workspace {
    pub(crate) fn new(n_rows: usize, n_features: usize) -> Self {
        Self {
            partition: Vec::with_capacity(n_rows),
            buffer: vec![0; n_rows],
            ordered_g: vec![0.0; n_rows],
            ordered_h: vec![0.0; n_rows],
            pool: Vec::new(),
            n_features,
        }
    }

    fn take_hist(&mut self) -> Vec<FeatureHist> {
        self.pool
            .pop()
            .unwrap_or_else(|| vec![EMPTY; self.n_features])
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
    hist: Option<Vec<FeatureHist>>,
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
}

/// Grows one tree on `grads`, adds its (shrunk) leaf values to `raw` (the raw scores of the
/// training rows) and each split's loss reduction to `gains` (per feature).
pub(crate) fn grow(
    data: &TrainData<'_>,
    grads: Gradients<'_>,
    params: &Params,
    ws: &mut Workspace,
    raw: &mut [f64],
    gains: &mut [f64],
) -> Tree {
    let mut grower = Grower {
        data,
        grads,
        params,
        ws,
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

struct Grower<'a, 'd> {
    data: &'a TrainData<'d>,
    grads: Gradients<'a>,
    params: &'a Params,
    ws: &'a mut Workspace,
    nodes: Vec<GrowNode>,
    /// Indices of the nodes that may be split, a binary heap as Python's `heapq` with the
    /// largest gain first.
    heap: Vec<usize>,
    n_finalized: usize,
}

impl<'a, 'd> Grower<'a, 'd> {
    fn init_root(&mut self) {
        let n = self.data.n_rows;
        self.ws.partition.clear();
        self.ws.partition.extend(0..n as u32);
        let mut hist = self.ws.take_hist();
        let samples = NodeSamples {
            rows: None,
            g: self.grads.g,
            h: self.grads.h,
        };
        histogram::build(&mut hist, self.data.binned, n, samples, self.params.n_threads);
        // As sklearn: the sums from feature 0's histogram (all bins, NumPy's summation).
        let n_bins = self.data.mapper.max_bins + 1;
        let bins = &hist[0][..n_bins];
        let sum_g = numpy_sum(&bins.iter().map(|b| b.sum_g).collect::<Vec<_>>());
        let sum_h = match self.grads.h {
            None => n as f64,
            Some(_) => numpy_sum(&bins.iter().map(|b| b.sum_h).collect::<Vec<_>>()),
        };
        self.nodes.push(GrowNode {
            depth: 0,
            start: 0,
            stop: n,
            sum_g,
            sum_h,
            value: 0.0,
            split: None,
            hist: Some(hist),
            children: None,
            is_leaf: false,
        });
        if n < self.params.min_samples_leaf.saturating_mul(2) || sum_h < MIN_HESSIAN_TO_SPLIT {
            self.finalize(0);
            return;
        }
        let stats = NodeStats::of(&self.nodes[0]);
        let splitter = self.splitter();
        let order = self.data.tie_order;
        let split = self.nodes[0]
            .hist
            .as_deref()
            .and_then(|hist| best_of(order.iter().map(|&f| splitter.scan(f, &hist[f], stats))));
        self.nodes[0].split = split;
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
        if !self.data.has_missing[split.feature]
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
        let (small_split, large_split) = self.children_histograms(i, small, large, scan);
        for (c, found) in [(small, small_split), (large, large_split)] {
            self.nodes[c].split = found;
        }
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
    /// and finds the best split of each child that `scan` asks for: feature by feature,
    /// the features shared out between threads when the node is large enough.
    fn children_histograms(
        &mut self,
        parent: usize,
        small: usize,
        large: usize,
        scan: impl Fn(usize) -> bool,
    ) -> (Option<SplitInfo>, Option<SplitInfo>) {
        let mut small_hist = self.ws.take_hist();
        let mut large_hist = match self.nodes[parent].hist.take() {
            Some(h) => h,
            None => self.ws.take_hist(),
        };
        let stats = |c: usize| scan(c).then(|| NodeStats::of(&self.nodes[c]));
        let (small_stats, large_stats) = (stats(small), stats(large));
        let (start, stop) = (self.nodes[small].start, self.nodes[small].stop);
        let splitter = self.splitter();
        let ws = &mut *self.ws;
        let rows = &ws.partition[start..stop];
        let n = rows.len();
        for (o, &r) in ws.ordered_g[..n].iter_mut().zip(rows) {
            *o = self.grads.g[r as usize];
        }
        let h = match self.grads.h {
            Some(h) => {
                for (o, &r) in ws.ordered_h[..n].iter_mut().zip(rows) {
                    *o = h[r as usize];
                }
                Some(&ws.ordered_h[..n])
            }
            None => None,
        };
        let samples = NodeSamples {
            rows: Some(rows),
            g: &ws.ordered_g[..n],
            h,
        };
        let n_features = small_hist.len();
        let scans = usize::from(small_stats.is_some()) + usize::from(large_stats.is_some());
        let work = n * n_features + SCAN_WORK * n_features * scans;
        let threads = if work >= PARALLEL_MIN_WORK { self.params.n_threads } else { 1 };
        let data = self.data;
        let mut tasks: Vec<(&mut FeatureHist, &mut FeatureHist, [Option<SplitInfo>; 2])> =
            small_hist
                .iter_mut()
                .zip(large_hist.iter_mut())
                .map(|(s, l)| (s, l, [None, None]))
                .collect();
        par_for_each(&mut tasks, threads, |f, (s, l, found)| {
            histogram::build_feature(s, data.column(f), samples);
            histogram::subtract_feature(l, s);
            found[0] = small_stats.map(|st| splitter.scan(f, s, st));
            found[1] = large_stats.map(|st| splitter.scan(f, l, st));
        });
        let best = |k: usize| best_of(data.tie_order.iter().filter_map(|&f| tasks[f].2[k]));
        let found = (best(0), best(1));
        self.nodes[small].hist = Some(small_hist);
        self.nodes[large].hist = Some(large_hist);
        found
    }

    /// Reorders `partition[start..stop]` so that the samples going left come first, both
    /// sides keeping their order; returns how many go left. Branch-free: every sample is
    /// written to both sides and the side it belongs to advances.
    fn partition(&mut self, split: &SplitInfo, start: usize, stop: usize) -> usize {
        let column = self.data.column(split.feature);
        let missing = self.data.mapper.missing_bin();
        let mut goes_left = [false; 256];
        for (b, left) in (0..=255u8).zip(goes_left.iter_mut()) {
            *left = if split.categorical {
                in_bitset(&split.left_bins, b)
            } else {
                (split.missing_left && b == missing) || b <= split.bin
            };
        }
        let ws = &mut *self.ws;
        let rows = &mut ws.partition[start..stop];
        let buffer = &mut ws.buffer[..rows.len()];
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

    fn splitter(&self) -> Splitter<'a, 'd> {
        Splitter {
            data: self.data,
            min_samples_leaf: u32::try_from(self.params.min_samples_leaf).unwrap_or(u32::MAX),
            l2: self.params.l2,
            constant_hessian: self.grads.h.is_none(),
        }
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
        if let Some(h) = self.nodes[i].hist.take() {
            self.ws.pool.push(h);
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
                    for &r in &self.ws.partition[node.start..node.stop] {
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
            clear_bit(&mut set, self.data.mapper.missing_bin());
            out.categories = Some(category_sets.len() as u32);
            category_sets.push(set);
        } else {
            let thresholds = &self.data.mapper.thresholds[f];
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

