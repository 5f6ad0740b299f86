//! Assembling a service's router and serving it until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt as _;
use tokio::net::{TcpListener, TcpSocket};

use crate::config::{CommonConfig, Drain};
use crate::health::{self, Readiness};
use crate::problem::Problem;
use crate::{metrics, observe};

/// Default request body limit when no `MAX_BODY_BYTES` was configured.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// Wraps a service's own routes with what every service has: `/health`,
/// `/ready`, `/metrics`, problem answers for unknown paths and methods, and the
/// request layers (request id, metrics, tracing, access log, body limit; see
/// [`crate::observe`]), and `Connection: close` on every answer once the
/// replica drains. The body limit is [`DEFAULT_MAX_BODY_BYTES`] unless
/// the router is wrapped with [`with_body_limit`] (as [`run`] does).
pub fn app(service: &'static str, routes: Router, readiness: Readiness) -> Router {
    let probes = Router::new()
        .route("/health", get(health::health).with_state(service))
        .route(
            "/ready",
            get(health::ready).with_state((service, readiness.clone())),
        )
        .route("/metrics", get(metrics::handler));
    routes
        .merge(probes)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            readiness.clone(),
            close_when_draining,
        ))
        .layer(axum::middleware::from_fn_with_state(
            observe::Observe::new(service),
            observe::observe,
        ))
        // The observe layer enforces the configured limit itself, so axum's
        // fixed 2 MB default must not add a second, different one.
        .layer(DefaultBodyLimit::disable())
}

/// Sets the request body limit of an [`app`] router (`MAX_BODY_BYTES`):
/// larger bodies get 413 `payload_too_large`.
pub fn with_body_limit(app: Router, max_body_bytes: usize) -> Router {
    app.layer(axum::Extension(observe::BodyLimit(max_body_bytes)))
}

/// The common end of every service's `main`: binds `LISTEN_ADDR`, applies
/// `MAX_BODY_BYTES`, serves until SIGTERM/SIGINT and drains (`DRAIN_DELAY_MS`,
/// then up to `SHUTDOWN_TIMEOUT_SECS`). `app` is the router built with [`app`].
pub async fn run(config: &CommonConfig, app: Router, readiness: Readiness) -> anyhow::Result<()> {
    let listener = bind(config.listen_addr)
        .with_context(|| format!("binding LISTEN_ADDR={}", config.listen_addr))?;
    tracing::info!(addr = %config.listen_addr, "listening");
    serve(
        listener,
        with_body_limit(app, config.max_body_bytes),
        readiness,
        shutdown_signal(),
        config.drain(),
    )
    .await
    .context("serving HTTP")?;
    tracing::info!("stopped");
    Ok(())
}

/// A listener on `addr` that a successor process can share (`SO_REUSEPORT`):
/// a rolling restart starts the new replica on the same port, waits until it
/// is ready, then stops the old one, so the port never stops answering.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// While draining, every answer closes its connection: a caller's pooled
/// keep-alive connection then never outlives the replica, and its next
/// request opens a connection to a replica that stays.
async fn close_when_draining(
    State(readiness): State<Readiness>,
    req: Request,
    next: Next,
) -> Response {
    let mut response = next.run(req).await;
    if readiness.is_draining() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

async fn not_found(uri: Uri) -> Problem {
    Problem::not_found(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> Problem {
    Problem::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Serves `app` on `listener` until `shutdown` completes, then drains: `/ready`
/// turns 503 and every answer closes its connection for `drain.delay` while
/// the listener still accepts, then the listener closes and in-flight
/// requests get up to `drain.timeout` to finish. Tests pass their own
/// `shutdown` future.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Drain,
) -> std::io::Result<()> {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let draining = readiness.clone();
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    // Small request/response exchanges must not wait for Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        draining.start_draining();
        tracing::info!(delay = ?drain.delay, "shutdown requested: unready, closing connections after their answer");
        tokio::time::sleep(drain.delay).await;
        tracing::info!("listener closed, finishing in-flight requests");
        let _ = started_tx.send(());
    });
    let deadline = async move {
        if started_rx.await.is_ok() {
            tokio::time::sleep(drain.timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!(timeout = ?drain.timeout, "drain timeout reached, exiting with requests in flight");
            Ok(())
        }
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
