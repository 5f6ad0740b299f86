//! Accepting and serving connections, with a bound on everything a client
//! can make the process hold:
//!
//! - open connections: at most `max_connections`; one more is answered 503
//!   `overloaded` and closed, never left waiting;
//! - time: a connection with no request in flight closes after
//!   `idle_timeout_ms`, and one whose request head has started arriving
//!   closes unless the head is complete within `header_read_timeout_ms`;
//! - memory: the request head is read into a buffer of bounded size (see
//!   [`head_buffer`]); the edge layer answers 431 below that bound.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::config::HttpLimits;
use crate::problem::{Code, PROBLEM_JSON, Problem};

/// The address of the client of a connection, in the request extensions as
/// `ConnectInfo<PeerAddr>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// How long connections accepted just before the listener closed get to
/// deliver their first request before idle connections are closed.
const ACCEPTED_LINGER: Duration = Duration::from_millis(250);

/// Connections over the cap being answered at once; beyond that they are
/// closed without an answer, so a flood costs no more than this many tasks.
const REFUSALS_AT_ONCE: usize = 64;

/// How long writing the 503 to a connection over the cap may take.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Header fields per request, as hyper's parser counts them.
const MAX_HEADERS: usize = 100;

/// The accept loop of one process.
pub struct Server {
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
}

impl Server {
    pub fn new(listener: TcpListener, app: Router, limits: HttpLimits) -> Self {
        Server {
            listener,
            app,
            limits,
        }
    }

    /// Accepts until `shutdown` completes, then closes the listener, lets
    /// connections accepted just before send their request, closes idle
    /// connections and gives in-flight requests up to `drain_timeout`.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()>,
        drain_timeout: Duration,
    ) -> std::io::Result<()> {
        let Server {
            listener,
            app,
            limits,
        } = self;
        let permits = Arc::new(Semaphore::new(limits.max_connections));
        let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
        let (stop, stopped) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        // Small exchanges must not wait for Nagle's algorithm.
                        let _ = stream.set_nodelay(true);
                        match permits.clone().try_acquire_owned() {
                            Ok(permit) => {
                                let connection = Connection { peer, limits, app: app.clone(), stop: stopped.clone() };
                                connections.spawn(connection.serve(stream, permit));
                            }
                            Err(_) => refuse(stream, &refusals),
                        }
                    }
                    // A connection that died in the queue concerns no one else.
                    Err(err) if is_connection_error(&err) => {}
                    Err(err) => {
                        // Out of file descriptors and the like: wait, then go on.
                        tracing::error!(error = %err, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
            }
        }
        // A successor sharing the port takes every new connection from here.
        drop(listener);
        tokio::time::sleep(ACCEPTED_LINGER).await;
        tracing::info!("listener closed, finishing in-flight requests");
        let _ = stop.send(true);
        let finished = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(drain_timeout, finished).await.is_err() {
            tracing::warn!(timeout = ?drain_timeout, "drain timeout reached, exiting with requests in flight");
        }
        Ok(())
    }
}

/// One accepted connection and what serving it needs.
struct Connection {
    peer: SocketAddr,
    limits: HttpLimits,
    app: Router,
    stop: watch::Receiver<bool>,
}

impl Connection {
    /// Serves requests until the client closes, a timeout of [`Clock`]
    /// fires, or the server stops; `_permit` is the connection's place
    /// under the cap.
    async fn serve(mut self, stream: TcpStream, _permit: OwnedSemaphorePermit) {
        let clock = Arc::new(Clock::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            clock: clock.clone(),
        });
        let (peer, limits, app) = (self.peer, self.limits, self.app.clone());
        let requests = clock.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
            req.extensions_mut().insert(limits);
            let in_flight = requests.request_started();
            let app = app.clone();
            async move {
                let response = app.oneshot(req).await;
                drop(in_flight);
                response
            }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.max_buf_size(head_buffer(limits.max_header_bytes))
            .max_headers(MAX_HEADERS);
        let conn = http.serve_connection(io, service);
        tokio::pin!(conn);
        let mut closing = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(error = %err, peer = %peer, "connection ended with an error");
                    }
                    return;
                }
                expired = clock.expired(limits), if !closing => match expired {
                    // Nothing is in flight: the connection closes after any
                    // answer it is still writing.
                    Expired::Idle => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    // Half a request head: there is no answer to finish.
                    Expired::Head => {
                        tracing::debug!(peer = %peer, "request head too slow, closing");
                        return;
                    }
                },
                _ = self.stop.wait_for(|stop| *stop), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// The size of the buffer a request head is read into: room for a head of
/// `max_header_bytes` (which the edge layer answers with a problem above
/// that), and never below hyper's minimum. A head that overflows even this
/// gets hyper's own bare 431.
pub fn head_buffer(max_header_bytes: usize) -> usize {
    const HYPER_MINIMUM: usize = 8192;
    (2 * max_header_bytes).max(HYPER_MINIMUM)
}

/// Which timeout of a connection fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    /// No request in flight and no byte of a new one for `idle_timeout_ms`.
    Idle,
    /// A request head started arriving more than `header_read_timeout_ms` ago.
    Head,
}

/// When a connection last changed state, in milliseconds since it opened.
struct Clock {
    opened: Instant,
    in_flight: AtomicUsize,
    idle_since: AtomicU64,
    /// When the first byte of a head arrived with nothing in flight, or
    /// [`Clock::NO_HEAD`].
    head_since: AtomicU64,
    changed: Notify,
}

impl Clock {
    const NO_HEAD: u64 = u64::MAX;

    fn new() -> Self {
        Clock {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(Self::NO_HEAD),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// Bytes arrived: with nothing in flight, they begin a request head.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Acquire) == Self::NO_HEAD
        {
            self.head_since.store(self.now(), Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// A complete head was dispatched; the guard marks the request's end.
    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(Self::NO_HEAD, Ordering::Release);
        self.changed.notify_one();
        InFlight(self.clone())
    }

    /// Completes when a timeout fires; never while a request is in flight.
    async fn expired(&self, limits: HttpLimits) -> Expired {
        loop {
            let notified = self.changed.notified();
            let deadline = if self.in_flight.load(Ordering::Acquire) > 0 {
                None
            } else {
                match self.head_since.load(Ordering::Acquire) {
                    Self::NO_HEAD => Some((
                        self.idle_since.load(Ordering::Acquire) + limits.idle_timeout_ms,
                        Expired::Idle,
                    )),
                    since => Some((since + limits.header_read_timeout_ms, Expired::Head)),
                }
            };
            match deadline {
                None => notified.await,
                Some((at, which)) => {
                    let now = self.now();
                    if now >= at {
                        return which;
                    }
                    let wait = Duration::from_millis(at - now);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = notified => {}
                    }
                }
            }
        }
    }
}

/// A request in flight on a connection; dropping it starts the idle clock.
struct InFlight(Arc<Clock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let clock = &self.0;
        if clock.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            clock.idle_since.store(clock.now(), Ordering::Release);
            clock.changed.notify_one();
        }
    }
}

/// The connection's stream, telling its [`Clock`] when bytes arrive.
struct Watched {
    inner: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The whole answer to a connection over the cap: a 503 problem that
/// closes the connection.
static OVER_CAPACITY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        Code::Overloaded,
        "this server holds as many connections as it serves; retry shortly",
    );
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {PROBLEM_JSON}\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
});

/// Answers a connection over the cap with [`OVER_CAPACITY`] and closes it,
/// reading what the client sent meanwhile so that the close does not reset
/// the connection before the client reads the answer.
fn refuse(mut stream: TcpStream, refusals: &Arc<Semaphore>) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            stream.write_all(&OVER_CAPACITY).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await? > 0 {}
            std::io::Result::Ok(())
        })
        .await;
    });
}

fn is_connection_error(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
