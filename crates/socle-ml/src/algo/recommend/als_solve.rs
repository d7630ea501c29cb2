//! The numeric kernels of [`super::als`]: the conjugate-gradient half-iteration of implicit 0.7's
//! `_least_squares_cg` (`implicit/cpu/_als.pyx`), its `calculate_loss`, the Gram matrix `YᵀY`
//! and a Cholesky solve for the fold-in (implicit's `_least_squares` uses LAPACK's `posv`).
//!
//! Factors are `f32`, row-major, as implicit's default `dtype=np.float32`. Dot products run over
//! 8 partial sums so the compiler can vectorise them without reassociating. Differences: `YᵀY`
//! is accumulated in `f64` over blocks of `f32` partial sums (implicit: one `sgemm`), the fold-in
//! and the loss are computed in `f64`.
//!
//! On x86-64 CPUs with AVX2 the hot loops (half-iterations, `YᵀY`, scoring every item) run as a
//! copy compiled for AVX2, chosen at run time. The arithmetic is the same (the same 8 lanes, the
//! same order, no fused multiply-add), so the results are bit-identical on every CPU.

use std::ops::Range;

use super::balanced_ranges;

/// `a · b` over the common length, with 8 partial sums.
#[inline(always)]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a8, a_tail) = a.as_chunks::<8>();
    let (b8, b_tail) = b.as_chunks::<8>();
    let mut acc = [0.0f32; 8];
    for (x, y) in a8.iter().zip(b8) {
        for ((s, &xv), &yv) in acc.iter_mut().zip(x).zip(y) {
            *s += xv * yv;
        }
    }
    let mut tail = 0.0f32;
    for (&x, &y) in a_tail.iter().zip(b_tail) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `y += a · x`.
#[inline(always)]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yv, &xv) in y.iter_mut().zip(x) {
        *yv += a * xv;
    }
}

/// `out = m · v` for a square row-major `m` of side `v.len()`.
#[inline(always)]
fn mat_vec(m: &[f32], v: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(m.chunks_exact(v.len())) {
        *o = dot(row, v);
    }
}

/// `f64` dot product.
fn dot64(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Rows summed in `f32` before each flush into the `f64` Gram matrix.
const GRAM_BLOCK: usize = 128;

/// `YᵀY` (`f × f`, row-major, symmetric) for the row-major `y` with `f` columns.
pub(super) fn gram(y: &[f32], f: usize) -> Vec<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { gram_avx2(y, f) };
        }
    }
    gram_portable(y, f)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn gram_avx2(y: &[f32], f: usize) -> Vec<f64> {
    gram_portable(y, f)
}

#[inline(always)]
fn gram_portable(y: &[f32], f: usize) -> Vec<f64> {
    let mut total = vec![0.0f64; f * f];
    let mut block = vec![0.0f32; f * f];
    for rows in y.chunks(f * GRAM_BLOCK) {
        block.fill(0.0);
        for row in rows.chunks_exact(f) {
            for (j, &a) in row.iter().enumerate() {
                axpy(a, &row[j..], &mut block[j * f + j..(j + 1) * f]);
            }
        }
        for (t, &b) in total.iter_mut().zip(&block) {
            *t += f64::from(b);
        }
    }
    for j in 0..f {
        for k in 0..j {
            total[j * f + k] = total[k * f + j];
        }
    }
    total
}

/// The confidences of one side: rows of `(index, confidence)` pairs.
pub(super) struct Confidence<'a> {
    pub indptr: &'a [usize],
    pub indices: &'a [u32],
    pub values: &'a [f32],
}

impl Confidence<'_> {
    fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (start, end) = (self.indptr[r], self.indptr[r + 1]);
        (&self.indices[start..end], &self.values[start..end])
    }
}

/// Scratch vectors of one thread.
struct Work {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
}

/// One row's conjugate-gradient steps, warm-started from `x` (implicit's loop body).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn solve_row(
    a: &[f32],
    y: &[f32],
    f: usize,
    items: &[u32],
    conf: &[f32],
    x: &mut [f32],
    w: &mut Work,
    cg_steps: usize,
) {
    if items.is_empty() {
        x.fill(0.0);
        return;
    }
    // r = YᵀCᵤp(u) − (YᵀCᵤY + λI)·x
    mat_vec(a, x, &mut w.r);
    for v in w.r.iter_mut() {
        *v = -*v;
    }
    for (&i, &c) in items.iter().zip(conf) {
        let yi = &y[i as usize * f..(i as usize + 1) * f];
        let t = c - (c - 1.0) * dot(yi, x);
        axpy(t, yi, &mut w.r);
    }
    w.p.copy_from_slice(&w.r);
    let mut rs_old = dot(&w.r, &w.r);
    if rs_old < 1e-20 {
        return;
    }
    for _ in 0..cg_steps {
        // Ap = (YᵀY + λI)·p + Yᵀ(Cᵤ − I)Y·p, without forming YᵀCᵤY.
        mat_vec(a, &w.p, &mut w.ap);
        for (&i, &c) in items.iter().zip(conf) {
            let yi = &y[i as usize * f..(i as usize + 1) * f];
            let t = (c - 1.0) * dot(yi, &w.p);
            axpy(t, yi, &mut w.ap);
        }
        let p_ap = dot(&w.p, &w.ap);
        if p_ap.is_nan() || p_ap <= 0.0 {
            break;
        }
        let alpha = rs_old / p_ap;
        axpy(alpha, &w.p, x);
        axpy(-alpha, &w.ap, &mut w.r);
        let rs_new = dot(&w.r, &w.r);
        if rs_new < 1e-20 {
            break;
        }
        let beta = rs_new / rs_old;
        for (p, &r) in w.p.iter_mut().zip(&w.r) {
            *p = beta * *p + r;
        }
        rs_old = rs_new;
    }
}

/// Everything the rows of one half-iteration share.
struct HalfIteration<'a> {
    a: Vec<f32>,
    y: &'a [f32],
    f: usize,
    conf: &'a Confidence<'a>,
    cg_steps: usize,
}

impl HalfIteration<'_> {
    fn solve_rows(&self, rows: Range<usize>, xs: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                unsafe { self.solve_rows_avx2(rows, xs) };
                return;
            }
        }
        self.solve_rows_portable(rows, xs);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn solve_rows_avx2(&self, rows: Range<usize>, xs: &mut [f32]) {
        self.solve_rows_portable(rows, xs);
    }

    #[inline(always)]
    fn solve_rows_portable(&self, rows: Range<usize>, xs: &mut [f32]) {
        let f = self.f;
        let mut work = Work {
            r: vec![0.0; f],
            p: vec![0.0; f],
            ap: vec![0.0; f],
        };
        for (r, x) in rows.zip(xs.chunks_exact_mut(f)) {
            let (items, conf) = self.conf.row(r);
            solve_row(&self.a, self.y, f, items, conf, x, &mut work, self.cg_steps);
        }
    }
}

/// Updates every row of `x` (one per row of `conf`) given the other side's factors `y`:
/// implicit's `least_squares_cg` with `cg_steps` steps, over `threads` threads.
pub(super) fn least_squares_cg(
    conf: &Confidence<'_>,
    x: &mut [f32],
    y: &[f32],
    f: usize,
    regularization: f64,
    cg_steps: usize,
    threads: usize,
) {
    let gram = gram(y, f);
    let a: Vec<f32> = gram
        .iter()
        .enumerate()
        .map(|(k, &g)| {
            if k % (f + 1) == 0 {
                (g + regularization) as f32
            } else {
                g as f32
            }
        })
        .collect();
    let half = HalfIteration {
        a,
        y,
        f,
        conf,
        cg_steps,
    };
    let rows = x.len() / f;
    let parts = threads.min(rows / 32).max(1);
    let cost = |r: usize| ((conf.indptr[r + 1] - conf.indptr[r]) * 2 * f + f * f) as u64;
    let ranges = balanced_ranges(rows, parts, cost);
    if ranges.len() == 1 {
        half.solve_rows(0..rows, x);
        return;
    }
    let mut chunks = Vec::with_capacity(ranges.len());
    let mut rest: &mut [f32] = x;
    for range in ranges {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(range.len() * f);
        chunks.push((range, head));
        rest = tail;
    }
    std::thread::scope(|scope| {
        for (range, xs) in chunks {
            let half = &half;
            scope.spawn(move || half.solve_rows(range, xs));
        }
    });
}

/// `out[i] = x · m[i]` for every row `i` of the row-major `m` with `x.len()` columns.
pub(super) fn dot_rows(x: &[f32], m: &[f32], out: &mut Vec<f32>) {
    out.clear();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { dot_rows_avx2(x, m, out) };
            return;
        }
    }
    dot_rows_portable(x, m, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_rows_avx2(x: &[f32], m: &[f32], out: &mut Vec<f32>) {
    dot_rows_portable(x, m, out);
}

#[inline(always)]
fn dot_rows_portable(x: &[f32], m: &[f32], out: &mut Vec<f32>) {
    out.extend(m.chunks_exact(x.len()).map(|row| dot(x, row)));
}

/// implicit's `calculate_loss`: `Σ c(p − xᵀy)² + λ(Σ|x|² + Σ|y|²)` over every user and item
/// (unobserved pairs with confidence 1 and preference 0), divided by
/// `Σ c + users · items − observed pairs`.
pub(super) fn loss(conf: &Confidence<'_>, x: &[f32], y: &[f32], f: usize, reg: f64) -> f64 {
    let gram = gram(y, f);
    let (n_users, n_items) = (x.len() / f, y.len() / f);
    let mut xd = vec![0.0f64; f];
    let (mut loss, mut total_conf, mut user_norms) = (0.0f64, 0.0f64, 0.0f64);
    for (u, xu) in x.chunks_exact(f).enumerate() {
        for (d, &v) in xd.iter_mut().zip(xu) {
            *d = f64::from(v);
        }
        // xᵀ(YᵀY)x: the sum over every item of (xᵀy)², corrected below for the observed ones.
        for (row, &xj) in gram.chunks_exact(f).zip(&xd) {
            loss += dot64(row, &xd) * xj;
        }
        let (items, confs) = conf.row(u);
        for (&i, &c) in items.iter().zip(confs) {
            let yi = &y[i as usize * f..(i as usize + 1) * f];
            let s: f64 = yi.iter().zip(&xd).map(|(&a, &b)| f64::from(a) * b).sum();
            let c = f64::from(c);
            loss += c + (c - 1.0) * s * s - 2.0 * c * s;
            total_conf += c;
        }
        user_norms += dot64(&xd, &xd);
    }
    let item_norms: f64 = y.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    loss += reg * (item_norms + user_norms);
    loss / (total_conf + (n_users * n_items) as f64 - conf.indices.len() as f64)
}

/// Solves `a · x = b` for a symmetric positive definite `a` (`n × n`, row-major; its lower
/// triangle is overwritten by the Cholesky factor) in place: `b` becomes `x`. On failure, the
/// index of the first pivot that is not positive.
pub(super) fn cholesky_solve(a: &mut [f64], b: &mut [f64], n: usize) -> Result<(), usize> {
    for j in 0..n {
        let d = a[j * n + j] - dot64(&a[j * n..j * n + j], &a[j * n..j * n + j]);
        let positive = d.is_finite() && d > 0.0;
        if !positive {
            return Err(j);
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let s = a[i * n + j] - dot64(&a[i * n..i * n + j], &a[j * n..j * n + j]);
            a[i * n + j] = s / d;
        }
    }
    // L·z = b, then Lᵀ·x = z.
    for i in 0..n {
        let (done, rest) = b.split_at_mut(i);
        if let Some(v) = rest.first_mut() {
            *v = (*v - dot64(&a[i * n..i * n + i], done)) / a[i * n + i];
        }
    }
    for i in (0..n).rev() {
        let (head, tail) = b.split_at_mut(i + 1);
        let s: f64 = tail
            .iter()
            .enumerate()
            .map(|(k, &xk)| a[(i + 1 + k) * n + i] * xk)
            .sum();
        if let Some(v) = head.last_mut() {
            *v = (*v - s) / a[i * n + i];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_naive_sums() {
        for len in 0..21 {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 1.3).cos()).collect();
            let naive: f64 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| f64::from(x) * f64::from(y))
                .sum();
            assert!((f64::from(dot(&a, &b)) - naive).abs() < 1e-5, "len {len}");
        }
        let y: Vec<f32> = (0..7 * 3)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let mut naive = vec![0.0f64; 9];
        for r in y.chunks_exact(3) {
            for (j, &a) in r.iter().enumerate() {
                for (k, &b) in r.iter().enumerate() {
                    naive[j * 3 + k] += f64::from(a) * f64::from(b);
                }
            }
        }
        for (got, want) in gram(&y, 3).iter().zip(&naive) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
    }

    #[test]
    fn the_dispatched_kernels_agree_bit_for_bit_with_the_portable_ones() {
        let y: Vec<f32> = (0..37 * 13)
            .map(|i| ((i * 7 % 23) as f32 - 11.0) / 7.0)
            .collect();
        assert_eq!(gram(&y, 13), gram_portable(&y, 13));
        let x: Vec<f32> = (0..13).map(|i| (i as f32 * 0.3).sin()).collect();
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        dot_rows(&x, &y, &mut fast);
        dot_rows_portable(&x, &y, &mut slow);
        assert_eq!(fast.len(), 37);
        assert_eq!(fast, slow);
        assert_eq!(fast[5], dot(&x, &y[5 * 13..6 * 13]));
    }

    #[test]
    fn gram_flushes_blocks_of_rows() {
        // More rows than one block: every row is [1, 2], so YᵀY = rows · [[1, 2], [2, 4]].
        let rows = GRAM_BLOCK * 2 + 3;
        let y: Vec<f32> = (0..rows).flat_map(|_| [1.0f32, 2.0]).collect();
        let r = rows as f64;
        assert_eq!(gram(&y, 2), vec![r, 2.0 * r, 2.0 * r, 4.0 * r]);
    }

    #[test]
    fn cholesky_solves_and_refuses_indefinite_systems() {
        // a = [[4, 2, 0.4], [2, 5, 1], [0.4, 1, 3]], x = [1, -2, 0.5].
        let a = [4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let x = [1.0, -2.0, 0.5];
        let mut b: Vec<f64> = a.chunks_exact(3).map(|row| dot64(row, &x)).collect();
        let mut m = a.to_vec();
        cholesky_solve(&mut m, &mut b, 3).unwrap();
        for (got, want) in b.iter().zip(&x) {
            assert!((got - want).abs() < 1e-12, "{b:?}");
        }
        let mut indefinite = vec![1.0, 2.0, 2.0, 1.0];
        assert_eq!(cholesky_solve(&mut indefinite, &mut [1.0, 1.0], 2), Err(1));
        let mut nan = vec![f64::NAN];
        assert_eq!(cholesky_solve(&mut nan, &mut [1.0], 1), Err(0));
    }

    #[test]
    fn enough_cg_steps_solve_the_row_exactly() {
        // Three items with two factors; one user who liked items 0 and 2.
        let y = [0.5f32, -0.2, 0.1, 0.8, -0.4, 0.3];
        let (f, reg) = (2, 0.1);
        let conf = [3.0f32, 1.5];
        let items = [0u32, 2];
        let g = gram(&y, f);
        let mut a64: Vec<f64> = g.clone();
        a64[0] += reg;
        a64[3] += reg;
        let mut b = vec![0.0f64; f];
        for (&i, &c) in items.iter().zip(&conf) {
            let yi = &y[i as usize * f..(i as usize + 1) * f];
            let c = f64::from(c);
            for (bj, &yj) in b.iter_mut().zip(yi) {
                *bj += c * f64::from(yj);
            }
            for (row, &yj) in a64.chunks_exact_mut(f).zip(yi) {
                for (v, &yk) in row.iter_mut().zip(yi) {
                    *v += (c - 1.0) * f64::from(yj) * f64::from(yk);
                }
            }
        }
        cholesky_solve(&mut a64, &mut b, f).unwrap();
        let a: Vec<f32> = g
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                if k % (f + 1) == 0 {
                    (v + reg) as f32
                } else {
                    v as f32
                }
            })
            .collect();
        let mut x = vec![0.01f32, 0.02];
        let mut work = Work {
            r: vec![0.0; f],
            p: vec![0.0; f],
            ap: vec![0.0; f],
        };
        solve_row(&a, &y, f, &items, &conf, &mut x, &mut work, 2);
        for (got, want) in x.iter().zip(&b) {
            assert!((f64::from(*got) - want).abs() < 1e-4, "{x:?} vs {b:?}");
        }
        // A row with no items is set to zero, as implicit does.
        solve_row(&a, &y, f, &[], &[], &mut x, &mut work, 3);
        assert_eq!(x, vec![0.0, 0.0]);
    }
}
