//! `build` and `test`: the project's dbt models, seeds, snapshots and tests (see
//! `socle build`), with a selection.
//!
//! ```yaml
//! transform:
//!   kind: build
//!   select: [+marts]          # dbt selection syntax; default: everything
//!   exclude: [tag:slow]
//!   full_refresh: false
//!   vars: { day: "{{ ds }}" }
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;

use socle_transform::nodes::{Kind as NodeKind, Node};
use socle_transform::run::{NodeResult, Progress, RunOptions, Status};

use super::{Fields, Kind, Log, TaskContext, TaskFailure};
use crate::pipeline::{StringOrList, TaskSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Build,
    Test,
}

impl Which {
    /// The `kind:` value, and the command named in `run_results.json`.
    pub const fn name(self) -> &'static str {
        match self {
            Which::Build => "build",
            Which::Test => "test",
        }
    }
}

/// The fields of a `build` or `test` task.
#[derive(Debug, Clone, Default)]
pub struct Dbt {
    pub select: Vec<String>,
    pub exclude: Vec<String>,
    pub full_refresh: bool,
    pub vars: Option<serde_json::Value>,
}

impl Dbt {
    fn parse(f: &mut Fields) -> Self {
        let list = |f: &mut Fields, key| {
            f.value::<StringOrList>(key)
                .map(|s| s.to_vec())
                .unwrap_or_default()
        };
        Self {
            select: list(f, "select"),
            exclude: list(f, "exclude"),
            full_refresh: f.value("full_refresh").unwrap_or(false),
            vars: f.value("vars"),
        }
    }

    fn templates(&self) -> Vec<String> {
        self.select.iter().chain(&self.exclude).cloned().collect()
    }
}

/// `kind: build`: seeds, models, snapshots and tests.
#[derive(Debug, Clone)]
pub struct Build(pub Dbt);

/// `kind: test`: the data tests only.
#[derive(Debug, Clone)]
pub struct Test(pub Dbt);

/// [`Kind`] for a dbt command: `$ty` wraps [`Dbt`] and runs `$which`.
macro_rules! dbt_kind {
    ($ty:ident, $which:expr, $fields:expr) => {
        impl Kind for $ty {
            const NAME: &'static str = $which.name();
            const FIELDS: &'static [&'static str] = $fields;

            fn parse(f: &mut Fields) -> Self {
                Self(Dbt::parse(f))
            }

            fn templates(&self) -> Vec<String> {
                self.0.templates()
            }

            fn check(&self) -> Result<(), String> {
                self.0.check()
            }

            fn uses_warehouse(&self) -> bool {
                true
            }

            async fn run(
                &self,
                _spec: &TaskSpec,
                ctx: &TaskContext,
            ) -> Result<String, TaskFailure> {
                self.0.run($which, ctx).await
            }
        }
    };
}

dbt_kind!(
    Build,
    Which::Build,
    &["select", "exclude", "full_refresh", "vars"]
);
dbt_kind!(Test, Which::Test, &["select", "exclude", "vars"]);

struct ToLog(Log);

impl Progress for ToLog {
    fn started(&self, _: &Node, _: usize, _: usize) {}
    fn finished(&self, node: &Node, r: &NodeResult, index: usize, total: usize) {
        self.0.line(&format!(
            "{index} of {total} {} {} {} in {:.2}s{}",
            r.status.as_str().to_uppercase(),
            node.kind.as_str(),
            node.name,
            r.duration.as_secs_f64(),
            if r.status.is_failure() {
                format!(": {}", r.message)
            } else {
                String::new()
            }
        ));
    }
}

/// Renders the templated strings inside `vars` (a mapping of values).
fn render_vars(ctx: &TaskContext, v: &serde_json::Value) -> Result<serde_json::Value, TaskFailure> {
    Ok(match v {
        serde_json::Value::String(s) => serde_json::Value::String(ctx.render(s)?),
        serde_json::Value::Array(a) => serde_json::Value::Array(
            a.iter()
                .map(|x| render_vars(ctx, x))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), render_vars(ctx, x)?)))
                .collect::<Result<_, TaskFailure>>()?,
        ),
        other => other.clone(),
    })
}

impl Dbt {
    fn check(&self) -> Result<(), String> {
        match &self.vars {
            None | Some(serde_json::Value::Object(_)) => Ok(()),
            Some(_) => Err("`vars` must be a mapping, such as { day: \"{{ ds }}\" }".into()),
        }
    }

    async fn run(&self, which: Which, ctx: &TaskContext) -> Result<String, TaskFailure> {
        let cli_vars = match &self.vars {
            Some(v) => match render_vars(ctx, v)? {
                serde_json::Value::Object(m) => m,
                _ => serde_json::Map::new(),
            },
            None => serde_json::Map::new(),
        };
        let select = self
            .select
            .iter()
            .map(|s| ctx.render(s))
            .collect::<Result<Vec<_>, _>>()?;
        let exclude = self
            .exclude
            .iter()
            .map(|s| ctx.render(s))
            .collect::<Result<Vec<_>, _>>()?;
        let loaded = socle_app::load_dbt(&ctx.project, 4, cli_vars)
            .await
            .map_err(|e| TaskFailure::new(e.to_string()))?;
        let kinds: BTreeSet<NodeKind> = match which {
            Which::Build => [
                NodeKind::Seed,
                NodeKind::Model,
                NodeKind::Snapshot,
                NodeKind::Test,
            ]
            .into(),
            Which::Test => [NodeKind::Test].into(),
        };
        let options = RunOptions {
            select,
            exclude,
            kinds,
            threads: 4,
            full_refresh: self.full_refresh,
            fail_fast: false,
            compile_only: false,
        };
        let report = socle_app::run_dbt(
            loaded,
            ctx.warehouse().await?,
            options,
            Arc::new(ToLog(ctx.log.clone())),
            which.name(),
        )
        .await
        .map_err(|e| TaskFailure::new(e.to_string()))?;
        let pass = report.count(Status::Success) + report.count(Status::Pass);
        let summary = format!(
            "PASS={pass} WARN={} ERROR={} SKIP={} TOTAL={}",
            report.count(Status::Warn),
            report.count(Status::Error) + report.count(Status::Fail),
            report.count(Status::Skipped),
            report.results.len()
        );
        ctx.log.line(&summary);
        if report.success() {
            Ok(summary)
        } else {
            let failed: Vec<String> = report
                .results
                .iter()
                .filter(|r| r.status.is_failure())
                .map(|r| {
                    r.unique_id
                        .rsplit('.')
                        .next()
                        .unwrap_or(&r.unique_id)
                        .to_string()
                })
                .collect();
            Err(TaskFailure::new(format!(
                "{summary}; failed: {}",
                failed.join(", ")
            )))
        }
    }
}
