//! Pipelines: `pipelines/<name>.yml`, a schedule and a set of tasks with dependencies.
//!
//! ```yaml
//! description: Build the shop every morning.
//! schedule: "0 6 * * *"          # cron (5 fields, or 6 with seconds) or @daily, @hourly, ...
//! timezone: Europe/Paris          # default UTC
//! start_date: 2024-01-01
//! catchup: false
//! defaults: { retries: 2, retry_delay: 30s, timeout: 1h }
//! tasks:
//!   build:
//!     kind: build
//!     select: [+marts]
//!   report:
//!     kind: sql
//!     file: jobs/report.sql
//!     depends_on: [build]
//! ```
//!
//! Files are read strictly: an unknown key, a field that does not apply to the task's
//! kind, an unknown dependency, a cycle, a bad cron expression, time zone or duration,
//! and a template that does not parse are all reported with `file:line:column`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;
use socle_core::{ConfigError, Location};

use crate::error::{OrchestrateError, Result};
use crate::schedule::Schedule;

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    pub schedule: Option<Schedule>,
    pub start_date: Option<chrono::NaiveDate>,
    pub end_date: Option<chrono::NaiveDate>,
    pub catchup: bool,
    pub max_active_runs: u32,
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Tasks by name.
    pub tasks: BTreeMap<String, TaskSpec>,
    /// Which events alert which channels (the defaults of socle.yml otherwise).
    pub alerts: Option<PipelineAlerts>,
    /// A run not finished this long after its interval ends misses its SLA.
    pub sla: Option<Duration>,
}

/// `alerts:` of a pipeline.
#[derive(Debug, Clone, Default)]
pub struct PipelineAlerts {
    pub on: Option<Vec<String>>,
    pub to: Option<Vec<String>>,
    /// Where each channel name is written (to report unknown ones).
    pub to_at: Vec<(String, Location)>,
}

impl Pipeline {
    /// Names this pipeline uses that `socle.yml` must define: alert channels (of
    /// `alerts.to` and `notify` tasks) and pools.
    pub fn check_against(&self, project: &socle_core::Config) -> Vec<ConfigError> {
        let mut errors = self.check_channels(&project.alerts);
        for t in self.tasks.values() {
            if let Some(pool) = &t.pool
                && !project.pools.contains_key(pool)
            {
                let mut e = ConfigError::new(
                    &self.file,
                    t.pool_at.unwrap_or(t.location),
                    format!("task `{}`: no pool `{pool}` in socle.yml", t.name),
                );
                e.hint = Some(
                    match socle_core::diag::did_you_mean(
                        pool,
                        project.pools.keys().map(String::as_str),
                    ) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("define it in socle.yml: `pools: {{ {pool}: 2 }}`"),
                    },
                );
                errors.push(e);
            }
        }
        errors
    }

    fn check_channels(&self, config: &socle_core::alerts::AlertsConfig) -> Vec<ConfigError> {
        let mut named: Vec<(String, Location)> = self
            .alerts
            .as_ref()
            .map(|a| a.to_at.clone())
            .unwrap_or_default();
        for t in self.tasks.values() {
            named.extend(t.kind.channels().into_iter().map(|c| (c, t.location)));
        }
        named
            .into_iter()
            .filter(|(name, _)| !config.channels.contains_key(name))
            .map(|(name, at)| {
                socle_core::alerts::unknown_channel(&self.file, at, &name, &config.channels)
            })
            .collect()
    }
}

/// When a task runs, given its upstream tasks' outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerRule {
    /// Every upstream task succeeded (the default).
    AllSuccess,
    /// Every upstream task finished, whatever the outcome.
    AllDone,
    /// At least one upstream task failed (clean-up and alert tasks).
    OneFailed,
}

impl TriggerRule {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerRule::AllSuccess => "all_success",
            TriggerRule::AllDone => "all_done",
            TriggerRule::OneFailed => "one_failed",
        }
    }
}

/// Retries and time limits of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub retries: u32,
    pub retry_delay: Duration,
    /// Double the delay after each failed attempt (up to `max_retry_delay`), with jitter.
    pub retry_backoff: bool,
    pub max_retry_delay: Duration,
    pub timeout: Option<Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            retries: 0,
            retry_delay: Duration::from_secs(30),
            retry_backoff: false,
            max_retry_delay: Duration::from_secs(3600),
            timeout: None,
        }
    }
}

/// A program and its arguments, or one string run by `sh -c` (also any field taking one
/// string or a list).
pub type StringOrList = socle_core::OneOrMany;

/// A validated task: common fields plus the fields of its kind.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    pub name: String,
    /// The kind, with its own fields.
    pub kind: crate::tasks::TaskKind,
    pub location: Location,
    pub description: String,
    pub depends_on: Vec<String>,
    pub trigger_rule: TriggerRule,
    pub policy: Policy,
    /// A concurrency pool of socle.yml whose slot an attempt holds.
    pub pool: Option<String>,
    pub pool_at: Option<Location>,
    /// Higher runs first among ready tasks and among tasks waiting for a pool slot.
    pub priority: i32,
}

use socle_core::duration::DurationText;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    description: Option<String>,
    schedule: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    start_date: Option<Spanned<String>>,
    end_date: Option<Spanned<String>>,
    catchup: Option<bool>,
    max_active_runs: Option<u32>,
    defaults: Option<RawDefaults>,
    params: Option<serde_json::Map<String, serde_json::Value>>,
    alerts: Option<RawPipelineAlerts>,
    sla: Option<Spanned<DurationText>>,
    tasks: Spanned<BTreeMap<String, Spanned<RawTask>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipelineAlerts {
    on: Option<Vec<Spanned<String>>>,
    to: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    retries: Option<u32>,
    retry_delay: Option<Spanned<DurationText>>,
    retry_backoff: Option<bool>,
    max_retry_delay: Option<Spanned<DurationText>>,
    timeout: Option<Spanned<DurationText>>,
}

/// The fields every task has; the kind's own fields are read by the kind
/// ([`crate::tasks::Kind::parse`]) from [`RawTaskFields`].
#[derive(Debug, Deserialize)]
struct RawTask {
    kind: Spanned<String>,
    description: Option<String>,
    depends_on: Option<Vec<Spanned<String>>>,
    trigger_rule: Option<Spanned<String>>,
    pool: Option<Spanned<String>>,
    priority: Option<i32>,
    retries: Option<u32>,
    retry_delay: Option<Spanned<DurationText>>,
    retry_backoff: Option<bool>,
    max_retry_delay: Option<Spanned<DurationText>>,
    timeout: Option<Spanned<DurationText>>,
}

/// The common fields' names (every other key of a task is its kind's, or a mistake).
const COMMON_FIELDS: &[&str] = &[
    "kind",
    "description",
    "depends_on",
    "trigger_rule",
    "pool",
    "priority",
    "retries",
    "retry_delay",
    "retry_backoff",
    "max_retry_delay",
    "timeout",
];

/// Every key of every task, each value with where it is (read a second time from the
/// same text, for the kinds' own fields).
#[derive(Debug, Deserialize)]
struct RawTaskFields {
    tasks: BTreeMap<String, BTreeMap<String, Spanned<serde_json::Value>>>,
}

fn loc<T>(s: &Spanned<T>) -> Location {
    Location::of(s)
}

pub use socle_core::duration::parse as parse_duration;

fn duration(file: &Path, d: &Spanned<DurationText>, field: &str) -> Result<Duration, ConfigError> {
    match &d.value {
        DurationText::Seconds(s) => Ok(Duration::from_secs(*s)),
        DurationText::Text(t) => parse_duration(t).ok_or_else(|| {
            ConfigError::new(file, loc(d), format!("`{field}`: `{t}` is not a duration"))
                .with_hint("write seconds (30) or a number with a unit: 30s, 5m, 2h, 1d, 1h30m")
        }),
    }
}

fn date(file: &Path, d: &Spanned<String>, field: &str) -> Result<chrono::NaiveDate, ConfigError> {
    chrono::NaiveDate::parse_from_str(d.value.trim(), "%Y-%m-%d").map_err(|_| {
        ConfigError::new(
            file,
            loc(d),
            format!("`{field}`: `{}` is not a date", d.value),
        )
        .with_hint("write YYYY-MM-DD")
    })
}

/// Reads every `pipelines/*.yml` (and `.yaml`) of a project, reporting all problems.
pub fn load_all(root: &Path) -> Result<Vec<Pipeline>> {
    let files = socle_core::project::yaml_files(&root.join("pipelines"));
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match load_file(&file) {
            Ok(p) => out.push(p),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(OrchestrateError::Configs(errors))
    }
}

/// One pipeline by name (the file stem), with a suggestion when it does not exist.
pub fn load_one(root: &Path, name: &str) -> Result<Pipeline> {
    let all = load_all(root)?;
    let names: Vec<String> = all.iter().map(|p| p.name.clone()).collect();
    all.into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| OrchestrateError::UnknownPipeline {
            name: name.to_string(),
            hint: socle_core::diag::did_you_mean(name, names.iter().map(String::as_str))
                .map(str::to_string),
        })
}

/// Parses and validates one pipeline file; all problems found are returned.
pub fn load_file(file: &Path) -> std::result::Result<Pipeline, Vec<ConfigError>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| vec![ConfigError::file(file, format!("cannot read: {e}"))])?;
    from_yaml(&text, file)
}

/// Parses and validates the text of a pipeline file (`file` names it in errors, and its
/// stem is the pipeline's name); all problems found are returned.
pub fn from_yaml(text: &str, file: &Path) -> std::result::Result<Pipeline, Vec<ConfigError>> {
    let raw: RawPipeline =
        serde_saphyr::from_str(text).map_err(|e| vec![ConfigError::from_yaml(file, &e)])?;
    let mut fields: RawTaskFields =
        serde_saphyr::from_str(text).map_err(|e| vec![ConfigError::from_yaml(file, &e)])?;
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut errors = Vec::new();
    let mut push = |r: std::result::Result<(), ConfigError>| {
        if let Err(e) = r {
            errors.push(e);
        }
    };
    let timezone = match &raw.timezone {
        None => chrono_tz::UTC,
        Some(tz) => match tz.value.parse::<chrono_tz::Tz>() {
            Ok(tz) => tz,
            Err(_) => {
                push(Err(ConfigError::new(
                    file,
                    loc(tz),
                    format!("`timezone`: unknown time zone `{}`", tz.value),
                )
                .with_hint(
                    "use an IANA name such as UTC, Europe/Paris, America/New_York",
                )));
                chrono_tz::UTC
            }
        },
    };
    let schedule = match &raw.schedule {
        None => None,
        Some(s) => match Schedule::parse(&s.value, timezone) {
            Ok(s) => Some(s),
            Err(msg) => {
                push(Err(ConfigError::new(
                    file,
                    loc(s),
                    format!("`schedule`: {msg}"),
                )
                .with_hint("cron with 5 fields (minute hour day month weekday), 6 with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly")));
                None
            }
        },
    };
    let mut dates = |d: &Option<Spanned<String>>, field: &str| match d {
        None => None,
        Some(d) => match date(file, d, field) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    let start_date = dates(&raw.start_date, "start_date");
    let end_date = dates(&raw.end_date, "end_date");
    let defaults = raw.defaults.unwrap_or_default();
    let mut base = Policy::default();
    let mut policy_errors = Vec::new();
    apply_policy(
        file,
        &mut base,
        defaults.retries,
        &defaults.retry_delay,
        defaults.retry_backoff,
        &defaults.max_retry_delay,
        &defaults.timeout,
        &mut policy_errors,
    );
    errors.append(&mut policy_errors);
    let task_names: BTreeSet<String> = raw.tasks.value.keys().cloned().collect();
    if task_names.is_empty() {
        errors.push(ConfigError::new(
            file,
            loc(&raw.tasks),
            "`tasks` is empty: a pipeline needs at least one task",
        ));
    }
    let mut tasks = BTreeMap::new();
    for (task_name, spanned) in raw.tasks.value {
        let own = fields.tasks.remove(&task_name).unwrap_or_default();
        match task(file, &task_name, spanned, own, &base, &task_names) {
            Ok(t) => {
                tasks.insert(task_name, t);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    let alerts = match raw.alerts {
        None => None,
        Some(a) => {
            let on = match &a.on {
                Some(events) => match socle_core::alerts::check_events(file, events) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        errors.push(e);
                        None
                    }
                },
                None => None,
            };
            let to_at: Vec<(String, Location)> =
                a.to.iter()
                    .flatten()
                    .map(|t| (t.value.clone(), loc(t)))
                    .collect();
            Some(PipelineAlerts {
                on,
                to: a.to.map(|t| t.into_iter().map(|x| x.value).collect()),
                to_at,
            })
        }
    };
    let sla = match &raw.sla {
        None => None,
        Some(d) => match duration(file, d, "sla") {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    if let Some(cycle) = crate::dag::find_cycle(&tasks) {
        let at = tasks.get(&cycle[0]).map(|t| t.location).unwrap_or_default();
        errors.push(ConfigError::new(
            file,
            at,
            format!(
                "tasks depend on each other in a cycle: {}",
                cycle.join(" -> ")
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Pipeline {
        name,
        file: file.to_path_buf(),
        description: raw.description.unwrap_or_default(),
        schedule,
        start_date,
        end_date,
        catchup: raw.catchup.unwrap_or(false),
        max_active_runs: raw.max_active_runs.unwrap_or(1).max(1),
        params: raw.params.unwrap_or_default(),
        tasks,
        alerts,
        sla,
    })
}

#[allow(clippy::too_many_arguments)]
fn apply_policy(
    file: &Path,
    policy: &mut Policy,
    retries: Option<u32>,
    retry_delay: &Option<Spanned<DurationText>>,
    retry_backoff: Option<bool>,
    max_retry_delay: &Option<Spanned<DurationText>>,
    timeout: &Option<Spanned<DurationText>>,
    errors: &mut Vec<ConfigError>,
) {
    if let Some(r) = retries {
        policy.retries = r;
    }
    if let Some(b) = retry_backoff {
        policy.retry_backoff = b;
    }
    for (value, field) in [
        (retry_delay, "retry_delay"),
        (max_retry_delay, "max_retry_delay"),
        (timeout, "timeout"),
    ] {
        if let Some(d) = value {
            match duration(file, d, field) {
                Ok(d) => match field {
                    "retry_delay" => policy.retry_delay = d,
                    "max_retry_delay" => policy.max_retry_delay = d,
                    _ => policy.timeout = Some(d),
                },
                Err(e) => errors.push(e),
            }
        }
    }
}

fn task(
    file: &Path,
    name: &str,
    spanned: Spanned<RawTask>,
    fields: BTreeMap<String, Spanned<serde_json::Value>>,
    base: &Policy,
    names: &BTreeSet<String>,
) -> std::result::Result<TaskSpec, Vec<ConfigError>> {
    use crate::tasks::{Fields, TaskKind};
    let at = loc(&spanned);
    let raw = spanned.value;
    let mut errors = Vec::new();
    let kind = raw.kind.value.clone();
    let known = TaskKind::NAMES;
    let accepted = TaskKind::fields_of(&kind);
    if accepted.is_none() {
        let mut e = ConfigError::new(
            file,
            loc(&raw.kind),
            format!("task `{name}`: unknown kind `{kind}`"),
        );
        e.hint = Some(
            match socle_core::diag::did_you_mean(&kind, known.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("kinds: {}", known.join(", ")),
            },
        );
        errors.push(e);
    }
    // The kind's own fields go to the kind; any other key is refused where it is.
    let mut own = BTreeMap::new();
    for (field, value) in fields {
        if COMMON_FIELDS.contains(&field.as_str()) {
            continue;
        }
        let where_ = loc(&value);
        match accepted {
            Some(accepted) if accepted.contains(&field.as_str()) => {
                own.insert(field, value);
            }
            Some(accepted)
                if known.iter().any(|k| {
                    TaskKind::fields_of(k).is_some_and(|f| f.contains(&field.as_str()))
                }) =>
            {
                errors.push(
                    ConfigError::new(
                        file,
                        where_,
                        format!("task `{name}`: `{field}` does not apply to a `{kind}` task"),
                    )
                    .with_hint(if accepted.is_empty() {
                        format!("a `{kind}` task takes no fields of its own")
                    } else {
                        format!("a `{kind}` task takes: {}", accepted.join(", "))
                    }),
                );
            }
            None if known
                .iter()
                .any(|k| TaskKind::fields_of(k).is_some_and(|f| f.contains(&field.as_str()))) => {}
            _ => {
                let every: Vec<&str> = COMMON_FIELDS
                    .iter()
                    .copied()
                    .chain(accepted.unwrap_or_default().iter().copied())
                    .collect();
                let mut e = ConfigError::new(
                    file,
                    where_,
                    format!("task `{name}`: unknown field `{field}`"),
                );
                e.hint = Some(
                    match socle_core::diag::did_you_mean(&field, every.iter().copied()) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("fields: {}", every.join(", ")),
                    },
                );
                errors.push(e);
            }
        }
    }
    let mut reader = Fields::new(file, format!("task `{name}`"), own);
    let kind_spec = TaskKind::parse(&kind, &mut reader);
    errors.extend(reader.into_errors());
    let mut depends_on = Vec::new();
    for dep in raw.depends_on.unwrap_or_default() {
        if dep.value == name {
            errors.push(ConfigError::new(
                file,
                loc(&dep),
                format!("task `{name}` depends on itself"),
            ));
        } else if !names.contains(&dep.value) {
            let mut e = ConfigError::new(
                file,
                loc(&dep),
                format!(
                    "task `{name}` depends on `{}`, which is not a task of this pipeline",
                    dep.value
                ),
            );
            if let Some(best) =
                socle_core::diag::did_you_mean(&dep.value, names.iter().map(String::as_str))
            {
                e.hint = Some(format!("did you mean `{best}`?"));
            }
            errors.push(e);
        } else {
            depends_on.push(dep.value);
        }
    }
    let trigger_rule = match raw.trigger_rule.as_ref().map(|t| t.value.as_str()) {
        None | Some("all_success") => TriggerRule::AllSuccess,
        Some("all_done") => TriggerRule::AllDone,
        Some("one_failed") => TriggerRule::OneFailed,
        Some(other) => {
            errors.push(
                ConfigError::new(
                    file,
                    raw.trigger_rule.as_ref().map(loc).unwrap_or(at),
                    format!("task `{name}`: unknown trigger_rule `{other}`"),
                )
                .with_hint("all_success (default), all_done or one_failed"),
            );
            TriggerRule::AllSuccess
        }
    };
    let mut policy = base.clone();
    apply_policy(
        file,
        &mut policy,
        raw.retries,
        &raw.retry_delay,
        raw.retry_backoff,
        &raw.max_retry_delay,
        &raw.timeout,
        &mut errors,
    );
    let Some(kind_spec) = kind_spec else {
        return Err(errors);
    };
    let spec = TaskSpec {
        name: name.to_string(),
        kind: kind_spec,
        location: at,
        description: raw.description.unwrap_or_default(),
        depends_on,
        trigger_rule,
        policy,
        pool_at: raw.pool.as_ref().map(loc),
        pool: raw.pool.map(|p| p.value),
        priority: raw.priority.unwrap_or(0),
    };
    if errors.is_empty()
        && let Err(msg) = spec.kind.check()
    {
        errors.push(ConfigError::new(file, at, format!("task `{name}`: {msg}")));
    }
    // Templates must at least parse.
    if errors.is_empty() {
        for text in crate::template::templated_fields(&spec) {
            if let Err(msg) = crate::template::check_syntax(&text) {
                errors.push(ConfigError::new(
                    file,
                    at,
                    format!("task `{name}`: template error: {msg}"),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(spec)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
#[path = "pipeline_fuzz.rs"]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("5 parsecs"), None);
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("10x"), None);
    }
}
