//! Property tests of dbt's selection syntax ([`select`]) over generated projects (models in
//! a random DAG with tags, folders and materializations, and tests on them):
//! - any selector text answers (a selection or an error), never panics;
//! - `+m` is `m` and all its ancestors, `m+` all its descendants, `n+m` / `m+n` stop at
//!   `n` generations, `@m` holds `m+`; so `+m` and `m+` hold `m`;
//! - a space is a union, a comma an intersection, `--exclude` a difference (of models);
//! - `tag:`, `path:`, `config.materialized:` and `resource_type:` pick exactly the models
//!   they name;
//! - a test comes along exactly when all the nodes it tests are selected.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::json;

use super::{Graph, select};
use crate::config::NodeConfig;
use crate::nodes::{Kind, Node, Nodes};

const TAGS: [&str; 3] = ["daily", "hourly", "pii"];

/// A generated project: for each model, its parents (earlier models) and tags; for each
/// test, the models it tests.
#[derive(Debug, Clone)]
struct Project {
    parents: Vec<Vec<usize>>,
    tags: Vec<Vec<&'static str>>,
    tests: Vec<Vec<usize>>,
}

fn id(i: usize) -> String {
    format!("model.shop.m{i}")
}

fn folder(i: usize) -> &'static str {
    if i.is_multiple_of(3) {
        "staging"
    } else {
        "marts"
    }
}

fn materialized(i: usize) -> &'static str {
    if i.is_multiple_of(2) { "view" } else { "table" }
}

fn node(
    unique_id: String,
    kind: Kind,
    name: String,
    path: String,
    config: serde_json::Value,
    depends_on: Vec<String>,
) -> Node {
    let fqn = path
        .trim_end_matches(".sql")
        .split('/')
        .skip(1)
        .map(str::to_string)
        .collect();
    Node {
        unique_id,
        kind,
        package: "shop".into(),
        name: name.clone(),
        file: PathBuf::from(format!("/p/{path}")),
        path,
        raw_sql: String::new(),
        config: NodeConfig(config.as_object().cloned().unwrap_or_default()),
        description: String::new(),
        columns: Vec::new(),
        fqn,
        refs: Vec::new(),
        sources: Vec::new(),
        depends_on,
        schema: "main".into(),
        alias: name,
        test: None,
        first_line: 1,
    }
}

impl Project {
    fn nodes(&self) -> Nodes {
        let mut nodes = BTreeMap::new();
        for (i, ps) in self.parents.iter().enumerate() {
            let name = format!("m{i}");
            nodes.insert(
                id(i),
                node(
                    id(i),
                    Kind::Model,
                    name.clone(),
                    format!("models/{}/{name}.sql", folder(i)),
                    json!({ "tags": self.tags[i], "materialized": materialized(i) }),
                    ps.iter().map(|p| id(*p)).collect(),
                ),
            );
        }
        for (t, on) in self.tests.iter().enumerate() {
            let name = format!("t{t}");
            nodes.insert(
                format!("test.shop.{name}"),
                node(
                    format!("test.shop.{name}"),
                    Kind::Test,
                    name.clone(),
                    format!("tests/{name}.sql"),
                    json!({}),
                    on.iter().map(|m| id(*m)).collect(),
                ),
            );
        }
        Nodes {
            nodes,
            ..Nodes::default()
        }
    }

    fn len(&self) -> usize {
        self.parents.len()
    }

    /// Models reached from `m` in at most `depth` steps up (to parents) or down.
    fn reach(&self, m: usize, up: bool, depth: Option<usize>) -> BTreeSet<usize> {
        let mut out = BTreeSet::from([m]);
        let mut frontier = vec![m];
        let mut step = 0;
        while !frontier.is_empty() && depth.is_none_or(|d| step < d) {
            let mut next = Vec::new();
            for f in frontier {
                let around: Vec<usize> = if up {
                    self.parents[f].clone()
                } else {
                    (0..self.len())
                        .filter(|c| self.parents[*c].contains(&f))
                        .collect()
                };
                for a in around {
                    if out.insert(a) {
                        next.push(a);
                    }
                }
            }
            frontier = next;
            step += 1;
        }
        out
    }
}

fn project() -> impl Strategy<Value = Project> {
    (1usize..10).prop_flat_map(|n| {
        (
            prop::collection::vec(any::<u16>(), n),
            prop::collection::vec(0u8..8, n),
            prop::collection::vec(prop::collection::vec(0..n, 1..3), 0..4),
        )
            .prop_map(move |(edges, tag_bits, tests)| Project {
                parents: (0..n)
                    .map(|i| (0..i).filter(|j| edges[i] & (1u16 << j) != 0).collect())
                    .collect(),
                tags: tag_bits
                    .iter()
                    .map(|b| {
                        TAGS.iter()
                            .enumerate()
                            .filter(|(k, _)| b & (1u8 << k) != 0)
                            .map(|(_, t)| *t)
                            .collect()
                    })
                    .collect(),
                tests,
            })
    })
}

/// The models (by index) and tests (by id) of a selection.
fn run<S: AsRef<str>>(
    nodes: &Nodes,
    graph: &Graph,
    s: &[S],
) -> (BTreeSet<usize>, BTreeSet<String>) {
    run_excluding(nodes, graph, s, &[] as &[&str])
}

fn run_excluding<S: AsRef<str>, E: AsRef<str>>(
    nodes: &Nodes,
    graph: &Graph,
    s: &[S],
    exclude: &[E],
) -> (BTreeSet<usize>, BTreeSet<String>) {
    let s: Vec<String> = s.iter().map(|x| x.as_ref().to_string()).collect();
    let e: Vec<String> = exclude.iter().map(|x| x.as_ref().to_string()).collect();
    let chosen = select(nodes, graph, &s, &e).expect("generated selectors are valid");
    let models = chosen
        .iter()
        .filter_map(|i| i.strip_prefix("model.shop.m")?.parse().ok())
        .collect();
    let tests = chosen
        .into_iter()
        .filter(|i| i.starts_with("test."))
        .collect();
    (models, tests)
}

/// A selector of one model, a tag, a folder, a materialization or every model.
fn core(n: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        (0..n).prop_map(|m| format!("m{m}")),
        (0..TAGS.len()).prop_map(|t| format!("tag:{}", TAGS[t])),
        Just("path:models/staging".to_string()),
        Just("config.materialized:table".to_string()),
        Just("resource_type:model".to_string()),
        Just("m*".to_string()),
        Just("package:shop".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_selector_answers(
        p in project(),
        s in any::<String>(),
        e in "[@+0-9a-z:*?/.,_ -]{0,16}",
    ) {
        let nodes = p.nodes();
        let graph = Graph::new(&nodes);
        let _ = select(&nodes, &graph, std::slice::from_ref(&s), &[]);
        let _ = select(&nodes, &graph, std::slice::from_ref(&e), &[s]);
    }

    #[test]
    fn graph_operators_walk_parents_and_children(
        p in project(),
        m in any::<usize>(),
        depth in 0usize..3,
    ) {
        let m = m % p.len();
        let nodes = p.nodes();
        let graph = Graph::new(&nodes);
        let up = run(&nodes, &graph, &[format!("+m{m}")]).0;
        let down = run(&nodes, &graph, &[format!("m{m}+")]).0;
        prop_assert_eq!(&up, &p.reach(m, true, None));
        prop_assert_eq!(&down, &p.reach(m, false, None));
        prop_assert!(up.contains(&m) && down.contains(&m));
        let up_n = run(&nodes, &graph, &[format!("{depth}+m{m}")]).0;
        let down_n = run(&nodes, &graph, &[format!("m{m}+{depth}")]).0;
        prop_assert_eq!(up_n, p.reach(m, true, Some(depth)));
        prop_assert_eq!(down_n, p.reach(m, false, Some(depth)));
        let at = run(&nodes, &graph, &[format!("@m{m}")]).0;
        prop_assert!(at.is_superset(&down), "{:?} {:?}", at, down);
        for d in &down {
            prop_assert!(at.is_superset(&p.reach(*d, true, None)));
        }
    }

    #[test]
    fn spaces_unite_commas_intersect_excludes_remove(
        p in project(),
        (a, b) in (1usize..10).prop_flat_map(|n| (core(n), core(n))),
    ) {
        let nodes = p.nodes();
        let graph = Graph::new(&nodes);
        let one = |s: &str| run(&nodes, &graph, &[s]).0;
        let (sa, sb) = (one(&a), one(&b));
        prop_assert_eq!(
            one(&format!("{a} {b}")),
            sa.union(&sb).copied().collect::<BTreeSet<_>>()
        );
        prop_assert_eq!(
            one(&format!("{a},{b}")),
            sa.intersection(&sb).copied().collect::<BTreeSet<_>>()
        );
        prop_assert_eq!(
            run_excluding(&nodes, &graph, &[&a], &[&b]).0,
            sa.difference(&sb).copied().collect::<BTreeSet<_>>()
        );
    }

    #[test]
    fn methods_pick_exactly_their_models(p in project(), t in 0..TAGS.len()) {
        let nodes = p.nodes();
        let graph = Graph::new(&nodes);
        let all: Vec<usize> = (0..p.len()).collect();
        let expect = |f: &dyn Fn(usize) -> bool| {
            all.iter().copied().filter(|i| f(*i)).collect::<BTreeSet<_>>()
        };
        let tag = TAGS[t];
        prop_assert_eq!(
            run(&nodes, &graph, &[format!("tag:{tag}")]).0,
            expect(&|i| p.tags[i].contains(&tag))
        );
        prop_assert_eq!(
            run(&nodes, &graph, &["path:models/staging"]).0,
            expect(&|i| folder(i) == "staging")
        );
        prop_assert_eq!(
            run(&nodes, &graph, &["config.materialized:table"]).0,
            expect(&|i| materialized(i) == "table")
        );
        let (models, tests) = run(&nodes, &graph, &["resource_type:model"]);
        prop_assert_eq!(models, expect(&|_| true));
        // Every model is selected, so every test comes along.
        prop_assert_eq!(tests.len(), p.tests.len());
    }

    #[test]
    fn a_test_comes_along_when_all_it_tests_is_selected(
        p in project(),
        s in (1usize..10).prop_flat_map(core),
    ) {
        let nodes = p.nodes();
        let graph = Graph::new(&nodes);
        let (models, tests) = run(&nodes, &graph, &[&s]);
        for (t, on) in p.tests.iter().enumerate() {
            let along = on.iter().all(|m| models.contains(m));
            prop_assert_eq!(tests.contains(&format!("test.shop.t{t}")), along, "{} on {:?}", s, on);
        }
    }
}

/// Found while writing the property tests: `@m` of a model without children left out its
/// parents (dbt selects the ancestors of the model and of its descendants).
#[test]
fn regression_at_a_model_without_children_takes_its_parents() {
    let p = Project {
        parents: vec![vec![], vec![0]],
        tags: vec![vec![], vec![]],
        tests: vec![],
    };
    let nodes = p.nodes();
    let graph = Graph::new(&nodes);
    assert_eq!(run(&nodes, &graph, &["@m1"]).0, BTreeSet::from([0, 1]));
    assert_eq!(run(&nodes, &graph, &["@m0"]).0, BTreeSet::from([0, 1]));
}
