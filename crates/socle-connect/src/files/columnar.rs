//! Parquet and Avro: typed already, read as they are. A file that cannot be read whole
//! (truncated, corrupt) is rejected as one record naming the file and the reason; none
//! of its rows load.

use datafusion::arrow::array::RecordBatch;

use crate::{Result, RowMeta, StreamContext};

async fn push_all(
    what: &str,
    decoded: std::result::Result<Vec<RecordBatch>, String>,
    name: &str,
    meta: &RowMeta,
    ctx: &mut StreamContext<'_>,
) -> Result<()> {
    match decoded {
        Ok(batches) => {
            for b in batches {
                ctx.sink.push(b, meta).await?;
            }
        }
        Err(e) => ctx.sink.reject(
            String::new(),
            format!("not a readable {what} file: {e}"),
            name.to_string(),
        ),
    }
    Ok(())
}

pub(crate) async fn read_parquet(
    name: &str,
    bytes: Vec<u8>,
    meta: &RowMeta,
    ctx: &mut StreamContext<'_>,
) -> Result<()> {
    let decoded =
        tokio::task::spawn_blocking(move || crate::parts::read_batches("parquet", bytes, None))
            .await
            .map_err(|e| ctx.fetch_error(e.to_string()))?;
    push_all("Parquet", decoded, name, meta, ctx).await
}

pub(crate) async fn read_avro(
    name: &str,
    bytes: Vec<u8>,
    meta: &RowMeta,
    ctx: &mut StreamContext<'_>,
) -> Result<()> {
    let decoded =
        tokio::task::spawn_blocking(move || crate::parts::read_batches("avro", bytes, None))
            .await
            .map_err(|e| ctx.fetch_error(e.to_string()))?;
    push_all("Avro", decoded, name, meta, ctx).await
}
