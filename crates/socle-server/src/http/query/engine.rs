//! Where queries run. `socle serve` runs them in a child process, the query process
//! (`socle query-worker`): started at the first query, shared by all queries after it, and
//! stopped after `server.query_idle` without one. The query engine's code and memory (Arrow
//! buffers, plans, Delta logs, allocator pages) live and die with it, so an idle server
//! stays small, and a query that brings the engine down costs that query, not the scheduler.
//!
//! The protocol over the child's stdin and stdout:
//! - the server writes one JSON line per message: `{"id": 7, "request": {...}}` (an
//!   [`exec::Request`]) or `{"id": 7, "cancel": true}` (the caller went away);
//! - the child answers each request with one JSON line `{"id": 7, "reply": {...}, "len": N}`
//!   followed by the `N` bytes of the body, passed to the caller as they are.
//!
//! The child stops when its stdin closes (the server let it go idle, or the server died).
//! Without a command ([`Engine::in_process`]) queries run in the server process.

use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use socle_orchestrate::lazy::LazyWarehouse;
use socle_warehouse::Warehouse;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use super::exec::{self, Reply, Request};
use crate::http::{ApiError, internal};

/// Time past a query's own timeout before the server stops waiting for the child.
const GRACE: Duration = Duration::from_secs(10);

/// A message to the child.
#[derive(Serialize, Deserialize)]
struct ToChild {
    id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<Request>,
    #[serde(default)]
    cancel: bool,
}

/// The line before a reply's body.
#[derive(Serialize, Deserialize)]
struct Header {
    id: u64,
    reply: Reply,
    len: usize,
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
    to_child: mpsc::UnboundedSender<String>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>,
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

    /// Runs `req` and answers its reply.
    pub async fn run(&self, req: Request) -> Result<Reply, ApiError> {
        match self {
            Self::InProcess(wh) => {
                let wh = wh.get().await.map_err(internal)?;
                Ok(exec::execute(&wh, &req).await)
            }
            Self::Child(c) => c.run(req).await,
        }
    }
}

/// Counts a query in flight on a worker; when it ends, the worker's idle time starts again.
struct InFlight(Arc<Worker>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last_used.lock().expect("last used") = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Forgets a request that got no reply (the caller went away or waited too long) and
/// tells the child to stop it.
struct Pending<'a> {
    worker: &'a Worker,
    id: u64,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        let waiting = self
            .worker
            .pending
            .lock()
            .expect("pending")
            .remove(&self.id)
            .is_some();
        if waiting {
            let cancel = ToChild {
                id: self.id,
                request: None,
                cancel: true,
            };
            let line = serde_json::to_string(&cancel).expect("json") + "\n";
            let _ = self.worker.to_child.send(line);
        }
    }
}

impl Children {
    async fn run(&self, req: Request) -> Result<Reply, ApiError> {
        let in_flight = self.worker()?;
        let worker = &in_flight.0;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let wait = Duration::from_millis(req.timeout_ms) + GRACE;
        let (tx, rx) = oneshot::channel();
        worker.pending.lock().expect("pending").insert(id, tx);
        let _pending = Pending { worker, id };
        let message = ToChild {
            id,
            request: Some(req),
            cancel: false,
        };
        let line = serde_json::to_string(&message).map_err(internal)? + "\n";
        if worker.to_child.send(line).is_err() {
            return Err(stopped());
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(stopped()),
            Err(_) => Err(ApiError(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "the query did not finish in time and was stopped".into(),
            )),
        }
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
        let (to_child, mut lines) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(line) = lines.recv().await {
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
            // Dropping stdin closes it: the child finishes.
        });
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>> = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let (p, d) = (pending.clone(), dead.clone());
        tokio::spawn(async move {
            let mut from_child = BufReader::new(stdout);
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

/// Hands each reply to the request waiting for it, until the child's stdout closes.
async fn read_replies(
    from_child: &mut BufReader<tokio::process::ChildStdout>,
    pending: &Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
) -> Result<(), String> {
    let mut line = String::new();
    loop {
        line.clear();
        if from_child
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?
            == 0
        {
            return Ok(());
        }
        let header: Header = serde_json::from_str(&line).map_err(|e| e.to_string())?;
        let mut reply = header.reply;
        reply.body = vec![0; header.len];
        from_child
            .read_exact(&mut reply.body)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(tx) = pending.lock().expect("pending").remove(&header.id) {
            let _ = tx.send(reply);
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
/// their replies to stdout, until stdin closes.
pub async fn serve_stdio(wh: Warehouse) -> std::io::Result<()> {
    let (tx, mut replies) = mpsc::unbounded_channel::<(u64, Reply)>();
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some((id, reply)) = replies.recv().await {
            let header = Header {
                id,
                len: reply.body.len(),
                reply,
            };
            // One write per reply: each write to stdout is a hop to a blocking thread.
            let mut frame = serde_json::to_vec(&header).expect("json");
            frame.push(b'\n');
            frame.extend_from_slice(&header.reply.body);
            out.write_all(&frame).await?;
            out.flush().await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut running: HashMap<u64, tokio::task::AbortHandle> = HashMap::new();
    while let Some(line) = lines.next_line().await? {
        let message: ToChild = match serde_json::from_str(&line) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("query process: a message does not parse: {e}");
                continue;
            }
        };
        running.retain(|_, h| !h.is_finished());
        if message.cancel {
            if let Some(h) = running.remove(&message.id) {
                h.abort();
            }
            continue;
        }
        let Some(req) = message.request else {
            continue;
        };
        let (wh, tx, id) = (wh.clone(), tx.clone(), message.id);
        let task = tokio::spawn(async move {
            let reply = exec::execute(&wh, &req).await;
            let _ = tx.send((id, reply));
        });
        running.insert(id, task.abort_handle());
    }
    for h in running.values() {
        h.abort();
    }
    drop(tx);
    writer.await.map_err(std::io::Error::other)?
}
