//! Reading dbt's YAML files into JSON values, with `file:line:col` errors.

use std::path::Path;

use serde_json::Value;

use crate::error::{Result, TransformError};

/// Reads a YAML file into a JSON value (an empty file is `null`).
pub fn read(file: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(file).map_err(|e| TransformError::io(file, e))?;
    parse(file, &text)
}

/// Parses YAML text read from `file`.
pub fn parse(file: &Path, text: &str) -> Result<Value> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_saphyr::from_str::<Value>(text).map_err(|e| {
        let config = socle_core::diag::ConfigError::from_yaml(file, &e);
        TransformError::Config(Box::new(config))
    })
}
