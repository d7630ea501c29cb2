//! `socle check`: validate everything socle knows about the project, without changing it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::context;

/// Validate the project: configuration, lake, metadata database, tables and views
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  socle check\n  socle --project examples/shop check --format json"
)]
pub struct Args {
    /// Output format
    #[arg(long, value_enum, default_value_t = super::table::OutFormat::Text)]
    pub format: super::table::OutFormat,
}

#[derive(Serialize)]
struct Check {
    name: String,
    ok: bool,
    detail: String,
}

/// Configuration errors, one per line, with files named relative to the project.
fn located(project: &socle_core::Project, errors: Vec<socle_core::ConfigError>) -> String {
    errors
        .into_iter()
        .map(|mut e| {
            e.file = project.display_path(&e.file).into_owned().into();
            e.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n    ")
}

pub async fn run(project: Option<PathBuf>, args: Args) -> Result<ExitCode> {
    let project = context::project(project)?;
    let mut checks = Vec::new();
    let mut push = |name: &str, result: Result<String, String>| {
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(d) => (false, d),
        };
        checks.push(Check {
            name: name.into(),
            ok,
            detail,
        });
    };
    let cfg_name = project
        .config_file
        .as_ref()
        .map(|p| project.display_path(p).into_owned());
    push(
        "configuration",
        Ok(match cfg_name {
            Some(f) => format!("{f} is valid (project `{}`)", project.config.name),
            None => format!(
                "no socle.yml: defaults for dbt project `{}`",
                project.config.name
            ),
        }),
    );

    let model_names = socle_ml::spec::names(&project.root);
    let checked = socle_orchestrate::pipeline::load_all(&project.root).and_then(|pipelines| {
        let errors: Vec<_> = pipelines
            .iter()
            .flat_map(|p| {
                let mut e = p.check_against(&project.config);
                e.extend(unknown_models(p, &model_names));
                e
            })
            .collect();
        if errors.is_empty() {
            Ok(pipelines)
        } else {
            Err(socle_orchestrate::OrchestrateError::Configs(errors))
        }
    });
    match checked {
        Ok(pipelines) if pipelines.is_empty() => {}
        Ok(pipelines) => push(
            "pipelines",
            Ok(format!(
                "{} valid: {}",
                pipelines.len(),
                pipelines
                    .iter()
                    .map(|p| format!("{} ({} tasks)", p.name, p.tasks.len()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ),
        Err(socle_orchestrate::OrchestrateError::Configs(errors)) => {
            push("pipelines", Err(located(&project, errors)))
        }
        Err(e) => push("pipelines", Err(e.to_string())),
    }

    match socle_connect::load_sources(&project.root) {
        Ok(sources) if sources.is_empty() => {}
        Ok(sources) => push(
            "sources",
            Ok(format!(
                "{} valid: {}",
                sources.len(),
                sources
                    .iter()
                    .map(|s| format!(
                        "{} ({}, {} streams)",
                        s.common().name,
                        s.common().kind,
                        s.common().streams.len()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ),
        Err(socle_connect::ConnectError::Configs(errors)) => {
            push("sources", Err(located(&project, errors)))
        }
        Err(e) => push("sources", Err(e.to_string())),
    }

    let models = match socle_ml::spec::load_all(&project.root) {
        Ok(specs) => {
            if !specs.is_empty() {
                push(
                    "models",
                    Ok(format!(
                        "{} valid: {}",
                        specs.len(),
                        specs
                            .iter()
                            .map(|s| format!("{} ({})", s.name, s.kind.name()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            }
            specs
        }
        Err(errors) => {
            push("models", Err(located(&project, errors)));
            Vec::new()
        }
    };

    let secrets = socle_app::resolver(&project);
    let lake = match socle_app::open_lake(&project, &secrets) {
        Ok(lake) => match lake.check().await {
            Ok(()) => {
                push("lake", Ok(format!("{} is reachable", lake.url())));
                Some(lake)
            }
            Err(e) => {
                push("lake", Err(e.to_string()));
                None
            }
        },
        Err(e) => {
            push("lake", Err(e.to_string()));
            None
        }
    };

    let meta = match project.config.metadata.url.resolve(&secrets) {
        Ok(url) => match socle_app::open_meta(&project, &secrets).await {
            Ok(db) => {
                let v = db.schema_version().await.unwrap_or_default();
                push(
                    "metadata database",
                    Ok(format!("{} (schema version {v})", socle_meta::redact(&url))),
                );
                Some(db)
            }
            Err(e) => {
                push("metadata database", Err(e.to_string()));
                None
            }
        },
        Err(e) => {
            push("metadata database", Err(e.to_string()));
            None
        }
    };

    if let (Some(lake), Some(meta)) = (lake, meta) {
        match socle_app::open_warehouse(&project, lake, meta, socle_app::Access::Project).await {
            Ok(wh) => match wh.validate().await.map(|r| (r, &wh)) {
                Ok((report, wh)) => {
                    let (problems, later) = model_inputs(&project, &models, wh).await;
                    if !models.is_empty() {
                        let checked = models.len() - later.len();
                        let mut detail = format!(
                            "the columns of {checked} of {} models are there",
                            models.len()
                        );
                        if !later.is_empty() {
                            detail.push_str(&format!("; not checked yet: {}", later.join(", ")));
                        }
                        push(
                            "model inputs",
                            if problems.is_empty() {
                                Ok(detail)
                            } else {
                                Err(problems.join("\n    "))
                            },
                        );
                    }
                    let n = report.tables + report.views;
                    if report.problems.is_empty() {
                        push(
                            "warehouse",
                            Ok(format!(
                                "{} tables and {} views readable",
                                report.tables, report.views
                            )),
                        );
                    } else {
                        push(
                            "warehouse",
                            Err(format!(
                                "{} of {n} relations have problems:\n    {}",
                                report.problems.len(),
                                report.problems.join("\n    ")
                            )),
                        );
                    }
                }
                Err(e) => push("warehouse", Err(e.to_string())),
            },
            Err(e) => push("warehouse", Err(e.to_string())),
        }
    }

    let failed = checks.iter().filter(|c| !c.ok).count();
    if args.format == super::table::OutFormat::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "ok": failed == 0, "checks": checks })
            )?
        );
    } else {
        for c in &checks {
            println!(
                "{} {:<18} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        if failed == 0 {
            println!("\nAll checks passed.");
        } else {
            println!("\n{failed} check(s) failed.");
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Each model whose input lacks a column its kind uses (found by planning the input). An
/// input naming a dbt model is planned as that model's relation; one not built yet (nor a
/// table not loaded yet) is no failure: it is checked once it exists.
async fn model_inputs(
    project: &socle_core::Project,
    models: &[socle_ml::spec::ModelSpec],
    wh: &socle_warehouse::Warehouse,
) -> (Vec<String>, Vec<String>) {
    use socle_ml::spec::Input;
    let (mut problems, mut later) = (Vec::new(), Vec::new());
    let dbt = if models.iter().any(|s| matches!(s.input, Input::Model(_))) {
        socle_app::ml::dbt_models(project)
            .await
            .map_err(|e| e.to_string())
    } else {
        Ok(Vec::new())
    };
    for spec in models {
        let file = project.display_path(&spec.file).into_owned();
        // The relation the input reads, when it is one: checked once it exists.
        let (relation, sql) = match (&spec.input, &dbt) {
            (Input::Model(m), Ok(dbt)) => match dbt.iter().find(|(n, _)| n == m) {
                Some((_, relation)) => {
                    (Some(relation.clone()), format!("SELECT * FROM {relation}"))
                }
                None => {
                    let hint =
                        socle_core::diag::did_you_mean(m, dbt.iter().map(|(n, _)| n.as_str()))
                            .map(|b| format!(" (did you mean `{b}`?)"))
                            .unwrap_or_default();
                    problems.push(format!(
                        "{file}: model `{}`: `input.model`: the dbt project has no model `{m}`{hint}",
                        spec.name
                    ));
                    continue;
                }
            },
            (Input::Model(_), Err(e)) => {
                problems.push(format!(
                    "{file}: model `{}`: `input.model`: the dbt project does not load: {e}",
                    spec.name
                ));
                continue;
            }
            (Input::Table(t), _) => (Some(t.clone()), spec.input.sql()),
            (Input::Sql(_), _) => (None, spec.input.sql()),
        };
        // dbt quotes its relations (`"main"."name"`).
        if let Some(relation) = relation.map(|r| r.replace('"', ""))
            && !matches!(wh.relation_kind(&relation).await, Ok(Some(_)))
        {
            later.push(format!("`{}` ({relation} does not exist yet)", spec.name));
            continue;
        }
        match socle_ml::run::missing_columns(spec, wh, &sql).await {
            Ok(missing) => problems.extend(
                missing
                    .into_iter()
                    .map(|m| format!("{file}: model `{}`: the input has {m}", spec.name)),
            ),
            Err(e) => problems.push(format!(
                "{file}: model `{}`: the input does not plan: {e}",
                spec.name
            )),
        }
    }
    (problems, later)
}

/// `ml` tasks naming a model that has no file in `ml/`, each at its task.
fn unknown_models(
    pipeline: &socle_orchestrate::pipeline::Pipeline,
    names: &[String],
) -> Vec<socle_core::ConfigError> {
    use socle_orchestrate::tasks::TaskKind;
    pipeline
        .tasks
        .values()
        .filter_map(|t| match &t.kind {
            TaskKind::Ml(ml) => ml.model.as_ref().map(|m| (t, m)),
            _ => None,
        })
        .filter(|(_, m)| !names.contains(m))
        .map(|(t, m)| {
            let mut e = socle_core::ConfigError::new(
                &pipeline.file,
                t.location,
                format!("task `{}`: no model `{m}` (no ml/{m}.yml)", t.name),
            );
            e.hint = Some(
                match socle_core::diag::did_you_mean(m, names.iter().map(String::as_str)) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None if names.is_empty() => "write ml/<name>.yml (see docs/ml.md)".into(),
                    None => format!("models: {}", names.join(", ")),
                },
            );
            e
        })
        .collect()
}
