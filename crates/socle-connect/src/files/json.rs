//! JSON (a document holding an array of records, or one record) and JSON Lines (one
//! record per line; a bad line is rejected with its line number, the others load).

use serde::Deserialize;

use crate::infer::excerpt;
use crate::{Result, RowMeta, StreamContext};

/// Records pushed to the sink at a time.
const CHUNK: usize = 10_000;

/// `json:` options of a stream.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonOptions {
    /// JSON pointer to the array of records (default: the document itself).
    pub records: Option<String>,
}

pub(crate) async fn read_json(
    options: &JsonOptions,
    name: &str,
    bytes: Vec<u8>,
    meta: &RowMeta,
    ctx: &mut StreamContext<'_>,
) -> Result<()> {
    let doc: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            ctx.sink.reject(
                excerpt(&String::from_utf8_lossy(&bytes), 4096),
                format!("invalid JSON: {e}"),
                format!("{name}:{}", e.line()),
            );
            return Ok(());
        }
    };
    drop(bytes);
    let pointer = options.records.as_deref().unwrap_or("");
    let Some(found) = doc.pointer(pointer) else {
        ctx.sink.reject(
            excerpt(&doc.to_string(), 4096),
            format!("no `{pointer}` in the document (json.records)"),
            name.to_string(),
        );
        return Ok(());
    };
    let records = match found {
        serde_json::Value::Array(items) => items.clone(),
        serde_json::Value::Null => Vec::new(),
        other => vec![other.clone()],
    };
    drop(doc);
    for chunk in records.chunks(CHUNK) {
        ctx.sink.push_json(chunk.to_vec(), meta, name).await?;
    }
    Ok(())
}

pub(crate) async fn read_jsonl(
    name: &str,
    bytes: Vec<u8>,
    meta: &RowMeta,
    ctx: &mut StreamContext<'_>,
) -> Result<()> {
    let text = String::from_utf8_lossy(&bytes);
    let mut chunk = Vec::with_capacity(CHUNK);
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v @ serde_json::Value::Object(_)) => chunk.push(v),
            Ok(_) => ctx.sink.reject(
                line.to_string(),
                "a record must be a JSON object".into(),
                format!("{name}:{}", i + 1),
            ),
            Err(e) => ctx.sink.reject(
                line.to_string(),
                format!("invalid JSON: {e}"),
                format!("{name}:{}", i + 1),
            ),
        }
        if chunk.len() >= CHUNK {
            ctx.sink
                .push_json(std::mem::take(&mut chunk), meta, name)
                .await?;
            ctx.sink.maybe_flush_rejects().await?;
        }
    }
    if !chunk.is_empty() {
        ctx.sink.push_json(chunk, meta, name).await?;
    }
    Ok(())
}
