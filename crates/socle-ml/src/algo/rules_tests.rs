//! Tests of [`super`] (association rules): values and rule counts computed with mlxtend 0.25
//! on its documentation example, errors, limits, JSON, and direct counts over random baskets.

use super::super::Rng;
use super::super::fpgrowth::{Transactions, frequent_itemsets};
use super::*;

/// mlxtend's documentation example (the fifth basket repeats Onion).
fn doc() -> Transactions {
    Transactions::from_baskets(&[
        vec!["Milk", "Onion", "Nutmeg", "Kidney Beans", "Eggs", "Yogurt"],
        vec!["Dill", "Onion", "Nutmeg", "Kidney Beans", "Eggs", "Yogurt"],
        vec!["Milk", "Apple", "Kidney Beans", "Eggs"],
        vec!["Milk", "Unicorn", "Corn", "Kidney Beans", "Yogurt"],
        vec![
            "Corn",
            "Onion",
            "Onion",
            "Kidney Beans",
            "Ice cream",
            "Eggs",
        ],
    ])
    .expect("baskets")
}

fn rules_for(support: f64, metric: Metric, threshold: f64) -> (Transactions, Vec<Rule>) {
    let t = doc();
    let sets = frequent_itemsets(&t, support, None).expect("itemsets");
    let rules = association_rules(&sets, t.len(), metric, threshold).expect("rules");
    (t, rules)
}

fn sides<'a>(t: &'a Transactions, rule: &Rule) -> (Vec<&'a str>, Vec<&'a str>) {
    (
        t.item_names(&rule.antecedents),
        t.item_names(&rule.consequents),
    )
}

fn metrics(rule: &Rule) -> [f64; 12] {
    Metric::ALL.map(|m| rule.metric(m))
}

fn assert_metrics(got: [f64; 12], want: [f64; 12], what: &str) {
    for ((g, w), m) in got.iter().zip(want).zip(Metric::ALL) {
        let same = if w.is_infinite() {
            *g == w
        } else {
            (g - w).abs() <= 1e-12
        };
        assert!(same, "{what} {m}: got {g}, want {w}");
    }
}

const INF: f64 = f64::INFINITY;

#[test]
fn mlxtend_documentation_example() {
    // mlxtend 0.25: association_rules(fpgrowth(df, 0.6, use_colnames=True), 5,
    // metric="confidence", min_threshold=0.7), sorted our way. Columns: antecedent
    // support, consequent support, support, confidence, lift, representativity, leverage,
    // conviction, zhangs_metric, jaccard, certainty, kulczynski.
    type Row = (&'static [&'static str], &'static [&'static str], [f64; 12]);
    let eggs_onion = [
        0.8,
        0.6,
        0.6,
        0.75,
        1.25,
        1.0,
        0.12,
        1.6,
        1.0000000000000002,
        0.75,
        0.37500000000000006,
        0.875,
    ];
    let onion_eggs = [
        0.6, 0.8, 0.6, 1.0, 1.25, 1.0, 0.12, INF, 0.5, 0.75, 1.0, 0.875,
    ];
    let to_beans = |s: f64| {
        [
            s,
            1.0,
            s,
            1.0,
            1.0,
            1.0,
            0.0,
            INF,
            0.0,
            s,
            0.0,
            (1.0 + s) / 2.0,
        ]
    };
    let want: [Row; 12] = [
        (&["Eggs"], &["Kidney Beans"], to_beans(0.8)),
        (&["Eggs"], &["Onion"], eggs_onion),
        (&["Eggs"], &["Kidney Beans", "Onion"], eggs_onion),
        (
            &["Kidney Beans"],
            &["Eggs"],
            [1.0, 0.8, 0.8, 0.8, 1.0, 1.0, 0.0, 1.0, 0.0, 0.8, 0.0, 0.9],
        ),
        (&["Milk"], &["Kidney Beans"], to_beans(0.6)),
        (&["Onion"], &["Eggs"], onion_eggs),
        (&["Onion"], &["Kidney Beans"], to_beans(0.6)),
        (&["Onion"], &["Eggs", "Kidney Beans"], onion_eggs),
        (&["Yogurt"], &["Kidney Beans"], to_beans(0.6)),
        (&["Eggs", "Kidney Beans"], &["Onion"], eggs_onion),
        (&["Eggs", "Onion"], &["Kidney Beans"], to_beans(0.6)),
        (&["Kidney Beans", "Onion"], &["Eggs"], onion_eggs),
    ];
    let (t, rules) = rules_for(0.6, Metric::Confidence, 0.7);
    assert_eq!(rules.len(), want.len());
    for (rule, (ante, cons, values)) in rules.iter().zip(want) {
        let what = format!("{ante:?} -> {cons:?}");
        assert_eq!(sides(&t, rule), (ante.to_vec(), cons.to_vec()), "{what}");
        assert_metrics(metrics(rule), values, &what);
    }
    // Confidence 1 gives an infinite conviction, as in mlxtend.
    assert_eq!(rules[0].conviction, f64::INFINITY);
    assert_eq!(rules[3].conviction, 1.0);
}

#[test]
fn rule_counts_per_metric_match_mlxtend() {
    // Counts from mlxtend 0.25 on the documentation example.
    let cases = [
        (0.6, "confidence", 0.0, 16),
        (0.6, "conviction", 1.5, 11),
        (0.6, "support", 0.6, 16),
        (0.6, "lift", 1.2, 6),
        (0.6, "leverage", 0.1, 6),
        (0.6, "zhangs_metric", 0.5, 6),
        (0.6, "jaccard", 0.7, 8),
        (0.6, "certainty", 0.4, 3),
        (0.6, "kulczynski", 0.8, 16),
        (0.6, "representativity", 1.0, 16),
        (0.6, "antecedent support", 0.7, 9),
        (0.6, "consequent support", 0.7, 9),
        (0.6, "confidence", 0.75, 12),
        (0.4, "confidence", 0.0, 200),
        (0.4, "conviction", 1.5, 136),
        (0.4, "support", 0.6, 16),
        (0.4, "lift", 1.2, 132),
        (0.4, "leverage", 0.1, 102),
        (0.4, "leverage", 0.0, 188),
        (0.4, "zhangs_metric", 0.5, 117),
        (0.4, "jaccard", 0.7, 38),
        (0.4, "certainty", 0.4, 114),
        (0.4, "kulczynski", 0.8, 112),
        (0.4, "representativity", 1.0, 200),
        (0.4, "antecedent support", 0.7, 44),
        (0.4, "consequent support", 0.7, 44),
        (0.4, "confidence", 0.75, 104),
    ];
    for (support, name, threshold, count) in cases {
        let metric: Metric = name.parse().expect("metric");
        let (_, rules) = rules_for(support, metric, threshold);
        assert_eq!(rules.len(), count, "{support} {name} {threshold}");
        assert!(rules.iter().all(|r| r.metric(metric) >= threshold));
    }
}

#[test]
fn lift_filter_and_a_three_item_rule() {
    let (t, rules) = rules_for(0.6, Metric::Lift, 1.0);
    assert_eq!(rules.len(), 16);
    let from_beans: Vec<_> = rules
        .iter()
        .filter(|r| t.item_names(&r.antecedents) == ["Kidney Beans"])
        .map(|r| t.item_names(&r.consequents))
        .collect();
    let want: [&[&str]; 5] = [
        &["Eggs"],
        &["Milk"],
        &["Onion"],
        &["Yogurt"],
        &["Eggs", "Onion"],
    ];
    assert_eq!(from_beans, want.map(|w| w.to_vec()));

    // mlxtend 0.25, min_support 0.4: Kidney Beans, Onion -> Nutmeg.
    let (t, rules) = rules_for(0.4, Metric::Leverage, 0.0);
    let rule = rules
        .iter()
        .find(|r| {
            t.item_names(&r.antecedents) == ["Kidney Beans", "Onion"]
                && t.item_names(&r.consequents) == ["Nutmeg"]
        })
        .expect("rule");
    let want = [
        0.6,
        0.4,
        0.4,
        0.6666666666666666,
        1.6666666666666665,
        1.0,
        0.16000000000000003,
        1.7999999999999998,
        1.0,
        0.6666666666666667,
        0.44444444444444436,
        0.8333333333333333,
    ];
    assert_metrics(metrics(rule), want, "KB, Onion -> Nutmeg");
}

#[test]
fn max_len_two_gives_pair_rules_only() {
    let t = doc();
    let sets = frequent_itemsets(&t, 0.6, Some(2)).expect("itemsets");
    let rules = association_rules(&sets, t.len(), Metric::Confidence, 0.0).expect("rules");
    assert_eq!(rules.len(), 10);
    assert!(
        rules
            .iter()
            .all(|r| r.antecedents.len() == 1 && r.consequents.len() == 1)
    );
    let single = frequent_itemsets(&t, 0.6, Some(1)).expect("itemsets");
    let none = association_rules(&single, t.len(), Metric::Confidence, 0.0).expect("rules");
    assert!(none.is_empty());
}

#[test]
fn metric_names_parse_and_print() {
    for m in Metric::ALL {
        assert_eq!(m.name().parse::<Metric>(), Ok(m));
        assert_eq!(m.to_string(), m.name());
    }
    assert_eq!(
        "antecedent_support".parse::<Metric>(),
        Ok(Metric::AntecedentSupport)
    );
    assert_eq!(" Lift ".parse::<Metric>(), Ok(Metric::Lift));
    assert_eq!(
        "confidance".parse::<Metric>(),
        Err(RulesError::UnknownMetric("confidance".to_owned()))
    );
}

fn set(items: &[u32], count: u64, n: u64) -> Itemset {
    Itemset {
        items: items.to_vec(),
        count,
        support: count as f64 / n as f64,
    }
}

#[test]
fn invalid_inputs_are_errors() {
    let ok = vec![set(&[0], 2, 4), set(&[1], 2, 4), set(&[0, 1], 1, 4)];
    let conf = Metric::Confidence;
    assert_eq!(
        association_rules(&ok, 0, conf, 0.5),
        Err(RulesError::NoTransactions)
    );
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let got = association_rules(&ok, 4, conf, bad);
        assert!(matches!(got, Err(RulesError::MinThreshold(_))), "{bad}");
    }
    assert_eq!(association_rules(&[], 4, conf, 0.5), Ok(Vec::new()));
    assert_eq!(association_rules(&ok, 4, conf, 0.5).map(|r| r.len()), Ok(2));

    let missing = vec![set(&[0], 2, 4), set(&[0, 1], 1, 4)];
    assert_eq!(
        association_rules(&missing, 4, conf, 0.5),
        Err(RulesError::MissingSubset { index: 1 })
    );
    let big: Vec<u32> = (0..70).collect();
    let huge = vec![set(&big, 1, 4)];
    assert_eq!(
        association_rules(&huge, 4, conf, 0.5),
        Err(RulesError::MissingSubset { index: 0 })
    );
    let twice = vec![set(&[0], 2, 4), set(&[0], 2, 4)];
    assert_eq!(
        association_rules(&twice, 4, conf, 0.5),
        Err(RulesError::DuplicateItemset { index: 1 })
    );
    let unsorted = vec![set(&[0], 2, 4), set(&[1, 0], 1, 4)];
    assert_eq!(
        association_rules(&unsorted, 4, conf, 0.5),
        Err(RulesError::BadItemset { index: 1 })
    );
    let empty = vec![set(&[], 2, 4)];
    assert_eq!(
        association_rules(&empty, 4, conf, 0.5),
        Err(RulesError::BadItemset { index: 0 })
    );
    let zero = vec![set(&[0], 0, 4)];
    assert_eq!(
        association_rules(&zero, 4, conf, 0.5),
        Err(RulesError::BadSupport {
            index: 0,
            support: 0.0
        })
    );
}

#[test]
fn limit_bounds_the_number_of_rules() {
    let t = doc();
    let sets = frequent_itemsets(&t, 0.4, None).expect("itemsets");
    let conf = Metric::Confidence;
    assert_eq!(
        association_rules_with_limit(&sets, t.len(), conf, 0.0, 100),
        Err(RulesError::TooManyRules { limit: 100 })
    );
    let all = association_rules_with_limit(&sets, t.len(), conf, 0.0, 200).expect("rules");
    assert_eq!(all.len(), 200);
}

#[test]
fn seeded_random_baskets_match_direct_counts() {
    let mut rng = Rng::new(11);
    for case in 0..150 {
        let n = 1 + rng.below(25);
        let baskets: Vec<Vec<String>> = (0..n)
            .map(|_| {
                let len = rng.below(6);
                (0..len).map(|_| format!("i{}", rng.below(6))).collect()
            })
            .collect();
        let t = Transactions::from_baskets(&baskets).expect("baskets");
        let support = (1 + rng.below(60)) as f64 / 100.0;
        let threshold = rng.below(11) as f64 / 10.0;
        let sets = frequent_itemsets(&t, support, None).expect("itemsets");
        let rules = association_rules(&sets, n, Metric::Confidence, threshold).expect("rules");
        // Expected: every split of every frequent itemset, counted directly.
        let count = |items: &[u32]| {
            (0..n)
                .filter(|&b| items.iter().all(|i| t.basket(b).contains(i)))
                .count()
        };
        let nf = n as f64;
        let mut want = Vec::new();
        for s in sets.iter().filter(|s| s.items.len() >= 2) {
            let k = s.items.len();
            for mask in 1..(1u32 << k) - 1 {
                let mut a = Vec::new();
                let mut c = Vec::new();
                for (bit, &item) in s.items.iter().enumerate() {
                    if (mask >> bit) & 1 == 1 {
                        a.push(item);
                    } else {
                        c.push(item);
                    }
                }
                let (c_ac, c_a, c_c) = (count(&s.items), count(&a), count(&c));
                let (s_ac, s_a) = (c_ac as f64 / nf, c_a as f64 / nf);
                // mlxtend's formula decides membership; plain ratios check the values.
                if (s_ac * nf) / (s_a * nf) >= threshold {
                    let conf = c_ac as f64 / c_a as f64;
                    let lift = conf / (c_c as f64 / nf);
                    want.push((a, c, conf, lift));
                }
            }
        }
        want.sort_by(|x, y| {
            (x.0.len(), &x.0, x.1.len(), &x.1).cmp(&(y.0.len(), &y.0, y.1.len(), &y.1))
        });
        assert_eq!(rules.len(), want.len(), "case {case}");
        for (r, (a, c, conf, lift)) in rules.iter().zip(&want) {
            assert_eq!((&r.antecedents, &r.consequents), (a, c), "case {case}");
            assert!((r.confidence - conf).abs() < 1e-12, "case {case}");
            assert!((r.lift - lift).abs() < 1e-9, "case {case}");
            assert_eq!(r.conviction.is_infinite(), *conf >= 1.0, "case {case}");
        }
    }
}

mod json {
    use super::*;

    #[test]
    fn rules_round_trip_through_json_with_infinite_conviction() {
        let (_, rules) = rules_for(0.6, Metric::Confidence, 0.7);
        let text = serde_json::to_string(&rules).expect("json");
        assert!(text.contains("\"conviction\":\"inf\""));
        assert!(text.contains("\"conviction\":1.6"));
        let back: Vec<Rule> = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, rules);
        let metric: Metric = serde_json::from_str("\"zhangs_metric\"").expect("metric");
        assert_eq!(metric, Metric::ZhangsMetric);
        assert_eq!(
            serde_json::to_string(&Metric::AntecedentSupport).expect("json"),
            "\"antecedent_support\""
        );
    }

    #[test]
    fn error_messages_say_what_is_wrong() {
        let t = doc();
        let sets = frequent_itemsets(&t, 0.6, None).expect("itemsets");
        let err =
            association_rules(&sets, t.len(), Metric::Lift, f64::NAN).expect_err("NaN threshold");
        assert_eq!(
            err.to_string(),
            "min_threshold = NaN must be a finite number"
        );
        let err = frequent_itemsets(&t, 1.5, None).expect_err("support above 1");
        let text = err.to_string();
        assert!(
            text.starts_with("min_support = 1.5 must be greater than 0"),
            "{text}"
        );
    }
}
