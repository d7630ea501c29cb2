//! The query use case: running one query [`Request`] against a warehouse and rendering
//! its answer (JSON or CSV) as a stream of [`Event`]s: the same code whether it runs in
//! the server process or in the query process (`socle query-worker`, which the server's
//! `http::query::engine` keeps).
//!
//! The answer is rendered batch by batch, row by row, into pieces of about [`PIECE`]
//! bytes sent one at a time through a bounded channel: a slow reader slows the query
//! down instead of letting the answer pile up in memory. The answer stops at `limit` rows
//! or before it would pass `max_bytes` bytes (the cut is said at its end, in [`End`] and
//! in the JSON's trailing fields; the server's `http::query::wire` turns it into HTTP).

use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socle_warehouse::{Outcome, Warehouse, WarehouseError};
use tokio::sync::mpsc;

/// Bytes of a piece of the answer: rendered rows are sent once they reach it.
pub const PIECE: usize = 256 * 1024;

/// A query to run, as the handler checked it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub sql: String,
    /// The caller may write (editor or admin); otherwise one read-only query.
    pub write: bool,
    /// Most rows to return.
    pub limit: usize,
    /// Largest answer, in bytes (rows past it are cut).
    pub max_bytes: u64,
    /// How long it may run, in milliseconds (streaming the answer included).
    pub timeout_ms: u64,
    /// Answer as CSV instead of JSON.
    pub csv: bool,
}

/// How an answer starts: on 200 its rows follow, otherwise `message` says why not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Head {
    pub status: u16,
    /// The body is CSV.
    pub csv: bool,
    /// A statement that writes was run (the catalog changed, even if a later one failed).
    pub wrote: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How far [`Render::render`] got: rows up to an index, or a cut.
enum Rendered {
    Upto(usize),
    Cut(Cut),
}

/// Why an answer was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cut {
    /// At `limit` rows.
    Rows,
    /// Before passing `max_bytes`.
    Bytes,
}

impl Cut {
    pub fn as_str(self) -> &'static str {
        match self {
            Cut::Rows => "rows",
            Cut::Bytes => "bytes",
        }
    }
}

/// How an answer of status 200 ended (also written at the end of a JSON body).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct End {
    pub row_count: u64,
    pub truncated: Option<Cut>,
    /// The query failed after its answer started.
    pub error: Option<Failure>,
}

/// Why a query failed after its answer started: what its status would have been.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub status: u16,
    pub message: String,
}

fn failure(Failed(status, message): Failed) -> Failure {
    Failure { status, message }
}

/// What a query sends back, in order: one [`Event::Head`]; on 200, [`Event::Data`]
/// pieces then one [`Event::End`].
#[derive(Debug)]
pub enum Event {
    Head(Head),
    Data(Vec<u8>),
    End(End),
}

/// A failure with its status.
struct Failed(u16, String);

/// The error's status by whose fault it is ([`socle_core::fault`]): the caller's SQL 400, a
/// refused statement 403, a missing object 404, another writer 409; a failure of socle or
/// of the storage under it 500, its detail in the log (the query process's stderr is the
/// server's log), not in the answer.
fn sql_error(e: WarehouseError) -> Failed {
    let fault = e.fault();
    if fault.is_callers() {
        Failed(fault.http_status(), e.to_string())
    } else {
        tracing::error!("query: {e}");
        Failed(
            fault.http_status(),
            "internal error (see the server's log)".into(),
        )
    }
}

fn df_error(e: datafusion::error::DataFusionError) -> Failed {
    sql_error(WarehouseError::from_datafusion(e, ""))
}

fn too_long(timeout: Duration) -> String {
    format!(
        "the query ran longer than {:.0} s and was stopped",
        timeout.as_secs_f64()
    )
}

/// What the statements left to answer: rows to stream, or a message.
struct Answer {
    schema: Option<SchemaRef>,
    rows: Option<SendableRecordBatchStream>,
    message: Option<String>,
}

/// Runs `req` within its timeout and sends its answer to `out`. Stops early when `out`
/// closes (the caller went away): dropping the stream stops the query.
pub async fn execute(wh: &Warehouse, req: &Request, out: mpsc::Sender<Event>) {
    let head = |status, message: Option<String>, wrote| {
        Event::Head(Head {
            status,
            csv: req.csv,
            wrote,
            message,
        })
    };
    // Statements that write change the catalog, even when a later one fails or times out.
    let writes = if req.write {
        match wh.parse(&req.sql) {
            Ok(parsed) => parsed
                .iter()
                .any(|p| !socle_warehouse::read_only::is_query(&p.statement)),
            Err(e) => {
                let Failed(status, m) = sql_error(e);
                let _ = out.send(head(status, Some(m), false)).await;
                return;
            }
        }
    } else {
        false
    };
    let timeout = Duration::from_millis(req.timeout_ms);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let work = async {
        let mut answer = if req.write {
            run_any(wh, &req.sql, req.limit).await?
        } else {
            let df = wh.read_query(&req.sql).await.map_err(sql_error)?;
            start(df).await?
        };
        // The first batch comes before the head: an error there is still an error status.
        let first = match answer.rows.as_mut() {
            Some(rows) => rows.next().await.transpose().map_err(df_error)?,
            None => None,
        };
        Ok::<_, Failed>((answer, first))
    };
    let (answer, first) = match tokio::time::timeout_at(deadline, work).await {
        Err(_) => {
            let _ = out.send(head(408, Some(too_long(timeout)), writes)).await;
            return;
        }
        Ok(Err(Failed(status, m))) => {
            let _ = out.send(head(status, Some(m), writes)).await;
            return;
        }
        Ok(Ok(answer)) => answer,
    };
    if out.send(head(200, None, writes)).await.is_err() {
        return;
    }
    let mut render = Render::new(req, answer.schema.as_ref(), out);
    let mut end = End::default();
    if let Some(rows) = answer.rows {
        // The timeout covers the whole answer, however slowly it is read.
        let streamed = tokio::time::timeout_at(deadline, stream(rows, first, &mut render)).await;
        match streamed {
            Err(_) => end.error = Some(failure(Failed(408, too_long(timeout)))),
            Ok(Err(Stop::Gone)) => return,
            Ok(Err(Stop::Failed(e))) => end.error = Some(failure(e)),
            Ok(Ok(cut)) => end.truncated = cut,
        }
    }
    end.row_count = render.rows as u64;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let _ = render.finish(&end, elapsed_ms, answer.message).await;
}

/// Renders `first` and the batches after it until the stream ends or the answer is cut.
async fn stream(
    mut rows: SendableRecordBatchStream,
    first: Option<RecordBatch>,
    render: &mut Render,
) -> Result<Option<Cut>, Stop> {
    let mut batch = first;
    while let Some(b) = batch.take() {
        // A cut at `limit` is found at the first row past it: only when more rows come.
        if let Some(cut) = render.batch(&b).await? {
            return Ok(Some(cut));
        }
        batch = rows
            .next()
            .await
            .transpose()
            .map_err(|e| Stop::Failed(df_error(e)))?;
    }
    Ok(None)
}

/// Starts `df`'s stream.
async fn start(df: datafusion::prelude::DataFrame) -> Result<Answer, Failed> {
    let schema: SchemaRef = std::sync::Arc::new(df.schema().as_arrow().clone());
    let rows = df.execute_stream().await.map_err(df_error)?;
    Ok(Answer {
        schema: Some(schema),
        rows: Some(rows),
        message: None,
    })
}

/// Runs every statement (writes committed one by one); the last query's rows come back
/// (earlier queries run, their rows are dropped).
async fn run_any(wh: &Warehouse, sql: &str, limit: usize) -> Result<Answer, Failed> {
    let mut last = Answer {
        schema: None,
        rows: None,
        message: None,
    };
    for p in wh.parse(sql).map_err(sql_error)? {
        if let Some(mut rows) = last.rows.take() {
            let mut seen = 0;
            while seen < limit
                && let Some(b) = rows.next().await
            {
                seen += b.map_err(df_error)?.num_rows();
            }
        }
        last = match wh.run(p).await.map_err(sql_error)? {
            Outcome::Query(df) => start(df).await?,
            Outcome::Done(m) => Answer {
                schema: None,
                rows: None,
                message: Some(m),
            },
        };
    }
    Ok(last)
}

/// Why rendering stopped early.
enum Stop {
    /// The reader went away.
    Gone,
    /// The query failed.
    Failed(Failed),
}

/// The reader went away.
struct Gone;

/// Renders rows into pieces sent to `out`, within the row and byte limits.
struct Render {
    csv: bool,
    out: mpsc::Sender<Event>,
    piece: Vec<u8>,
    /// Bytes rendered so far (sent or in `piece`).
    bytes: u64,
    max_bytes: u64,
    rows: usize,
    limit: usize,
    row: Vec<u8>,
}

impl Render {
    /// Starts the answer: the JSON's `columns` and the start of `rows`, or the CSV's header
    /// line (none without columns).
    fn new(req: &Request, schema: Option<&SchemaRef>, out: mpsc::Sender<Event>) -> Self {
        let mut piece = Vec::new();
        if req.csv {
            if let Some(schema) = schema {
                for (i, f) in schema.fields().iter().enumerate() {
                    if i > 0 {
                        piece.push(b',');
                    }
                    csv_field(&mut piece, f.name());
                }
                piece.extend_from_slice(b"\r\n");
            }
        } else {
            let columns: Vec<Value> = schema
                .map(|s| {
                    s.fields()
                        .iter()
                        .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
                        .collect()
                })
                .unwrap_or_default();
            piece.extend_from_slice(b"{\"columns\":");
            serde_json::to_writer(&mut piece, &columns).expect("json");
            piece.extend_from_slice(b",\"rows\":[");
        }
        Self {
            csv: req.csv,
            out,
            bytes: piece.len() as u64,
            piece,
            max_bytes: req.max_bytes,
            rows: 0,
            limit: req.limit,
            row: Vec::new(),
        }
    }

    /// Renders the rows of `b`; `Some` when the answer is cut.
    async fn batch(&mut self, b: &RecordBatch) -> Result<Option<Cut>, Stop> {
        let mut start = 0;
        while start < b.num_rows() {
            match self.render(b, start)? {
                Rendered::Cut(cut) => return Ok(Some(cut)),
                Rendered::Upto(next) => start = next,
            }
            if self.piece.len() >= PIECE {
                self.send().await.map_err(|Gone| Stop::Gone)?;
            }
        }
        if self.row.capacity() > PIECE {
            self.row = Vec::new();
        }
        Ok(None)
    }

    /// Renders rows of `b` from `start` until a piece is full (the formatters borrow `b`
    /// and are not `Send`, so they live between two sends only).
    fn render(&mut self, b: &RecordBatch, start: usize) -> Result<Rendered, Stop> {
        let opts = FormatOptions::default().with_null("");
        let formatters = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Stop::Failed(Failed(500, format!("a column cannot be displayed: {e}"))))?;
        for i in start..b.num_rows() {
            if self.rows == self.limit {
                return Ok(Rendered::Cut(Cut::Rows));
            }
            self.row.clear();
            if self.csv {
                for (j, f) in formatters.iter().enumerate() {
                    if j > 0 {
                        self.row.push(b',');
                    }
                    csv_field(&mut self.row, &f.value(i).to_string());
                }
                self.row.extend_from_slice(b"\r\n");
            } else {
                if self.rows > 0 {
                    self.row.push(b',');
                }
                let cells: Vec<Value> = b
                    .columns()
                    .iter()
                    .zip(&formatters)
                    .map(|(c, f)| json_cell(c.as_ref(), f, i))
                    .collect();
                serde_json::to_writer(&mut self.row, &cells).expect("json");
            }
            if self.bytes + self.row.len() as u64 > self.max_bytes {
                return Ok(Rendered::Cut(Cut::Bytes));
            }
            self.bytes += self.row.len() as u64;
            self.piece.extend_from_slice(&self.row);
            self.rows += 1;
            if self.piece.len() >= PIECE {
                return Ok(Rendered::Upto(i + 1));
            }
        }
        Ok(Rendered::Upto(b.num_rows()))
    }

    async fn send(&mut self) -> Result<(), Gone> {
        let piece = std::mem::take(&mut self.piece);
        self.out.send(Event::Data(piece)).await.map_err(|_| Gone)
    }

    /// Ends the answer: the JSON's trailing fields, the last piece, then [`Event::End`].
    async fn finish(
        mut self,
        end: &End,
        elapsed_ms: u64,
        message: Option<String>,
    ) -> Result<(), Gone> {
        if !self.csv {
            // The fields in a fixed order (docs/server.md), after the rows' `]`.
            fn text(v: &impl Serialize) -> String {
                serde_json::to_string(v).expect("json")
            }
            let mut tail = format!(
                "],\"row_count\":{},\"truncated\":{},\"truncated_by\":{},\"elapsed_ms\":{},\"message\":{}",
                end.row_count,
                end.truncated.is_some(),
                text(&end.truncated.map(Cut::as_str)),
                elapsed_ms,
                text(&message),
            );
            if let Some(e) = &end.error {
                tail.push_str(",\"error\":");
                tail.push_str(&text(&e.message));
            }
            tail.push('}');
            self.piece.extend_from_slice(tail.as_bytes());
        }
        if !self.piece.is_empty() {
            self.send().await?;
        }
        self.out
            .send(Event::End(end.clone()))
            .await
            .map_err(|_| Gone)
    }
}

/// One JSON cell: numbers and booleans as such, everything else as its display text;
/// NULL as null.
fn json_cell(c: &dyn Array, f: &ArrayFormatter<'_>, i: usize) -> Value {
    use datafusion::arrow::datatypes::DataType as T;
    if c.is_null(i) {
        return Value::Null;
    }
    let text = f.value(i).to_string();
    match c.data_type() {
        T::Boolean => Value::Bool(text == "true"),
        T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::UInt8 | T::UInt16 | T::UInt32 | T::UInt64 => {
            text.parse::<i64>()
                .map(Value::from)
                .or_else(|_| text.parse::<u64>().map(Value::from))
                .unwrap_or(Value::String(text))
        }
        T::Float16 | T::Float32 | T::Float64 => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(text)),
        _ => Value::String(text),
    }
}

/// One RFC 4180 CSV field.
fn csv_field(out: &mut Vec<u8>, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(text.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}
