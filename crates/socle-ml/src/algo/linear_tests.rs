//! Tests of `linear.rs` against scikit-learn 1.9.1 (numpy 2.4), whose outputs are embedded
//! below: each expected number was printed by the reference library on the same data.

use super::*;
use proptest::prelude::*;

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol,
            "got {got:?}, want {want:?} (tol {tol})"
        );
    }
}

/// 8 × 3, for OLS and ridge.
fn small() -> (Matrix, Vec<f64>) {
    let x = Matrix::from_vecs(&[
        vec![1.0, 2.0, 0.5],
        vec![2.0, 0.5, 1.5],
        vec![3.0, 4.0, -1.0],
        vec![4.0, 1.0, 2.0],
        vec![5.0, 3.5, 0.0],
        vec![6.0, 2.5, 1.0],
        vec![7.0, 5.0, -0.5],
        vec![8.0, 0.0, 3.0],
    ])
    .unwrap();
    (x, vec![3.1, 4.2, 6.9, 7.8, 11.2, 11.9, 15.1, 14.8])
}

#[test]
fn ols_and_ridge_equal_scikit_learn() {
    let (x, y) = small();
    // LinearRegression().fit(X, y)
    let m = ols(&x, &y, true).unwrap();
    assert!((m.intercept - -0.16347516696315978).abs() < 1e-10);
    assert_close(
        &m.coef,
        &[1.7573536702732653, 0.6059260987488686, 0.2820671352328715],
        1e-10,
    );
    // LinearRegression(fit_intercept=False)
    let m = ols(&x, &y, false).unwrap();
    assert_eq!(m.intercept, 0.0);
    assert_close(
        &m.coef,
        &[1.7735758081911124, 0.537189258365804, 0.18924755086774925],
        1e-10,
    );
    // Ridge(alpha=1.0)
    let m = ridge(&x, &y, 1.0, true).unwrap();
    assert!((m.intercept - 0.3835360926067466).abs() < 1e-10);
    assert_close(
        &m.coef,
        &[1.7560908594517857, 0.44368242874303865, 0.07758698263623545],
        1e-10,
    );
    // Ridge(alpha=10.0, fit_intercept=False)
    let m = ridge(&x, &y, 10.0, false).unwrap();
    assert_close(
        &m.coef,
        &[1.6418853645877216, 0.6180452795167436, 0.2878747228579801],
        1e-10,
    );
    // Predictions are intercept + x·coef.
    let p = m.predict(&x);
    assert!(
        (p[0] - (1.6418853645877216 + 0.6180452795167436 * 2.0 + 0.2878747228579801 * 0.5)).abs()
            < 1e-9
    );
}

#[test]
fn ridge_gives_a_constant_column_a_zero_coefficient() {
    let x = Matrix::from_vecs(&[
        vec![1.0, 5.0, 2.0],
        vec![2.0, 5.0, -1.0],
        vec![4.0, 5.0, 0.5],
        vec![7.0, 5.0, 3.0],
    ])
    .unwrap();
    let y = [1.0, 2.0, 2.5, 5.0];
    // Ridge(alpha=0.5)
    let m = ridge(&x, &y, 0.5, true).unwrap();
    assert!((m.intercept - 0.4677904876580379).abs() < 1e-10);
    assert_close(
        &m.coef,
        &[0.6177001806140878, 0.0, -0.004214328717639876],
        1e-10,
    );
    // OLS cannot tell the constant column from the intercept.
    assert_eq!(ols(&x, &y, true), Err(LinearError::Singular { column: 1 }));
}

#[test]
fn a_rank_deficient_design_is_an_error_naming_the_column() {
    let (x, y) = small();
    // Column 3 = column 0 + 2 · column 2.
    let cols: Vec<Vec<f64>> = (0..3).map(|j| x.column(j)).collect();
    let dup: Vec<f64> = cols[0]
        .iter()
        .zip(&cols[2])
        .map(|(a, b)| a + 2.0 * b)
        .collect();
    let x4 =
        Matrix::from_columns(&[cols[0].clone(), cols[1].clone(), cols[2].clone(), dup]).unwrap();
    let err = ols(&x4, &y, true).unwrap_err();
    assert_eq!(err, LinearError::Singular { column: 3 });
    assert!(err.to_string().contains("column 3"), "{err}");
    // Ridge with alpha > 0 has a unique answer.
    assert!(ridge(&x4, &y, 1e-3, true).is_ok());
    // Fewer rows than coefficients.
    let short = x.select_rows(&[0, 1, 2]);
    assert!(matches!(
        ols(&short, &y[..3], true),
        Err(LinearError::Singular { column: 2 })
    ));
    // An all-zero column without intercept.
    let zero = Matrix::from_columns(&[cols[0].clone(), vec![0.0; 8]]).unwrap();
    assert_eq!(
        ols(&zero, &y, false),
        Err(LinearError::Singular { column: 1 })
    );
}

#[test]
fn bad_input_is_an_error() {
    let (x, y) = small();
    assert_eq!(
        ols(&Matrix::zeros(0, 3), &[], true),
        Err(LinearError::NoRows)
    );
    assert_eq!(
        ols(&x, &y[..7], true),
        Err(LinearError::LengthMismatch {
            rows: 8,
            targets: 7
        })
    );
    let mut bad = x.clone();
    bad.set(5, 2, f64::NAN);
    let err = ridge(&bad, &y, 1.0, true).unwrap_err();
    assert!(
        matches!(
            err,
            LinearError::NonFiniteFeature {
                row: 5,
                column: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("column 2"), "{err}");
    bad.set(5, 2, f64::INFINITY);
    assert!(Scaler::fit(&bad).is_err());
    let mut y_bad = y.clone();
    y_bad[1] = f64::NEG_INFINITY;
    assert!(matches!(
        lasso(&x, &y_bad, 1.0, true, 1e-4, 10),
        Err(LinearError::NonFiniteTarget { row: 1, .. })
    ));
    assert_eq!(ridge(&x, &y, -1.0, true), Err(LinearError::BadAlpha(-1.0)));
    assert!(matches!(
        ridge(&x, &y, f64::NAN, true),
        Err(LinearError::BadAlpha(_))
    ));
    assert_eq!(
        lasso(&x, &y, -0.5, true, 1e-4, 10),
        Err(LinearError::BadAlpha(-0.5))
    );
    assert_eq!(
        elastic_net(&x, &y, 1.0, 1.5, true, 1e-4, 10),
        Err(LinearError::BadL1Ratio(1.5))
    );
    assert!(matches!(
        elastic_net(&x, &y, 1.0, f64::NAN, true, 1e-4, 10),
        Err(LinearError::BadL1Ratio(_))
    ));
    assert!(matches!(
        lasso(&x, &y, 1.0, true, f64::NAN, 10),
        Err(LinearError::BadTol(_))
    ));
    assert_eq!(
        lasso(&x, &y, 1.0, true, 1e-4, 0),
        Err(LinearError::ZeroMaxIter)
    );
}

#[test]
fn scaler_equals_standard_scaler() {
    let x = Matrix::from_vecs(&[
        vec![1.0, 5.0, 2.0],
        vec![2.0, 5.0, -1.0],
        vec![4.0, 5.0, 0.5],
        vec![7.0, 5.0, 3.0],
    ])
    .unwrap();
    let s = Scaler::fit(&x).unwrap();
    assert_close(&s.mean, &[3.5, 5.0, 1.125], 1e-12);
    // The constant column gets scale 1.0, as StandardScaler does.
    assert_close(
        &s.scale,
        &[2.29128784747792, 1.0, 1.5155444566227676],
        1e-12,
    );
    let t = s.transform(&x);
    assert_close(
        t.row(3),
        &[1.5275252316519468, 0.0, 1.2371791482634837],
        1e-12,
    );
    let back = s.inverse_transform(&t);
    assert_close(&back.data, &x.data, 1e-12);
    // A column constant up to rounding is constant too.
    let c = Matrix::from_columns(&[vec![0.1 + 0.2, 0.3, 0.30000000000000004]]).unwrap();
    assert_eq!(Scaler::fit(&c).unwrap().scale, vec![1.0]);
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<Scaler>(&json).unwrap(), s);
}

#[test]
fn unscaling_keeps_the_predictions() {
    let (x, y) = small();
    let s = Scaler::fit(&x).unwrap();
    let on_scaled = ridge(&s.transform(&x), &y, 2.0, true).unwrap();
    let raw = s.unscale(&on_scaled);
    assert_close(
        &raw.predict(&x),
        &on_scaled.predict(&s.transform(&x)),
        1e-10,
    );
}

/// 20 × 5 with a correlated pair (columns 0 and 3); from numpy's RandomState(3), rounded.
#[rustfmt::skip]
const X: [f64; 100] = [
    6.37, 2.31, 1.29, 1.42, 0.17,
    -0.06, 0.75, -0.88, 0.3, -0.43,
    -2.94, 3.65, 3.64, 1.2, 1.15,
    -0.21, -0.64, -3.64, 1.75, -2.3,
    -2.56, 0.38, 5.46, -0.78, -2.07,
    -1.14, 2.88, 0.52, -1.44, 0.31,
    3.24, 6.93, -2.73, 1.4, -1.41,
    -6.26, -1.77, -2.07, -1.67, 0.6,
    -3.87, 2.94, -0.07, -4.54, -0.79,
    -0.77, -1.62, 1.09, -3.43, 0.2,
    4.04, 3.56, 4.32, 4.5, 5.46,
    -2.35, 3.54, -4.58, -1.92, -4.74,
    4.14, 5.0, 0.41, 5.55, -1.02,
    1.45, 1.46, -2.19, 1.93, 6.82,
    -2.07, 3.7, 0.54, 1.81, 2.45,
    3.03, 2.93, 1.75, 0.12, 5.17,
    -3.11, 1.72, 2.84, -2.72, 1.44,
    4.5, 0.93, -1.67, -1.27, -1.92,
    -0.77, -0.55, -1.88, 0.5, -0.72,
    0.67, 3.04, -1.57, 0.35, 7.47,
];
#[rustfmt::skip]
const Y: [f64; 20] = [
    12.69, 0.99, -5.91, 8.09, 2.11, -3.15, -4.22, -3.42, -8.65, 5.33,
    6.6, -7.8, 4.16, 7.74, -5.37, 5.26, -3.16, 9.78, 3.55, 3.61,
];

fn standardised() -> Matrix {
    let x = Matrix::from_rows(20, 5, X.to_vec()).unwrap();
    let s = Scaler::fit(&x).unwrap();
    // StandardScaler().fit(X): mean_ and scale_
    assert_close(
        &s.mean,
        &[
            0.06649999999999998,
            2.057,
            0.02899999999999997,
            0.1529999999999999,
            0.792,
        ],
        1e-12,
    );
    assert_close(
        &s.scale,
        &[
            3.223382191115413,
            2.166211208539001,
            2.6148095532944655,
            2.4195683499335168,
            3.133025055756816,
        ],
        1e-12,
    );
    s.transform(&x)
}

#[test]
fn lasso_equals_scikit_learn_at_tight_tolerance() {
    let xs = standardised();
    // Lasso(alpha, tol=1e-10, max_iter=1_000_000).fit(StandardScaler().fit_transform(X), y)
    let cases: [(f64, [f64; 5]); 5] = [
        (
            0.01,
            [
                5.407392308167685,
                -4.364371780783854,
                0.2828626364007047,
                0.8022596107232696,
                0.6986446500401164,
            ],
        ),
        (
            0.3,
            [
                5.104147826203059,
                -3.817068806412629,
                0.020911683895401507,
                0.5330299521543687,
                0.5480755977718671,
            ],
        ),
        (
            1.0,
            [
                4.352778917328768,
                -2.558496648630872,
                0.0,
                0.0,
                0.006650394317831853,
            ],
        ),
        (
            2.5,
            [1.9673076557664237, -0.17155233456922186, 0.0, 0.0, 0.0],
        ),
        (10.0, [0.0; 5]),
    ];
    for (alpha, want) in cases {
        let fit = lasso(&xs, &Y, alpha, true, 1e-10, 1_000_000).unwrap();
        assert!(fit.converged, "alpha {alpha}");
        assert!((fit.model.intercept - 1.4115).abs() < 1e-9, "alpha {alpha}");
        assert_close(&fit.model.coef, &want, 1e-6);
        // Zeros are exact zeros, as in sklearn.
        for (g, w) in fit.model.coef.iter().zip(&want) {
            assert_eq!(*g == 0.0, *w == 0.0, "alpha {alpha}: {:?}", fit.model.coef);
        }
    }
    // alpha ≥ alpha_max: the start is optimal, no pass at all (sklearn's n_iter_ = 0).
    assert_eq!(
        lasso(&xs, &Y, 10.0, true, 1e-10, 1_000_000)
            .unwrap()
            .iterations,
        0
    );
}

#[test]
fn lasso_follows_scikit_learns_iterates_at_the_default_tolerance() {
    let xs = standardised();
    // Lasso(alpha).fit(...) with tol=1e-4, max_iter=1000: coef_, n_iter_, dual_gap_
    let cases: [(f64, [f64; 5], usize, f64); 4] = [
        (
            0.01,
            [
                5.4074539088194244,
                -4.364418786380145,
                0.2828526830781777,
                0.8022359649401553,
                0.6986474443101588,
            ],
            9,
            0.00046496274599174827,
        ),
        (
            0.3,
            [
                5.1042066148682785,
                -3.817107287613336,
                0.020903949025181365,
                0.5330055190998448,
                0.5480776276327844,
            ],
            9,
            0.000367364570885087,
        ),
        (
            1.0,
            [
                4.352808551766728,
                -2.5585033321261514,
                0.0,
                0.0,
                0.006645487539029382,
            ],
            7,
            0.00013055046543541948,
        ),
        (
            2.5,
            [1.9672845356934048, -0.17154374554203924, 0.0, 0.0, 0.0],
            5,
            3.4194375587048855e-06,
        ),
    ];
    for (alpha, want, n_iter, gap) in cases {
        let fit = lasso(&xs, &Y, alpha, true, 1e-4, 1000).unwrap();
        assert_close(&fit.model.coef, &want, 1e-10);
        assert_eq!(fit.iterations, n_iter, "alpha {alpha}");
        assert!(
            (fit.dual_gap - gap).abs() <= 1e-6 * gap + 1e-13,
            "alpha {alpha}: {}",
            fit.dual_gap
        );
    }
}

#[test]
fn elastic_net_equals_scikit_learn() {
    let xs = standardised();
    // ElasticNet(alpha, l1_ratio, tol=1e-10 or 1e-12, max_iter=1_000_000)
    let cases: [(f64, f64, [f64; 5]); 5] = [
        (
            0.5,
            0.5,
            [
                3.6894479735986754,
                -2.7541511605961007,
                0.0,
                0.7859068342006023,
                0.5454348318402389,
            ],
        ),
        (
            1.0,
            0.2,
            [
                2.3784304928110966,
                -1.6607649254285997,
                0.00292479342988646,
                0.7634724291872583,
                0.48030377810704283,
            ],
        ),
        (
            0.1,
            0.9,
            [
                5.236565044528842,
                -4.14590936228571,
                0.20373042608436412,
                0.7449532632792171,
                0.6565044389043471,
            ],
        ),
        // Pure L2 (formulation B of the gap) and no penalty at all (OLS by descent).
        (
            0.7,
            0.0,
            [
                2.6507559703132624,
                -1.9757619672955768,
                0.11022734122674378,
                0.8853160062177611,
                0.5800547433034954,
            ],
        ),
        (
            0.0,
            0.5,
            [
                5.417849014640169,
                -4.38324429703938,
                0.2918954279036598,
                0.8115433919024495,
                0.7038366863093529,
            ],
        ),
    ];
    for (alpha, l1_ratio, want) in cases {
        let fit = elastic_net(&xs, &Y, alpha, l1_ratio, true, 1e-12, 1_000_000).unwrap();
        assert!(fit.converged, "alpha {alpha} l1_ratio {l1_ratio}");
        assert_close(&fit.model.coef, &want, 1e-6);
    }
    // Default tolerance: sklearn's iterates.
    let fit = elastic_net(&xs, &Y, 0.5, 0.5, true, 1e-4, 1000).unwrap();
    assert_close(
        &fit.model.coef,
        &[
            3.68953113002646,
            -2.7541708924271537,
            0.0,
            0.7858741848274149,
            0.5454313371391194,
        ],
        1e-10,
    );
    assert_eq!(fit.iterations, 7);
    let fit = elastic_net(&xs, &Y, 0.7, 0.0, true, 1e-4, 1000).unwrap();
    assert_close(
        &fit.model.coef,
        &[
            2.650787544627039,
            -1.9757593167533316,
            0.11022801589696293,
            0.8853035472955666,
            0.5800530042285897,
        ],
        1e-10,
    );
    assert_eq!(fit.iterations, 6);
    // alpha = 0 by descent is OLS.
    let by_ols = ols(&xs, &Y, true).unwrap();
    let by_cd = elastic_net(&xs, &Y, 0.0, 0.5, true, 1e-12, 1_000_000).unwrap();
    assert_close(&by_cd.model.coef, &by_ols.coef, 1e-8);
}

#[test]
fn lasso_on_raw_features_with_and_without_intercept() {
    let x = Matrix::from_rows(20, 5, X.to_vec()).unwrap();
    // Lasso(alpha=0.3, fit_intercept=False, tol=1e-10, max_iter=1_000_000).fit(X, y)
    let fit = lasso(&x, &Y, 0.3, false, 1e-10, 1_000_000).unwrap();
    assert_eq!(fit.model.intercept, 0.0);
    assert_close(
        &fit.model.coef,
        &[
            1.4401726557341301,
            -0.6662485109145327,
            0.0,
            0.0,
            0.42267752667170805,
        ],
        1e-6,
    );
    // Lasso(alpha=0.3, tol=1e-10, max_iter=1_000_000).fit(X, y)
    let fit = lasso(&x, &Y, 0.3, true, 1e-10, 1_000_000).unwrap();
    assert!((fit.model.intercept - 5.019274284436452).abs() < 1e-6);
    assert_close(
        &fit.model.coef,
        &[
            1.6542897500183935,
            -1.9106938773695907,
            0.07035472876223763,
            0.27188549139794227,
            0.21322472931639147,
        ],
        1e-6,
    );
    // Too few iterations: a result, flagged as not converged.
    let fit = lasso(&x, &Y, 0.3, true, 1e-10, 2).unwrap();
    assert!(!fit.converged);
    assert_eq!(fit.iterations, 2);
}

#[test]
fn a_constant_target_gives_zero_coefficients() {
    let x = Matrix::from_rows(20, 5, X.to_vec()).unwrap();
    let y = [4.0; 20];
    let fit = lasso(&x, &y, 0.1, true, 1e-4, 1000).unwrap();
    assert_eq!(fit.model.coef, vec![0.0; 5]);
    assert_eq!(fit.model.intercept, 4.0);
    assert_eq!(fit.iterations, 0);
    // A zero column is skipped, not divided by.
    let mut cols: Vec<Vec<f64>> = (0..5).map(|j| x.column(j)).collect();
    cols[2] = vec![0.0; 20];
    let z = Matrix::from_columns(&cols).unwrap();
    let fit = lasso(&z, &Y, 0.1, false, 1e-8, 10_000).unwrap();
    assert_eq!(fit.model.coef[2], 0.0);
    assert!(fit.model.coef.iter().all(|v| v.is_finite()));
}

#[test]
fn models_round_trip_through_json() {
    let m = LinearModel {
        intercept: 1.5,
        coef: vec![0.25, -3.0],
    };
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(json, r#"{"intercept":1.5,"coef":[0.25,-3.0]}"#);
    assert_eq!(serde_json::from_str::<LinearModel>(&json).unwrap(), m);
}

/// Well-conditioned random designs: `n ≥ 4p + 4` rows of uniform values.
fn design() -> impl Strategy<Value = (Matrix, Vec<f64>)> {
    (1usize..6).prop_flat_map(|p| {
        (4 * p + 4..4 * p + 30).prop_flat_map(move |n| {
            (
                prop::collection::vec(-1.0f64..1.0, n * p),
                prop::collection::vec(-5.0f64..5.0, n),
            )
                .prop_map(move |(data, y)| (Matrix::from_rows(n, p, data).unwrap(), y))
        })
    })
}

fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

proptest! {
    #[test]
    fn ridge_approaches_ols_as_alpha_vanishes((x, y) in design(), fit_intercept in any::<bool>()) {
        let w0 = ols(&x, &y, fit_intercept);
        prop_assume!(w0.is_ok(), "singular draw");
        let w0 = w0.unwrap();
        let norm = w0.coef.iter().map(|v| v * v).sum::<f64>().sqrt();
        let far = ridge(&x, &y, 1e-1, fit_intercept).unwrap();
        let near = ridge(&x, &y, 1e-4, fit_intercept).unwrap();
        let nearest = ridge(&x, &y, 1e-9, fit_intercept).unwrap();
        let (d_far, d_near) = (distance(&far.coef, &w0.coef), distance(&near.coef, &w0.coef));
        let d_nearest = distance(&nearest.coef, &w0.coef);
        prop_assert!(d_near <= d_far + 1e-12, "{d_near} > {d_far}");
        prop_assert!(d_nearest <= d_near + 1e-12, "{d_nearest} > {d_near}");
        prop_assert!(d_nearest <= 1e-6 * (1.0 + norm), "{d_nearest}");
        prop_assert!((nearest.intercept - w0.intercept).abs() <= 1e-6 * (1.0 + norm));
    }
}
