//! A section of a project file read field by field, each value with where it is written:
//! the part a plugin reads for itself (a task kind's own fields, a model kind's `columns`
//! and `params`). A value of the wrong type is an error at its place; the reader collects
//! every error instead of stopping at the first, and [`Fields::finish`] refuses what no
//! one read, with "did you mean".

use std::collections::BTreeMap;
use std::path::Path;

use serde_saphyr::Spanned;

use crate::{ConfigError, Location};

/// Fields of one section, taken one by one.
pub struct Fields<'a> {
    file: &'a Path,
    /// What the fields belong to, for messages: "task `load`", "model `views`: params".
    context: String,
    map: BTreeMap<String, Spanned<serde_json::Value>>,
    errors: Vec<ConfigError>,
}

impl<'a> Fields<'a> {
    pub fn new(
        file: &'a Path,
        context: impl Into<String>,
        map: BTreeMap<String, Spanned<serde_json::Value>>,
    ) -> Self {
        Self {
            file,
            context: context.into(),
            map,
            errors: Vec::new(),
        }
    }

    /// The file the fields are in.
    pub fn file(&self) -> &Path {
        self.file
    }

    /// Takes field `key`, read as `T`, with where it is.
    pub fn take<T: serde::de::DeserializeOwned>(&mut self, key: &str) -> Option<Spanned<T>> {
        let s = self.map.remove(key)?;
        let at = Location::of(&s);
        match serde_json::from_value::<T>(s.value) {
            Ok(value) => Some(Spanned {
                value,
                referenced: s.referenced,
                defined: s.defined,
            }),
            Err(e) => {
                self.errors.push(ConfigError::new(
                    self.file,
                    at,
                    format!("{}: `{key}`: {e}", self.context),
                ));
                None
            }
        }
    }

    /// Takes field `key` as `T`, without its place.
    pub fn value<T: serde::de::DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        self.take(key).map(|s| s.value)
    }

    /// Records an error about field `key` at `at` (a value that parses but is not allowed).
    pub fn error(&mut self, at: Location, message: impl std::fmt::Display) {
        self.errors.push(ConfigError::new(
            self.file,
            at,
            format!("{}: {message}", self.context),
        ));
    }

    /// Refuses every field not taken, naming the closest of `accepted`; then the errors
    /// met while reading.
    pub fn finish(mut self, accepted: &[&str]) -> Vec<ConfigError> {
        let left = std::mem::take(&mut self.map);
        for (key, value) in left {
            let mut e = ConfigError::new(
                self.file,
                Location::of(&value),
                format!("{}: unknown field `{key}`", self.context),
            );
            e.hint = Some(
                match crate::diag::did_you_mean(&key, accepted.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None if accepted.is_empty() => "it takes no fields".to_string(),
                    None => format!("fields: {}", accepted.join(", ")),
                },
            );
            self.errors.push(e);
        }
        self.errors
    }

    /// The errors met while reading (fields left untaken are not checked).
    pub fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }
}
