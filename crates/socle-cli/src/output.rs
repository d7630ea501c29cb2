//! Writing query results: an aligned table for people, CSV / JSON / NDJSON / Parquet for
//! scripts and other tools. Results stream batch by batch, so exporting a large table does
//! not hold it in memory (the `table` format, meant for screens, keeps at most `max_rows`).

use std::io::Write;

use anyhow::{Context, Result, bail};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::parquet::arrow::ArrowWriter;
use futures::StreamExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for reading on screen
    Table,
    /// Comma-separated values with a header line
    Csv,
    /// One JSON array of objects
    Json,
    /// One JSON object per line
    Ndjson,
    /// Apache Parquet (needs -o FILE)
    Parquet,
}

/// Where output goes: standard output or a file.
pub enum Sink {
    Stdout,
    File(std::path::PathBuf),
}

/// What was written.
pub struct Written {
    pub rows: usize,
    pub truncated: bool,
}

/// Streams `stream` to `sink` in `format`.
pub async fn write_stream(
    mut stream: SendableRecordBatchStream,
    format: Format,
    sink: &Sink,
    max_rows: usize,
) -> Result<Written> {
    let schema = stream.schema();
    let out: Box<dyn Write + Send> = match sink {
        Sink::Stdout => {
            if format == Format::Parquet {
                bail!("--format parquet writes binary data: give a file with -o FILE");
            }
            Box::new(std::io::BufWriter::new(std::io::stdout()))
        }
        Sink::File(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
    };
    let mut writer = BatchWriter::new(format, out, schema.clone())?;
    let mut rows = 0usize;
    let mut truncated = false;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| anyhow::anyhow!(e.strip_backtrace()))?;
        if format == Format::Table && rows + batch.num_rows() > max_rows {
            let keep = max_rows.saturating_sub(rows);
            writer.write(&batch.slice(0, keep))?;
            rows += keep;
            truncated = true;
            break;
        }
        rows += batch.num_rows();
        writer.write(&batch)?;
    }
    writer.finish()?;
    Ok(Written { rows, truncated })
}

enum BatchWriter {
    Table {
        out: Box<dyn Write + Send>,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    },
    /// The schema is kept to print the header of an empty result.
    Csv {
        writer: datafusion::arrow::csv::Writer<Box<dyn Write + Send>>,
        schema: SchemaRef,
        wrote: bool,
    },
    Json(datafusion::arrow::json::ArrayWriter<Box<dyn Write + Send>>),
    Ndjson(datafusion::arrow::json::LineDelimitedWriter<Box<dyn Write + Send>>),
    Parquet(ArrowWriter<Box<dyn Write + Send>>),
}

impl BatchWriter {
    fn new(format: Format, out: Box<dyn Write + Send>, schema: SchemaRef) -> Result<Self> {
        Ok(match format {
            Format::Table => BatchWriter::Table {
                out,
                schema,
                batches: Vec::new(),
            },
            Format::Csv => BatchWriter::Csv {
                writer: datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(out),
                schema,
                wrote: false,
            },
            Format::Json => BatchWriter::Json(datafusion::arrow::json::ArrayWriter::new(out)),
            Format::Ndjson => {
                BatchWriter::Ndjson(datafusion::arrow::json::LineDelimitedWriter::new(out))
            }
            Format::Parquet => BatchWriter::Parquet(ArrowWriter::try_new(out, schema, None)?),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            BatchWriter::Table { batches, .. } => batches.push(batch.clone()),
            BatchWriter::Csv { writer, wrote, .. } => {
                writer.write(batch)?;
                *wrote = true;
            }
            BatchWriter::Json(w) => w.write(batch)?,
            BatchWriter::Ndjson(w) => w.write(batch)?,
            BatchWriter::Parquet(w) => w.write(batch)?,
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            BatchWriter::Table {
                mut out,
                schema,
                batches,
            } => {
                if batches.iter().all(|b| b.num_rows() == 0) {
                    let empty = RecordBatch::new_empty(schema);
                    writeln!(out, "{}", pretty_format_batches(&[empty])?)?;
                } else {
                    writeln!(out, "{}", pretty_format_batches(&batches)?)?;
                }
                out.flush()?;
            }
            BatchWriter::Csv {
                mut writer,
                schema,
                wrote,
            } => {
                if !wrote {
                    writer.write(&RecordBatch::new_empty(schema))?;
                }
                writer.into_inner().flush()?;
            }
            BatchWriter::Json(mut w) => {
                w.finish()?;
                let mut out = w.into_inner();
                writeln!(out)?;
                out.flush()?;
            }
            BatchWriter::Ndjson(mut w) => {
                w.finish()?;
                w.into_inner().flush()?;
            }
            BatchWriter::Parquet(w) => {
                w.close()?;
            }
        }
        Ok(())
    }
}
