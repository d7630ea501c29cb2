//! The DAG of nodes: topological order, cycle detection, and dbt's selection syntax
//! (`name`, `+name`, `name+`, `2+name`, `tag:`, `path:`, `resource_type:`, `source:`,
//! `package:`, `config.materialized:`, unions by space, intersections by comma).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::error::{Result, TransformError};
use crate::nodes::{Kind, Nodes};

/// Parents and children of every node (sources included as parents).
pub struct Graph {
    pub parents: BTreeMap<String, Vec<String>>,
    pub children: BTreeMap<String, Vec<String>>,
}

impl Graph {
    pub fn new(nodes: &Nodes) -> Self {
        let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, n) in &nodes.nodes {
            parents.insert(id.clone(), n.depends_on.clone());
            children.entry(id.clone()).or_default();
            for d in &n.depends_on {
                children.entry(d.clone()).or_default().push(id.clone());
            }
        }
        Self { parents, children }
    }

    /// Every node in dependency order; a cycle is an error naming its members.
    pub fn order(&self, nodes: &Nodes) -> Result<Vec<String>> {
        let mut indegree: BTreeMap<&str, usize> = BTreeMap::new();
        for (id, ps) in &self.parents {
            indegree.insert(
                id,
                ps.iter().filter(|p| nodes.nodes.contains_key(*p)).count(),
            );
        }
        let mut ready: VecDeque<&str> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(id, _)| *id)
            .collect();
        let mut out = Vec::new();
        while let Some(id) = ready.pop_front() {
            out.push(id.to_string());
            for c in self.children.get(id).into_iter().flatten() {
                if let Some(d) = indegree.get_mut(c.as_str()) {
                    *d -= 1;
                    if *d == 0 {
                        ready.push_back(c);
                    }
                }
            }
        }
        if out.len() < indegree.len() {
            let left: BTreeSet<&str> = indegree
                .iter()
                .filter(|(_, d)| **d > 0)
                .map(|(id, _)| *id)
                .collect();
            return Err(TransformError::Cycle(self.find_cycle(&left)));
        }
        Ok(out)
    }

    fn find_cycle(&self, left: &BTreeSet<&str>) -> Vec<String> {
        // Walk parents from any remaining node until a node repeats.
        let Some(start) = left.iter().next() else {
            return Vec::new();
        };
        let mut path: Vec<String> = vec![start.to_string()];
        loop {
            let last = path.last().expect("non-empty").clone();
            let next = self
                .parents
                .get(&last)
                .and_then(|ps| ps.iter().find(|p| left.contains(p.as_str())));
            let Some(next) = next else { return path };
            if let Some(pos) = path.iter().position(|p| p == next) {
                let mut cycle: Vec<String> = path[pos..].to_vec();
                cycle.reverse();
                cycle.push(cycle[0].clone());
                return cycle;
            }
            path.push(next.clone());
        }
    }

    fn walk(&self, from: &str, up: bool, depth: Option<usize>, out: &mut BTreeSet<String>) {
        let edges = if up { &self.parents } else { &self.children };
        let mut queue = VecDeque::from([(from.to_string(), 0usize)]);
        while let Some((id, d)) = queue.pop_front() {
            if depth.is_some_and(|max| d >= max) {
                continue;
            }
            for next in edges.get(&id).into_iter().flatten() {
                if out.insert(next.clone()) {
                    queue.push_back((next.clone(), d + 1));
                }
            }
        }
    }
}

/// Selects node ids. No selector means every node; tests follow their parents ("eager"
/// indirect selection, as dbt does).
pub fn select(
    nodes: &Nodes,
    graph: &Graph,
    select: &[String],
    exclude: &[String],
) -> Result<BTreeSet<String>> {
    let mut chosen: BTreeSet<String> = if select.is_empty() {
        nodes.nodes.keys().cloned().collect()
    } else {
        let mut all = BTreeSet::new();
        for s in select.iter().flat_map(|s| s.split_whitespace()) {
            all.extend(intersection(nodes, graph, s)?);
        }
        all
    };
    for s in exclude.iter().flat_map(|s| s.split_whitespace()) {
        for id in intersection(nodes, graph, s)? {
            chosen.remove(&id);
        }
    }
    // Tests whose parents are all selected come along.
    if !select.is_empty() {
        for (id, n) in &nodes.nodes {
            if n.kind == Kind::Test
                && !n.depends_on.is_empty()
                && n.depends_on
                    .iter()
                    .filter(|d| nodes.nodes.contains_key(*d))
                    .all(|d| chosen.contains(d))
                && n.depends_on.iter().any(|d| chosen.contains(d))
            {
                let excluded = exclude.iter().flat_map(|s| s.split_whitespace()).any(|s| {
                    intersection(nodes, graph, s)
                        .map(|ids| ids.contains(id))
                        .unwrap_or(false)
                });
                if !excluded {
                    chosen.insert(id.clone());
                }
            }
        }
    }
    chosen.retain(|id| nodes.nodes.contains_key(id));
    Ok(chosen)
}

fn intersection(nodes: &Nodes, graph: &Graph, spec: &str) -> Result<BTreeSet<String>> {
    let mut result: Option<BTreeSet<String>> = None;
    for part in spec.split(',') {
        let ids = one(nodes, graph, part)?;
        result = Some(match result {
            None => ids,
            Some(prev) => prev.intersection(&ids).cloned().collect(),
        });
    }
    Ok(result.unwrap_or_default())
}

fn one(nodes: &Nodes, graph: &Graph, spec: &str) -> Result<BTreeSet<String>> {
    let err = |message: &str| TransformError::Selection {
        selector: spec.to_string(),
        message: message.to_string(),
    };
    let (at, rest) = match spec.strip_prefix('@') {
        Some(r) => (true, r),
        None => (false, spec),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let (up, rest) = match rest[digits.len()..].strip_prefix('+') {
        Some(r) => (Some(digits.parse::<usize>().ok()), r),
        None if digits.is_empty() => (None, rest),
        None => (None, rest),
    };
    let rest_trim = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    let (down, core) = match rest.strip_suffix('+') {
        Some(r) => (Some(None), r),
        None => match rest_trim.strip_suffix('+') {
            Some(r) => (Some(rest[rest_trim.len()..].parse::<usize>().ok()), r),
            None => (None, rest),
        },
    };
    if core.is_empty() {
        return Err(err("empty selector"));
    }
    let base = matching(nodes, core).map_err(|m| err(&m))?;
    let mut out = base.clone();
    for id in &base {
        if let Some(depth) = up {
            graph.walk(id, true, depth, &mut out);
        }
        if let Some(depth) = down {
            graph.walk(id, false, depth, &mut out);
        }
        if at {
            // dbt's `@`: the node, its descendants, and the ancestors of all of them (of
            // the node itself too, when it has no descendant).
            graph.walk(id, true, None, &mut out);
            let mut desc = BTreeSet::new();
            graph.walk(id, false, None, &mut desc);
            for d in desc {
                out.insert(d.clone());
                graph.walk(&d, true, None, &mut out);
            }
        }
    }
    Ok(out)
}

fn glob(pattern: &str, text: &str) -> bool {
    if !pattern.contains('*') && !pattern.contains('?') {
        return pattern == text;
    }
    let re = format!(
        "^{}$",
        regex::escape(pattern)
            .replace(r"\*", ".*")
            .replace(r"\?", ".")
    );
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(text))
}

/// Nodes (and sources) matching one method:value.
fn matching(nodes: &Nodes, core: &str) -> std::result::Result<BTreeSet<String>, String> {
    let (method, value) = match core.split_once(':') {
        Some((m, v)) => (m, v),
        None if core.contains('/') || core.ends_with(".sql") || core.ends_with(".csv") => {
            ("path", core)
        }
        None => ("fqn", core),
    };
    let mut out = BTreeSet::new();
    match method {
        "source" => {
            for s in nodes.sources.values() {
                let full = format!("{}.{}", s.source_name, s.name);
                if glob(value, &s.source_name) || glob(value, &full) {
                    out.insert(s.unique_id.clone());
                }
            }
            return Ok(out);
        }
        "tag" | "path" | "resource_type" | "package" | "fqn" | "test_type" | "test_name" => {}
        m if m.starts_with("config.") => {}
        other => {
            return Err(format!(
                "unknown selector method `{other}` (try tag:, path:, resource_type:, source:, package:, config.<key>:)"
            ));
        }
    }
    for (id, n) in &nodes.nodes {
        let hit = match method {
            "tag" => n.config.tags().iter().any(|t| glob(value, t)),
            "path" => {
                let v = value.trim_end_matches('/');
                n.path == v || n.path.starts_with(&format!("{v}/")) || glob(value, &n.path)
            }
            "resource_type" => n.kind.as_str() == value,
            "package" => n.package == value,
            "test_type" => match value {
                "generic" => n.test.is_some(),
                "singular" => n.kind == Kind::Test && n.test.is_none(),
                _ => false,
            },
            "test_name" => n.test.as_ref().is_some_and(|t| glob(value, &t.test)),
            "fqn" => {
                let dotted = format!("{}.{}", n.package, n.fqn.join("."));
                glob(value, &n.name)
                    || value == n.package
                    || dotted == value
                    || dotted.starts_with(&format!("{value}."))
                    || n.fqn.join(".") == value
                    || n.fqn.join(".").starts_with(&format!("{value}."))
            }
            m => {
                let key = m.trim_start_matches("config.");
                match n.config.get(key) {
                    Some(serde_json::Value::String(s)) => glob(value, s),
                    Some(serde_json::Value::Array(items)) => items
                        .iter()
                        .any(|i| i.as_str().is_some_and(|s| glob(value, s))),
                    Some(other) => value
                        .parse::<serde_json::Value>()
                        .is_ok_and(|v| v == *other),
                    None => false,
                }
            }
        };
        if hit {
            out.insert(id.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "graph_props.rs"]
mod props;
