//! The order of a pipeline's tasks: cycles and topological order.

use std::collections::{BTreeMap, BTreeSet};

use crate::pipeline::TaskSpec;

/// A cycle among the tasks (its members in order, the first repeated at the end).
pub fn find_cycle(tasks: &BTreeMap<String, TaskSpec>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        name: &str,
        tasks: &BTreeMap<String, TaskSpec>,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(name) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = path.iter().position(|p| p == name).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(name.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(name.to_string(), Mark::Open);
        path.push(name.to_string());
        for dep in tasks
            .get(name)
            .map(|t| t.depends_on.as_slice())
            .unwrap_or(&[])
        {
            if let Some(c) = visit(dep, tasks, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(name.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for name in tasks.keys() {
        let mut path = Vec::new();
        if let Some(c) = visit(name, tasks, &mut marks, &mut path) {
            return Some(c);
        }
    }
    None
}

/// Tasks in an order where each comes after everything it depends on (ties by name).
pub fn order(tasks: &BTreeMap<String, TaskSpec>) -> Vec<String> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < tasks.len() {
        let ready: Vec<String> = tasks
            .values()
            .filter(|t| !done.contains(&t.name))
            .filter(|t| t.depends_on.iter().all(|d| done.contains(d)))
            .map(|t| t.name.clone())
            .collect();
        if ready.is_empty() {
            break; // a cycle: rejected when the pipeline is loaded
        }
        for name in ready {
            done.insert(name.clone());
            out.push(name);
        }
    }
    out
}
