//! Reading landed raw parts back as one DataFusion table, streamed batch by batch. The
//! parts are spread over as many partitions as the session has (its
//! `target_partitions`, the cores), each reading its parts one after the other, so the
//! memory in use is a few batches per core whatever the number of parts.

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

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>> + Send>;

/// The batches of one raw part, decoded as they are pulled.
fn batch_iter(format: &str, bytes: Vec<u8>, schema: &SchemaRef) -> Result<Batches, String> {
    const BATCH: usize = 8192;
    Ok(match format {
        "parquet" => {
            use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
            Box::new(
                ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
                    .and_then(|b| b.with_batch_size(BATCH).build())
                    .map_err(|e| e.to_string())?,
            )
        }
        "avro" => Box::new(
            arrow_avro::reader::ReaderBuilder::new()
                .with_batch_size(BATCH)
                .build(std::io::Cursor::new(bytes))
                .map_err(|e| e.to_string())?,
        ),
        "jsonl" => Box::new(
            datafusion::arrow::json::ReaderBuilder::new(schema.clone())
                .with_batch_size(BATCH)
                .build(std::io::Cursor::new(bytes))
                .map_err(|e| e.to_string())?,
        ),
        other => return Err(format!("cannot read {other} files here")),
    })
}

/// Some landed parts, read one after the other as one partition, conformed to the
/// unified schema.
struct PartStream {
    lake: Lake,
    parts: Vec<(String, String)>,
    schema: SchemaRef,
}

impl fmt::Debug for PartStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartStream({} parts)", self.parts.len())
    }
}

impl PartitionStream for PartStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let lake = self.lake.clone();
        let schema = self.schema.clone();
        let batches = futures::stream::iter(self.parts.clone())
            .then(move |(path, format)| {
                let lake = lake.clone();
                let schema = schema.clone();
                async move {
                    let bytes = lake
                        .get(&path)
                        .await
                        .map_err(|e| DataFusionError::External(Box::new(e)))?;
                    let iter = batch_iter(&format, bytes, &schema)
                        .map_err(|e| DataFusionError::Execution(format!("raw file {path}: {e}")))?;
                    let batches = iter.map(move |b| {
                        b.map_err(|e| e.to_string())
                            .and_then(|b| conform(&b, &schema))
                            .map_err(|e| {
                                DataFusionError::Execution(format!("raw file {path}: {e}"))
                            })
                    });
                    Ok::<_, DataFusionError>(futures::stream::iter(batches))
                }
            })
            .map(|r| match r {
                Ok(s) => s.boxed(),
                Err(e) => futures::stream::iter(vec![Err(e)]).boxed(),
            })
            .flatten();
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

/// A table over landed parts, every part conformed to `schema`, spread over at most
/// `partitions` partitions (in order: partition i reads parts i, i+n, i+2n...).
pub(crate) fn parts_table(
    lake: &Lake,
    parts: &[crate::sink::Part],
    schema: SchemaRef,
    partitions: usize,
) -> datafusion::error::Result<StreamingTable> {
    let n = partitions.clamp(1, parts.len().max(1));
    let mut groups: Vec<Vec<(String, String)>> = vec![Vec::new(); n];
    for (i, p) in parts.iter().enumerate() {
        groups[i % n].push((p.path.clone(), p.format.clone()));
    }
    let streams: Vec<Arc<dyn PartitionStream>> = groups
        .into_iter()
        .map(|parts| {
            Arc::new(PartStream {
                lake: lake.clone(),
                parts,
                schema: schema.clone(),
            }) as Arc<dyn PartitionStream>
        })
        .collect();
    StreamingTable::try_new(schema, streams)
}
