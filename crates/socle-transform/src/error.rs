//! Transformation errors. Each names the file (and line where known) it is about; errors
//! raised while running a node carry an excerpt of the compiled SQL.

use std::path::{Path, PathBuf};

use socle_core::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// A YAML file that does not parse.
    #[error("{0}")]
    Config(Box<ConfigError>),
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    /// A project file that parses but says something wrong.
    #[error("{}:{line}: {message}", file.display())]
    Project {
        file: PathBuf,
        line: usize,
        message: String,
    },
    /// Jinja that does not render.
    #[error("{}:{line}: {message}", file.display())]
    Jinja {
        file: PathBuf,
        line: usize,
        message: String,
    },
    /// A dependency cycle among nodes.
    #[error("dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// A selector that matches nothing or does not parse.
    #[error("selector `{selector}`: {message}")]
    Selection { selector: String, message: String },
    /// A node whose SQL failed in the warehouse.
    #[error("{}:{line}: {message}\n{excerpt}", file.display())]
    Sql {
        file: PathBuf,
        line: usize,
        message: String,
        excerpt: String,
    },
    #[error(transparent)]
    Warehouse(Box<socle_warehouse::WarehouseError>),
    #[error("{0}")]
    Other(String),
}

impl From<socle_warehouse::WarehouseError> for TransformError {
    fn from(e: socle_warehouse::WarehouseError) -> Self {
        Self::Warehouse(Box::new(e))
    }
}

impl TransformError {
    pub fn io(file: &Path, source: std::io::Error) -> Self {
        Self::Io {
            file: file.to_path_buf(),
            source,
        }
    }

    pub fn project(file: &Path, line: usize, message: impl Into<String>) -> Self {
        Self::Project {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

pub type Result<T, E = TransformError> = std::result::Result<T, E>;

/// Lines `line-2 ..= line+2` of `sql` with numbers and a marker on `line` (1-based).
pub fn excerpt(sql: &str, line: usize) -> String {
    let lines: Vec<&str> = sql.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let line = line.clamp(1, lines.len());
    let from = line.saturating_sub(3);
    let to = (line + 2).min(lines.len());
    let width = to.to_string().len();
    let mut out = String::new();
    for (i, text) in lines.iter().enumerate().take(to).skip(from) {
        let n = i + 1;
        let mark = if n == line { '>' } else { ' ' };
        out.push_str(&format!("  {mark} {n:>width$} | {text}\n"));
    }
    out.trim_end().to_string()
}
