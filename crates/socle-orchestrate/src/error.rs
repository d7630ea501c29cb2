//! Orchestration errors. Pipeline-file problems carry the file and line.

use socle_core::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum OrchestrateError {
    /// A pipeline file that does not parse or says something wrong.
    #[error("{0}")]
    Config(Box<ConfigError>),
    /// Several pipeline-file problems at once (all are reported, not just the first).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Configs(Vec<ConfigError>),
    #[error("no pipeline `{name}` in pipelines/{}", .hint.as_deref().map(|h| format!(" (did you mean `{h}`?)")).unwrap_or_default())]
    UnknownPipeline { name: String, hint: Option<String> },
    #[error("pipeline `{pipeline}` has no task `{task}`")]
    UnknownTask { pipeline: String, task: String },
    #[error("{0}")]
    Template(String),
    #[error("bad date `{0}`: write YYYY-MM-DD or an RFC 3339 timestamp")]
    BadDate(String),
    #[error("no run `{0}` (list them with `socle runs`)")]
    UnknownRun(String),
    #[error(transparent)]
    Meta(#[from] socle_meta::MetaError),
    #[error("{0}")]
    Other(String),
}

impl From<ConfigError> for OrchestrateError {
    fn from(e: ConfigError) -> Self {
        Self::Config(Box::new(e))
    }
}

pub type Result<T, E = OrchestrateError> = std::result::Result<T, E>;
