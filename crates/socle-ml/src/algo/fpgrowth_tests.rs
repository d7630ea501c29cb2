//! Tests of [`super`] (FP-growth): mlxtend 0.25's documentation example and values computed
//! with mlxtend 0.25, edge cases, and brute-force counts over random baskets.

use super::super::Rng;
use super::*;

/// mlxtend's documentation example (the fifth basket repeats Onion).
fn doc_baskets() -> Vec<Vec<&'static str>> {
    vec![
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
    ]
}

fn named(t: &Transactions, sets: &[Itemset]) -> Vec<(Vec<String>, u64, f64)> {
    sets.iter()
        .map(|s| {
            let names = s.items.iter().map(|&i| t.item_name(i).to_owned()).collect();
            (names, s.count, s.support)
        })
        .collect()
}

fn expect(rows: &[(&[&str], u64, f64)]) -> Vec<(Vec<String>, u64, f64)> {
    rows.iter()
        .map(|(names, c, s)| (names.iter().map(|n| n.to_string()).collect(), *c, *s))
        .collect()
}

/// Every frequent itemset of at most `max_len` items, by extending frequent itemsets with
/// frequent items and counting each candidate over all baskets (complete, since every
/// subset of a frequent itemset is frequent).
fn brute_force(t: &Transactions, min_support: f64, max_len: usize) -> Vec<(Vec<u32>, u64)> {
    let count = |set: &[u32]| {
        (0..t.len())
            .filter(|&b| set.iter().all(|i| t.basket(b).binary_search(i).is_ok()))
            .count() as u64
    };
    let frequent = |c: u64| c as f64 / t.len() as f64 >= min_support;
    let singles: Vec<u32> = (0..t.n_items() as u32)
        .filter(|&i| frequent(count(&[i])))
        .collect();
    let mut todo: Vec<(Vec<u32>, usize)> = singles
        .iter()
        .enumerate()
        .map(|(k, &i)| (vec![i], k + 1))
        .collect();
    let mut out = Vec::new();
    while let Some((set, next)) = todo.pop() {
        let c = count(&set);
        if !frequent(c) {
            continue;
        }
        if set.len() < max_len {
            for (k, &item) in singles.iter().enumerate().skip(next) {
                let mut bigger = set.clone();
                bigger.push(item);
                todo.push((bigger, k + 1));
            }
        }
        out.push((set, c));
    }
    out.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
    out
}

fn ids_and_counts(sets: &[Itemset]) -> Vec<(Vec<u32>, u64)> {
    sets.iter().map(|s| (s.items.clone(), s.count)).collect()
}

#[test]
fn interning_sorts_names_and_dedups_baskets() {
    let t = Transactions::from_baskets(&[vec!["b", "a", "b"], vec![], vec!["c", "a"]])
        .expect("baskets");
    assert_eq!(t.len(), 3);
    assert_eq!(t.n_items(), 3);
    assert_eq!(t.item_names(&[0, 1, 2]), vec!["a", "b", "c"]);
    assert_eq!(t.basket(0), &[0, 1]);
    assert!(t.basket(1).is_empty());
    assert_eq!(t.basket(2), &[0, 2]);
    assert_eq!(t.item_id("c"), Some(2));
    assert_eq!(t.item_id("d"), None);
}

#[test]
fn mlxtend_documentation_example() {
    // From mlxtend 0.25: fpgrowth(df, min_support=0.6, use_colnames=True).
    let t = Transactions::from_baskets(&doc_baskets()).expect("baskets");
    let sets = frequent_itemsets(&t, 0.6, None).expect("itemsets");
    let want = expect(&[
        (&["Eggs"], 4, 0.8),
        (&["Kidney Beans"], 5, 1.0),
        (&["Milk"], 3, 0.6),
        (&["Onion"], 3, 0.6),
        (&["Yogurt"], 3, 0.6),
        (&["Eggs", "Kidney Beans"], 4, 0.8),
        (&["Eggs", "Onion"], 3, 0.6),
        (&["Kidney Beans", "Milk"], 3, 0.6),
        (&["Kidney Beans", "Onion"], 3, 0.6),
        (&["Kidney Beans", "Yogurt"], 3, 0.6),
        (&["Eggs", "Kidney Beans", "Onion"], 3, 0.6),
    ]);
    assert_eq!(named(&t, &sets), want);
}

#[test]
fn lower_support_matches_mlxtend_count() {
    // mlxtend 0.25 finds 39 itemsets at min_support 0.4, the largest of five items.
    let t = Transactions::from_baskets(&doc_baskets()).expect("baskets");
    let sets = frequent_itemsets(&t, 0.4, None).expect("itemsets");
    assert_eq!(sets.len(), 39);
    let last = sets.last().expect("non-empty");
    assert_eq!(
        t.item_names(&last.items),
        vec!["Eggs", "Kidney Beans", "Nutmeg", "Onion", "Yogurt"]
    );
    assert_eq!(last.count, 2);
    assert_eq!(ids_and_counts(&sets), brute_force(&t, 0.4, usize::MAX));
}

#[test]
fn max_len_bounds_itemset_size() {
    let t = Transactions::from_baskets(&doc_baskets()).expect("baskets");
    let two = frequent_itemsets(&t, 0.6, Some(2)).expect("itemsets");
    assert_eq!(two.len(), 10);
    assert!(two.iter().all(|s| s.items.len() <= 2));
    let one = frequent_itemsets(&t, 0.6, Some(1)).expect("itemsets");
    assert_eq!(one.len(), 5);
    let low = frequent_itemsets(&t, 0.4, Some(3)).expect("itemsets");
    assert_eq!(ids_and_counts(&low), brute_force(&t, 0.4, 3));
}

#[test]
fn repeated_items_count_once() {
    let t = Transactions::from_baskets(&[vec!["a", "a", "b"], vec!["a", "a"]]).expect("baskets");
    let sets = frequent_itemsets(&t, 0.5, None).expect("itemsets");
    let want = expect(&[(&["a"], 2, 1.0), (&["b"], 1, 0.5), (&["a", "b"], 1, 0.5)]);
    assert_eq!(named(&t, &sets), want);
}

#[test]
fn empty_baskets_count_in_the_denominator() {
    let t = Transactions::from_baskets(&[vec!["a", "b"], vec!["a"], vec![]]).expect("baskets");
    let sets = frequent_itemsets(&t, 0.5, None).expect("itemsets");
    assert_eq!(named(&t, &sets), expect(&[(&["a"], 2, 2.0 / 3.0)]));
    let sets = frequent_itemsets(&t, 0.3, None).expect("itemsets");
    let third = 1.0 / 3.0;
    let want = expect(&[
        (&["a"], 2, 2.0 / 3.0),
        (&["b"], 1, third),
        (&["a", "b"], 1, third),
    ]);
    assert_eq!(named(&t, &sets), want);
}

#[test]
fn support_equal_to_threshold_is_frequent_at_every_size() {
    // 0.07 * 100 = 7.000000000000001 in f64: mlxtend's fpgrowth drops {a, b} (count 7)
    // here; its apriori (low_memory=False) keeps it, as we do.
    let mut baskets = vec![vec!["a", "b"]; 7];
    baskets.extend(vec![vec!["a"]; 3]);
    baskets.extend(vec![vec!["b"]; 3]);
    baskets.extend(vec![vec!["c"]; 50]);
    baskets.extend(vec![vec!["d"]; 37]);
    let t = Transactions::from_baskets(&baskets).expect("baskets");
    let sets = frequent_itemsets(&t, 0.07, None).expect("itemsets");
    let want = expect(&[
        (&["a"], 10, 0.1),
        (&["b"], 10, 0.1),
        (&["c"], 50, 0.5),
        (&["d"], 37, 0.37),
        (&["a", "b"], 7, 0.07),
    ]);
    assert_eq!(named(&t, &sets), want);
}

#[test]
fn min_count_is_the_least_count_reaching_the_support() {
    for n in 1..200usize {
        for pct in 1..=100u32 {
            let s = f64::from(pct) / 100.0;
            let c = min_count(s, n);
            assert!(c as f64 / n as f64 >= s, "n {n} s {s}");
            assert!(c == 1 || ((c - 1) as f64 / n as f64) < s, "n {n} s {s}");
        }
    }
    assert_eq!(min_count(0.07, 100), 7);
    assert_eq!(min_count(1.0, 9), 9);
    assert_eq!(min_count(1e-9, 9), 1);
}

#[test]
fn single_path_tree_yields_all_combinations() {
    let mut baskets = vec![vec!["a", "b", "c"]; 3];
    baskets.push(vec!["b", "a"]);
    let t = Transactions::from_baskets(&baskets).expect("baskets");
    let sets = frequent_itemsets(&t, 0.5, None).expect("itemsets");
    let want = expect(&[
        (&["a"], 4, 1.0),
        (&["b"], 4, 1.0),
        (&["c"], 3, 0.75),
        (&["a", "b"], 4, 1.0),
        (&["a", "c"], 3, 0.75),
        (&["b", "c"], 3, 0.75),
        (&["a", "b", "c"], 3, 0.75),
    ]);
    assert_eq!(named(&t, &sets), want);
    let two = frequent_itemsets(&t, 0.5, Some(2)).expect("itemsets");
    assert_eq!(two.len(), 6);
}

#[test]
fn tree_shares_common_prefixes() {
    let mut paths = Paths::new();
    let list: [&[u32]; 4] = [&[0, 1], &[0, 2], &[0, 1], &[1]];
    for path in list {
        paths.items.extend_from_slice(path);
        paths.close(1);
    }
    let tree = FpTree::build(&paths, vec![10, 11, 12], vec![3, 3, 1]);
    // Nodes: root, 0, 0 -> 1 (twice), 0 -> 2, then 1 from the root.
    assert_eq!(tree.item, [NONE, 0, 1, 2, 1]);
    assert_eq!(tree.count, [0, 3, 2, 1, 1]);
    assert_eq!(tree.parent, [0, 0, 1, 1, 0]);
    assert!(!tree.single_path);
    assert_eq!(tree.header(1), &[2, 4]);
    assert_eq!(tree.header(2), &[3]);
}

#[test]
fn nothing_frequent_gives_no_itemset() {
    let t = Transactions::from_baskets(&[vec!["a"], vec!["b"], vec![]]).expect("baskets");
    assert!(
        frequent_itemsets(&t, 0.5, None)
            .expect("itemsets")
            .is_empty()
    );
}

#[test]
fn invalid_inputs_are_errors() {
    let none: Vec<Vec<&str>> = Vec::new();
    let empty = Transactions::from_baskets(&none).expect("baskets");
    assert!(empty.is_empty());
    assert_eq!(
        frequent_itemsets(&empty, 0.5, None),
        Err(RulesError::NoTransactions)
    );
    let t = Transactions::from_baskets(&doc_baskets()).expect("baskets");
    for bad in [0.0, -0.1, 1.5, f64::INFINITY] {
        assert_eq!(
            frequent_itemsets(&t, bad, None),
            Err(RulesError::MinSupport(bad))
        );
    }
    assert!(matches!(
        frequent_itemsets(&t, f64::NAN, None),
        Err(RulesError::MinSupport(_))
    ));
    assert_eq!(frequent_itemsets(&t, 0.5, Some(0)), Err(RulesError::MaxLen));
    // Only empty baskets: valid, nothing frequent.
    let blank = Transactions::from_baskets(&[Vec::<&str>::new(), Vec::new()]).expect("ok");
    assert_eq!(frequent_itemsets(&blank, 0.5, None), Ok(Vec::new()));
}

#[test]
fn limit_stops_an_exploding_output() {
    // 2^30 - 1 frequent itemsets: the limit turns that into an early error.
    let big: Vec<String> = (0..30).map(|i| format!("item{i:02}")).collect();
    let t = Transactions::from_baskets(&[big.clone(), big]).expect("baskets");
    assert_eq!(
        frequent_itemsets_with_limit(&t, 0.5, None, 1000),
        Err(RulesError::TooManyItemsets { limit: 1000 })
    );
    let pairs = frequent_itemsets_with_limit(&t, 0.5, Some(2), 1000).expect("itemsets");
    assert_eq!(pairs.len(), 30 + 435);
}

#[test]
fn one_huge_basket_costs_only_its_frequent_items() {
    // 500 small baskets over 20 common items, and one basket of 200 items (the 20 common
    // ones and 180 seen nowhere else): the 180 never enter a tree.
    let mut rng = Rng::new(7);
    let mut baskets: Vec<Vec<String>> = (0..500)
        .map(|_| {
            let len = 1 + rng.below(4);
            (0..len).map(|_| format!("c{:02}", rng.below(20))).collect()
        })
        .collect();
    let mut huge: Vec<String> = (0..20).map(|i| format!("c{i:02}")).collect();
    huge.extend((0..180).map(|i| format!("u{i:03}")));
    baskets.insert(250, huge);
    let t = Transactions::from_baskets(&baskets).expect("baskets");
    assert_eq!(t.n_items(), 200);
    for (support, max_len) in [(0.01, None), (0.002, None), (0.02, Some(2))] {
        let sets = frequent_itemsets(&t, support, max_len).expect("itemsets");
        let want = brute_force(&t, support, max_len.unwrap_or(usize::MAX));
        assert!(!want.is_empty());
        assert_eq!(ids_and_counts(&sets), want, "support {support}");
        let unique = t.item_id("u000").expect("item");
        assert!(sets.iter().all(|s| s.items.iter().all(|&i| i < unique)));
    }
}

#[test]
fn seeded_random_baskets_match_brute_force() {
    let mut rng = Rng::new(42);
    for case in 0..300 {
        let n = 1 + rng.below(30);
        let width = 1 + rng.below(8);
        let baskets: Vec<Vec<String>> = (0..n)
            .map(|_| {
                let len = rng.below(7);
                (0..len).map(|_| format!("i{}", rng.below(width))).collect()
            })
            .collect();
        let t = Transactions::from_baskets(&baskets).expect("baskets");
        let support = (1 + rng.below(100)) as f64 / 100.0;
        let max_len = if rng.below(3) == 0 {
            Some(1 + rng.below(4))
        } else {
            None
        };
        let sets = frequent_itemsets(&t, support, max_len).expect("itemsets");
        let want = brute_force(&t, support, max_len.unwrap_or(usize::MAX));
        assert_eq!(ids_and_counts(&sets), want, "case {case}");
        for s in &sets {
            assert_eq!(s.support, s.count as f64 / n as f64);
        }
    }
}

mod props {
    use super::super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Every reported itemset has its brute-force count and support, and every
        /// itemset of the 8 possible items that reaches the support is reported.
        #[test]
        fn itemsets_equal_exhaustive_enumeration(
            baskets in prop::collection::vec(prop::collection::vec(0u8..8, 0..7), 1..30),
            pct in 1u32..=100,
            max_len in prop::option::of(1usize..5),
        ) {
            let names: Vec<Vec<String>> = baskets
                .iter()
                .map(|b| b.iter().map(|i| format!("i{i}")).collect())
                .collect();
            let t = Transactions::from_baskets(&names).expect("baskets");
            let n = baskets.len();
            let support = f64::from(pct) / 100.0;
            let sets = frequent_itemsets(&t, support, max_len).expect("itemsets");
            let mut want: Vec<(Vec<u32>, u64)> = Vec::new();
            for mask in 1u32..256 {
                if mask.count_ones() as usize > max_len.unwrap_or(8) {
                    continue;
                }
                let count = baskets
                    .iter()
                    .filter(|b| (0..8u8).all(|i| (mask >> i) & 1 == 0 || b.contains(&i)))
                    .count() as u64;
                if (count as f64 / n as f64) < support {
                    continue;
                }
                let ids = (0..8u8)
                    .filter(|i| (mask >> i) & 1 == 1)
                    .map(|i| t.item_id(&format!("i{i}")).expect("present"))
                    .collect();
                want.push((ids, count));
            }
            want.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.cmp(&b.0)));
            let got: Vec<(Vec<u32>, u64)> =
                sets.iter().map(|s| (s.items.clone(), s.count)).collect();
            prop_assert_eq!(got, want);
            for s in &sets {
                prop_assert_eq!(s.support, s.count as f64 / n as f64);
            }
        }
    }
}
