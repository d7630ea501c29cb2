//! Gradient histograms, as scikit-learn 1.9's `HistogramBuilder` (`histogram.pyx`): for a
//! node and each feature, per bin, the sum of the node's gradients, the sum of its hessians
//! (not kept when the hessian is constant) and the number of its samples. Sums are `f64`
//! over `f32` gradients, added in the order of the node's samples, as sklearn.
//!
//! A child's histogram is either built from its samples ("brute") or, for the larger child,
//! its parent's histogram minus its sibling's ("subtraction"); the grower builds the smaller
//! one and subtracts for the other.
//!
//! Threads: each feature's histogram is computed by one thread in sample order, so results
//! do not depend on the number of threads; the grower shares the features out over its
//! thread pool. [`par_for_each`] does the same for the other per-feature or per-block work
//! of a fit (binning, prediction).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// One bin of a feature's histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct HistBin {
    pub sum_g: f64,
    pub sum_h: f64,
    pub count: u32,
}

/// A feature's histogram: 256 bins whatever `max_bins`, so a `u8` bin needs no bounds check.
pub(crate) type FeatureHist = [HistBin; 256];

/// An empty feature histogram.
pub(crate) const EMPTY: FeatureHist = [HistBin {
    sum_g: 0.0,
    sum_h: 0.0,
    count: 0,
}; 256];

/// Runs `f(i, &mut items[i])` for every item, on the calling thread and up to
/// `n_threads − 1` more. Items are claimed one at a time by whichever thread is free, so a
/// thread that starts late (on a busy machine) does not hold the others up; each item is
/// processed whole by one thread, so results do not depend on which thread took it.
pub(crate) fn par_for_each<T, F>(items: &mut [T], n_threads: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut T) + Sync,
{
    let threads = n_threads.clamp(1, items.len().max(1));
    if threads == 1 {
        for (i, item) in items.iter_mut().enumerate() {
            f(i, item);
        }
        return;
    }
    let slots: Vec<Mutex<&mut T>> = items.iter_mut().map(Mutex::new).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = slots.get(i) else {
                break;
            };
            let mut item = slot.lock().unwrap_or_else(PoisonError::into_inner);
            f(i, &mut item);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
}

/// The samples of a node and their gradients, for a brute histogram.
#[derive(Clone, Copy)]
pub(crate) struct NodeSamples<'a> {
    /// The node's training rows; `None` for the root (every row, in order).
    pub rows: Option<&'a [u32]>,
    /// The gradients, in the order of `rows` (of the rows themselves for the root).
    pub g: &'a [f32],
    /// The hessians in the same order; `None` when the hessian is constant.
    pub h: Option<&'a [f32]>,
}

/// One feature's histogram (sklearn's `_build_histogram*` family).
pub(crate) fn build_feature(hist: &mut FeatureHist, column: &[u8], samples: NodeSamples<'_>) {
    *hist = EMPTY;
    match (samples.rows, samples.h) {
        (None, None) => {
            for (&b, &g) in column.iter().zip(samples.g) {
                let bin = &mut hist[usize::from(b)];
                bin.sum_g += f64::from(g);
                bin.count += 1;
            }
        }
        (None, Some(h)) => {
            for ((&b, &g), &h) in column.iter().zip(samples.g).zip(h) {
                let bin = &mut hist[usize::from(b)];
                bin.sum_g += f64::from(g);
                bin.sum_h += f64::from(h);
                bin.count += 1;
            }
        }
        (Some(rows), None) => {
            for (&r, &g) in rows.iter().zip(samples.g) {
                let bin = &mut hist[usize::from(column[r as usize])];
                bin.sum_g += f64::from(g);
                bin.count += 1;
            }
        }
        (Some(rows), Some(h)) => {
            for ((&r, &g), &h) in rows.iter().zip(samples.g).zip(h) {
                let bin = &mut hist[usize::from(column[r as usize])];
                bin.sum_g += f64::from(g);
                bin.sum_h += f64::from(h);
                bin.count += 1;
            }
        }
    }
}

/// `parent −= sibling`, bin by bin: the parent's histogram of a feature becomes the other
/// child's (sklearn's `_subtract_histograms`).
pub(crate) fn subtract_feature(parent: &mut FeatureHist, sibling: &FeatureHist) {
    for (a, b) in parent.iter_mut().zip(sibling.iter()) {
        a.sum_g -= b.sum_g;
        a.sum_h -= b.sum_h;
        a.count -= b.count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every feature's histogram, the features shared out over `threads` threads.
    fn build(
        out: &mut [FeatureHist],
        binned: &[u8],
        n_rows: usize,
        samples: NodeSamples<'_>,
        threads: usize,
    ) {
        par_for_each(out, threads, |f, hist| {
            build_feature(hist, &binned[f * n_rows..(f + 1) * n_rows], samples);
        });
    }

    fn column_major(rows: &[[u8; 2]]) -> Vec<u8> {
        (0..2)
            .flat_map(|f| rows.iter().map(move |r| r[f]))
            .collect()
    }

    #[test]
    fn brute_histograms_sum_gradients_hessians_and_counts() {
        let binned = column_major(&[[0, 3], [1, 3], [0, 255], [2, 0]]);
        let g = [1.0f32, 2.0, 3.0, 4.0];
        let h = [0.5f32, 0.25, 0.125, 1.0];
        let mut out = vec![EMPTY; 2];
        let root = NodeSamples {
            rows: None,
            g: &g,
            h: Some(&h),
        };
        build(&mut out, &binned, 4, root, 2);
        assert_eq!(
            out[0][0],
            HistBin {
                sum_g: 4.0,
                sum_h: 0.625,
                count: 2
            }
        );
        assert_eq!(
            out[0][1],
            HistBin {
                sum_g: 2.0,
                sum_h: 0.25,
                count: 1
            }
        );
        assert_eq!(
            out[1][3],
            HistBin {
                sum_g: 3.0,
                sum_h: 0.75,
                count: 2
            }
        );
        assert_eq!(
            out[1][255],
            HistBin {
                sum_g: 3.0,
                sum_h: 0.125,
                count: 1
            }
        );

        // A node of rows 3 and 1 (gradients given in that order), constant hessian.
        let rows = [3u32, 1];
        let ordered = [4.0f32, 2.0];
        let mut child = vec![EMPTY; 2];
        let node = NodeSamples {
            rows: Some(&rows),
            g: &ordered,
            h: None,
        };
        build(&mut child, &binned, 4, node, 1);
        assert_eq!(
            child[0][2],
            HistBin {
                sum_g: 4.0,
                sum_h: 0.0,
                count: 1
            }
        );
        assert_eq!(
            child[1][3],
            HistBin {
                sum_g: 2.0,
                sum_h: 0.0,
                count: 1
            }
        );
        assert_eq!(child[0][0], HistBin::default());

        // The sibling by subtraction equals its brute histogram.
        let mut root_no_h = vec![EMPTY; 2];
        let root = NodeSamples {
            rows: None,
            g: &g,
            h: None,
        };
        build(&mut root_no_h, &binned, 4, root, 1);
        for (p, c) in root_no_h.iter_mut().zip(&child) {
            subtract_feature(p, c);
        }
        let rows = [0u32, 2];
        let ordered = [1.0f32, 3.0];
        let mut sibling = vec![EMPTY; 2];
        let node = NodeSamples {
            rows: Some(&rows),
            g: &ordered,
            h: None,
        };
        build(&mut sibling, &binned, 4, node, 1);
        assert_eq!(root_no_h, sibling);
    }

    #[test]
    fn thread_count_does_not_change_histograms() {
        let n = 40_000;
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            state >> 33
        };
        let binned: Vec<u8> = (0..n * 5).map(|_| (next() % 256) as u8).collect();
        let g: Vec<f32> = (0..n)
            .map(|_| (next() % 1000) as f32 / 7.0 - 70.0)
            .collect();
        let h: Vec<f32> = (0..n).map(|_| (next() % 1000) as f32 / 999.0).collect();
        let samples = NodeSamples {
            rows: None,
            g: &g,
            h: Some(&h),
        };
        let mut one = vec![EMPTY; 5];
        let mut three = vec![EMPTY; 5];
        build(&mut one, &binned, n, samples, 1);
        build(&mut three, &binned, n, samples, 3);
        assert_eq!(one, three);
        assert_eq!(
            one.iter()
                .map(|f| f.iter().map(|b| b.count).sum::<u32>())
                .sum::<u32>(),
            200_000
        );
    }

    #[test]
    fn par_for_each_visits_every_item_once_with_its_index() {
        for threads in [1, 2, 3, 8] {
            let mut items = vec![0usize; 7];
            par_for_each(&mut items, threads, |i, v| *v += i + 1);
            assert_eq!(items, vec![1, 2, 3, 4, 5, 6, 7]);
        }
        let mut none: Vec<usize> = Vec::new();
        par_for_each(&mut none, 2, |_, _| unreachable!());
    }
}
