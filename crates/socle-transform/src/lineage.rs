//! Column-level lineage: which columns of which relations each output column of a model's
//! query comes from, read off DataFusion's (unoptimized) logical plan.
//!
//! The plan is walked bottom-up; every plan node yields, for each of its output columns,
//! the set of relation columns it derives from and whether it is a plain copy (`direct`:
//! a column, possibly renamed) or computed (`derived`: an expression, an aggregate, a
//! window function). CTEs and sub-queries are aliased sub-plans and are traced through;
//! `*` and `* EXCEPT` are already expanded by the planner. A view upstream (which the
//! planner inlines under an alias of its name) and an inlined ephemeral model are
//! reported as themselves, so lineage stops at model boundaries as the docs site draws
//! them.
//!
//! Columns used only to filter or join rows (a `WHERE` or `ON` clause) are not counted as
//! sources of the output columns.

use std::collections::BTreeSet;

use datafusion::common::tree_node::{TreeNodeRecursion, TreeNodeVisitor};
use datafusion::common::{Column, DFSchema, TableReference};
use datafusion::logical_expr::{Distinct, Expr, LogicalPlan};
use serde::Serialize;

/// The CTE name dbt gives an inlined ephemeral model (`__dbt__cte__<model>`); lineage
/// reports its columns as the sources instead of looking inside.
pub const EPHEMERAL_PREFIX: &str = "__dbt__cte__";

/// One relation column (`schema.table`, `column`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SourceColumn {
    pub relation: String,
    pub column: String,
}

/// Where one output column comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnLineage {
    pub column: String,
    /// `direct` (copied, maybe renamed) or `derived` (computed).
    pub transform: &'static str,
    pub sources: Vec<SourceColumn>,
}

#[derive(Debug, Clone, Default)]
struct Lin {
    sources: BTreeSet<SourceColumn>,
    derived: bool,
}

impl Lin {
    fn merge(&mut self, other: &Lin) {
        self.sources.extend(other.sources.iter().cloned());
        self.derived |= other.derived;
    }
}

/// Lineage of every output column of `plan`, in output order. `relations` are the known
/// relation names (`schema.name`, lower case) where tracing stops.
pub fn column_lineage(
    plan: &LogicalPlan,
    default_schema: &str,
    relations: &BTreeSet<String>,
) -> Vec<ColumnLineage> {
    let lins = Tracer {
        default_schema,
        relations,
    }
    .plan(plan);
    plan.schema()
        .fields()
        .iter()
        .zip(lins)
        .map(|(field, lin)| ColumnLineage {
            column: field.name().clone(),
            transform: if lin.derived { "derived" } else { "direct" },
            sources: lin.sources.into_iter().collect(),
        })
        .collect()
}

/// `schema.table` for a scanned name (bare names are in the default schema).
pub fn relation_name(table: &TableReference, default_schema: &str) -> String {
    match table {
        TableReference::Bare { table } => format!("{default_schema}.{table}"),
        TableReference::Partial { schema, table } | TableReference::Full { schema, table, .. } => {
            format!("{schema}.{table}")
        }
    }
}

struct Tracer<'a> {
    default_schema: &'a str,
    relations: &'a BTreeSet<String>,
}

impl Tracer<'_> {
    /// Whether an alias names a relation (a view) or an ephemeral model rather than a CTE
    /// or sub-query: CTE names are never qualified, and a bare one counts only when it is
    /// a known relation of the default schema.
    fn is_boundary(&self, alias: &TableReference) -> bool {
        match alias {
            TableReference::Bare { table } => {
                table.starts_with(EPHEMERAL_PREFIX)
                    || self
                        .relations
                        .contains(&relation_name(alias, self.default_schema).to_lowercase())
            }
            _ => true,
        }
    }

    fn plan(&self, plan: &LogicalPlan) -> Vec<Lin> {
        let width = plan.schema().fields().len();
        let out = match plan {
            LogicalPlan::TableScan(scan) => {
                let relation = relation_name(&scan.table_name, self.default_schema);
                columns_of(&relation, &scan.projected_schema)
            }
            LogicalPlan::Projection(p) => {
                let input = self.plan(&p.input);
                p.expr
                    .iter()
                    .map(|e| self.expr(e, p.input.schema(), &input))
                    .collect()
            }
            LogicalPlan::Filter(f) => self.plan(&f.input),
            LogicalPlan::Sort(s) => self.plan(&s.input),
            LogicalPlan::Limit(l) => self.plan(&l.input),
            LogicalPlan::Repartition(r) => self.plan(&r.input),
            // The planner inlines a view as its plan under an alias of the view's name, and
            // dbt inlines an ephemeral model as a CTE; both are nodes of their own: stop there.
            LogicalPlan::SubqueryAlias(a) if self.is_boundary(&a.alias) => {
                let relation = if a.alias.table().starts_with(EPHEMERAL_PREFIX) {
                    a.alias.table().to_string()
                } else {
                    relation_name(&a.alias, self.default_schema)
                };
                columns_of(&relation, &a.schema)
            }
            LogicalPlan::SubqueryAlias(a) => self.plan(&a.input),
            LogicalPlan::Subquery(s) => self.plan(&s.subquery),
            LogicalPlan::Distinct(Distinct::All(input)) => self.plan(input),
            LogicalPlan::Distinct(Distinct::On(d)) => {
                let input = self.plan(&d.input);
                d.select_expr
                    .iter()
                    .map(|e| self.expr(e, d.input.schema(), &input))
                    .collect()
            }
            LogicalPlan::Window(w) => {
                let input = self.plan(&w.input);
                let mut out = input.clone();
                out.extend(
                    w.window_expr
                        .iter()
                        .map(|e| self.expr(e, w.input.schema(), &input)),
                );
                out
            }
            LogicalPlan::Aggregate(a) => {
                let input = self.plan(&a.input);
                let groups: Vec<&Expr> = a
                    .group_expr
                    .iter()
                    .flat_map(|e| match e {
                        Expr::GroupingSet(set) => set.distinct_expr(),
                        other => vec![other],
                    })
                    .collect();
                let mut out: Vec<Lin> = groups
                    .iter()
                    .map(|e| self.expr(e, a.input.schema(), &input))
                    .collect();
                // A grouping set adds an internal grouping id after the keys.
                let extra = width.saturating_sub(groups.len() + a.aggr_expr.len());
                out.extend((0..extra).map(|_| Lin {
                    derived: true,
                    ..Lin::default()
                }));
                out.extend(a.aggr_expr.iter().map(|e| {
                    let mut lin = self.expr(e, a.input.schema(), &input);
                    lin.derived = true;
                    lin
                }));
                out
            }
            LogicalPlan::Join(j) => {
                let mut out = self.plan(&j.left);
                out.extend(self.plan(&j.right));
                if out.len() == width {
                    out
                } else {
                    // Semi, anti and mark joins keep one side (and a flag).
                    self.by_name(plan)
                }
            }
            LogicalPlan::Union(u) => {
                let mut out = vec![Lin::default(); width];
                for input in &u.inputs {
                    for (slot, lin) in out.iter_mut().zip(self.plan(input)) {
                        slot.merge(&lin);
                    }
                }
                out
            }
            LogicalPlan::RecursiveQuery(r) => {
                let mut out = self.plan(&r.static_term);
                for (slot, lin) in out.iter_mut().zip(self.plan(&r.recursive_term)) {
                    slot.merge(&lin);
                }
                out
            }
            LogicalPlan::Unnest(u) => {
                // Each output column comes from one input column; unnested ones are computed.
                let input = self.plan(&u.input);
                let unnested: BTreeSet<usize> = u
                    .list_type_columns
                    .iter()
                    .map(|(i, _)| *i)
                    .chain(u.struct_type_columns.iter().copied())
                    .collect();
                u.dependency_indices
                    .iter()
                    .map(|&i| {
                        let mut lin = input.get(i).cloned().unwrap_or_default();
                        lin.derived |= unnested.contains(&i);
                        lin
                    })
                    .collect()
            }
            LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => {
                vec![Lin::default(); width]
            }
            _ => self.by_name(plan),
        };
        if out.len() == width {
            out
        } else {
            self.by_name(plan)
        }
    }

    /// Fallback: match each output column to an input column of the same (qualified) name.
    fn by_name(&self, plan: &LogicalPlan) -> Vec<Lin> {
        let inputs: Vec<(&DFSchema, Vec<Lin>)> = plan
            .inputs()
            .into_iter()
            .map(|i| (i.schema().as_ref(), self.plan(i)))
            .collect();
        plan.schema()
            .iter()
            .map(|(qualifier, field)| {
                let col = Column::new(qualifier.cloned(), field.name());
                inputs
                    .iter()
                    .find_map(|(schema, lins)| {
                        schema
                            .index_of_column(&col)
                            .ok()
                            .and_then(|i| lins.get(i).cloned())
                    })
                    .unwrap_or(Lin {
                        derived: true,
                        ..Lin::default()
                    })
            })
            .collect()
    }

    /// Lineage of one expression over an input with `schema` and column lineage `input`.
    fn expr(&self, expr: &Expr, schema: &DFSchema, input: &[Lin]) -> Lin {
        let mut lin = Lin {
            derived: !is_plain_column(expr),
            ..Lin::default()
        };
        for col in expr.column_refs() {
            if let Some(source) = schema.index_of_column(col).ok().and_then(|i| input.get(i)) {
                lin.merge(source);
            }
        }
        // Scalar sub-queries, EXISTS and IN (SELECT ...) feed their own columns in.
        let mut subqueries = SubqueryFinder(Vec::new());
        let _ = datafusion::common::tree_node::TreeNode::visit(expr, &mut subqueries);
        for plan in subqueries.0 {
            for source in self.plan(&plan) {
                lin.sources.extend(source.sources);
            }
        }
        lin
    }
}

/// Each column of a relation, as its own source.
fn columns_of(relation: &str, schema: &DFSchema) -> Vec<Lin> {
    schema
        .fields()
        .iter()
        .map(|f| Lin {
            sources: [SourceColumn {
                relation: relation.to_string(),
                column: f.name().clone(),
            }]
            .into(),
            derived: false,
        })
        .collect()
}

fn is_plain_column(expr: &Expr) -> bool {
    match expr {
        Expr::Column(_) => true,
        Expr::Alias(a) => is_plain_column(&a.expr),
        _ => false,
    }
}

struct SubqueryFinder(Vec<std::sync::Arc<LogicalPlan>>);

impl<'n> TreeNodeVisitor<'n> for SubqueryFinder {
    type Node = Expr;

    fn f_down(&mut self, node: &'n Expr) -> datafusion::common::Result<TreeNodeRecursion> {
        match node {
            Expr::ScalarSubquery(s) => self.0.push(s.subquery.clone()),
            Expr::Exists(e) => self.0.push(e.subquery.subquery.clone()),
            Expr::InSubquery(i) => self.0.push(i.subquery.subquery.clone()),
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    }
}
