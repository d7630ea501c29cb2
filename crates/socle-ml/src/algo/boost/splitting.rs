//! Finding the best split of a node from its histograms, as scikit-learn 1.9's `Splitter`
//! (`splitting.pyx`), without monotonic constraints:
//!
//! - a numeric feature's bins are scanned left to right (missing values go to the right
//!   child) and, when the feature had missing values in training, right to left (missing
//!   values go left); the gain is sklearn's `loss(node) − loss(left) − loss(right)` with
//!   `loss = G · value` and `value = −G / (H + l2 + 1e-15)`;
//! - a categorical feature's categories with enough support (hessian sum ≥ 10 in sample
//!   units) are sorted by `G / (H + 10)` and scanned from both ends up to the middle, missing
//!   values counting as one more category; the categories with little support go right;
//! - candidates leaving fewer than `min_samples_leaf` samples or a hessian sum below 1e-3 in
//!   a child are skipped; among features, the first in tie order wins ties.
//!
//! Deliberate difference: categories with equal `G / (H + 10)` stay in code order, where
//! sklearn's `qsort` leaves their order to the C library. Bins that hold nothing at all are
//! skipped, which changes no result (the candidate they end is the previous one).

use super::binning::{Bitset, in_bitset, set_bit};
use super::grower::TrainData;
use super::histogram::{FeatureHist, HistBin};

/// A split must leave at least this hessian sum in each child (sklearn's default).
const MIN_HESSIAN_TO_SPLIT: f64 = 1e-3;
/// sklearn's `MIN_CAT_SUPPORT` (LightGBM's `cat_smooth`).
const MIN_CAT_SUPPORT: f64 = 10.0;

/// The best split found for a node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SplitInfo {
    pub(crate) gain: f64,
    pub(crate) feature: usize,
    pub(crate) bin: u8,
    pub(crate) missing_left: bool,
    pub(crate) g_left: f64,
    pub(crate) h_left: f64,
    pub(crate) g_right: f64,
    pub(crate) h_right: f64,
    pub(crate) n_left: u32,
    pub(crate) value_left: f64,
    pub(crate) value_right: f64,
    pub(crate) categorical: bool,
    /// The bins (categories, and the missing bin) that go left, for a categorical split.
    pub(crate) left_bins: Bitset,
}

impl SplitInfo {
    pub(crate) fn none(feature: usize, categorical: bool) -> Self {
        Self {
            gain: -1.0,
            feature,
            bin: 0,
            missing_left: false,
            g_left: 0.0,
            h_left: 0.0,
            g_right: 0.0,
            h_right: 0.0,
            n_left: 0,
            value_left: 0.0,
            value_right: 0.0,
            categorical,
            left_bins: [0; 8],
        }
    }
}

/// A node's value, `−G / (H + λ + 1e-15)` (sklearn's `compute_node_value`, no bounds).
pub(crate) fn node_value(g: f64, h: f64, l2: f64) -> f64 {
    -g / (h + l2 + 1e-15)
}

/// Whether a bin holds nothing at all (not even rounding left by a subtraction): skipping it
/// in a scan changes nothing, as the candidate it ends is the previous one.
fn is_void(b: &HistBin) -> bool {
    b.count == 0 && b.sum_g == 0.0 && b.sum_h == 0.0
}

/// sklearn's `_split_gain` without monotonic constraints.
fn split_gain(gl: f64, hl: f64, gr: f64, hr: f64, loss_node: f64, l2: f64) -> f64 {
    let vl = node_value(gl, hl, l2);
    let vr = node_value(gr, hr, l2);
    let mut gain = loss_node;
    gain -= gl * vl;
    gain -= gr * vr;
    gain
}

/// The best of the features' splits, given in tie order: the first wins ties (sklearn's
/// `_find_best_feature_to_split_helper`).
pub(crate) fn best_of(infos: impl Iterator<Item = SplitInfo>) -> Option<SplitInfo> {
    infos.reduce(|best, info| if info.gain > best.gain { info } else { best })
}

/// What the split search needs to know of a node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeStats {
    pub(crate) n: u32,
    pub(crate) sum_g: f64,
    pub(crate) sum_h: f64,
    pub(crate) value: f64,
}

/// Finds the best split of a node from its histograms.
#[derive(Clone, Copy)]
pub(crate) struct Splitter<'a, 'd> {
    pub(crate) data: &'a TrainData<'d>,
    pub(crate) min_samples_leaf: u32,
    pub(crate) l2: f64,
    pub(crate) constant_hessian: bool,
}

/// The running best of one scan.
struct Best {
    gain: f64,
    found: bool,
    bin: usize,
    g_left: f64,
    h_left: f64,
    n_left: u32,
}

impl Splitter<'_, '_> {
    fn hess(&self, b: &HistBin) -> f64 {
        if self.constant_hessian {
            f64::from(b.count)
        } else {
            b.sum_h
        }
    }

    /// The best split of a node on feature `f` (gain −1 when there is none).
    pub(crate) fn scan(&self, f: usize, hist: &FeatureHist, node: NodeStats) -> SplitInfo {
        let categorical = self.data.mapper.categories[f].is_some();
        let mut info = SplitInfo::none(f, categorical);
        let stats = (node.n, node.sum_g, node.sum_h, node.value);
        if categorical {
            self.categorical(hist, f, stats, &mut info);
        } else {
            self.left_to_right(hist, f, stats, &mut info);
            if self.data.has_missing[f] {
                self.right_to_left(hist, f, stats, &mut info);
            }
        }
        info
    }

    fn record(&self, info: &mut SplitInfo, best: &Best, sum_g: f64, sum_h: f64) {
        info.gain = best.gain;
        info.g_left = best.g_left;
        info.h_left = best.h_left;
        info.g_right = sum_g - best.g_left;
        info.h_right = sum_h - best.h_left;
        info.n_left = best.n_left;
        info.value_left = node_value(info.g_left, info.h_left, self.l2);
        info.value_right = node_value(info.g_right, info.h_right, self.l2);
    }

    /// Bins `0..=b` left, the others and missing values right.
    fn left_to_right(
        &self,
        hist: &FeatureHist,
        f: usize,
        (n, sum_g, sum_h, value): (u32, f64, f64, f64),
        info: &mut SplitInfo,
    ) {
        let n_bins = self.data.mapper.n_bins_non_missing[f];
        let end = (n_bins + usize::from(self.data.has_missing[f])).saturating_sub(1);
        let loss_node = sum_g * value;
        let mut best = Best {
            gain: -1.0,
            found: false,
            bin: 0,
            g_left: 0.0,
            h_left: 0.0,
            n_left: 0,
        };
        let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0u32);
        for (bin, b) in hist.iter().enumerate().take(end) {
            if is_void(b) {
                // Nothing changes: the candidate is the previous one, already judged.
                continue;
            }
            nl += b.count;
            let nr = n - nl;
            hl += self.hess(b);
            let hr = sum_h - hl;
            gl += b.sum_g;
            let gr = sum_g - gl;
            if nl < self.min_samples_leaf {
                continue;
            }
            if nr < self.min_samples_leaf {
                break;
            }
            if hl < MIN_HESSIAN_TO_SPLIT {
                continue;
            }
            if hr < MIN_HESSIAN_TO_SPLIT {
                break;
            }
            let gain = split_gain(gl, hl, gr, hr, loss_node, self.l2);
            if gain > best.gain && gain > 0.0 {
                best = Best {
                    gain,
                    found: true,
                    bin,
                    g_left: gl,
                    h_left: hl,
                    n_left: nl,
                };
            }
        }
        if best.found {
            self.record(info, &best, sum_g, sum_h);
            info.bin = best.bin as u8;
            info.missing_left = false;
        }
    }

    /// Bins `0..=b` and missing values left, the others right; keeps `info` unless better.
    fn right_to_left(
        &self,
        hist: &FeatureHist,
        f: usize,
        (n, sum_g, sum_h, value): (u32, f64, f64, f64),
        info: &mut SplitInfo,
    ) {
        let n_bins = self.data.mapper.n_bins_non_missing[f];
        let loss_node = sum_g * value;
        let mut best = Best {
            gain: info.gain,
            found: false,
            bin: 0,
            g_left: 0.0,
            h_left: 0.0,
            n_left: 0,
        };
        let (mut gr, mut hr, mut nr) = (0.0, 0.0, 0u32);
        for bin in (0..n_bins.saturating_sub(1)).rev() {
            let b = &hist[bin + 1];
            if is_void(b) {
                continue;
            }
            nr += b.count;
            let nl = n - nr;
            hr += self.hess(b);
            let hl = sum_h - hr;
            gr += b.sum_g;
            let gl = sum_g - gr;
            if nr < self.min_samples_leaf {
                continue;
            }
            if nl < self.min_samples_leaf {
                break;
            }
            if hr < MIN_HESSIAN_TO_SPLIT {
                continue;
            }
            if hl < MIN_HESSIAN_TO_SPLIT {
                break;
            }
            let gain = split_gain(gl, hl, gr, hr, loss_node, self.l2);
            if gain > best.gain && gain > 0.0 {
                best = Best {
                    gain,
                    found: true,
                    bin,
                    g_left: gl,
                    h_left: hl,
                    n_left: nl,
                };
            }
        }
        if best.found {
            self.record(info, &best, sum_g, sum_h);
            info.bin = best.bin as u8;
            info.missing_left = true;
        }
    }

    /// sklearn's `_find_best_bin_to_split_category`.
    fn categorical(
        &self,
        hist: &FeatureHist,
        f: usize,
        (n, sum_g, sum_h, value): (u32, f64, f64, f64),
        info: &mut SplitInfo,
    ) {
        let missing = self.data.mapper.missing_bin();
        let n_bins = self.data.mapper.n_bins_non_missing[f];
        let has_missing = self.data.has_missing[f];
        let support_factor = f64::from(n) / sum_h;
        // (bin, G / (H + 10)) of the categories with enough support.
        let mut cats: Vec<(u8, f64)> = Vec::with_capacity(n_bins + 1);
        let candidates = (0..n_bins)
            .map(|b| b as u8)
            .chain(has_missing.then_some(missing));
        for bin in candidates {
            let b = &hist[usize::from(bin)];
            let h = self.hess(b);
            if h * support_factor >= MIN_CAT_SUPPORT {
                cats.push((bin, b.sum_g / (h + MIN_CAT_SUPPORT)));
            }
        }
        if cats.len() <= 1 {
            return;
        }
        cats.sort_by(|a, b| a.1.total_cmp(&b.1));
        let loss_node = sum_g * value;
        let used = cats.len();
        let mut best = Best {
            gain: -1.0,
            found: false,
            bin: 0,
            g_left: 0.0,
            h_left: 0.0,
            n_left: 0,
        };
        let mut best_forward = true;
        for forward in [true, false] {
            let middle = if forward {
                used.div_ceil(2)
            } else {
                used.div_ceil(2) - 1
            };
            let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0u32);
            for i in 0..middle {
                let sorted = if forward { i } else { used - 1 - i };
                let b = &hist[usize::from(cats[sorted].0)];
                nl += b.count;
                let nr = n - nl;
                hl += self.hess(b);
                let hr = sum_h - hl;
                gl += b.sum_g;
                let gr = sum_g - gl;
                if nl < self.min_samples_leaf || hl < MIN_HESSIAN_TO_SPLIT {
                    continue;
                }
                if nr < self.min_samples_leaf || hr < MIN_HESSIAN_TO_SPLIT {
                    break;
                }
                let gain = split_gain(gl, hl, gr, hr, loss_node, self.l2);
                if gain > best.gain && gain > 0.0 {
                    best = Best {
                        gain,
                        found: true,
                        bin: sorted,
                        g_left: gl,
                        h_left: hl,
                        n_left: nl,
                    };
                    best_forward = forward;
                }
            }
        }
        if !best.found {
            return;
        }
        self.record(info, &best, sum_g, sum_h);
        info.bin = 0;
        let left = if best_forward {
            &cats[..=best.bin]
        } else {
            &cats[best.bin..]
        };
        let mut set = [0u32; 8];
        for &(bin, _) in left {
            set_bit(&mut set, bin);
        }
        info.left_bins = set;
        if has_missing {
            info.missing_left = in_bitset(&set, missing);
        }
    }
}
