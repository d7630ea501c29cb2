//! Tests of `kmeans.rs`. Reference values come from scikit-learn 1.9.1 (`KMeans(k,
//! n_init=10, random_state=0)`, `silhouette_score`) on the same data: the blobs below are
//! drawn from this crate's [`Rng`], which was replayed bit for bit in Python to feed sklearn.

use super::*;
// Explicit: proptest's prelude also exports a `Rng` (rand's).
use super::Rng;
use proptest::prelude::*;

/// 3 blobs of 4 points each at distance 1 from their centre: the optimum inertia is 12.
fn tiny_blobs() -> Matrix {
    let mut rows = Vec::new();
    for (cx, cy) in [(0.0, 0.0), (10.0, 10.0), (20.0, 0.0)] {
        for (dx, dy) in [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)] {
            rows.push(vec![cx + dx, cy + dy]);
        }
    }
    Matrix::from_vecs(&rows).unwrap()
}

/// `n` points around the 4 centres (0,0,0), (6,0,0), (0,6,0), (0,0,6) in turn, each
/// coordinate plus `sd · N(0, 1)` from `Rng::new(seed)`.
fn blobs(seed: u64, n: usize, sd: f64) -> Matrix {
    let centres = [
        [0.0, 0.0, 0.0],
        [6.0, 0.0, 0.0],
        [0.0, 6.0, 0.0],
        [0.0, 0.0, 6.0],
    ];
    let mut rng = Rng::new(seed);
    let mut data = Vec::with_capacity(n * 3);
    for i in 0..n {
        for c in centres[i % 4] {
            data.push(c + sd * rng.normal());
        }
    }
    Matrix::from_rows(n, 3, data).unwrap()
}

#[test]
fn well_separated_blobs_reach_the_optimum() {
    let x = tiny_blobs();
    let opts = KMeansOptions {
        n_init: 3,
        ..KMeansOptions::new(3)
    };
    let fit = kmeans(&x, &opts, &mut Rng::new(5)).unwrap();
    assert!(
        (fit.model.inertia - 12.0).abs() < 1e-9,
        "{}",
        fit.model.inertia
    );
    // Each blob is one cluster, centred on the blob's centre.
    for blob in 0..3 {
        let l = fit.labels[blob * 4];
        assert!(
            fit.labels[blob * 4..blob * 4 + 4].iter().all(|&v| v == l),
            "{:?}",
            fit.labels
        );
        let c = fit.model.centers.row(l as usize);
        let want = [[0.0, 0.0], [10.0, 10.0], [20.0, 0.0]][blob];
        assert!(
            (c[0] - want[0]).abs() < 1e-12 && (c[1] - want[1]).abs() < 1e-12,
            "{c:?}"
        );
    }
    assert_eq!(fit.model.predict(&x), fit.labels);
    let json = serde_json::to_string(&fit.model).unwrap();
    assert_eq!(
        serde_json::from_str::<KMeansModel>(&json).unwrap(),
        fit.model
    );
}

#[test]
fn blobs_equal_scikit_learn() {
    let x = blobs(11, 2000, 0.7);
    // The data sklearn saw (first row).
    let first = [
        0.4247145768448582,
        -0.4926953488403086,
        -0.10301430351648606,
    ];
    assert!(
        x.row(0)
            .iter()
            .zip(&first)
            .all(|(a, b)| (a - b).abs() < 1e-15),
        "{:?}",
        x.row(0)
    );
    let opts = KMeansOptions {
        n_init: 10,
        ..KMeansOptions::new(4)
    };
    let fit = kmeans(&x, &opts, &mut Rng::new(1)).unwrap();
    // KMeans(4, n_init=10, random_state=0).fit(X).inertia_
    let want = 2944.188412183177;
    assert!(
        (fit.model.inertia - want).abs() < 1e-9 * want,
        "{}",
        fit.model.inertia
    );
    let sk_centres = [
        [6.015002985641415, 0.0358192589002555, 0.00597287125774959],
        [
            -0.03131870273938597,
            -0.003324021192715465,
            -0.020305349480868262,
        ],
        [
            -0.01844245036036396,
            -0.0148437134307986,
            5.9986280953967475,
        ],
        [
            0.0033659610621279423,
            5.983525941560421,
            -0.0008656639775788122,
        ],
    ];
    for want in &sk_centres {
        let closest = (0..4)
            .map(|c| squared_distance(fit.model.centers.row(c), want))
            .fold(f64::INFINITY, f64::min);
        assert!(
            closest < 1e-18,
            "{want:?} not among {:?}",
            fit.model.centers
        );
    }
    assert_eq!(fit.model.predict(&x), fit.labels);
    // silhouette_score(X, km.labels_)
    let s = silhouette_score(&x, &fit.labels, None, 0).unwrap();
    assert!((s - 0.7337036879197302).abs() < 1e-10, "{s}");
    // A sample of the rows estimates it; the same seed gives the same estimate.
    let a = silhouette_score(&x, &fit.labels, Some(500), 9).unwrap();
    assert!((a - s).abs() < 0.05, "{a}");
    assert_eq!(silhouette_score(&x, &fit.labels, Some(500), 9).unwrap(), a);
    let all = silhouette_score(&x, &fit.labels, Some(5000), 9).unwrap();
    assert!((all - s).abs() < 1e-12);
}

#[test]
fn choose_k_picks_the_number_of_blobs() {
    let x = blobs(11, 2000, 0.7);
    let opts = KMeansOptions {
        n_init: 5,
        ..KMeansOptions::default()
    };
    let choice = choose_k(&x, 2..=6, &opts, None, &mut Rng::new(3)).unwrap();
    assert_eq!(choice.best_k, 4);
    assert_eq!(choice.best.model.centers.rows, 4);
    assert_eq!(
        choice.scores.iter().map(|s| s.k).collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6]
    );
    // sklearn's silhouette for k = 4. (For k = 2, 3, 5, 6 the blobs' symmetry leaves several
    // equally good partitions, so the value depends on the start.)
    let four = choice.scores[2].silhouette.unwrap();
    assert!((four - 0.7337036879197302).abs() < 1e-10, "{four}");
    assert!(
        choice
            .scores
            .iter()
            .all(|s| s.silhouette.is_some_and(|v| v <= four))
    );
    // Merging blobs costs inertia.
    let inertia: Vec<f64> = choice.scores.iter().map(|s| s.inertia).collect();
    assert!(
        inertia[0] > inertia[1] && inertia[1] > inertia[2],
        "{inertia:?}"
    );
    assert!((inertia[2] - 2944.188412183177).abs() < 1e-6, "{inertia:?}");
    // With sampled silhouettes too.
    let sampled = choose_k(&x, 3..=5, &opts, Some(400), &mut Rng::new(3)).unwrap();
    assert_eq!(sampled.best_k, 4);
    assert_eq!(
        choose_k(&x, 1..=3, &opts, None, &mut Rng::new(3)).unwrap_err(),
        KMeansError::BadKRange { start: 1, end: 3 }
    );
    let empty = 5..=(x.rows / 1000);
    assert!(matches!(
        choose_k(&x, empty, &opts, None, &mut Rng::new(3)),
        Err(KMeansError::BadKRange { .. })
    ));
}

#[test]
fn the_same_seed_gives_the_same_fit_whatever_the_threads() {
    let x = blobs(2, 3000, 1.5);
    let opts = KMeansOptions {
        n_init: 3,
        ..KMeansOptions::new(6)
    };
    let a = kmeans(&x, &opts, &mut Rng::new(42)).unwrap();
    let b = kmeans(&x, &opts, &mut Rng::new(42)).unwrap();
    assert_eq!(a, b);
    let data = Data::new(&x);
    let init = data.plusplus(6, &mut Rng::new(8));
    let tol = data.mean_variance * 1e-4;
    let one = data.lloyd(init.clone(), 6, 300, tol, 1, &mut |_| {});
    let three = data.lloyd(init, 6, 300, tol, 3, &mut |_| {});
    assert_eq!(one.centres, three.centres);
    assert_eq!(one.labels, three.labels);
    assert_eq!(one.inertia.to_bits(), three.inertia.to_bits());
}

#[test]
fn an_empty_cluster_takes_the_farthest_row() {
    // Centred: -6 -5 -4 4 5 6. The second initial centre is far from every row.
    let x = Matrix::from_columns(&[vec![0.0, 1.0, 2.0, 10.0, 11.0, 12.0]]).unwrap();
    let data = Data::new(&x);
    let run = data.lloyd(vec![-5.0, 100.0], 2, 300, 0.0, 1, &mut |_| {});
    assert!((run.inertia - 4.0).abs() < 1e-12, "{}", run.inertia);
    assert_eq!(run.labels, vec![0, 0, 0, 1, 1, 1]);
    assert_eq!(run.n_iter, 3);
}

#[test]
fn duplicates_and_k_equal_to_n_do_not_break() {
    let same = Matrix::from_rows(5, 2, [2.0, -1.0].repeat(5)).unwrap();
    let fit = kmeans(&same, &KMeansOptions::new(3), &mut Rng::new(0)).unwrap();
    assert_eq!(fit.model.inertia, 0.0);
    assert!(fit.labels.iter().all(|&l| l < 3));
    assert!(fit.model.centers.data.iter().all(|v| v.is_finite()));
    let x = tiny_blobs();
    let fit = kmeans(&x, &KMeansOptions::new(12), &mut Rng::new(0)).unwrap();
    assert!(fit.model.inertia.abs() < 1e-12);
    let mut labels = fit.labels.clone();
    labels.sort_unstable();
    assert_eq!(labels, (0..12).collect::<Vec<u32>>());
    let one = kmeans(&x, &KMeansOptions::new(1), &mut Rng::new(0)).unwrap();
    assert_eq!(one.labels, vec![0; 12]);
}

#[test]
fn bad_input_is_an_error() {
    let x = tiny_blobs().select_rows(&[0, 1, 2, 3, 4, 5, 6]);
    let mut rng = Rng::new(0);
    let err = kmeans(&x, &KMeansOptions::new(10), &mut rng).unwrap_err();
    assert_eq!(err, KMeansError::KTooLarge { k: 10, rows: 7 });
    assert_eq!(err.to_string(), "k = 10 is more than the 7 rows");
    assert_eq!(
        kmeans(&x, &KMeansOptions::new(0), &mut rng),
        Err(KMeansError::ZeroK)
    );
    assert_eq!(
        kmeans(&Matrix::zeros(0, 2), &KMeansOptions::new(1), &mut rng),
        Err(KMeansError::NoRows)
    );
    assert_eq!(
        kmeans(&Matrix::zeros(3, 0), &KMeansOptions::new(1), &mut rng),
        Err(KMeansError::NoColumns)
    );
    let mut bad = x.clone();
    bad.set(4, 1, f64::NAN);
    let err = kmeans(&bad, &KMeansOptions::new(2), &mut rng).unwrap_err();
    assert!(
        matches!(
            err,
            KMeansError::NonFinite {
                row: 4,
                column: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("column 1"), "{err}");
    let no_init = KMeansOptions {
        n_init: 0,
        ..KMeansOptions::new(2)
    };
    assert_eq!(kmeans(&x, &no_init, &mut rng), Err(KMeansError::ZeroInit));
    let no_iter = KMeansOptions {
        max_iter: 0,
        ..KMeansOptions::new(2)
    };
    assert_eq!(
        kmeans(&x, &no_iter, &mut rng),
        Err(KMeansError::ZeroMaxIter)
    );
    let bad_tol = KMeansOptions {
        tol: -1.0,
        ..KMeansOptions::new(2)
    };
    assert_eq!(
        kmeans(&x, &bad_tol, &mut rng),
        Err(KMeansError::BadTol(-1.0))
    );
    assert!(matches!(
        choose_k(&x, 2..=8, &KMeansOptions::default(), None, &mut rng),
        Err(KMeansError::KTooLarge { k: 8, rows: 7 })
    ));
}

#[test]
fn silhouette_equals_scikit_learn() {
    let x = Matrix::from_vecs(&[
        vec![0.0, 0.0],
        vec![0.0, 1.0],
        vec![1.0, 0.0],
        vec![1.2, 1.1],
        vec![5.0, 5.0],
        vec![5.5, 4.5],
        vec![6.0, 5.2],
        vec![20.0, 0.0],
        vec![2.5, 2.5],
        vec![5.1, 5.1],
    ])
    .unwrap();
    // silhouette_score(X, [0,0,0,0,1,1,1,2,0,3]): two singleton clusters score 0.
    let s = silhouette_score(&x, &[0, 0, 0, 0, 1, 1, 1, 2, 0, 3], None, 0).unwrap();
    assert!((s - 0.2274026337904187).abs() < 1e-12, "{s}");
    // Any label values: silhouette_score(X, [7,7,7,7,3,3,3,3,7,3])
    let s = silhouette_score(&x, &[7, 7, 7, 7, 3, 3, 3, 3, 7, 3], None, 0).unwrap();
    assert!((s - 0.5131427906648993).abs() < 1e-12, "{s}");
    // Undefined: one cluster, or as many clusters as rows.
    assert_eq!(
        silhouette_score(&x, &[4; 10], None, 0),
        Err(KMeansError::SilhouetteClusters {
            clusters: 1,
            rows: 10
        })
    );
    let each: Vec<u32> = (0..10).collect();
    assert!(matches!(
        silhouette_score(&x, &each, None, 0),
        Err(KMeansError::SilhouetteClusters { .. })
    ));
    assert_eq!(
        silhouette_score(&x, &[0, 1], None, 0),
        Err(KMeansError::LabelCount {
            labels: 2,
            rows: 10
        })
    );
}

/// The inertia of `centres` (row-major, `d` wide) with every row at its nearest centre.
fn nearest_inertia(x: &[f64], d: usize, centres: &[f64]) -> f64 {
    x.chunks_exact(d)
        .map(|row| {
            centres
                .chunks_exact(d)
                .map(|c| squared_distance(row, c))
                .fold(f64::INFINITY, f64::min)
        })
        .sum()
}

fn small_data() -> impl Strategy<Value = (Matrix, usize)> {
    (2usize..60, 1usize..4).prop_flat_map(|(n, d)| {
        // Integers in a small range: duplicates and ties are common.
        (prop::collection::vec(-6i32..6, n * d), 1..=n.min(6)).prop_map(move |(v, k)| {
            let data = v.into_iter().map(f64::from).collect();
            (Matrix::from_rows(n, d, data).unwrap(), k)
        })
    })
}

proptest! {
    #[test]
    fn inertia_never_increases_across_lloyd_iterations(
        (x, k) in small_data(),
        seed in any::<u64>(),
    ) {
        let data = Data::new(&x);
        let init = data.plusplus(k, &mut Rng::new(seed));
        let mut trace = vec![nearest_inertia(&data.x, data.d, &init)];
        let run = data.lloyd(init, k, 300, 0.0, 1, &mut |c: &[f64]| {
            trace.push(nearest_inertia(&data.x, data.d, c));
        });
        let slack = 1e-9 * (1.0 + trace[0]);
        for w in trace.windows(2) {
            prop_assert!(w[1] <= w[0] + slack, "{trace:?}");
        }
        prop_assert!(run.inertia <= trace[0] + slack);
        let last = trace[trace.len() - 1];
        prop_assert!((run.inertia - last).abs() <= slack, "{} {trace:?}", run.inertia);
        prop_assert!(run.labels.iter().all(|&l| (l as usize) < k));
    }
}
