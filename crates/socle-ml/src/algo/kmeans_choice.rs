//! The silhouette score (as `sklearn.metrics.silhouette_score`, Euclidean) and the choice of
//! k by it, for [`super::kmeans`]. A child of `kmeans.rs`, which re-exports its public items.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use super::{KMeansError, KMeansFit, KMeansOptions, check_data, kmeans, squared_distance};
use super::{Matrix, Rng};

/// One k of [`choose_k`]: its silhouette (`None` when undefined, e.g. fewer than two distinct
/// clusters were found) and its inertia.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KScore {
    pub k: usize,
    pub silhouette: Option<f64>,
    pub inertia: f64,
}

/// The k with the best silhouette, every k's score, and the best k's fit.
#[derive(Debug, Clone, PartialEq)]
pub struct KChoice {
    pub best_k: usize,
    pub scores: Vec<KScore>,
    pub best: KMeansFit,
}

/// The mean silhouette coefficient of the rows of `x` labelled `labels` (any label values),
/// with Euclidean distances, as `sklearn.metrics.silhouette_score`: for each row,
/// `(b − a) / max(a, b)` with `a` its mean distance to the other rows of its cluster and `b`
/// the smallest mean distance to another cluster's rows; 0 for a row alone in its cluster.
/// Exact, in `O(n²·d)`. With `sample_size`, it scores a random subset of that many rows,
/// drawn by shuffling with `seed` (as sklearn's `sample_size` and `random_state`).
pub fn silhouette_score(
    x: &Matrix,
    labels: &[u32],
    sample_size: Option<usize>,
    seed: u64,
) -> Result<f64, KMeansError> {
    check_data(x)?;
    if labels.len() != x.rows {
        return Err(KMeansError::LabelCount {
            labels: labels.len(),
            rows: x.rows,
        });
    }
    let mut picked: Vec<usize> = (0..x.rows).collect();
    if let Some(size) = sample_size {
        Rng::new(seed).shuffle(&mut picked);
        picked.truncate(size);
    }
    let sub: Vec<u32> = picked.iter().map(|&i| labels[i]).collect();
    let mut distinct = sub.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let (m, n) = (distinct.len(), picked.len());
    if m < 2 || m >= n {
        return Err(KMeansError::SilhouetteClusters {
            clusters: m,
            rows: n,
        });
    }
    let dense: Vec<usize> = sub
        .iter()
        .map(|l| distinct.partition_point(|d| d < l))
        .collect();
    let rows = x.select_rows(&picked);
    Ok(silhouette_dense(&rows.data, x.cols, &dense, m))
}

/// The silhouette of `labels` (in `0..m`, every one used) over row-major `x`: each pair's
/// distance is computed once and added to both rows' per-cluster sums.
fn silhouette_dense(x: &[f64], d: usize, labels: &[usize], m: usize) -> f64 {
    let n = labels.len();
    let mut sums = vec![0.0; n * m];
    let mut sizes = vec![0usize; m];
    for &l in labels {
        sizes[l] += 1;
    }
    for i in 0..n {
        let xi = &x[i * d..(i + 1) * d];
        let li = labels[i];
        let (head, tail) = sums.split_at_mut((i + 1) * m);
        let own = &mut head[i * m..];
        let later = x[(i + 1) * d..].chunks_exact(d).zip(&labels[i + 1..]);
        for ((xj, &lj), other) in later.zip(tail.chunks_exact_mut(m)) {
            let dist = squared_distance(xi, xj).sqrt();
            own[lj] += dist;
            other[li] += dist;
        }
    }
    let mut total = 0.0;
    for (s, &li) in sums.chunks_exact(m).zip(labels) {
        if sizes[li] <= 1 {
            continue;
        }
        let a = s[li] / (sizes[li] - 1) as f64;
        let b = s
            .iter()
            .zip(&sizes)
            .enumerate()
            .filter(|&(c, _)| c != li)
            .map(|(_, (v, &size))| v / size as f64)
            .fold(f64::INFINITY, f64::min);
        let denom = a.max(b);
        if denom > 0.0 {
            total += (b - a) / denom;
        }
    }
    total / n as f64
}

/// Fits k-means for each k of `ks` (with `opts` otherwise) and keeps the k whose clustering
/// has the highest silhouette (the smaller k on a tie). `silhouette_sample` bounds the
/// silhouette's quadratic cost on large inputs (see [`silhouette_score`]); fits and samples
/// are seeded from `rng`.
pub fn choose_k(
    x: &Matrix,
    ks: RangeInclusive<usize>,
    opts: &KMeansOptions,
    silhouette_sample: Option<usize>,
    rng: &mut Rng,
) -> Result<KChoice, KMeansError> {
    let (start, end) = (*ks.start(), *ks.end());
    if start < 2 || start > end {
        return Err(KMeansError::BadKRange { start, end });
    }
    check_data(x)?;
    if end > x.rows {
        return Err(KMeansError::KTooLarge {
            k: end,
            rows: x.rows,
        });
    }
    let mut scores = Vec::with_capacity(end - start + 1);
    let mut best: Option<(f64, KMeansFit)> = None;
    for k in ks {
        let fit = kmeans(x, &KMeansOptions { k, ..opts.clone() }, rng)?;
        let silhouette = match silhouette_score(x, &fit.labels, silhouette_sample, rng.next_u64()) {
            Ok(s) => Some(s),
            Err(KMeansError::SilhouetteClusters { .. }) => None,
            Err(e) => return Err(e),
        };
        scores.push(KScore {
            k,
            silhouette,
            inertia: fit.model.inertia,
        });
        if let Some(s) = silhouette.filter(|&s| best.as_ref().is_none_or(|(b, _)| s > *b)) {
            best = Some((s, fit));
        }
    }
    match best {
        Some((_, best)) => Ok(KChoice {
            best_k: best.model.centers.rows,
            scores,
            best,
        }),
        None => Err(KMeansError::NoScorableK { start, end }),
    }
}
