//! The warehouse's errors, by whose fault they are: the user's SQL or data, an external
//! system (lake, metadata database), or socle itself.

use std::fmt;

use datafusion::error::DataFusionError;

/// A SQL error with the statement text and, when known, where in it the problem is.
#[derive(Debug, Clone)]
pub struct SqlError {
    pub message: String,
    /// 1-based (line, column) in `sql`.
    pub position: Option<(u64, u64)>,
    pub sql: String,
    /// Where the SQL came from (a file name), for `file:line:col` output.
    pub source: Option<String>,
}

impl SqlError {
    pub fn new(message: impl Into<String>, sql: &str, position: Option<(u64, u64)>) -> Self {
        Self {
            message: message.into(),
            position,
            sql: sql.to_string(),
            source: None,
        }
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.source, self.position) {
            (Some(src), Some((l, c))) => write!(f, "{src}:{l}:{c}: ")?,
            (Some(src), None) => write!(f, "{src}: ")?,
            (None, Some((l, c))) => write!(f, "line {l}, column {c}: ")?,
            (None, None) => {}
        }
        write!(f, "{}", self.message)?;
        if let Some((line, col)) = self.position
            && let Some(text) = self.sql.lines().nth(line.saturating_sub(1) as usize)
        {
            let gutter = line.to_string().len();
            let caret_pad: String = text
                .chars()
                .take(col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n{:gutter$} |\n{line} | {text}\n{:gutter$} | {caret_pad}^",
                "", ""
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The SQL does not parse or plan: the user's to fix.
    #[error("{0}")]
    Sql(Box<SqlError>),
    /// A table, view or schema that does not exist.
    #[error("{kind} `{name}` does not exist{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    NotFound {
        kind: &'static str,
        name: String,
        suggestion: Option<String>,
    },
    /// Something that exists already.
    #[error("{kind} `{name}` already exists{hint}")]
    Exists {
        kind: &'static str,
        name: String,
        hint: &'static str,
    },
    /// Data that cannot be loaded as asked (types, keys): nothing was written.
    #[error("cannot load into `{table}`: {reason}; the table is unchanged")]
    Load { table: String, reason: String },
    /// A statement the warehouse does not support.
    #[error("{0}")]
    Unsupported(String),
    /// A statement this warehouse refuses to run for its caller (see [`crate::guard`]): the
    /// caller's request, not a fault of the SQL or of socle.
    #[error("{0}")]
    NotAllowed(String),
    /// An error while running a query over the data.
    #[error("query failed: {0}")]
    Execution(String),
    /// The storage under the warehouse failed while a query read or wrote it (a file
    /// system or object store error): not the caller's fault.
    #[error("storage: {0}")]
    Storage(String),
    #[error(transparent)]
    Lake(#[from] socle_lake::LakeError),
    #[error(transparent)]
    Meta(#[from] socle_meta::MetaError),
    /// Another writer committed to the table while this write was under way; nothing of
    /// this write was committed.
    #[error(
        "another writer committed to `{table}` first; nothing of this write was committed: run it again"
    )]
    Conflict { table: String },
    #[error("Delta table `{table}`: {source}")]
    Delta {
        table: String,
        source: deltalake::DeltaTableError,
    },
    /// Should not happen: most likely a bug in socle.
    #[error("internal error: {0} (this is a bug in socle, please report it)")]
    Internal(String),
}

impl WarehouseError {
    /// Whose fault this is (see [`socle_core::fault`]).
    pub fn fault(&self) -> socle_core::fault::Fault {
        use socle_core::fault::Fault;
        match self {
            Self::Sql(_) | Self::Load { .. } | Self::Unsupported(_) | Self::Execution(_) => {
                Fault::Input
            }
            Self::NotFound { .. } => Fault::NotFound,
            Self::Exists { .. } | Self::Conflict { .. } => Fault::Conflict,
            Self::NotAllowed(_) => Fault::Forbidden,
            Self::Lake(_)
            | Self::Meta(_)
            | Self::Delta { .. }
            | Self::Storage(_)
            | Self::Internal(_) => Fault::Internal,
        }
    }

    pub fn sql(message: impl Into<String>, sql: &str, position: Option<(u64, u64)>) -> Self {
        let message = message.into();
        // The parser gives no position when the text ends too early: point past its end.
        let position = position.or_else(|| message.contains("found: EOF").then(|| end_of(sql)));
        Self::Sql(Box::new(SqlError::new(message, sql, position)))
    }

    /// Classifies a DataFusion error raised while planning or running `sql`.
    pub fn from_datafusion(err: DataFusionError, sql: &str) -> Self {
        let position = err
            .diagnostic()
            .and_then(|d| d.span)
            .map(|s| (s.start.line, s.start.column))
            .or_else(|| parser_position(&err.to_string()));
        let err = strip(err);
        match err {
            DataFusionError::SQL(e, _) => {
                Self::sql(clean_parser_message(&e.to_string()), sql, position)
            }
            DataFusionError::Plan(m) => Self::sql(m, sql, position),
            DataFusionError::SchemaError(e, _) => Self::sql(e.to_string(), sql, position),
            DataFusionError::ArrowError(e, _) => Self::Execution(e.to_string()),
            DataFusionError::Execution(m) => Self::Execution(m),
            DataFusionError::NotImplemented(m) => Self::Unsupported(format!("not supported: {m}")),
            DataFusionError::Internal(m) => Self::Internal(m),
            DataFusionError::IoError(e) => Self::Storage(e.to_string()),
            DataFusionError::ObjectStore(e) => Self::Storage(e.to_string()),
            // A data file that cannot be read (gone, cut short): the storage's fault.
            DataFusionError::ParquetError(e) => Self::Storage(e.to_string()),
            DataFusionError::ResourcesExhausted(m) => Self::Execution(format!(
                "out of memory: {m} (raise warehouse.memory_limit in socle.yml or make the query lighter)"
            )),
            other => Self::Execution(other.strip_backtrace()),
        }
    }

    /// Adds a position to a SQL error that has none.
    pub fn with_position_if_missing(self, position: Option<(u64, u64)>) -> Self {
        match self {
            Self::Sql(mut e) if e.position.is_none() => {
                e.position = position;
                Self::Sql(e)
            }
            other => other,
        }
    }

    /// The same error, naming the file the SQL came from.
    pub fn with_source(self, source: &str) -> Self {
        match self {
            Self::Sql(mut e) => {
                e.source = Some(source.to_string());
                Self::Sql(e)
            }
            other => other,
        }
    }
}

/// Unwraps context layers that DataFusion adds around the real error.
fn strip(err: DataFusionError) -> DataFusionError {
    match err {
        DataFusionError::Context(_, inner) => strip(*inner),
        DataFusionError::Diagnostic(_, inner) => strip(*inner),
        DataFusionError::Shared(inner) => match std::sync::Arc::try_unwrap(inner) {
            Ok(e) => strip(e),
            Err(shared) => DataFusionError::Execution(shared.to_string()),
        },
        other => other,
    }
}

/// sqlparser reports "... at Line: 3, Column: 14".
pub fn parser_position(msg: &str) -> Option<(u64, u64)> {
    let i = msg.rfind("Line: ")?;
    let rest = &msg[i + 6..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let col: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((line.trim().parse().ok()?, col.parse().ok()?))
}

/// The line and column just past the last non-blank character of `sql`.
fn end_of(sql: &str) -> (u64, u64) {
    let trimmed = sql.trim_end();
    let line = trimmed.lines().count().max(1) as u64;
    let column = trimmed.lines().last().map_or(0, |l| l.chars().count()) as u64 + 1;
    (line, column)
}

fn clean_parser_message(msg: &str) -> String {
    let msg = msg
        .trim_start_matches("sql parser error: ")
        .trim_start_matches("SQL error: ");
    let msg = msg
        .strip_prefix("ParserError(\"")
        .map(|m| m.trim_end_matches("\")"))
        .unwrap_or(msg);
    match msg.rfind(" at Line: ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

pub type Result<T, E = WarehouseError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_caret() {
        let e = SqlError::new("no column `x`", "SELECT\n  x FROM t", Some((2, 3)));
        assert_eq!(
            e.to_string(),
            "line 2, column 3: no column `x`\n  |\n2 |   x FROM t\n  |   ^"
        );
    }

    #[test]
    fn finds_parser_positions() {
        assert_eq!(
            parser_position("Expected: end of statement, found: x at Line: 3, Column: 14"),
            Some((3, 14))
        );
        assert_eq!(parser_position("nothing"), None);
    }
}
