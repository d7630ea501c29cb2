//! Model specs: `ml/<name>.yml`, one model each.
//!
//! ```yaml
//! kind: forecast                  # see `socle ml kinds`, docs/ml.md
//! description: Daily revenue, 30 days ahead.
//! input:                          # one of: table, model (of the dbt project), sql
//!   sql: select order_date as ds, sum(amount) as y from marts.orders group by 1
//! columns: { time: ds, target: y }  # the columns the kind uses, by role
//! params: { horizon: 30, seasonality_mode: multiplicative }
//! validation: { method: time_series, folds: 3, metric: mape }
//! output: { table: revenue_forecast }   # in schema `ml` unless `schema` says otherwise
//! seed: 42
//! ```
//!
//! Files are read strictly: an unknown key anywhere, a column role or a parameter the kind
//! does not take, a value of the wrong type are reported with `file:line:column` and "did
//! you mean". The kind reads its own `columns` and `params` ([`crate::kinds`]); whether
//! the columns exist is checked against the warehouse by `socle check`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;
use socle_core::fields::Fields;
use socle_core::{ConfigError, Location};

use crate::kinds::ModelKind;
use crate::validation::Validation;

/// A validated model spec.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// The file stem: `ml/views.yml` is model `views`.
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    /// The kind, holding its own columns and parameters.
    pub kind: ModelKind,
    pub input: Input,
    pub validation: Option<Validation>,
    pub output: Output,
    pub seed: u64,
    /// SHA-256 of the file's text, recorded with every version trained from it.
    pub hash: String,
}

/// Where a model's rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A warehouse table or view, `schema.name` (or `name` in the default schema).
    Table(String),
    /// A model of the project's dbt project, by name (its relation).
    Model(String),
    /// A SELECT.
    Sql(String),
}

impl Input {
    /// The SELECT that reads it (`model` inputs are resolved by the caller first).
    pub fn sql(&self) -> String {
        match self {
            Input::Table(t) | Input::Model(t) => format!("SELECT * FROM {t}"),
            Input::Sql(s) => s.clone(),
        }
    }
}

/// Where a model's results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub schema: String,
    /// The main table's name; kinds with several tables add a suffix (`_rules`).
    pub table: String,
}

impl Output {
    /// `schema.table` with `suffix` (`""` for the main table).
    pub fn table(&self, suffix: &str) -> String {
        format!("{}.{}{suffix}", self.schema, self.table)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    kind: Spanned<String>,
    description: Option<String>,
    input: Spanned<RawInput>,
    columns: Option<BTreeMap<String, Spanned<serde_json::Value>>>,
    params: Option<BTreeMap<String, Spanned<serde_json::Value>>>,
    validation: Option<Spanned<crate::validation::RawValidation>>,
    output: Option<RawOutput>,
    seed: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    table: Option<String>,
    model: Option<String>,
    sql: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    schema: Option<String>,
    table: Option<Spanned<String>>,
}

/// The schema model outputs go to unless a spec says otherwise.
pub const DEFAULT_SCHEMA: &str = "ml";

/// The default seed: the same data and spec give the same model.
pub const DEFAULT_SEED: u64 = 42;

/// Reads every `ml/*.yml` (and `.yaml`) of a project, reporting all problems.
pub fn load_all(root: &Path) -> Result<Vec<ModelSpec>, Vec<ConfigError>> {
    let files = socle_core::project::yaml_files(&root.join("ml"));
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match load_file(&file) {
            Ok(s) => out.push(s),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// One model by name, with a suggestion when there is no such file.
pub fn load_one(root: &Path, name: &str) -> Result<ModelSpec, Vec<ConfigError>> {
    let dir = root.join("ml");
    for ext in ["yml", "yaml"] {
        let file = dir.join(format!("{name}.{ext}"));
        if file.is_file() {
            return load_file(&file);
        }
    }
    let names = names(root);
    let mut e = ConfigError::file(&dir, format!("no model `{name}` (no ml/{name}.yml)"));
    e.hint = Some(
        match socle_core::diag::did_you_mean(name, names.iter().map(String::as_str)) {
            Some(best) => format!("did you mean `{best}`?"),
            None if names.is_empty() => "write one: see docs/ml.md".to_string(),
            None => format!("models: {}", names.join(", ")),
        },
    );
    Err(vec![e])
}

/// The names of a project's model files.
pub fn names(root: &Path) -> Vec<String> {
    socle_core::project::yaml_files(&root.join("ml"))
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect()
}

/// Parses and validates one spec file; all problems found are returned.
pub fn load_file(file: &Path) -> Result<ModelSpec, Vec<ConfigError>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| vec![ConfigError::file(file, format!("cannot read: {e}"))])?;
    from_yaml(&text, file)
}

/// Parses and validates the text of a spec (`file` names it in errors; its stem is the
/// model's name).
pub fn from_yaml(text: &str, file: &Path) -> Result<ModelSpec, Vec<ConfigError>> {
    // YAML 1.2 booleans only: a column named `y` or `on` stays a name, not `true`.
    let options = serde_saphyr::options! { strict_booleans: true };
    let raw: RawSpec = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| vec![ConfigError::from_yaml(file, &e)])?;
    let name = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut errors = Vec::new();
    if !valid_name(&name) {
        errors.push(ConfigError::file(
            file,
            format!("`{name}` is not a model name: use letters, digits and `_`"),
        ));
    }
    let input_at = Location::of(&raw.input);
    let input = match (
        raw.input.value.table,
        raw.input.value.model,
        raw.input.value.sql,
    ) {
        (Some(t), None, None) => Some(Input::Table(t)),
        (None, Some(m), None) => Some(Input::Model(m)),
        (None, None, Some(s)) if !s.trim().is_empty() => Some(Input::Sql(s)),
        _ => {
            errors.push(
                ConfigError::new(
                    file,
                    input_at,
                    "`input` needs exactly one of: table, model, sql",
                )
                .with_hint("for example `input: { table: marts.orders }`"),
            );
            None
        }
    };
    let kind_at = Location::of(&raw.kind);
    let mut columns = Fields::new(
        file,
        format!("model `{name}`: columns"),
        raw.columns.unwrap_or_default(),
    );
    let mut params = Fields::new(
        file,
        format!("model `{name}`: params"),
        raw.params.unwrap_or_default(),
    );
    let kind = match ModelKind::parse(&raw.kind.value, &mut columns, &mut params) {
        Some(k) => Some(k),
        None => {
            let known = ModelKind::NAMES;
            let mut e = ConfigError::new(
                file,
                kind_at,
                format!("model `{name}`: unknown kind `{}`", raw.kind.value),
            );
            e.hint = Some(
                match socle_core::diag::did_you_mean(&raw.kind.value, known.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("kinds: {}", known.join(", ")),
                },
            );
            errors.push(e);
            None
        }
    };
    // An unknown kind's fields are not reported on top of it.
    if let Some(k) = &kind {
        errors.extend(columns.finish(k.roles()));
        errors.extend(params.finish(k.params()));
    }
    if let Some(k) = &kind
        && let Err(message) = k.check()
    {
        errors.push(ConfigError::new(
            file,
            kind_at,
            format!("model `{name}`: {message}"),
        ));
    }
    let validation = match raw.validation {
        Some(v) => match crate::validation::parse(file, &name, v) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        None => None,
    };
    let raw_output = raw.output.unwrap_or_default();
    let table = match raw_output.table {
        Some(t) if !valid_name(&t.value) => {
            errors.push(ConfigError::new(
                file,
                Location::of(&t),
                format!(
                    "model `{name}`: `output.table`: `{}` is not a table name",
                    t.value
                ),
            ));
            name.clone()
        }
        Some(t) => t.value,
        None => name.clone(),
    };
    let output = Output {
        schema: raw_output
            .schema
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_string()),
        table,
    };
    match (kind, input) {
        (Some(kind), Some(input)) if errors.is_empty() => Ok(ModelSpec {
            name,
            file: file.to_path_buf(),
            description: raw.description.unwrap_or_default(),
            kind,
            input,
            validation,
            output,
            seed: raw.seed.unwrap_or(DEFAULT_SEED),
            hash: sha256(text),
        }),
        _ => Err(errors),
    }
}

/// Letters, digits and `_`, not starting with a digit.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
