//! Extraction errors. Source-file problems carry the file and line; data problems name
//! the source, stream and where the bad input was (file and line, or URL and page).
//! No message ever contains a resolved secret value (see [`crate::redact`]).

use socle_core::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// One or several problems in `sources/*.yml` (all are reported, not just the first).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Configs(Vec<ConfigError>),
    #[error("no source `{name}` in sources/{}", .hint.as_deref().map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default())]
    UnknownSource { name: String, hint: Option<String> },
    #[error("source `{source_name}` has no stream `{stream}` (it has: {known})")]
    UnknownStream {
        source_name: String,
        stream: String,
        known: String,
    },
    /// The input could not be read or fetched (I/O, HTTP, database).
    #[error("{source_name}.{stream}: {message}")]
    Fetch {
        source_name: String,
        stream: String,
        message: String,
    },
    /// The stream's data cannot be loaded as configured (type conflict, too many rejects).
    #[error("{source_name}.{stream}: {message}")]
    Data {
        source_name: String,
        stream: String,
        message: String,
    },
    #[error(transparent)]
    Warehouse(Box<socle_warehouse::WarehouseError>),
    #[error(transparent)]
    Lake(#[from] socle_lake::LakeError),
    #[error(transparent)]
    Meta(#[from] socle_meta::MetaError),
    #[error("{0}")]
    Other(String),
}

impl From<socle_warehouse::WarehouseError> for ConnectError {
    fn from(e: socle_warehouse::WarehouseError) -> Self {
        Self::Warehouse(Box::new(e))
    }
}

impl From<ConfigError> for ConnectError {
    fn from(e: ConfigError) -> Self {
        Self::Configs(vec![e])
    }
}

pub type Result<T, E = ConnectError> = std::result::Result<T, E>;
