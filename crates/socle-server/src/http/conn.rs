//! Connections: the accept loop of the server (plain TCP or TLS), the cap on open
//! connections and each client address's share of it, the timeouts that close idle and slow
//! connections, and graceful shutdown.
//!
//! Each accepted connection gets a task that serves HTTP/1.1 with hyper, next to a
//! watchdog that closes the connection:
//! - after `idle_timeout` with no request in flight and no byte of the next one (this also
//!   covers a connection that never sends anything);
//! - `header_timeout` after the first byte of a request whose head is still incomplete;
//! - after `idle_timeout` during which the client read nothing of an answer it was sent
//!   (the socket's send buffer stayed full).
//!
//! A request's body must arrive within `body_timeout` of its head: a handler reading it
//! past that gets an error (answered 400) and the connection is not reused.
//!
//! A connection past `max_connections`, or past its address's share
//! (`max_connections_per_address`; IPv6 addresses count by /64), is closed as soon as it
//! is accepted, before any byte is read. Running out of file descriptors (EMFILE, ENFILE)
//! pauses accepting for 100 ms; such trouble is logged at most every 10 s. At start the
//! soft limit of open files is raised to the hard limit, and the cap is lowered to fit
//! under it.
//!
//! At shutdown the listener closes, idle connections close at once, requests in flight are
//! answered (their connections then close), and [`run`] returns when every connection has
//! ended (the timeouts above bound that).

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use super::tls::Peer;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long accepting pauses after an error such as running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How often the same trouble is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// File descriptors kept for everything but connections (the metadata database, logs,
/// child processes' pipes).
const FD_RESERVE: u64 = 256;

/// Limits on connections (`server:` in socle.yml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one client address.
    pub max_connections_per_address: usize,
    /// Longest a request's head may take from its first byte.
    pub header_timeout: Duration,
    /// Longest a request's body may take after its head.
    pub body_timeout: Duration,
    /// How long a connection stays open with no request in flight (and how long a client
    /// may leave an answer unread).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_address: 256,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `router` on `listener` (HTTPS with `tls`) within `limits` until `shutdown`
/// resolves, then until every connection has ended.
pub async fn run(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = fit_to_open_files(limits);
    let acceptor = tls.map(TlsAcceptor::from);
    let table = Arc::new(Table::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut accept_trouble = Every::default();
    let mut refused = Every::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) if is_about_one_connection(&e) => continue,
            Err(e) => {
                if let Some(also) = accept_trouble.due() {
                    tracing::warn!(
                        open = table.total(),
                        also,
                        "server: cannot accept connections: {e}; retrying (if open files ran \
                         out, raise the limit with `ulimit -n` or lower server.max_connections)"
                    );
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let slot = match table.admit(peer.ip(), &limits) {
            Ok(slot) => slot,
            Err(refusal) => {
                drop(stream);
                if let Some(also) = refused.due() {
                    tracing::warn!(%peer, also, "server: closed a new connection at once: {refusal}");
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (router, acceptor, stop) = (router.clone(), acceptor.clone(), stop_rx.clone());
        tokio::spawn(async move {
            connection(stream, peer, acceptor, router, limits, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(stop_rx);
    // Every connection task holds a receiver: this returns when the last one ends.
    stop_tx.closed().await;
    Ok(())
}

/// Errors of `accept` that concern one connection only (it was reset before it was
/// accepted): accept the next one at once.
fn is_about_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Raises the soft limit of open files to the hard limit, and lowers the connection cap
/// (with a warning) if it does not fit under it.
fn fit_to_open_files(mut limits: Limits) -> Limits {
    let Some(open_files) = raise_open_files_limit() else {
        return limits;
    };
    let room = open_files.saturating_sub(FD_RESERVE).max(16) as usize;
    if limits.max_connections > room {
        tracing::warn!(
            "server: at most {room} connections at once, not {} (server.max_connections): \
             the limit of open files is {open_files}; raise it (ulimit -n) to allow more",
            limits.max_connections
        );
        limits.max_connections = room;
        limits.max_connections_per_address = limits.max_connections_per_address.min(room);
    }
    limits
}

/// Raises this process's soft limit of open files to its hard limit; returns the soft
/// limit now in force (None if it is unlimited or cannot be read).
fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Rate-limits a log line: `due` says whether to log now, and how many were skipped.
#[derive(Default)]
struct Every {
    last: Option<Instant>,
    skipped: u64,
}

impl Every {
    fn due(&mut self) -> Option<u64> {
        if self.last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            self.skipped += 1;
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.skipped))
    }
}

/// Open connections, in all and per client address.
#[derive(Default)]
struct Table {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Why a new connection was closed at once.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("the server holds {0} connections (server.max_connections)")]
    Full(usize),
    #[error(
        "its address holds {0} connections (server.max_connections_per_address; behind a \
         reverse proxy every client has the proxy's address: raise it)"
    )]
    AddressFull(usize),
}

impl Table {
    fn total(&self) -> usize {
        self.open.lock().expect("connections").0
    }

    fn admit(self: &Arc<Self>, ip: IpAddr, limits: &Limits) -> Result<Slot, Refusal> {
        let key = client(ip);
        let mut open = self.open.lock().expect("connections");
        if open.0 >= limits.max_connections {
            return Err(Refusal::Full(open.0));
        }
        let mine = open.1.entry(key).or_default();
        if *mine >= limits.max_connections_per_address {
            return Err(Refusal::AddressFull(*mine));
        }
        *mine += 1;
        open.0 += 1;
        Ok(Slot {
            table: self.clone(),
            key,
        })
    }
}

/// The client an address counts for: IPv4 addresses (also mapped into IPv6) one by one,
/// IPv6 addresses by /64 (one host usually holds a whole /64).
fn client(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

/// One open connection in the [`Table`], given back when dropped.
struct Slot {
    table: Arc<Table>,
    key: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().expect("connections");
        open.0 -= 1;
        if let Some(n) = open.1.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.key);
            }
        }
    }
}

/// One connection: its TLS handshake if any, then HTTP until it ends, a timeout closes it
/// or the server stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let Some(acceptor) = acceptor else {
        return serve(stream, peer, router, limits, stop).await;
    };
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let tls = tokio::select! {
        tls = handshake => tls,
        _ = stop.wait_for(|stopping| *stopping) => return,
    };
    match tls {
        Ok(Ok(tls)) => serve(tls, peer, router, limits, stop).await,
        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// Serves HTTP/1.1 on `io` next to its watchdog.
async fn serve<T>(
    io: T,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let request = InFlight::start(activity.clone());
            let (mut parts, body) = req.into_parts();
            parts.extensions.insert(ConnectInfo(Peer(peer)));
            let req = hyper::Request::from_parts(parts, TimedBody::new(body, limits.body_timeout));
            let mut router = router.clone();
            async move {
                let resp = match router.call(req).await {
                    Ok(resp) => resp,
                    Err(never) => match never {},
                };
                Ok::<_, Infallible>(resp.map(|inner| Answer {
                    inner,
                    _request: request,
                }))
            }
        })
    };
    let io = TokioIo::new(Watched {
        io,
        activity: activity.clone(),
    });
    let conn = hyper::server::conn::http1::Builder::new()
        // The watchdog times heads (from their first byte) and idle connections.
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                return;
            }
            why = activity.watch(&limits) => {
                tracing::debug!(%peer, "connection closed: {why}");
                return;
            }
            _ = stop.wait_for(|stopping| *stopping), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// "Not yet" in [`Activity`]'s times.
const NONE: u64 = u64::MAX;

/// What a connection is doing, as its watchdog sees it (times in ms since it opened).
struct Activity {
    opened: Instant,
    /// Requests whose answer is not fully handed to the connection.
    in_flight: AtomicUsize,
    /// When the last request ended (or the connection opened).
    idle_since: AtomicU64,
    /// When the first byte of the next request arrived.
    head_started: AtomicU64,
    /// Since when a write has waited for the client to read.
    write_blocked: AtomicU64,
    changed: Notify,
}

/// Why the watchdog closed a connection.
#[derive(Debug, thiserror::Error)]
enum Closed {
    #[error("no request for {0:?} (server.idle_timeout)")]
    Idle(Duration),
    #[error("a request's head did not arrive within {0:?} (server.header_timeout)")]
    SlowHead(Duration),
    #[error("the client read nothing of its answer for {0:?} (server.idle_timeout)")]
    NotReading(Duration),
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            write_blocked: AtomicU64::new(NONE),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// Bytes arrived.
    fn read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Relaxed) == NONE
            && self
                .head_started
                .compare_exchange(NONE, self.now(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// A write went through (`true`) or waits for the client to read (`false`).
    fn wrote(&self, went_through: bool) {
        let blocked = self.write_blocked.load(Ordering::Relaxed);
        if went_through && blocked != NONE {
            self.write_blocked.store(NONE, Ordering::Relaxed);
        } else if !went_through && blocked == NONE {
            self.write_blocked.store(self.now(), Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    /// Resolves when a timeout says to close the connection.
    async fn watch(&self, limits: &Limits) -> Closed {
        let ms = |d: Duration| d.as_millis() as u64;
        loop {
            let mut due: Option<(u64, Closed)> = None;
            let mut consider = |at: u64, why: Closed| {
                if due.as_ref().is_none_or(|(t, _)| at < *t) {
                    due = Some((at, why));
                }
            };
            let blocked = self.write_blocked.load(Ordering::Relaxed);
            if blocked != NONE {
                consider(
                    blocked.saturating_add(ms(limits.idle_timeout)),
                    Closed::NotReading(limits.idle_timeout),
                );
            }
            if self.in_flight.load(Ordering::Acquire) == 0 {
                match self.head_started.load(Ordering::Acquire) {
                    NONE => consider(
                        self.idle_since
                            .load(Ordering::Acquire)
                            .saturating_add(ms(limits.idle_timeout)),
                        Closed::Idle(limits.idle_timeout),
                    ),
                    started => consider(
                        started.saturating_add(ms(limits.header_timeout)),
                        Closed::SlowHead(limits.header_timeout),
                    ),
                }
            }
            let Some((at, why)) = due else {
                self.changed.notified().await;
                continue;
            };
            let now = self.now();
            if at <= now {
                return why;
            }
            // Woken early by a change, or at the deadline: look again either way.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(at - now)) => {}
                _ = self.changed.notified() => {}
            }
        }
    }
}

/// A request being served: counted in flight until its answer is handed over.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.head_started.store(NONE, Ordering::Release);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now(), Ordering::Release);
        a.head_started.store(NONE, Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
        a.changed.notify_one();
    }
}

/// An answer's body, holding its request [`InFlight`] until hyper has taken all of it.
struct Answer<B> {
    inner: B,
    _request: InFlight,
}

impl<B: Body + Unpin> Body for Answer<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that fails once `body_timeout` has passed since its head arrived.
struct TimedBody {
    inner: Incoming,
    limit: Duration,
    deadline: tokio::time::Instant,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The error a handler reading a [`TimedBody`] too late gets.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?} (server.body_timeout)")]
struct BodyTimeout(Duration);

impl TimedBody {
    fn new(inner: Incoming, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            deadline: tokio::time::Instant::now() + limit,
            sleep: None,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(this.limit).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's stream, telling its [`Activity`] when bytes come and go.
struct Watched<T> {
    io: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.activity.wrote(polled.is_ready());
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.activity.wrote(polled.is_ready());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.activity.wrote(polled.is_ready());
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_count_by_client() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(client(mapped), v4);
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client(a), client(b));
        assert_ne!(client(a), client(c));
    }

    #[test]
    fn an_address_gets_its_share_and_no_more() {
        let table = Arc::new(Table::default());
        let limits = Limits {
            max_connections: 5,
            max_connections_per_address: 3,
            ..Limits::default()
        };
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "::1".parse().unwrap());
        let mine: Vec<Slot> = (0..3).map(|_| table.admit(a, &limits).unwrap()).collect();
        assert!(matches!(
            table.admit(a, &limits),
            Err(Refusal::AddressFull(3))
        ));
        let theirs: Vec<Slot> = (0..2).map(|_| table.admit(b, &limits).unwrap()).collect();
        assert!(matches!(table.admit(b, &limits), Err(Refusal::Full(5))));
        drop(mine);
        assert_eq!(table.total(), 2);
        assert!(table.admit(a, &limits).is_ok());
        drop(theirs);
        assert!(table.open.lock().unwrap().1.is_empty());
    }
}
