//! Configuration diagnostics: every error names the file, line and column it is about,
//! says what is wrong and, where it can, how to fix it ("did you mean ...?").

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a configuration file (1-based line and column; 0 when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    pub line: u64,
    pub column: u64,
}

impl Location {
    pub fn new(line: u64, column: u64) -> Self {
        Self { line, column }
    }

    pub fn is_known(&self) -> bool {
        self.line > 0
    }

    pub fn from_saphyr(loc: serde_saphyr::Location) -> Self {
        Self {
            line: loc.line(),
            column: loc.column(),
        }
    }

    /// Where a spanned YAML value was written.
    pub fn of<T>(value: &serde_saphyr::Spanned<T>) -> Self {
        Self::from_saphyr(value.referenced)
    }
}

/// A YAML field that takes one string or a list of them (`select: +marts` or
/// `select: [a, b]`; a command line or a program with its arguments).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// An error in a project file: `file:line:col: message` plus an optional hint.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub location: Location,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    pub fn new(file: impl Into<PathBuf>, location: Location, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            location,
            message: message.into(),
            hint: None,
        }
    }

    /// An error about a whole file (missing, unreadable) rather than a position in it.
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::new(file, Location::default(), message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Turns a YAML deserialization error into a located error, adding a
    /// "did you mean" suggestion to unknown keys and values.
    pub fn from_yaml(file: &Path, err: &serde_saphyr::Error) -> Self {
        let location = err
            .location()
            .map(Location::from_saphyr)
            .unwrap_or_default();
        let raw = err.without_snippet().to_string();
        let message = strip_location_suffix(&raw);
        let mut out = Self::new(file, location, message.clone());
        if let Some(hint) = suggestion_for_serde_message(&message) {
            out.hint = Some(hint);
        }
        out
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.location.is_known() {
            write!(f, ":{}:{}", self.location.line, self.location.column)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// serde-saphyr appends " at line L column C" to plain messages; we print the location
/// in front, compiler style, so drop the suffix.
fn strip_location_suffix(msg: &str) -> String {
    let msg = msg.trim();
    if let Some(idx) = msg.rfind(" at line ") {
        let tail = &msg[idx + " at line ".len()..];
        if tail.split_whitespace().count() == 3 && tail.contains("column") {
            return msg[..idx].trim_end().to_string();
        }
    }
    msg.to_string()
}

/// Reads serde's "unknown field `x`, expected one of `a`, `b`" (and the variant form) and
/// proposes the closest expected name.
pub fn suggestion_for_serde_message(msg: &str) -> Option<String> {
    let (kind, rest) = if let Some(i) = msg.find("unknown field `") {
        ("key", &msg[i + "unknown field `".len()..])
    } else if let Some(i) = msg.find("unknown variant `") {
        ("value", &msg[i + "unknown variant `".len()..])
    } else {
        return None;
    };
    let end = rest.find('`')?;
    let unknown = &rest[..end];
    let expected = expected_names(&rest[end + 1..]);
    match did_you_mean(unknown, expected.iter().copied()) {
        Some(best) => Some(format!("did you mean `{best}`?")),
        None if expected.is_empty() => Some(format!("remove the {kind} `{unknown}`")),
        None => Some(format!("valid {kind}s here: {}", expected.join(", "))),
    }
}

/// The names listed after "expected" in serde's messages, with or without backticks:
/// ", expected one of `a`, `b`", ", expected `a` or `b`", ", expected one of a, b, c".
fn expected_names(tail: &str) -> Vec<&str> {
    let Some(i) = tail.find("expected") else {
        return Vec::new();
    };
    let list = tail[i + "expected".len()..].trim_start();
    let list = list.strip_prefix("one of").unwrap_or(list);
    if list.trim_start().starts_with("nothing") {
        return Vec::new();
    }
    list.split([',', '`'])
        .flat_map(|part| part.split(" or "))
        .map(|name| name.trim())
        .filter(|name| !name.is_empty())
        .collect()
}

/// The candidate closest to `input`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = input.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                c,
                strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase()),
            )
        })
        .filter(|(c, d)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(_, d)| *d)
        .map(|(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_closest_field() {
        let msg = "unknown field `nmae`, expected one of `name`, `lake`, `metadata`";
        assert_eq!(
            suggestion_for_serde_message(msg).unwrap(),
            "did you mean `name`?"
        );
    }

    #[test]
    fn lists_fields_when_nothing_is_close() {
        let msg = "unknown field `zzzzzz`, expected `url` or `options`";
        assert_eq!(
            suggestion_for_serde_message(msg).unwrap(),
            "valid keys here: url, options"
        );
    }

    #[test]
    fn suggests_closest_variant_without_backticks() {
        let msg = "unknown variant `bigqeury`, expected one of generic, postgres, duckdb, bigquery, mysql";
        assert_eq!(
            suggestion_for_serde_message(msg).unwrap(),
            "did you mean `bigquery`?"
        );
        let msg = "unknown field `x`, there are no fields";
        assert_eq!(
            suggestion_for_serde_message(msg).unwrap(),
            "remove the key `x`"
        );
    }

    #[test]
    fn strips_suffix() {
        assert_eq!(
            strip_location_suffix("bad thing at line 3 column 5"),
            "bad thing"
        );
        assert_eq!(strip_location_suffix("at line of fire"), "at line of fire");
    }
}
