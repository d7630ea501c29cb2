//! Reading landed raw parts back as one DataFusion table, streamed part by part (one
//! partition per part, so memory stays bounded and parts are decoded in parallel).

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::StreamExt;
use socle_lake::Lake;

use crate::sink::conform;

/// One landed part, read as a partition conformed to the unified schema.
struct PartStream {
    lake: Lake,
    path: String,
    format: String,
    schema: SchemaRef,
}

impl fmt::Debug for PartStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartStream({})", self.path)
    }
}

/// Decodes a whole raw or input file of `format` (`parquet`, `avro`, or `jsonl` with its
/// `schema`) into batches.
pub(crate) fn read_batches(
    format: &str,
    bytes: Vec<u8>,
    schema: Option<&SchemaRef>,
) -> Result<Vec<RecordBatch>, String> {
    const BATCH: usize = 8192;
    let batches: Result<Vec<RecordBatch>, ArrowError> = match (format, schema) {
        ("parquet", _) => {
            use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
            ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
                .and_then(|b| b.with_batch_size(BATCH).build())
                .map_err(|e| e.to_string())?
                .collect()
        }
        ("avro", _) => arrow_avro::reader::ReaderBuilder::new()
            .with_batch_size(BATCH)
            .build(std::io::Cursor::new(bytes))
            .map_err(|e| e.to_string())?
            .collect(),
        ("jsonl", Some(schema)) => datafusion::arrow::json::ReaderBuilder::new(schema.clone())
            .with_batch_size(BATCH)
            .build(std::io::Cursor::new(bytes))
            .map_err(|e| e.to_string())?
            .collect(),
        (other, _) => return Err(format!("cannot read {other} files here")),
    };
    batches.map_err(|e| e.to_string())
}

fn decode(format: &str, bytes: Vec<u8>, schema: &SchemaRef) -> Result<Vec<RecordBatch>, String> {
    read_batches(format, bytes, Some(schema))?
        .iter()
        .map(|b| conform(b, schema))
        .collect()
}

impl PartitionStream for PartStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let lake = self.lake.clone();
        let path = self.path.clone();
        let format = self.format.clone();
        let schema = self.schema.clone();
        let batches = futures::stream::once(async move {
            let bytes = lake
                .get(&path)
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let schema2 = schema.clone();
            let decoded = tokio::task::spawn_blocking(move || decode(&format, bytes, &schema2))
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .map_err(|e| DataFusionError::Execution(format!("raw file {path}: {e}")))?;
            Ok::<_, DataFusionError>(futures::stream::iter(decoded.into_iter().map(Ok)))
        })
        .map(|r| match r {
            Ok(s) => s.boxed(),
            Err(e) => futures::stream::iter(vec![Err(e)]).boxed(),
        })
        .flatten();
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

/// A table over landed parts, every part conformed to `schema`.
pub(crate) fn parts_table(
    lake: &Lake,
    parts: &[crate::sink::Part],
    schema: SchemaRef,
) -> datafusion::error::Result<StreamingTable> {
    let streams: Vec<Arc<dyn PartitionStream>> = parts
        .iter()
        .map(|p| {
            Arc::new(PartStream {
                lake: lake.clone(),
                path: p.path.clone(),
                format: p.format.clone(),
                schema: schema.clone(),
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    StreamingTable::try_new(schema, streams)
}
