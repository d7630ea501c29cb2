//! Tests of `logistic.rs` against scikit-learn 1.9.1. The expected numbers are sklearn's
//! `LogisticRegression` run to the optimum (`solver="newton-cholesky"`, `tol=1e-14`, which
//! agrees with `newton-cg` to 1e-13); sklearn's default `lbfgs` reaches them to about 1e-6.

use super::*;

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol,
            "got {got:?}, want {want:?} (tol {tol})"
        );
    }
}

fn tight() -> LogisticOptions {
    LogisticOptions {
        max_iter: 10_000,
        tol: 1e-10,
        ..LogisticOptions::default()
    }
}

/// 16 points in 2-D, two overlapping classes.
fn binary_data() -> (Matrix, Vec<u32>) {
    let x = Matrix::from_vecs(&[
        vec![0.5, 1.2],
        vec![1.0, 0.3],
        vec![1.5, 2.2],
        vec![2.0, 1.1],
        vec![2.5, 0.4],
        vec![3.0, 2.9],
        vec![3.5, 1.6],
        vec![4.0, 3.1],
        vec![1.2, 2.8],
        vec![2.2, 3.3],
        vec![3.8, 0.9],
        vec![4.5, 2.0],
        vec![0.8, 0.2],
        vec![2.9, 2.5],
        vec![1.9, 1.7],
        vec![4.2, 3.8],
    ])
    .unwrap();
    (x, vec![0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1])
}

/// Rows 0–9, 50–59 and 100–109 of the iris data set (sklearn's `load_iris`).
#[rustfmt::skip]
const IRIS: [f64; 120] = [
    5.1, 3.5, 1.4, 0.2,  4.9, 3.0, 1.4, 0.2,  4.7, 3.2, 1.3, 0.2,  4.6, 3.1, 1.5, 0.2,
    5.0, 3.6, 1.4, 0.2,  5.4, 3.9, 1.7, 0.4,  4.6, 3.4, 1.4, 0.3,  5.0, 3.4, 1.5, 0.2,
    4.4, 2.9, 1.4, 0.2,  4.9, 3.1, 1.5, 0.1,
    7.0, 3.2, 4.7, 1.4,  6.4, 3.2, 4.5, 1.5,  6.9, 3.1, 4.9, 1.5,  5.5, 2.3, 4.0, 1.3,
    6.5, 2.8, 4.6, 1.5,  5.7, 2.8, 4.5, 1.3,  6.3, 3.3, 4.7, 1.6,  4.9, 2.4, 3.3, 1.0,
    6.6, 2.9, 4.6, 1.3,  5.2, 2.7, 3.9, 1.4,
    6.3, 3.3, 6.0, 2.5,  5.8, 2.7, 5.1, 1.9,  7.1, 3.0, 5.9, 2.1,  6.3, 2.9, 5.6, 1.8,
    6.5, 3.0, 5.8, 2.2,  7.6, 3.0, 6.6, 2.1,  4.9, 2.5, 4.5, 1.7,  7.3, 2.9, 6.3, 1.8,
    6.7, 2.5, 5.8, 1.8,  7.2, 3.6, 6.1, 2.5,
];

fn iris() -> (Matrix, Vec<u32>) {
    let x = Matrix::from_rows(30, 4, IRIS.to_vec()).unwrap();
    let y = (0..30).map(|i| (i / 10) as u32).collect();
    (x, y)
}

#[test]
fn binary_equals_scikit_learn() {
    let (x, y) = binary_data();
    // LogisticRegression(C, fit_intercept): coef_, intercept_, predict_proba[[0, 4, 9, 15], 1]
    // (C, fit_intercept, coef_, intercept_, probabilities)
    type Case = (f64, bool, [f64; 2], f64, [f64; 4]);
    let cases: [Case; 3] = [
        (
            1.0,
            true,
            [1.2337632361334545, 0.4617836443829663],
            -3.908366958106212,
            [
                0.0608053504236501,
                0.34541713540321667,
                0.5817102720271884,
                0.9538326977274358,
            ],
        ),
        (
            10.0,
            true,
            [1.8531644981561668, 0.6439738691151176],
            -5.76404175653837,
            [
                0.016878520352874116,
                0.2945180357123931,
                0.6077904506718879,
                0.9886413250672056,
            ],
        ),
        (
            0.5,
            false,
            [0.31557085794969947, -0.11849266074807425],
            0.0,
            [
                0.5038984800168482,
                0.6773303520796519,
                0.5752319528084853,
                0.7058110860077587,
            ],
        ),
    ];
    for (c, fit_intercept, coef, intercept, proba) in cases {
        let opts = LogisticOptions {
            c,
            fit_intercept,
            ..tight()
        };
        let fit = logistic(&x, &y, &opts).unwrap();
        let m = &fit.model;
        assert_eq!((m.n_classes, m.coef.len(), m.intercept.len()), (2, 1, 1));
        assert_close(&m.coef[0], &coef, 1e-5);
        assert!(
            (m.intercept[0] - intercept).abs() < 1e-5,
            "C {c}: {:?}",
            m.intercept
        );
        let p = m.predict_proba(&x.select_rows(&[0, 4, 9, 15]));
        assert_close(&p.column(1), &proba, 1e-6);
        for i in 0..4 {
            assert!((p.get(i, 0) + p.get(i, 1) - 1.0).abs() < 1e-12);
        }
    }
}

#[test]
fn multinomial_equals_scikit_learn_on_iris() {
    let (x, y) = iris();
    let fit = logistic(&x, &y, &tight()).unwrap();
    let m = &fit.model;
    assert_eq!((m.n_classes, m.coef.len()), (3, 3));
    // LogisticRegression(C=1.0).fit(X, y): coef_ and intercept_
    let coef = [
        [
            -0.28453707921288607,
            0.49272794606960324,
            -1.5573999491250854,
            -0.6651935663341209,
        ],
        [
            0.5065555612780208,
            -0.1667222476324954,
            -0.1720648139135777,
            -0.26545988174855256,
        ],
        [
            -0.2220184820651359,
            -0.32600569843710736,
            1.729464763038662,
            0.9306534480826734,
        ],
    ];
    for (got, want) in m.coef.iter().zip(&coef) {
        assert_close(got, want, 1e-4);
    }
    assert_close(
        &m.intercept,
        &[6.469860121320317, 0.03448991315628547, -6.5043500344766025],
        1e-3,
    );
    // predict_proba on rows 0, 5, 12, 19, 20, 27
    let want = [
        [
            0.9363798374043624,
            0.06359683531738768,
            2.3327278249928204e-05,
        ],
        [
            0.902008318307475,
            0.09793081312598227,
            6.086856654278218e-05,
        ],
        [0.009066162720228102, 0.7142015467891939, 0.2767322904905779],
        [0.11576193007555038, 0.743795357891233, 0.14044271203321682],
        [
            0.0002052836872495623,
            0.06035901978079279,
            0.9394356965319577,
        ],
        [
            0.00014498666713514438,
            0.1402208946639161,
            0.8596341186689487,
        ],
    ];
    let p = m.predict_proba(&x.select_rows(&[0, 5, 12, 19, 20, 27]));
    for (i, w) in want.iter().enumerate() {
        assert_close(p.row(i), w, 1e-5);
    }
    // sklearn predicts every training row's own class here.
    assert_eq!(m.predict(&x), y);
}

#[test]
fn multinomial_without_intercept_and_stronger_penalty() {
    let (x, y) = iris();
    let opts = LogisticOptions {
        c: 0.1,
        fit_intercept: false,
        ..tight()
    };
    let m = logistic(&x, &y, &opts).unwrap().model;
    assert_eq!(m.intercept, vec![0.0; 3]);
    // LogisticRegression(C=0.1, fit_intercept=False)
    let coef = [
        [
            0.15249031119722783,
            0.3700041878836425,
            -0.5316212405469796,
            -0.250104712683889,
        ],
        [
            0.05204915573572609,
            -0.13263557365990103,
            0.09317251520187755,
            0.006077860523944382,
        ],
        [
            -0.20453946693295386,
            -0.23736861422374178,
            0.4384487253451022,
            0.24402685215994455,
        ],
    ];
    for (got, want) in m.coef.iter().zip(&coef) {
        assert_close(got, want, 1e-5);
    }
    let p = m.predict_proba(&x.select_rows(&[0, 12, 27]));
    assert_close(
        p.row(0),
        &[0.7444182357486715, 0.19384555546383797, 0.0617362087874904],
        1e-6,
    );
    assert_close(
        p.row(1),
        &[0.1341476538873171, 0.4429589568256108, 0.4228933892870721],
        1e-6,
    );
    assert_close(
        p.row(2),
        &[0.04166425128898284, 0.37845494402021057, 0.5798808046908066],
        1e-6,
    );
}

#[test]
fn the_default_options_converge() {
    let (x, y) = iris();
    let fit = logistic(&x, &y, &LogisticOptions::default()).unwrap();
    assert!(fit.converged);
    assert!(fit.iterations > 0 && fit.iterations < 1000);
    assert!(fit.objective.is_finite() && fit.objective > 0.0);
    let p = fit.model.predict_proba(&x.select_rows(&[12]));
    assert_close(
        p.row(0),
        &[0.009066162720228102, 0.7142015467891939, 0.2767322904905779],
        1e-4,
    );
}

#[test]
fn separable_data_gives_finite_coefficients() {
    let x = Matrix::from_vecs(&[vec![0.0], vec![1.0], vec![2.0], vec![3.0]]).unwrap();
    let m = logistic(&x, &[0, 0, 1, 1], &LogisticOptions::default())
        .unwrap()
        .model;
    assert!(m.coef[0][0].is_finite() && m.coef[0][0] > 0.0);
    assert_eq!(m.predict(&x), vec![0, 0, 1, 1]);
}

#[test]
fn bad_labels_and_options_are_errors() {
    let (x, y) = binary_data();
    let opts = LogisticOptions::default();
    assert_eq!(
        logistic(&x, &[1; 16], &opts),
        Err(LinearError::SingleClass { class: 1 })
    );
    let gap: Vec<u32> = y.iter().map(|&v| v * 2).collect();
    let err = logistic(&x, &gap, &opts).unwrap_err();
    assert_eq!(err, LinearError::EmptyClass { class: 1, max: 2 });
    assert!(err.to_string().contains("class 1 has no rows"), "{err}");
    assert_eq!(
        logistic(&x, &y[..3], &opts),
        Err(LinearError::LengthMismatch {
            rows: 16,
            targets: 3
        })
    );
    assert_eq!(
        logistic(&Matrix::zeros(0, 2), &[], &opts),
        Err(LinearError::NoRows)
    );
    let mut bad = x.clone();
    bad.set(3, 1, f64::NAN);
    assert!(matches!(
        logistic(&bad, &y, &opts),
        Err(LinearError::NonFiniteFeature {
            row: 3,
            column: 1,
            ..
        })
    ));
    let zero_c = LogisticOptions {
        c: 0.0,
        ..opts.clone()
    };
    assert_eq!(logistic(&x, &y, &zero_c), Err(LinearError::BadC(0.0)));
    let nan_c = LogisticOptions {
        c: f64::NAN,
        ..opts.clone()
    };
    assert!(matches!(
        logistic(&x, &y, &nan_c),
        Err(LinearError::BadC(_))
    ));
    let no_iter = LogisticOptions {
        max_iter: 0,
        ..opts
    };
    assert_eq!(logistic(&x, &y, &no_iter), Err(LinearError::ZeroMaxIter));
}

#[test]
fn no_penalty_is_allowed_and_json_round_trips() {
    let (x, y) = binary_data();
    let opts = LogisticOptions {
        c: f64::INFINITY,
        ..LogisticOptions::default()
    };
    let m = logistic(&x, &y, &opts).unwrap().model;
    // LogisticRegression(C=np.inf): the maximum-likelihood fit.
    assert_close(&m.coef[0], &[2.026904791060626, 0.693244522982222], 1e-4);
    assert!(
        (m.intercept[0] - -6.278008179697136).abs() < 1e-3,
        "{:?}",
        m.intercept
    );
    let json = serde_json::to_string(&m).unwrap();
    assert!(json.starts_with(r#"{"n_classes":2,"coef":[["#), "{json}");
    assert_eq!(serde_json::from_str::<LogisticModel>(&json).unwrap(), m);
}
