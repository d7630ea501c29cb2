//! `sources/*.yml`: one file per source, read strictly (unknown keys are errors with
//! `file:line:col` and a suggestion).
//!
//! Every file has `type:` (the connector kind, see [`crate::registry`]) and `streams:`.
//! Fields every kind shares are declared once here, through the [`raw_source!`] and
//! [`raw_stream!`] macros, which add them to each kind's own raw structs; the kind's
//! parser then calls [`common`] to validate them:
//!
//! ```yaml
//! type: files
//! description: Exports the shop's back office drops every night.
//! schema: raw                 # warehouse schema of the loaded tables (default raw)
//! landing: parquet            # raw file format in the lake: parquet, jsonl or avro
//! max_rejected: 1%            # fail a stream above this many rejected records (or a count)
//! on_type_conflict: string    # a column seen with two types becomes text; or `fail`
//! streams:
//!   orders:
//!     table: orders           # default <source>__<stream>
//!     write: merge            # append (default), replace or merge
//!     primary_key: [order_id]
//!     columns: { amount: double, ordered_at: timestamp }
//!     ...                     # the kind's own fields
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;
use socle_core::{ConfigError, Location};

/// How a stream's rows go into its table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Add the rows (the default).
    Append,
    /// Replace the table's rows with this extraction's.
    Replace,
    /// Update rows whose primary key matches, insert the others.
    Merge,
}

impl Write {
    pub fn as_str(&self) -> &'static str {
        match self {
            Write::Append => "append",
            Write::Replace => "replace",
            Write::Merge => "merge",
        }
    }
}

/// What happens when a column arrives with a type its table (or an earlier record) does
/// not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeConflict {
    /// The column becomes text; every value is kept as its text form.
    String,
    /// The stream fails, naming the column and both types.
    Fail,
}

/// The most rejected records a stream may have before it fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Count(u64),
    /// A share of the records read, in percent.
    Percent(f64),
}

impl Threshold {
    /// Whether `rejected` out of `total` records crosses the threshold.
    pub fn exceeded(&self, rejected: u64, total: u64) -> bool {
        match *self {
            Threshold::Count(n) => rejected > n,
            Threshold::Percent(p) => total > 0 && (rejected as f64) * 100.0 / (total as f64) > p,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Threshold::Count(n) => format!("{n} records"),
            Threshold::Percent(p) => format!("{p}% of the records"),
        }
    }
}

/// Raw file formats in the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landing {
    Parquet,
    Jsonl,
    Avro,
}

impl Landing {
    pub fn extension(&self) -> &'static str {
        match self {
            Landing::Parquet => "parquet",
            Landing::Jsonl => "jsonl",
            Landing::Avro => "avro",
        }
    }
}

/// Settings of a source that every kind has.
#[derive(Debug, Clone)]
pub struct SourceCommon {
    pub name: String,
    pub kind: String,
    pub file: PathBuf,
    pub description: String,
    pub schema: String,
    pub landing: Landing,
    /// Streams in file order of their names (sorted).
    pub streams: Vec<StreamConfig>,
}

impl SourceCommon {
    pub fn stream(&self, name: &str) -> Option<&StreamConfig> {
        self.streams.iter().find(|s| s.name == name)
    }
}

/// Settings of a stream that every kind has.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// The source's name.
    pub source: String,
    pub name: String,
    pub location: Location,
    pub description: String,
    /// `schema.table` in the warehouse.
    pub table: String,
    pub write: Write,
    pub primary_key: Vec<String>,
    pub max_rejected: Threshold,
    pub on_type_conflict: TypeConflict,
    /// Declared column types (`name` → SQL type name), overriding inference.
    pub columns: BTreeMap<String, String>,
}

pub use socle_core::OneOrMany;

/// `max_rejected` as written: a count or a text like `5%`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawThreshold {
    Count(u64),
    Text(String),
}

/// Declares a kind's raw source struct with the shared source fields added.
#[macro_export]
macro_rules! raw_source {
    ($(#[$m:meta])* $vis:vis struct $name:ident<$stream:ty> { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            #[serde(rename = "type")]
            pub kind: serde_saphyr::Spanned<String>,
            pub description: Option<String>,
            pub schema: Option<serde_saphyr::Spanned<String>>,
            pub landing: Option<serde_saphyr::Spanned<String>>,
            pub max_rejected: Option<serde_saphyr::Spanned<$crate::config::RawThreshold>>,
            pub on_type_conflict: Option<serde_saphyr::Spanned<String>>,
            pub streams: serde_saphyr::Spanned<std::collections::BTreeMap<String, serde_saphyr::Spanned<$stream>>>,
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl $crate::config::RawSourceFields for $name {
            type Stream = $stream;
            fn shared(&self) -> $crate::config::SharedSource<'_, $stream> {
                $crate::config::SharedSource {
                    kind: &self.kind,
                    description: self.description.as_deref(),
                    schema: self.schema.as_ref(),
                    landing: self.landing.as_ref(),
                    max_rejected: self.max_rejected.as_ref(),
                    on_type_conflict: self.on_type_conflict.as_ref(),
                    streams: &self.streams,
                }
            }
        }
    };
}

/// Declares a kind's raw stream struct with the shared stream fields added.
#[macro_export]
macro_rules! raw_stream {
    ($(#[$m:meta])* $vis:vis struct $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            pub description: Option<String>,
            pub table: Option<serde_saphyr::Spanned<String>>,
            pub write: Option<serde_saphyr::Spanned<String>>,
            pub primary_key: Option<serde_saphyr::Spanned<$crate::config::OneOrMany>>,
            pub max_rejected: Option<serde_saphyr::Spanned<$crate::config::RawThreshold>>,
            pub on_type_conflict: Option<serde_saphyr::Spanned<String>>,
            pub columns: Option<serde_saphyr::Spanned<std::collections::BTreeMap<String, String>>>,
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl $crate::config::RawStreamFields for $name {
            fn shared(&self) -> $crate::config::SharedStream<'_> {
                $crate::config::SharedStream {
                    description: self.description.as_deref(),
                    table: self.table.as_ref(),
                    write: self.write.as_ref(),
                    primary_key: self.primary_key.as_ref(),
                    max_rejected: self.max_rejected.as_ref(),
                    on_type_conflict: self.on_type_conflict.as_ref(),
                    columns: self.columns.as_ref(),
                }
            }
        }
    };
}

/// The shared source fields of a raw source struct (see [`raw_source!`]).
pub struct SharedSource<'a, S> {
    pub kind: &'a Spanned<String>,
    pub description: Option<&'a str>,
    pub schema: Option<&'a Spanned<String>>,
    pub landing: Option<&'a Spanned<String>>,
    pub max_rejected: Option<&'a Spanned<RawThreshold>>,
    pub on_type_conflict: Option<&'a Spanned<String>>,
    pub streams: &'a Spanned<BTreeMap<String, Spanned<S>>>,
}

/// The shared stream fields of a raw stream struct (see [`raw_stream!`]).
pub struct SharedStream<'a> {
    pub description: Option<&'a str>,
    pub table: Option<&'a Spanned<String>>,
    pub write: Option<&'a Spanned<String>>,
    pub primary_key: Option<&'a Spanned<OneOrMany>>,
    pub max_rejected: Option<&'a Spanned<RawThreshold>>,
    pub on_type_conflict: Option<&'a Spanned<String>>,
    pub columns: Option<&'a Spanned<BTreeMap<String, String>>>,
}

pub trait RawSourceFields {
    type Stream: RawStreamFields;
    fn shared(&self) -> SharedSource<'_, Self::Stream>;
}

pub trait RawStreamFields {
    fn shared(&self) -> SharedStream<'_>;
}

/// A source file read from disk, before its kind parses it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub path: PathBuf,
    pub text: String,
    /// The project root (relative paths in the file are relative to it).
    pub root: PathBuf,
}

impl SourceFile {
    /// Parses the file into a kind's raw struct.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, Vec<ConfigError>> {
        serde_saphyr::from_str(&self.text).map_err(|e| vec![ConfigError::from_yaml(&self.path, &e)])
    }

    pub fn error(&self, at: Location, message: impl Into<String>) -> ConfigError {
        ConfigError::new(&self.path, at, message)
    }
}

/// The location a spanned value was written at.
pub fn loc<T>(s: &Spanned<T>) -> Location {
    Location::of(s)
}

fn threshold(file: &SourceFile, raw: &Spanned<RawThreshold>) -> Result<Threshold, ConfigError> {
    match &raw.value {
        RawThreshold::Count(n) => Ok(Threshold::Count(*n)),
        RawThreshold::Text(t) => {
            let t = t.trim();
            let parsed = match t.strip_suffix('%') {
                Some(p) => p
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=100.0).contains(p))
                    .map(Threshold::Percent),
                None => t.parse::<u64>().ok().map(Threshold::Count),
            };
            parsed.ok_or_else(|| {
                file.error(
                    loc(raw),
                    format!("`max_rejected`: `{t}` is not a count or a percentage"),
                )
                .with_hint("write a number of records (100) or a share of them (2.5%)")
            })
        }
    }
}

fn type_conflict(file: &SourceFile, raw: &Spanned<String>) -> Result<TypeConflict, ConfigError> {
    match raw.value.as_str() {
        "string" => Ok(TypeConflict::String),
        "fail" => Ok(TypeConflict::Fail),
        other => Err(file
            .error(
                loc(raw),
                format!("`on_type_conflict`: unknown policy `{other}`"),
            )
            .with_hint("use `string` (the column becomes text) or `fail`")),
    }
}

/// SQL type names accepted in `columns:` (see `docs/sources.md`).
pub const COLUMN_TYPES: &[&str] = &[
    "string",
    "text",
    "varchar",
    "bigint",
    "int",
    "integer",
    "double",
    "float",
    "decimal",
    "boolean",
    "bool",
    "date",
    "timestamp",
    "timestamptz",
];

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Validates the shared fields of a raw source and its streams. The kind validates its
/// own fields; errors of both are reported together.
pub fn common<R: RawSourceFields>(file: &SourceFile, raw: &R) -> (SourceCommon, Vec<ConfigError>) {
    let shared = raw.shared();
    let mut errors = Vec::new();
    let schema = match shared.schema {
        Some(s) if !is_identifier(&s.value) => {
            errors.push(file.error(
                loc(s),
                format!("`schema`: `{}` is not a valid schema name", s.value),
            ));
            "raw".to_string()
        }
        Some(s) => s.value.clone(),
        None => "raw".to_string(),
    };
    let landing = match shared.landing.map(|l| (l, l.value.as_str())) {
        None | Some((_, "parquet")) => Landing::Parquet,
        Some((_, "jsonl")) => Landing::Jsonl,
        Some((_, "avro")) => Landing::Avro,
        Some((l, other)) => {
            errors.push(
                file.error(loc(l), format!("`landing`: unknown format `{other}`"))
                    .with_hint("use parquet (default), jsonl or avro"),
            );
            Landing::Parquet
        }
    };
    let max_rejected = shared
        .max_rejected
        .map(|t| threshold(file, t))
        .transpose()
        .unwrap_or_else(|e| {
            errors.push(e);
            None
        })
        .unwrap_or(Threshold::Percent(10.0));
    let on_conflict = shared
        .on_type_conflict
        .map(|t| type_conflict(file, t))
        .transpose()
        .unwrap_or_else(|e| {
            errors.push(e);
            None
        })
        .unwrap_or(TypeConflict::String);
    if shared.streams.value.is_empty() {
        errors.push(file.error(
            loc(shared.streams),
            "`streams`: a source needs at least one stream",
        ));
    }
    let mut streams = Vec::new();
    for (name, raw_stream) in &shared.streams.value {
        let at = loc(raw_stream);
        if !is_identifier(name) {
            errors.push(file.error(
                at,
                format!(
                    "stream `{name}`: names are letters, digits and `_` (they become table names)"
                ),
            ));
        }
        let s = raw_stream.value.shared();
        let table_name = s
            .table
            .map(|t| t.value.clone())
            .unwrap_or_else(|| format!("{}__{}", file.name, name));
        let table = if table_name.contains('.') {
            table_name
        } else {
            format!("{schema}.{table_name}")
        };
        let write = match s.write.map(|w| (w, w.value.as_str())) {
            None | Some((_, "append")) => Write::Append,
            Some((_, "replace")) => Write::Replace,
            Some((_, "merge")) => Write::Merge,
            Some((w, other)) => {
                errors.push(
                    file.error(
                        loc(w),
                        format!("stream `{name}`: unknown `write` mode `{other}`"),
                    )
                    .with_hint("use append, replace or merge"),
                );
                Write::Append
            }
        };
        let primary_key = s.primary_key.map(|k| k.value.to_vec()).unwrap_or_default();
        if write == Write::Merge && primary_key.is_empty() {
            errors.push(
                file.error(
                    at,
                    format!("stream `{name}`: `write: merge` needs a `primary_key`"),
                )
                .with_hint("add `primary_key: [id]` (one or more columns)"),
            );
        }
        let mut columns = BTreeMap::new();
        if let Some(c) = s.columns {
            for (col, ty) in &c.value {
                let base = ty.trim().to_ascii_lowercase();
                let base = base.split('(').next().unwrap_or("").trim().to_string();
                if !COLUMN_TYPES.contains(&base.as_str()) {
                    errors.push(
                        file.error(
                            loc(c),
                            format!("stream `{name}`: column `{col}` has unknown type `{ty}`"),
                        )
                        .with_hint(format!("use one of {}", COLUMN_TYPES.join(", "))),
                    );
                }
                columns.insert(col.clone(), ty.trim().to_string());
            }
        }
        let max_rejected = match s.max_rejected.map(|t| threshold(file, t)) {
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                errors.push(e);
                max_rejected
            }
            None => max_rejected,
        };
        let on_type_conflict = match s.on_type_conflict.map(|t| type_conflict(file, t)) {
            Some(Ok(t)) => t,
            Some(Err(e)) => {
                errors.push(e);
                on_conflict
            }
            None => on_conflict,
        };
        streams.push(StreamConfig {
            source: file.name.clone(),
            name: name.clone(),
            location: at,
            description: s.description.unwrap_or_default().to_string(),
            table,
            write,
            primary_key,
            max_rejected,
            on_type_conflict,
            columns,
        });
    }
    (
        SourceCommon {
            name: file.name.clone(),
            kind: shared.kind.value.clone(),
            file: file.path.clone(),
            description: shared.description.unwrap_or_default().to_string(),
            schema,
            landing,
            streams,
        },
        errors,
    )
}

/// The `type:` of a source file, read leniently (the kind's parser reads it strictly).
#[derive(Deserialize)]
struct KindOnly {
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
}

/// Reads a file's `type:`.
pub fn kind_of(file: &SourceFile) -> Result<Spanned<String>, ConfigError> {
    let raw: KindOnly =
        serde_saphyr::from_str(&file.text).map_err(|e| ConfigError::from_yaml(&file.path, &e))?;
    raw.kind.ok_or_else(|| {
        ConfigError::file(&file.path, "missing `type:` (the connector kind)").with_hint(format!(
            "add `type: {}` on the first line",
            crate::registry::names().join(" | ")
        ))
    })
}

/// The `sources/*.yml` (and `.yaml`) files of a project, sorted.
pub fn source_files(root: &Path) -> Result<Vec<SourceFile>, Vec<ConfigError>> {
    let paths = socle_core::project::yaml_files(&root.join("sources"));
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        if !is_identifier(&name) {
            errors.push(ConfigError::file(
                &path,
                format!("source `{name}`: file names are letters, digits and `_` (they become table names)"),
            ));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => out.push(SourceFile {
                name,
                path,
                text,
                root: root.to_path_buf(),
            }),
            Err(e) => errors.push(ConfigError::file(&path, format!("cannot read: {e}"))),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
#[path = "config_fuzz.rs"]
mod fuzz;
