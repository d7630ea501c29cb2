//! Tests of [`super`] (histogram gradient boosting): exact answers on planted problems,
//! missing values and categories, classification, early stopping, determinism across seeds
//! and thread counts, errors. The comparisons with scikit-learn and the JSON model are in
//! `tests_sklearn.rs`.

use super::super::{Matrix, Rng};
use super::*;

/// The default options without early stopping.
pub(super) fn quiet() -> Options {
    Options {
        early_stopping: EarlyStopping::Off,
        ..Options::default()
    }
}

fn rmse(a: &[f64], b: &[f64]) -> f64 {
    (a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
}

/// Asserts that `got` and `want` agree to `tol`, value by value.
pub(super) fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "value {i}: got {g}, want {w}");
    }
}

#[test]
fn a_step_function_is_learned_exactly() {
    let xs: Vec<Vec<f64>> = (0..200).map(|i| vec![f64::from(i)]).collect();
    let y: Vec<f64> = (0..200).map(|i| if i < 100 { 1.0 } else { 5.0 }).collect();
    let x = Matrix::from_vecs(&xs).unwrap();
    let opts = Options {
        learning_rate: 1.0,
        max_iter: 1,
        ..quiet()
    };
    let m = fit_regressor(&x, &y, &[false], &opts).unwrap();
    // Baseline 3, one split at 99.5, leaves −2 and +2, every prediction exact.
    assert_eq!(m.predict(&x), y);
    let root = &m.trees[0].nodes[0];
    assert_eq!((root.feature, root.threshold), (0, 99.5));
    let probe = Matrix::from_vecs(&[vec![99.4], vec![99.6], vec![-1e9], vec![1e9]]).unwrap();
    assert_eq!(m.predict(&probe), vec![1.0, 5.0, 1.0, 5.0]);
    assert_eq!(m.feature_importances(), vec![1.0]);
}

#[test]
fn an_additive_model_is_learned() {
    let mut rng = Rng::new(11);
    let n = 3000;
    let mut rows = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let r: Vec<f64> = (0..4).map(|_| rng.uniform() * 2.0 - 1.0).collect();
        let signal = 2.0 * r[0] + (3.0 * r[1]).sin() + if r[2] > 0.3 { 1.5 } else { 0.0 };
        y.push(signal + 0.1 * rng.normal());
        rows.push(r);
    }
    let x = Matrix::from_vecs(&rows).unwrap();
    let (train, test): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| i % 5 != 0);
    let pick = |idx: &[usize]| idx.iter().map(|&i| y[i]).collect::<Vec<f64>>();
    let m = fit_regressor(&x.select_rows(&train), &pick(&train), &[false; 4], &quiet()).unwrap();
    let pred = m.predict(&x.select_rows(&test));
    let err = rmse(&pred, &pick(&test));
    // The target's standard deviation is about 1.4 and its noise 0.1.
    assert!(err < 0.16, "test RMSE {err}");
    let imp = m.feature_importances();
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!(imp[3] < 0.02 && imp[0] > imp[2], "{imp:?}");
}

#[test]
fn missing_values_go_where_they_fit_best() {
    // x is missing for a third of the rows, whose targets are those of large x.
    let mut rows = Vec::new();
    let mut y = Vec::new();
    for i in 0..300 {
        let v = f64::from(i % 100);
        if i % 3 == 0 {
            rows.push(vec![f64::NAN]);
            y.push(10.0);
        } else {
            rows.push(vec![v]);
            y.push(if v >= 50.0 { 10.0 } else { 0.0 });
        }
    }
    let x = Matrix::from_vecs(&rows).unwrap();
    let opts = Options {
        learning_rate: 1.0,
        max_iter: 1,
        max_leaf_nodes: Some(2),
        ..quiet()
    };
    let m = fit_regressor(&x, &y, &[false], &opts).unwrap();
    let probe = Matrix::from_vecs(&[vec![f64::NAN], vec![10.0], vec![90.0]]).unwrap();
    // Exact but for the f32 rounding of the gradients.
    assert_close(&m.predict(&probe), &[10.0, 0.0, 10.0], 1e-5);
    let root = &m.trees[0].nodes[0];
    assert!(
        !root.missing_left,
        "missing values share the right child with x ≥ 50"
    );
    assert_eq!(root.threshold, 49.5);

    // Now the missing rows resemble small x: they go left, with them.
    let y2: Vec<f64> = rows
        .iter()
        .zip(&y)
        .map(|(r, &t)| if r[0].is_nan() { 0.0 } else { t })
        .collect();
    let m = fit_regressor(&x, &y2, &[false], &opts).unwrap();
    assert!(m.trees[0].nodes[0].missing_left);
    assert_close(&m.predict(&probe), &[0.0, 0.0, 10.0], 1e-5);
}

#[test]
fn without_missing_values_in_training_they_follow_the_larger_child() {
    // 70 rows below the split, 30 above: a missing value goes to the 70.
    let xs: Vec<Vec<f64>> = (0..100).map(|i| vec![f64::from(i)]).collect();
    let y: Vec<f64> = (0..100).map(|i| if i < 70 { -1.0 } else { 2.0 }).collect();
    let x = Matrix::from_vecs(&xs).unwrap();
    let opts = Options {
        learning_rate: 1.0,
        max_iter: 1,
        max_leaf_nodes: Some(2),
        ..quiet()
    };
    let m = fit_regressor(&x, &y, &[false], &opts).unwrap();
    assert!(m.trees[0].nodes[0].missing_left);
    let p = m.predict(&Matrix::from_vecs(&[vec![f64::NAN]]).unwrap());
    assert!((p[0] + 1.0).abs() < 1e-6, "{p:?}");
    // The other way round.
    let y: Vec<f64> = (0..100).map(|i| if i < 30 { -1.0 } else { 2.0 }).collect();
    let m = fit_regressor(&x, &y, &[false], &opts).unwrap();
    assert!(!m.trees[0].nodes[0].missing_left);
    let p = m.predict(&Matrix::from_vecs(&[vec![f64::NAN]]).unwrap());
    assert!((p[0] - 2.0).abs() < 1e-6, "{p:?}");
}

#[test]
fn a_non_monotonic_categorical_split_is_found_in_one_split() {
    // Codes 1, 3 and 4 have target 10, codes 0, 2 and 5 have 0: no threshold on the code
    // separates them, a set of categories does.
    let xs: Vec<Vec<f64>> = (0..240).map(|i| vec![f64::from(i % 6)]).collect();
    let high = |c: f64| [1.0, 3.0, 4.0].contains(&c);
    let y: Vec<f64> = xs
        .iter()
        .map(|r| if high(r[0]) { 10.0 } else { 0.0 })
        .collect();
    let x = Matrix::from_vecs(&xs).unwrap();
    let opts = Options {
        learning_rate: 1.0,
        max_iter: 1,
        max_leaf_nodes: Some(2),
        ..quiet()
    };
    let m = fit_regressor(&x, &y, &[true], &opts).unwrap();
    assert_eq!(m.predict(&x), y);
    let tree = &m.trees[0];
    assert_eq!(tree.nodes.len(), 3);
    let set = tree.category_sets[tree.nodes[0].categories.unwrap() as usize];
    let left: Vec<u8> = (0..=255u8)
        .filter(|&c| binning::in_bitset(&set, c))
        .collect();
    assert!(left == [0, 2, 5] || left == [1, 3, 4], "{left:?}");
    // The same codes as numbers need more than one split.
    let numeric = fit_regressor(&x, &y, &[false], &opts).unwrap();
    assert!(rmse(&numeric.predict(&x), &y) > 1.0);
    // An unseen code (and a value that is no code) is treated as missing: with no missing
    // values in training it follows the larger child (equal here, so the right one).
    let probe = Matrix::from_vecs(&[vec![9.0], vec![f64::NAN], vec![1.5], vec![3.0]]).unwrap();
    let p = m.predict(&probe);
    assert_eq!(p[0], p[1]);
    assert_eq!(p[2], p[1]);
    assert_eq!(p[3], 10.0);
}

/// Two informative features, a third of noise; the class of a row is set by x0 + x1 (and
/// by the sign of x0 − x1 for the third class), with 5% of labels flipped at random.
fn planted(n: usize, n_classes: u32, seed: u64) -> (Matrix, Vec<u32>) {
    let mut rng = Rng::new(seed);
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..n {
        let r: Vec<f64> = (0..3).map(|_| rng.normal()).collect();
        let mut c = if r[0] + r[1] > 0.0 { 1 } else { 0 };
        if n_classes == 3 && r[0] - r[1] > 1.0 {
            c = 2;
        }
        if rng.uniform() < 0.05 {
            c = rng.below(n_classes as usize) as u32;
        }
        rows.push(r);
        labels.push(c);
    }
    (Matrix::from_vecs(&rows).unwrap(), labels)
}

fn accuracy(m: &Booster, x: &Matrix, labels: &[u32]) -> f64 {
    let p = m.predict(x);
    let hits = p
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == f64::from(**l))
        .count();
    hits as f64 / labels.len() as f64
}

#[test]
fn binary_classification_of_a_planted_problem() {
    let (x, y) = planted(2000, 2, 5);
    let (xt, yt) = planted(1000, 2, 6);
    let m = fit_classifier(&x, &y, 2, &[false; 3], &quiet()).unwrap();
    let p = m.predict_proba(&xt);
    assert_eq!((p.rows, p.cols), (1000, 2));
    for i in 0..p.rows {
        let row = p.row(i);
        assert!(
            (row[0] + row[1] - 1.0).abs() < 1e-12 && row.iter().all(|v| (0.0..=1.0).contains(v))
        );
    }
    let acc = accuracy(&m, &xt, &yt);
    // The best possible is about 97.5% (5% of labels drawn at random).
    assert!(acc > 0.94, "accuracy {acc}");
    let log_loss: f64 = (0..p.rows)
        .map(|i| -p.get(i, yt[i] as usize).max(1e-15).ln())
        .sum::<f64>()
        / p.rows as f64;
    assert!(log_loss < 0.23, "log loss {log_loss}");
}

#[test]
fn three_class_classification_of_a_planted_problem() {
    let (x, y) = planted(3000, 3, 7);
    let (xt, yt) = planted(1000, 3, 8);
    let m = fit_classifier(&x, &y, 3, &[false; 3], &quiet()).unwrap();
    assert_eq!(m.objective, Objective::MultinomialLogLoss { n_classes: 3 });
    let p = m.predict_proba(&xt);
    assert_eq!(p.cols, 3);
    for i in 0..p.rows {
        assert!((p.row(i).iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    let acc = accuracy(&m, &xt, &yt);
    assert!(acc > 0.93, "accuracy {acc}");
    // Predicted classes are the most probable ones.
    let classes = m.predict(&xt);
    for (i, &c) in classes.iter().enumerate().take(50) {
        let row = p.row(i);
        assert!(row.iter().all(|&v| v <= row[c as usize]));
    }
}

/// 24,000 rows × 8 columns (one categorical): enough to use early stopping by default and
/// the threaded histogram paths.
fn wide(seed: u64) -> (Matrix, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let mut rows = Vec::new();
    let mut y = Vec::new();
    for i in 0..24_000 {
        let mut r: Vec<f64> = (0..7).map(|_| rng.uniform()).collect();
        let code = rng.below(6) as f64;
        let t = 3.0 * r[0] - 2.0 * r[1] * r[2] + [0.0, 1.0, -1.0, 2.0, 0.5, 0.0][code as usize];
        if i % 13 == 0 {
            r[3] = f64::NAN;
        }
        r.push(code);
        rows.push(r);
        y.push(t + 0.3 * rng.normal());
    }
    (Matrix::from_vecs(&rows).unwrap(), y)
}

#[test]
fn models_are_deterministic_and_ignore_the_thread_count() {
    let (x, y) = wide(3);
    let mut cat = vec![false; 8];
    cat[7] = true;
    let fit = |threads: usize, seed: u64| {
        let opts = Options {
            max_iter: 6,
            n_threads: threads,
            seed,
            early_stopping: EarlyStopping::On,
            n_iter_no_change: 2,
            ..Options::default()
        };
        fit_regressor(&x, &y, &cat, &opts).unwrap()
    };
    let one = fit(1, 4);
    let json = |m: &Booster| {
        let mut m = m.clone();
        m.options.n_threads = 0;
        serde_json::to_string(&m).unwrap()
    };
    assert_eq!(json(&one), json(&fit(1, 4)), "same seed, same model");
    assert_eq!(json(&one), json(&fit(2, 4)), "two threads");
    assert_eq!(json(&one), json(&fit(3, 4)), "three threads");
    let trees = |m: &Booster| serde_json::to_string(&m.trees).unwrap();
    assert_ne!(
        trees(&one),
        trees(&fit(1, 5)),
        "another seed, another validation split"
    );
    assert_eq!(one.validation_scores.len(), one.n_iter() + 1);
    assert_eq!(one.predict(&x), fit(2, 4).predict(&x));
}

#[test]
fn early_stopping_stops_on_noise() {
    let mut rng = Rng::new(9);
    let n = 12_000;
    let rows: Vec<Vec<f64>> = (0..n).map(|_| vec![rng.uniform(), rng.uniform()]).collect();
    let y: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    let x = Matrix::from_vecs(&rows).unwrap();
    // Auto: more than 10,000 rows, so on.
    let m = fit_regressor(&x, &y, &[false, false], &Options::default()).unwrap();
    assert!(m.n_iter() < 30, "{} iterations on pure noise", m.n_iter());
    assert_eq!(m.validation_scores.len(), m.n_iter() + 1);
    // Off: every iteration.
    let opts = Options {
        max_iter: 15,
        ..quiet()
    };
    let m = fit_regressor(&x, &y, &[false, false], &opts).unwrap();
    assert_eq!(m.n_iter(), 15);
    assert!(m.validation_scores.is_empty());
}

#[test]
fn the_stopping_rule_is_sklearns() {
    // Stop when none of the last n scores beats the one n + 1 back by more than tol.
    assert!(!should_stop(&[1.0, 2.0], 2, 0.0), "too few scores");
    assert!(should_stop(&[1.0, 1.0, 1.0], 2, 0.0));
    assert!(!should_stop(&[1.0, 1.0, 1.5], 2, 0.0));
    assert!(
        should_stop(&[1.0, 1.0, 1.5], 2, 0.5),
        "an improvement of exactly tol is none"
    );
    assert!(should_stop(&[0.0, 1.0, 1.0, 1.0], 2, 0.0));
}

#[test]
fn the_validation_split_is_stratified() {
    let labels: Vec<u32> = (0..1000).map(|i| if i % 10 == 0 { 1 } else { 0 }).collect();
    let mut rng = Rng::new(1);
    let (train, val) = validation_split(1000, 0.1, Some(&labels), &mut rng).unwrap();
    assert_eq!((train.len(), val.len()), (900, 100));
    assert_eq!(val.iter().filter(|&&i| labels[i] == 1).count(), 10);
    assert!(train.windows(2).all(|w| w[0] < w[1]));
    // A class of one row keeps it for training.
    let mut labels = vec![0u32; 50];
    labels[7] = 1;
    let (train, _) = validation_split(50, 0.5, Some(&labels), &mut rng).unwrap();
    assert!(train.contains(&7));
    assert_eq!(
        validation_split(1, 0.1, None, &mut rng),
        Err(BoostError::TooFewRows {
            rows: 1,
            validation: 1
        })
    );
}

#[test]
fn bad_inputs_are_refused_in_user_terms() {
    let x = Matrix::from_vecs(&[vec![1.0, 0.0], vec![2.0, 1.0], vec![3.0, 1.0]]).unwrap();
    let y = [1.0, 2.0, 3.0];
    let flags = [false, true];
    let o = quiet();
    let empty = Matrix::zeros(0, 2);
    assert_eq!(
        fit_regressor(&empty, &[], &flags, &o).unwrap_err(),
        BoostError::NoRows
    );
    assert_eq!(
        fit_regressor(&Matrix::zeros(3, 0), &y, &[], &o).unwrap_err(),
        BoostError::NoFeatures
    );
    assert_eq!(
        fit_regressor(&x, &y[..2], &flags, &o).unwrap_err(),
        BoostError::LengthMismatch {
            rows: 3,
            targets: 2
        }
    );
    assert_eq!(
        fit_regressor(&x, &y, &[false], &o).unwrap_err(),
        BoostError::CategoricalFlags { flags: 1, cols: 2 }
    );
    let err = fit_regressor(&x, &[1.0, f64::NAN, 3.0], &flags, &o).unwrap_err();
    assert!(
        matches!(err, BoostError::NonFiniteTarget { row: 1, .. }),
        "{err}"
    );
    let mut inf = x.clone();
    inf.set(2, 0, f64::INFINITY);
    assert_eq!(
        fit_regressor(&inf, &y, &flags, &o).unwrap_err(),
        BoostError::InfiniteFeature { row: 2, column: 0 }
    );
    for bad in [255.0, -1.0, 0.5] {
        let mut c = x.clone();
        c.set(1, 1, bad);
        let err = fit_regressor(&c, &y, &flags, &o).unwrap_err();
        assert!(
            matches!(
                err,
                BoostError::BadCategory {
                    row: 1,
                    column: 1,
                    max: 254,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("from 0 to 254"), "{err}");
    }
    let small_bins = Options {
        max_bins: 10,
        ..quiet()
    };
    let mut c = x.clone();
    c.set(0, 1, 10.0);
    assert!(matches!(
        fit_regressor(&c, &y, &flags, &small_bins),
        Err(BoostError::BadCategory { max: 9, .. })
    ));
    let broken = Matrix {
        rows: 3,
        cols: 2,
        data: vec![0.0; 5],
    };
    assert!(matches!(
        fit_regressor(&broken, &y, &flags, &o),
        Err(BoostError::BadMatrix { .. })
    ));

    let labels = [0u32, 1, 1];
    assert_eq!(
        fit_classifier(&x, &[1, 1, 1], 2, &flags, &o).unwrap_err(),
        BoostError::SingleClass { class: 1 }
    );
    assert_eq!(
        fit_classifier(&x, &labels, 1, &flags, &o).unwrap_err(),
        BoostError::TooFewClasses(1)
    );
    assert_eq!(
        fit_classifier(&x, &[0, 2, 1], 2, &flags, &o).unwrap_err(),
        BoostError::LabelOutOfRange {
            row: 1,
            label: 2,
            n_classes: 2
        }
    );
    assert!(matches!(
        fit_classifier(&x, &labels, 50, &flags, &o),
        Err(BoostError::TooManyClasses { .. })
    ));
    let on = Options {
        early_stopping: EarlyStopping::On,
        ..quiet()
    };
    let one_row = Matrix::from_vecs(&[vec![1.0, 0.0]]).unwrap();
    assert!(matches!(
        fit_regressor(&one_row, &[1.0], &flags, &on),
        Err(BoostError::TooFewRows { .. })
    ));
}

#[test]
fn bad_options_are_refused() {
    let x = Matrix::from_vecs(&[vec![1.0], vec![2.0]]).unwrap();
    let bad = [
        Options {
            learning_rate: 0.0,
            ..quiet()
        },
        Options {
            learning_rate: f64::NAN,
            ..quiet()
        },
        Options {
            max_iter: 0,
            ..quiet()
        },
        Options {
            max_leaf_nodes: Some(1),
            ..quiet()
        },
        Options {
            max_depth: Some(0),
            ..quiet()
        },
        Options {
            min_samples_leaf: 0,
            ..quiet()
        },
        Options {
            l2_regularization: -1.0,
            ..quiet()
        },
        Options {
            max_bins: 1,
            ..quiet()
        },
        Options {
            max_bins: 256,
            ..quiet()
        },
        Options {
            validation_fraction: 1.0,
            ..quiet()
        },
        Options {
            n_iter_no_change: 0,
            ..quiet()
        },
        Options {
            tol: -1e-9,
            ..quiet()
        },
        Options {
            n_threads: MAX_THREADS + 1,
            ..quiet()
        },
    ];
    for o in bad {
        let err = fit_regressor(&x, &[1.0, 2.0], &[false], &o).unwrap_err();
        assert!(
            matches!(err, BoostError::InvalidOption(_)),
            "{o:?} gave {err}"
        );
    }
    let fine = Options {
        max_leaf_nodes: None,
        max_depth: Some(1),
        max_bins: 2,
        ..quiet()
    };
    assert!(fit_regressor(&x, &[1.0, 2.0], &[false], &fine).is_ok());
}

#[test]
fn a_constant_target_or_too_few_rows_give_the_baseline() {
    let x = Matrix::from_vecs(&[vec![1.0], vec![2.0], vec![3.0]]).unwrap();
    // Fewer than 2 × min_samples_leaf rows: no split, every prediction is the mean.
    let m = fit_regressor(&x, &[1.0, 2.0, 6.0], &[false], &quiet()).unwrap();
    assert_eq!(m.predict(&x), vec![3.0; 3]);
    assert_eq!(m.feature_importances(), vec![0.0]);
    assert_eq!(m.n_iter(), 100);
    // Constant features: nothing to split on either.
    let xs: Vec<Vec<f64>> = (0..100).map(|_| vec![4.0, f64::NAN]).collect();
    let y: Vec<f64> = (0..100).map(f64::from).collect();
    let m = fit_regressor(
        &Matrix::from_vecs(&xs).unwrap(),
        &y,
        &[false, true],
        &quiet(),
    )
    .unwrap();
    assert!(m.trees.iter().all(|t| t.nodes.len() == 1));
}
