//! Where queries run. `socle serve` runs them in a child process, the query process
//! (`socle query-worker`): started at the first query, shared by all queries after it, and
//! stopped after `server.query_idle` without one. The query engine's code and memory (Arrow
//! buffers, plans, Delta logs, allocator pages) live and die with it, so an idle server
//! stays small, and a query that brings the engine down costs that query, not the scheduler.
//!
//! The protocol over the child's stdin and stdout, in socle's frames
//! ([`socle_core::frames`]: a JSON header line, maybe followed by a body):
//! - the server writes one frame per message: `{"id": 7, "request": {...}}` (an
//!   [`exec::Request`]), `{"id": 7, "ack": 1}` (one more piece of the answer may come)
//!   or `{"id": 7, "cancel": true}` (the caller went away);
//! - the child answers each request with frames: `{"id": 7, "head": {...}}` (an
//!   [`exec::Head`]; unless its status is 200, the last frame), then `{"id": 7, "data":
//!   N}` with a body of `N` bytes of the answer, then `{"id": 7, "end": {...}}` (an
//!   [`exec::End`]).
//!
//! Flow control: the child sends at most [`CREDITS`] data frames of a request ahead of the
//! acks; the server acks a piece once the HTTP client has taken it. So a slow client holds
//! a few pieces of its answer in each process, never the whole, and does not slow the
//! other queries sharing the pipe.
//!
//! The child stops when its stdin closes (the server let it go idle, or the server died).
//! Without a command ([`Engine::in_process`]) queries run in the server process.

use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use socle_app::LazyWarehouse;
use socle_app::query::{self as exec, End, Event, Head, Request};
use socle_core::frames::{self, Incoming};
use socle_warehouse::Warehouse;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, mpsc};

use crate::http::{ApiError, internal};

/// Time past a query's own timeout before the server stops waiting for the child.
const GRACE: Duration = Duration::from_secs(10);

/// Most rows per batch in the query process (less when `warehouse.batch_size` says so).
pub const QUERY_BATCH_ROWS: usize = 64;

/// Pieces of an answer the child may send ahead of the server's acks.
pub const CREDITS: u32 = 4;

/// A message to the child.
#[derive(Serialize, Deserialize)]
struct ToChild {
    id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<Request>,
    #[serde(default)]
    cancel: bool,
    #[serde(default)]
    ack: u32,
}

/// The header of a frame from the child.
#[derive(Default, Serialize, Deserialize)]
struct Frame {
    id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    head: Option<Head>,
    /// Bytes of answer that follow the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end: Option<End>,
}

/// Runs queries, in this process or in the query process.
pub enum Engine {
    InProcess(LazyWarehouse),
    Child(Children),
}

/// The query process, when one runs.
pub struct Children {
    command: Vec<OsString>,
    idle: Duration,
    current: Arc<Mutex<Option<Arc<Worker>>>>,
    next_id: AtomicU64,
}

/// One query process.
struct Worker {
    pid: Option<u32>,
    to_child: mpsc::UnboundedSender<Vec<u8>>,
    pending: Arc<Mutex<Pending>>,
    dead: Arc<AtomicBool>,
    in_flight: AtomicUsize,
    last_used: Mutex<Instant>,
}

impl Engine {
    pub fn in_process(warehouse: LazyWarehouse) -> Self {
        Self::InProcess(warehouse)
    }

    /// Queries run in `command` (which speaks the protocol above), stopped after `idle`.
    pub fn child(command: Vec<OsString>, idle: Duration) -> Self {
        Self::Child(Children {
            command,
            idle,
            current: Arc::new(Mutex::new(None)),
            next_id: AtomicU64::new(1),
        })
    }

    /// The query process's id, while one runs.
    pub fn child_pid(&self) -> Option<u32> {
        match self {
            Self::InProcess(_) => None,
            Self::Child(c) => c
                .current
                .lock()
                .expect("query process")
                .as_ref()
                .and_then(|w| w.pid),
        }
    }

    /// Starts `req`; its answer comes from [`Answer::next`].
    pub async fn run(&self, req: Request) -> Result<Answer, ApiError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(req.timeout_ms) + GRACE;
        match self {
            Self::InProcess(wh) => {
                let wh = wh.get().await.map_err(internal)?;
                let (tx, rx) = mpsc::channel(1);
                let task = tokio::spawn(async move { exec::execute(&wh, &req, tx).await });
                Ok(Answer {
                    source: Source::Local {
                        events: rx,
                        task: task.abort_handle(),
                    },
                    deadline,
                })
            }
            Self::Child(c) => c.run(req, deadline),
        }
    }
}

/// The answer to one query, event by event ([`exec::Event`]).
pub struct Answer {
    source: Source,
    /// When the server stops waiting (the query's timeout and [`GRACE`]).
    deadline: tokio::time::Instant,
}

enum Source {
    Local {
        events: mpsc::Receiver<Event>,
        task: tokio::task::AbortHandle,
    },
    Child {
        events: mpsc::UnboundedReceiver<Event>,
        ticket: Ticket,
    },
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Source::Local { task, .. } = self {
            task.abort();
        }
    }
}

impl Answer {
    /// The next event; `None` once the answer ended.
    pub async fn next(&mut self) -> Result<Option<Event>, ApiError> {
        let event = match &mut self.source {
            Source::Local { events, .. } => tokio::time::timeout_at(self.deadline, events.recv())
                .await
                .map_err(|_| late())?,
            Source::Child { events, ticket } => {
                if ticket.ended {
                    return Ok(None);
                }
                let event = tokio::time::timeout_at(self.deadline, events.recv())
                    .await
                    .map_err(|_| late())?
                    .ok_or_else(stopped)?;
                match &event {
                    Event::Data(_) => ticket.ack(),
                    Event::End(_) => ticket.ended = true,
                    Event::Head(h) if h.status != 200 => ticket.ended = true,
                    Event::Head(_) => {}
                }
                Some(event)
            }
        };
        Ok(event)
    }
}

fn late() -> ApiError {
    ApiError(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        "the query did not finish in time and was stopped".into(),
    )
}

/// Where the reader of the child's frames sends each request's events.
type Pending = HashMap<u64, mpsc::UnboundedSender<Event>>;

/// Counts a query in flight on a worker; when it ends, the worker's idle time starts again.
struct InFlight(Arc<Worker>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last_used.lock().expect("last used") = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One request to the child. Dropped before its answer ended (the caller went away or
/// waited too long), it tells the child to stop it.
struct Ticket {
    in_flight: InFlight,
    id: u64,
    ended: bool,
}

impl Ticket {
    fn send(&self, message: &ToChild) {
        let _ = self.in_flight.0.to_child.send(frames::encode(message));
    }

    /// The client took a piece: one more may come.
    fn ack(&self) {
        self.send(&ToChild {
            id: self.id,
            request: None,
            cancel: false,
            ack: 1,
        });
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let worker = &self.in_flight.0;
        worker.pending.lock().expect("pending").remove(&self.id);
        if !self.ended {
            self.send(&ToChild {
                id: self.id,
                request: None,
                cancel: true,
                ack: 0,
            });
        }
    }
}

impl Children {
    fn run(&self, req: Request, deadline: tokio::time::Instant) -> Result<Answer, ApiError> {
        let in_flight = self.worker()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        in_flight.0.pending.lock().expect("pending").insert(id, tx);
        let ticket = Ticket {
            in_flight,
            id,
            ended: false,
        };
        let message = ToChild {
            id,
            request: Some(req),
            cancel: false,
            ack: 0,
        };
        if ticket
            .in_flight
            .0
            .to_child
            .send(frames::encode(&message))
            .is_err()
        {
            return Err(stopped());
        }
        Ok(Answer {
            source: Source::Child { events: rx, ticket },
            deadline,
        })
    }

    /// The running query process (started if there is none), counted as in use.
    fn worker(&self) -> Result<InFlight, ApiError> {
        let mut current = self.current.lock().expect("query process");
        if let Some(w) = current.as_ref()
            && !w.dead.load(Ordering::SeqCst)
        {
            w.in_flight.fetch_add(1, Ordering::SeqCst);
            return Ok(InFlight(w.clone()));
        }
        let w = Arc::new(self.spawn()?);
        w.in_flight.fetch_add(1, Ordering::SeqCst);
        *current = Some(w.clone());
        tokio::spawn(reap_when_idle(
            Arc::downgrade(&w),
            self.current.clone(),
            self.idle,
        ));
        Ok(InFlight(w))
    }

    fn spawn(&self) -> Result<Worker, ApiError> {
        let (program, args) = self
            .command
            .split_first()
            .ok_or_else(|| internal("empty query command"))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| internal(format!("cannot start the query process: {e}")))?;
        let pid = child.id();
        tracing::info!("server: query process {} started", pid.unwrap_or(0));
        let mut stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (to_child, mut messages) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            while let Some(frame) = messages.recv().await {
                if stdin.write_all(&frame).await.is_err() {
                    break;
                }
            }
            // Dropping stdin closes it: the child finishes.
        });
        let pending: Arc<Mutex<Pending>> = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let (p, d) = (pending.clone(), dead.clone());
        tokio::spawn(async move {
            let mut from_child = frames::Reader::new(stdout, "query process");
            if let Err(e) = read_replies(&mut from_child, &p).await {
                tracing::error!("server: the query process answered garbage: {e}");
            }
            d.store(true, Ordering::SeqCst);
            // Requests still waiting learn that the process is gone.
            p.lock().expect("pending").clear();
            match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                Ok(Ok(status)) if status.success() => {
                    tracing::info!("server: query process {} stopped", pid.unwrap_or(0));
                }
                Ok(Ok(status)) => {
                    tracing::error!("server: query process {} ended: {status}", pid.unwrap_or(0));
                }
                _ => {
                    let _ = child.kill().await;
                }
            }
        });
        Ok(Worker {
            pid,
            to_child,
            pending,
            dead,
            in_flight: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
        })
    }
}

fn stopped() -> ApiError {
    tracing::error!("server: the query process stopped during a query");
    ApiError(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "the query process stopped during the query (see the server's log); try again".into(),
    )
}

/// Hands each frame to the request waiting for it, until the child's stdout closes.
async fn read_replies(
    from_child: &mut frames::Reader<tokio::process::ChildStdout>,
    pending: &Mutex<Pending>,
) -> Result<(), String> {
    loop {
        let frame: Frame = match from_child.next().await.map_err(|e| e.to_string())? {
            None => return Ok(()),
            Some(Incoming::Frame(frame)) => frame,
            // Only frames may come: a stray line means the stream is not what we think.
            Some(Incoming::Text { line, error }) => {
                return Err(format!("a frame does not parse ({error}): {line}"));
            }
        };
        let id = frame.id;
        let (event, last) = match frame {
            Frame { head: Some(h), .. } => {
                let last = h.status != 200;
                (Event::Head(h), last)
            }
            Frame { data: Some(n), .. } => {
                let data = from_child.body(n).await.map_err(|e| e.to_string())?;
                (Event::Data(data), false)
            }
            Frame { end: Some(e), .. } => (Event::End(e), true),
            _ => return Err(format!("an empty frame for query {id}")),
        };
        let mut pending = pending.lock().expect("pending");
        let to = if last {
            pending.remove(&id)
        } else {
            pending.get(&id).cloned()
        };
        if let Some(to) = to {
            let _ = to.send(event);
        }
    }
}

/// Lets the query process go once nothing used it for `idle`.
async fn reap_when_idle(
    worker: Weak<Worker>,
    current: Arc<Mutex<Option<Arc<Worker>>>>,
    idle: Duration,
) {
    let tick = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
    loop {
        tokio::time::sleep(tick).await;
        let Some(w) = worker.upgrade() else {
            return;
        };
        if w.dead.load(Ordering::SeqCst) {
            return;
        }
        let mut current = current.lock().expect("query process");
        let unused = w.in_flight.load(Ordering::SeqCst) == 0
            && w.last_used.lock().expect("last used").elapsed() >= idle;
        if unused && current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &w)) {
            tracing::info!(
                "server: query process {} idle for {idle:?}: stopping it",
                w.pid.unwrap_or(0)
            );
            *current = None;
            return;
        }
    }
}

/// The child's side: reads requests from stdin, runs them concurrently on `wh` and writes
/// their answers to stdout, until stdin closes.
pub async fn serve_stdio(wh: Warehouse) -> std::io::Result<()> {
    {
        // Small batches: a batch is the unit the engine computes before an answer's byte
        // cap can stop it (1,000 values of 1 MB in one batch are 1 GB).
        let state = wh.session().state_ref();
        let mut state = state.write();
        let execution = &mut state.config_mut().options_mut().execution;
        let rows = execution.batch_size.get().min(QUERY_BATCH_ROWS);
        execution.batch_size = datafusion::common::config::ConfigNonZeroUsize::try_new(rows)
            .expect("at least one row");
    }
    let (tx, mut frames) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(frame) = frames.recv().await {
            // One write per frame: each write to stdout is a hop to a blocking thread.
            out.write_all(&frame).await?;
            out.flush().await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut from_server = frames::Reader::new(tokio::io::stdin(), "server");
    let mut running: HashMap<u64, (tokio::task::AbortHandle, Arc<Semaphore>)> = HashMap::new();
    loop {
        let message: ToChild = match from_server.next().await {
            Ok(None) => break,
            Ok(Some(Incoming::Frame(m))) => m,
            Ok(Some(Incoming::Text { error, .. })) => {
                tracing::error!("query process: a message does not parse: {error}");
                continue;
            }
            Err(e @ frames::FrameError::TooLong { .. }) => {
                tracing::error!("query process: {e}");
                continue;
            }
            Err(e) => return Err(std::io::Error::other(e)),
        };
        running.retain(|_, (h, _)| !h.is_finished());
        if message.cancel {
            if let Some((h, _)) = running.remove(&message.id) {
                h.abort();
            }
            continue;
        }
        if message.ack > 0 {
            if let Some((_, credits)) = running.get(&message.id) {
                credits.add_permits(message.ack as usize);
            }
            continue;
        }
        let Some(req) = message.request else {
            continue;
        };
        let credits = Arc::new(Semaphore::new(CREDITS as usize));
        let (wh, tx, id, c) = (wh.clone(), tx.clone(), message.id, credits.clone());
        let task = tokio::spawn(async move {
            let (events, mut rx) = mpsc::channel(1);
            // Moved in: once it returns, the answer's sender fails and the query stops.
            let forward = async move {
                while let Some(event) = rx.recv().await {
                    if matches!(event, Event::Data(_)) {
                        match c.acquire().await {
                            Ok(permit) => permit.forget(),
                            Err(_) => return,
                        }
                    }
                    if tx.send(frame(id, event)).is_err() {
                        return;
                    }
                }
            };
            tokio::join!(exec::execute(&wh, &req, events), forward);
        });
        running.insert(id, (task.abort_handle(), credits));
    }
    for (h, _) in running.values() {
        h.abort();
    }
    drop(tx);
    writer.await.map_err(std::io::Error::other)?
}

/// An event as a frame of the protocol.
fn frame(id: u64, event: Event) -> Vec<u8> {
    let mut header = Frame {
        id,
        ..Frame::default()
    };
    let mut data = Vec::new();
    match event {
        Event::Head(h) => header.head = Some(h),
        Event::Data(d) => {
            header.data = Some(d.len());
            data = d;
        }
        Event::End(e) => header.end = Some(e),
    }
    frames::encode_with_body(&header, &data)
}
