//! Tests of [`super`] against scikit-learn 1.9.1: predictions of
//! `HistGradientBoostingRegressor` and `HistGradientBoostingClassifier` (10 iterations, no
//! early stopping, `categorical_features=[2]`) on a fixed 300-row dataset with missing values
//! and a categorical column, computed in Python and embedded here; then the JSON model.

use super::super::Matrix;
use super::tests::{assert_close, quiet};
use super::*;

/// The dataset of `sklearn_small` below, built with the same arithmetic as in Python:
/// 300 rows, x0 and x1 numeric, x2 categorical (codes 0–4), NaNs in each column.
fn small() -> (Matrix, Vec<f64>) {
    let effect = [1.5, -2.0, 0.5, 3.0, -1.0];
    let mut rows = Vec::new();
    let mut y = Vec::new();
    for i in 0..300usize {
        let mut x0 = ((i * 37) % 101) as f64 / 7.0;
        let mut x1 = ((i * 53 + 11) % 97) as f64 / 13.0;
        let mut x2 = ((i * 7 + i / 13) % 5) as f64;
        let step = if x0 > 7.0 { 3.0 } else { 0.0 };
        let mut t = step + 0.5 * x1 + effect[x2 as usize] + ((i * 31) % 17) as f64 / 17.0 - 0.5;
        if i % 11 == 3 {
            x0 = f64::NAN;
            t += 1.0;
        }
        if i % 17 == 5 {
            x1 = f64::NAN;
        }
        if i % 19 == 7 {
            x2 = f64::NAN;
        }
        rows.push(vec![x0, x1, x2]);
        y.push(t);
    }
    (Matrix::from_vecs(&rows).unwrap(), y)
}

/// Rows to predict: training rows 0, 1, 2, 3 (x0 missing), 5 (x1 missing), 7 (x2 missing),
/// an unknown category (7), all missing, values beyond the training range.
fn small_new_rows() -> Matrix {
    let nan = f64::NAN;
    Matrix::from_vecs(&[
        vec![0.0, 0.846_153_846_153_846_1, 0.0],
        vec![5.285_714_285_714_286, 4.923_076_923_076_923, 2.0],
        vec![10.571_428_571_428_571, 1.538_461_538_461_538_5, 4.0],
        vec![nan, 5.615_384_615_384_615, 1.0],
        vec![12.0, nan, 0.0],
        vec![8.142_857_142_857_142, 7.0, nan],
        vec![3.0, 2.0, 7.0],
        vec![nan, nan, nan],
        vec![20.0, -1.0, 4.0],
    ])
    .unwrap()
}

#[test]
fn sklearn_small_regression() {
    // HistGradientBoostingRegressor(max_iter=10, early_stopping=False,
    // categorical_features=[2]).fit(X, y).predict(new), scikit-learn 1.9.1.
    let want = [
        2.560_114_849_014_256,
        3.367_686_178_921_275,
        3.169_266_756_986_700_4,
        3.781_183_390_723_906_5,
        5.337_957_965_218_595,
        4.016_433_970_479_654,
        2.411_475_370_347_475_6,
        3.085_198_326_357_85,
        3.169_266_756_986_700_4,
    ];
    let (x, y) = small();
    let opts = Options {
        max_iter: 10,
        ..quiet()
    };
    let m = fit_regressor(&x, &y, &[false, false, true], &opts).unwrap();
    assert_eq!(m.n_iter(), 10);
    // The same trees and sums as sklearn: agreement to the last bit or so.
    assert_close(&m.predict(&small_new_rows()), &want, 1e-12);
}

#[test]
fn sklearn_small_binary() {
    // HistGradientBoostingClassifier(max_iter=10, early_stopping=False,
    // categorical_features=[2]) on y > median(y): predict_proba(new)[:, 1].
    let want = [
        0.246_484_819_538_072_7,
        0.337_136_807_504_902_27,
        0.260_318_138_746_381_8,
        0.580_269_936_638_032_4,
        0.813_614_498_632_436_4,
        0.648_030_210_556_606,
        0.209_151_209_413_065_78,
        0.305_730_198_037_750_14,
        0.273_306_181_449_335_7,
    ];
    let (x, y) = small();
    let labels: Vec<u32> = y
        .iter()
        .map(|&v| u32::from(v > 3.536_199_095_022_624_3))
        .collect();
    let opts = Options {
        max_iter: 10,
        ..quiet()
    };
    let m = fit_classifier(&x, &labels, 2, &[false, false, true], &opts).unwrap();
    assert_eq!(m.n_classes(), 2);
    let p = m.predict_proba(&small_new_rows());
    assert_close(&p.column(1), &want, 1e-12);
    let classes = m.predict(&small_new_rows());
    assert_eq!(classes, vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
}

#[test]
fn sklearn_small_multiclass() {
    // The same on np.digitize(y, np.quantile(y, [1/3, 2/3])): predict_proba(new).
    let want = [
        [
            0.793_887_264_343_870_2,
            0.132_713_777_169_011_03,
            0.073_398_958_487_118_64,
        ],
        [
            0.204_034_440_025_562_4,
            0.704_091_413_262_687_1,
            0.091_874_146_711_750_45,
        ],
        [
            0.136_695_945_856_402_4,
            0.759_651_668_445_615_5,
            0.103_652_385_697_982_1,
        ],
        [
            0.475_257_115_667_711_2,
            0.330_006_134_877_821_4,
            0.194_736_749_454_467_3,
        ],
        [
            0.099_376_074_618_528_18,
            0.242_826_613_128_177_47,
            0.657_797_312_253_294_3,
        ],
        [
            0.116_874_860_995_176_26,
            0.147_665_633_212_894_8,
            0.735_459_505_791_929,
        ],
        [
            0.815_491_300_188_259_4,
            0.109_342_205_432_253_27,
            0.075_166_494_379_487_29,
        ],
        [
            0.191_619_298_770_198_4,
            0.616_624_958_096_381_6,
            0.191_755_743_133_419_95,
        ],
        [
            0.357_015_718_256_660_23,
            0.503_224_277_449_274_1,
            0.139_760_004_294_065_65,
        ],
    ];
    let (x, y) = small();
    let (q1, q2) = (2.528_657_616_892_910_5, 4.778_280_542_986_425);
    let labels: Vec<u32> = y
        .iter()
        .map(|&v| u32::from(v >= q1) + u32::from(v >= q2))
        .collect();
    let opts = Options {
        max_iter: 10,
        ..quiet()
    };
    let m = fit_classifier(&x, &labels, 3, &[false, false, true], &opts).unwrap();
    assert_eq!(m.trees.len(), 30, "one tree per class per iteration");
    let p = m.predict_proba(&small_new_rows());
    for (i, row) in want.iter().enumerate() {
        assert_close(p.row(i), row, 1e-12);
    }
}

#[test]
fn the_model_round_trips_through_json() {
    let (x, y) = small();
    let opts = Options {
        max_iter: 5,
        ..quiet()
    };
    let m = fit_regressor(&x, &y, &[false, false, true], &opts).unwrap();
    let json = serde_json::to_string(&m).unwrap();
    let back: Booster = serde_json::from_str(&json).unwrap();
    // serde_json reads floats back exactly only with its `float_roundtrip` feature: without
    // it a value may come back one unit in the last place away, so compare to 1e-12.
    assert_eq!(serde_json::to_string(&back.trees.len()).unwrap(), "5");
    assert_eq!(
        (back.objective, back.n_features),
        (m.objective, m.n_features)
    );
    assert_eq!(back.mapper.categories, m.mapper.categories);
    for (a, b) in back.trees.iter().zip(&m.trees) {
        assert_eq!(a.category_sets, b.category_sets);
        let shape = |t: &Tree| {
            t.nodes
                .iter()
                .map(|n| (n.left, n.right, n.feature, n.bin))
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(a), shape(b));
    }
    let rows = small_new_rows();
    assert_close(&back.predict(&rows), &m.predict(&rows), 1e-12);
    assert_eq!(back.format_version, FORMAT_VERSION);

    // Options: sklearn's defaults for missing fields, unknown fields refused.
    let o: Options = serde_json::from_str(r#"{"max_iter": 7, "early_stopping": "off"}"#).unwrap();
    assert_eq!(
        (o.max_iter, o.max_leaf_nodes, o.early_stopping),
        (7, Some(31), EarlyStopping::Off)
    );
    assert!(serde_json::from_str::<Options>(r#"{"max_iters": 7}"#).is_err());

    // A damaged model is refused, not followed.
    let mut damaged = m.clone();
    damaged.trees[0].nodes[0].left = 0;
    damaged.trees[0].nodes[0].right = 0;
    assert!(
        damaged.try_predict(&rows).is_ok(),
        "a root leaf is still a tree"
    );
    let mut damaged = m.clone();
    damaged.trees[1].nodes[1].left = 1;
    assert!(
        matches!(damaged.try_predict(&rows), Err(BoostError::BadModel(_))),
        "a loop"
    );
    let mut damaged = m.clone();
    damaged.format_version = 99;
    assert!(matches!(
        damaged.try_predict(&rows),
        Err(BoostError::BadModel(_))
    ));
    let mut damaged = m;
    damaged.trees.pop();
    damaged.baseline.push(0.0);
    assert!(matches!(damaged.check(), Err(BoostError::BadModel(_))));
}

#[test]
fn predictions_need_the_training_columns() {
    let (x, y) = small();
    let m = fit_regressor(
        &x,
        &y,
        &[false, false, true],
        &Options {
            max_iter: 2,
            ..quiet()
        },
    )
    .unwrap();
    assert_eq!(
        m.try_predict(&Matrix::zeros(2, 2)).unwrap_err(),
        BoostError::WrongColumnCount {
            expected: 3,
            got: 2
        }
    );
    assert_eq!(
        m.try_predict_proba(&x).unwrap_err(),
        BoostError::NotAClassifier
    );
    assert!(m.predict(&Matrix::zeros(0, 3)).is_empty());
    assert_eq!(m.n_classes(), 0);
}

#[test]
#[should_panic(expected = "the matrix has 2 columns but the model was trained on 3")]
fn predict_panics_on_the_wrong_columns() {
    let (x, y) = small();
    let m = fit_regressor(
        &x,
        &y,
        &[false, false, true],
        &Options {
            max_iter: 1,
            ..quiet()
        },
    );
    m.unwrap().predict(&Matrix::zeros(1, 2));
}
