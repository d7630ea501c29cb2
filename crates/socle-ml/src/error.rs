//! Errors of training and prediction, saying whose fault each is: the spec or the data
//! (the user's), the warehouse or the lake underneath, or socle's own.

use socle_core::fault::Fault;

/// A model could not be trained or applied.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// The spec does not load (file, line and column in each).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Spec(Vec<socle_core::ConfigError>),
    /// The data does not fit the model: an empty input, a target with text, too few rows
    /// for the seasonality asked, ... The message names the model and the column.
    #[error("model `{model}`: {message}")]
    Data { model: String, message: String },
    /// No such model, or no such version of it.
    #[error("{0}")]
    NotFound(String),
    /// Another training claimed the version, or an output table moved on meanwhile.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Warehouse(#[from] Box<socle_warehouse::WarehouseError>),
    #[error(transparent)]
    Lake(#[from] Box<socle_lake::LakeError>),
    #[error(transparent)]
    Meta(#[from] Box<socle_meta::MetaError>),
    /// A stored model version that does not read back (a newer format, a damaged file).
    #[error("model `{model}` version {version}: {message}")]
    Artefact {
        model: String,
        version: i64,
        message: String,
    },
}

impl MlError {
    /// A data error about model `model`.
    pub fn data(model: &str, message: impl Into<String>) -> Self {
        Self::Data {
            model: model.to_string(),
            message: message.into(),
        }
    }

    /// Whose fault it is (and its one HTTP status).
    pub fn fault(&self) -> Fault {
        match self {
            MlError::Spec(_) | MlError::Data { .. } => Fault::Input,
            MlError::NotFound(_) => Fault::NotFound,
            MlError::Conflict(_) => Fault::Conflict,
            MlError::Warehouse(e) => e.fault(),
            MlError::Lake(_) | MlError::Meta(_) | MlError::Artefact { .. } => Fault::Internal,
        }
    }
}

impl From<socle_warehouse::WarehouseError> for MlError {
    fn from(e: socle_warehouse::WarehouseError) -> Self {
        Self::Warehouse(Box::new(e))
    }
}

impl From<socle_lake::LakeError> for MlError {
    fn from(e: socle_lake::LakeError) -> Self {
        Self::Lake(Box::new(e))
    }
}

impl From<socle_meta::MetaError> for MlError {
    fn from(e: socle_meta::MetaError) -> Self {
        Self::Meta(Box::new(e))
    }
}
