//! k-means clustering as scikit-learn 1.9's `KMeans(algorithm="lloyd", init="k-means++")`,
//! with the silhouette score (`sklearn.metrics.silhouette_score`) and a choice of k by it.
//!
//! The fit follows sklearn step by step: the data are centred on their mean (for accurate
//! distances) and their squared row norms precomputed; k-means++ is sklearn's greedy variant
//! (the first centre uniformly at random, then for each further centre `2 + ⌊ln k⌋`
//! candidates drawn with probability proportional to the squared distance to the nearest
//! chosen centre, keeping the candidate that minimises the potential); Lloyd iterations
//! assign each row to the centre minimising `‖c‖² − 2x·c`, move each centre to its rows'
//! mean, relocate an empty cluster to the row farthest from its centre, and stop on
//! unchanged labels ("strict convergence") or when the squared centre shifts sum to at most
//! `tol × mean of the feature variances`, then re-assign the labels to the final centres when
//! the stop was not strict; `n_init` runs (each seeded from the caller's [`Rng`]) keep the
//! lowest inertia, a later run replacing the best only when its clustering differs. The
//! defaults are sklearn's: `n_init = 1` (its `"auto"` for k-means++), `max_iter = 300`,
//! `tol = 1e-4`.
//!
//! Deliberate differences: the random draws come from [`Rng`], not numpy, so a seed gives
//! other (equally valid) centres than sklearn's `random_state`; when relocation is impossible
//! (more clusters than distinct rows) an empty cluster is placed on the averaged centre of
//! the largest cluster (sklearn copies that cluster's not-yet-averaged sums when it comes
//! later); [`KMeansModel::predict`] uses exact squared distances.
//!
//! Speed: the assignment step reads the centres transposed (feature-major), so the distances
//! to all centres are accumulated together in contiguous, vectorisable loops, without square
//! roots; rows are processed in fixed chunks of 1024 whose partial sums are reduced in chunk
//! order, spread over the machine's cores with scoped threads. Results therefore do not
//! depend on the number of threads.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Matrix, Rng, dot};

/// What is wrong with a clustering request, in the user's terms.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum KMeansError {
    #[error("there are no rows to cluster")]
    NoRows,
    #[error("there are no feature columns to cluster on")]
    NoColumns,
    #[error("column {column} holds a non-finite value ({value}) at row {row}")]
    NonFinite {
        row: usize,
        column: usize,
        value: f64,
    },
    #[error("k must be at least 1")]
    ZeroK,
    #[error("k = {k} is more than the {rows} rows")]
    KTooLarge { k: usize, rows: usize },
    #[error("n_init must be at least 1")]
    ZeroInit,
    #[error("max_iter must be at least 1")]
    ZeroMaxIter,
    #[error("tol must be a finite number ≥ 0, got {0}")]
    BadTol(f64),
    #[error("there are {labels} labels for {rows} rows")]
    LabelCount { labels: usize, rows: usize },
    #[error(
        "the silhouette needs at least 2 clusters and fewer clusters than rows; got {clusters} \
         clusters for {rows} rows"
    )]
    SilhouetteClusters { clusters: usize, rows: usize },
    #[error(
        "the range of k {start}..={end} must be non-empty and start at 2 or more (the \
         silhouette compares clusters)"
    )]
    BadKRange { start: usize, end: usize },
    #[error("no k in {start}..={end} gave a clustering whose silhouette is defined")]
    NoScorableK { start: usize, end: usize },
}

/// How to fit.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansOptions {
    /// Number of clusters.
    pub k: usize,
    /// Number of k-means++ starts; the run with the lowest inertia is kept.
    pub n_init: usize,
    /// The most Lloyd iterations of one run.
    pub max_iter: usize,
    /// Relative tolerance on the centre shift (multiplied by the mean feature variance).
    pub tol: f64,
}

impl KMeansOptions {
    /// sklearn's defaults for `k` clusters.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            n_init: 1,
            max_iter: 300,
            tol: 1e-4,
        }
    }
}

impl Default for KMeansOptions {
    /// sklearn's defaults, `n_clusters = 8` included.
    fn default() -> Self {
        Self::new(8)
    }
}

/// A fitted clustering: its centres (one row each, in the features' own units) and the
/// training inertia (sum of squared distances of the rows to their centre). Stored as JSON
/// `{"centers": {"rows": k, "cols": d, "data": [...]}, "inertia": f64}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansModel {
    pub centers: Matrix,
    pub inertia: f64,
}

impl KMeansModel {
    /// The index of the nearest centre to each row (the first on a tie). Panics when `x` does
    /// not have the centres' number of columns (a programming error).
    pub fn predict(&self, x: &Matrix) -> Vec<u32> {
        assert_eq!(x.cols, self.centers.cols, "k-means model column count");
        let d = self.centers.cols.max(1);
        (0..x.rows)
            .map(|i| {
                let row = x.row(i);
                let mut best = (0, f64::INFINITY);
                for (c, centre) in self.centers.data.chunks_exact(d).enumerate() {
                    let dist = squared_distance(row, centre);
                    if dist < best.1 {
                        best = (c, dist);
                    }
                }
                best.0 as u32
            })
            .collect()
    }
}

/// The model, the training rows' labels and the number of Lloyd iterations of the kept run.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansFit {
    pub model: KMeansModel,
    pub labels: Vec<u32>,
    pub n_iter: usize,
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn check_data(x: &Matrix) -> Result<(), KMeansError> {
    if x.rows == 0 {
        return Err(KMeansError::NoRows);
    }
    if x.cols == 0 {
        return Err(KMeansError::NoColumns);
    }
    match x.data.iter().position(|v| !v.is_finite()) {
        Some(pos) => Err(KMeansError::NonFinite {
            row: pos / x.cols,
            column: pos % x.cols,
            value: x.data[pos],
        }),
        None => Ok(()),
    }
}

/// Clusters the rows of `x` into `opts.k` clusters; the k-means++ draws of each of the
/// `n_init` runs are seeded from `rng`.
pub fn kmeans(x: &Matrix, opts: &KMeansOptions, rng: &mut Rng) -> Result<KMeansFit, KMeansError> {
    check_data(x)?;
    let k = opts.k;
    if k == 0 {
        return Err(KMeansError::ZeroK);
    }
    if k > x.rows {
        return Err(KMeansError::KTooLarge { k, rows: x.rows });
    }
    if opts.n_init == 0 {
        return Err(KMeansError::ZeroInit);
    }
    if opts.max_iter == 0 {
        return Err(KMeansError::ZeroMaxIter);
    }
    if !opts.tol.is_finite() || opts.tol < 0.0 {
        return Err(KMeansError::BadTol(opts.tol));
    }
    let data = Data::new(x);
    let tol = data.mean_variance * opts.tol;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let run = |rng: &mut Rng| {
        let mut seeded = Rng::new(rng.next_u64());
        let init = data.plusplus(k, &mut seeded);
        data.lloyd(init, k, opts.max_iter, tol, threads, &mut |_| {})
    };
    let mut best = run(&mut *rng);
    for _ in 1..opts.n_init {
        let candidate = run(&mut *rng);
        if candidate.inertia < best.inertia && !same_clustering(&candidate.labels, &best.labels, k)
        {
            best = candidate;
        }
    }
    let mut centers = best.centres;
    for centre in centers.chunks_exact_mut(data.d) {
        for (v, m) in centre.iter_mut().zip(&data.mean) {
            *v += m;
        }
    }
    Ok(KMeansFit {
        model: KMeansModel {
            centers: Matrix {
                rows: k,
                cols: data.d,
                data: centers,
            },
            inertia: best.inertia,
        },
        labels: best.labels,
        n_iter: best.n_iter,
    })
}

/// Whether two labellings are the same partition up to renaming (sklearn's
/// `_is_same_clustering`).
fn same_clustering(a: &[u32], b: &[u32], k: usize) -> bool {
    let mut map = vec![u32::MAX; k];
    for (&x, &y) in a.iter().zip(b) {
        let m = &mut map[x as usize];
        if *m == u32::MAX {
            *m = y;
        } else if *m != y {
            return false;
        }
    }
    true
}

/// Rows per chunk of the assignment step: the unit of work and of partial sums.
const CHUNK: usize = 1024;

/// The centred data of one fit.
struct Data {
    /// Row-major, `n × d`, each column minus its mean.
    x: Vec<f64>,
    n: usize,
    d: usize,
    /// Squared norm of each centred row.
    norms: Vec<f64>,
    mean: Vec<f64>,
    /// Mean over the columns of their (population) variance.
    mean_variance: f64,
}

/// One Lloyd run's result (centres still centred).
struct Run {
    centres: Vec<f64>,
    labels: Vec<u32>,
    inertia: f64,
    n_iter: usize,
}

/// The centres as the assignment step reads them: transposed (`ct[j·k + c]` is feature `j`
/// of centre `c`) with their squared norms.
#[derive(Clone, Copy)]
struct Step<'a> {
    ct: &'a [f64],
    cn: &'a [f64],
    k: usize,
    d: usize,
    /// Whether to accumulate the per-chunk sums and counts (the M step's input).
    update: bool,
}

/// `acc[c] = ‖c‖² − 2·x·c` for every centre `c` of a transposed block.
#[inline]
fn partial_distances(row: &[f64], ct: &[f64], cn: &[f64], acc: &mut [f64]) {
    acc.copy_from_slice(cn);
    for (xj, col) in row.iter().zip(ct.chunks_exact(cn.len())) {
        let f = -2.0 * xj;
        for (a, c) in acc.iter_mut().zip(col) {
            *a += f * c;
        }
    }
}

/// The centre minimising `‖c‖² − 2·x·c` (the first on a tie).
#[inline]
fn nearest(row: &[f64], ct: &[f64], cn: &[f64], acc: &mut [f64]) -> usize {
    partial_distances(row, ct, cn, acc);
    let mut best = 0;
    let mut min = acc[0];
    for (c, &v) in acc.iter().enumerate().skip(1) {
        if v < min {
            min = v;
            best = c;
        }
    }
    best
}

/// Labels (and, when updating, per-chunk sums and counts) of whole chunks of rows.
fn assign_chunks(x: &[f64], step: Step<'_>, labels: &mut [u32], partials: &mut [f64]) {
    let (k, d) = (step.k, step.d);
    let mut acc = vec![0.0; k];
    if step.update {
        let chunks = x.chunks(CHUNK * d).zip(labels.chunks_mut(CHUNK));
        for ((xs, ls), part) in chunks.zip(partials.chunks_exact_mut(k * d + k)) {
            part.fill(0.0);
            let (sums, counts) = part.split_at_mut(k * d);
            for (row, l) in xs.chunks_exact(d).zip(ls.iter_mut()) {
                let c = nearest(row, step.ct, step.cn, &mut acc);
                *l = c as u32;
                counts[c] += 1.0;
                for (s, v) in sums[c * d..(c + 1) * d].iter_mut().zip(row) {
                    *s += v;
                }
            }
        }
    } else {
        for (row, l) in x.chunks_exact(d).zip(labels.iter_mut()) {
            *l = nearest(row, step.ct, step.cn, &mut acc) as u32;
        }
    }
}

/// The assignment step over all rows, split into contiguous runs of whole chunks, one per
/// thread. `partials` holds `k·d + k` values per chunk when updating (empty otherwise).
fn assign(x: &[f64], step: Step<'_>, labels: &mut [u32], partials: &mut [f64], threads: usize) {
    let n_chunks = labels.len().div_ceil(CHUNK);
    let groups = threads.min(n_chunks);
    if groups <= 1 {
        assign_chunks(x, step, labels, partials);
        return;
    }
    let stride = if step.update {
        step.k * step.d + step.k
    } else {
        0
    };
    let rows_per_group = n_chunks.div_ceil(groups) * CHUNK;
    std::thread::scope(|s| {
        let mut x_rest = x;
        let mut labels_rest = labels;
        let mut partials_rest = partials;
        while !labels_rest.is_empty() {
            let rows = rows_per_group.min(labels_rest.len());
            let (xa, xb) = x_rest.split_at(rows * step.d);
            let (la, lb) = std::mem::take(&mut labels_rest).split_at_mut(rows);
            let (pa, pb) =
                std::mem::take(&mut partials_rest).split_at_mut(rows.div_ceil(CHUNK) * stride);
            x_rest = xb;
            labels_rest = lb;
            partials_rest = pb;
            s.spawn(move || assign_chunks(xa, step, la, pa));
        }
    });
}

/// Fills `ct` and `cn` (see [`Step`]) from row-major centres.
fn transpose(centres: &[f64], k: usize, d: usize, ct: &mut [f64], cn: &mut [f64]) {
    for ((c, centre), norm) in centres.chunks_exact(d).enumerate().zip(cn.iter_mut()) {
        *norm = dot(centre, centre);
        for (j, v) in centre.iter().enumerate() {
            ct[j * k + c] = *v;
        }
    }
}

impl Data {
    fn new(x: &Matrix) -> Self {
        let (n, d) = (x.rows, x.cols);
        let mut mean = vec![0.0; d];
        for row in x.data.chunks_exact(d) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        for m in &mut mean {
            *m /= n as f64;
        }
        let mut centred = x.data.clone();
        let mut variance = vec![0.0; d];
        for row in centred.chunks_exact_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&mean).zip(&mut variance) {
                *v -= m;
                *s += *v * *v;
            }
        }
        let norms = centred.chunks_exact(d).map(|r| dot(r, r)).collect();
        let mean_variance = variance.iter().sum::<f64>() / n as f64 / d as f64;
        Self {
            x: centred,
            n,
            d,
            norms,
            mean,
            mean_variance,
        }
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    /// Calls `visit(i, dist)` for each row, `dist[t]` its squared distance to candidate `t`
    /// of the transposed block `ct` (norms `cn`), clipped at 0 as sklearn does.
    fn each_distance(&self, ct: &[f64], cn: &[f64], mut visit: impl FnMut(usize, &[f64])) {
        let mut acc = vec![0.0; cn.len()];
        for (i, (row, xn)) in self.x.chunks_exact(self.d).zip(&self.norms).enumerate() {
            partial_distances(row, ct, cn, &mut acc);
            for a in acc.iter_mut() {
                *a = (*a + xn).max(0.0);
            }
            visit(i, &acc);
        }
    }

    /// sklearn's greedy k-means++ (`_kmeans_plusplus`): row-major initial centres.
    fn plusplus(&self, k: usize, rng: &mut Rng) -> Vec<f64> {
        let (n, d) = (self.n, self.d);
        let trials = 2 + (k as f64).ln() as usize;
        let mut centres = Vec::with_capacity(k * d);
        let first = rng.below(n);
        centres.extend_from_slice(self.row(first));
        let mut closest = vec![0.0; n];
        self.each_distance(self.row(first), &self.norms[first..=first], |i, dist| {
            closest[i] = dist[0];
        });
        let mut potential: f64 = closest.iter().sum();
        let mut cumulative = vec![0.0; n];
        let mut ids = vec![0usize; trials];
        let mut ct = vec![0.0; d * trials];
        let mut cn = vec![0.0; trials];
        let mut potentials = vec![0.0; trials];
        for _ in 1..k {
            let mut sum = 0.0;
            for (c, v) in cumulative.iter_mut().zip(&closest) {
                sum += v;
                *c = sum;
            }
            for (t, (id, norm)) in ids.iter_mut().zip(cn.iter_mut()).enumerate() {
                let target = rng.uniform() * potential;
                *id = cumulative.partition_point(|&c| c < target).min(n - 1);
                *norm = self.norms[*id];
                for (j, v) in self.row(*id).iter().enumerate() {
                    ct[j * trials + t] = *v;
                }
            }
            potentials.fill(0.0);
            self.each_distance(&ct, &cn, |i, dist| {
                let c = closest[i];
                for (p, &v) in potentials.iter_mut().zip(dist) {
                    *p += v.min(c);
                }
            });
            let mut best = 0;
            for (t, &p) in potentials.iter().enumerate().skip(1) {
                if p < potentials[best] {
                    best = t;
                }
            }
            potential = potentials[best];
            let id = ids[best];
            // The same kernel on one column gives bit-identical distances.
            self.each_distance(self.row(id), &self.norms[id..=id], |i, dist| {
                closest[i] = closest[i].min(dist[0]);
            });
            centres.extend_from_slice(self.row(id));
        }
        centres
    }

    /// Lloyd iterations from `centres` (row-major, centred). `observe` sees the centres after
    /// each iteration (for tests).
    fn lloyd(
        &self,
        mut centres: Vec<f64>,
        k: usize,
        max_iter: usize,
        tol: f64,
        threads: usize,
        observe: &mut dyn FnMut(&[f64]),
    ) -> Run {
        let (n, d) = (self.n, self.d);
        let mut labels = vec![u32::MAX; n];
        let mut labels_old = vec![u32::MAX; n];
        let mut sums = vec![0.0; k * d];
        let mut counts = vec![0.0; k];
        let mut partials = vec![0.0; n.div_ceil(CHUNK) * (k * d + k)];
        let mut ct = vec![0.0; k * d];
        let mut cn = vec![0.0; k];
        let mut strict = false;
        let mut n_iter = 0;
        for i in 0..max_iter {
            n_iter = i + 1;
            transpose(&centres, k, d, &mut ct, &mut cn);
            let step = Step {
                ct: &ct,
                cn: &cn,
                k,
                d,
                update: true,
            };
            assign(&self.x, step, &mut labels, &mut partials, threads);
            sums.fill(0.0);
            counts.fill(0.0);
            for part in partials.chunks_exact(k * d + k) {
                let (ps, pc) = part.split_at(k * d);
                for (s, v) in sums.iter_mut().zip(ps) {
                    *s += v;
                }
                for (c, v) in counts.iter_mut().zip(pc) {
                    *c += v;
                }
            }
            self.relocate_empty(&centres, &labels, &mut sums, &mut counts);
            let shift = average(&centres, &mut sums, &counts, d);
            std::mem::swap(&mut centres, &mut sums);
            observe(&centres);
            if labels == labels_old {
                strict = true;
                break;
            }
            if shift <= tol {
                break;
            }
            labels_old.copy_from_slice(&labels);
        }
        if !strict {
            transpose(&centres, k, d, &mut ct, &mut cn);
            let step = Step {
                ct: &ct,
                cn: &cn,
                k,
                d,
                update: false,
            };
            assign(&self.x, step, &mut labels, &mut [], threads);
        }
        let inertia = self
            .x
            .chunks_exact(d)
            .zip(&labels)
            .map(|(row, &l)| squared_distance(row, &centres[l as usize * d..(l as usize + 1) * d]))
            .sum();
        Run {
            centres,
            labels,
            inertia,
            n_iter,
        }
    }

    /// sklearn's `_relocate_empty_clusters_dense`: each empty cluster takes one of the rows
    /// farthest from their centre (farthest first; the lower index on a tie), which leaves
    /// its former cluster. Nothing moves when every row sits on its centre.
    fn relocate_empty(&self, old: &[f64], labels: &[u32], sums: &mut [f64], counts: &mut [f64]) {
        let d = self.d;
        let empty: Vec<usize> = (0..counts.len()).filter(|&c| counts[c] == 0.0).collect();
        if empty.is_empty() {
            return;
        }
        let far: Vec<f64> = self
            .x
            .chunks_exact(d)
            .zip(labels)
            .map(|(row, &l)| squared_distance(row, &old[l as usize * d..(l as usize + 1) * d]))
            .collect();
        let mut order: Vec<usize> = (0..self.n).collect();
        order.sort_by(|&a, &b| far[b].total_cmp(&far[a]).then(a.cmp(&b)));
        if far[order[0]] == 0.0 {
            return;
        }
        for (&new, &row_id) in empty.iter().zip(&order) {
            let former = labels[row_id] as usize;
            let row = self.row(row_id);
            for (s, v) in sums[former * d..(former + 1) * d].iter_mut().zip(row) {
                *s -= v;
            }
            sums[new * d..(new + 1) * d].copy_from_slice(row);
            counts[former] -= 1.0;
            counts[new] = 1.0;
        }
    }
}

/// Turns per-cluster sums into means (multiplying by `1 / count`, as sklearn); a cluster still
/// empty takes the largest cluster's centre. Returns the sum of squared centre shifts.
fn average(old: &[f64], sums: &mut [f64], counts: &[f64], d: usize) -> f64 {
    let mut largest = 0;
    for (c, &n) in counts.iter().enumerate() {
        if n > counts[largest] {
            largest = c;
        }
    }
    for (centre, &n) in sums.chunks_exact_mut(d).zip(counts) {
        if n > 0.0 {
            let alpha = 1.0 / n;
            for v in centre.iter_mut() {
                *v *= alpha;
            }
        }
    }
    if counts[largest] > 0.0 {
        for (c, &n) in counts.iter().enumerate() {
            if n <= 0.0 {
                sums.copy_within(largest * d..(largest + 1) * d, c * d);
            }
        }
    }
    old.iter()
        .zip(sums.iter())
        .map(|(a, b)| (a - b) * (a - b))
        .sum()
}

#[path = "kmeans_choice.rs"]
mod choice;
pub use choice::{KChoice, KScore, choose_k, silhouette_score};

#[cfg(test)]
#[path = "kmeans_tests.rs"]
mod tests;
