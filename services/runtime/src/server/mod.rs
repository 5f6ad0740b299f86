//! Assembling a service's router and serving it until a shutdown signal.

mod conn;
mod edge;

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use tokio::net::{TcpListener, TcpSocket};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use conn::PeerAddr;

use crate::config::{CommonConfig, Drain, HttpLimits};
use crate::health::{self, Readiness};
use crate::problem::Problem;
use crate::{admission, metrics, observe};

/// Wraps a service's own routes with what every service has: `/health`,
/// `/ready`, `/metrics`, problem answers for unknown paths and methods, and the
/// request layers (request id, metrics, tracing, access log, body limit; see
/// [`crate::observe`]), the HTTP/1.1 `Host` and header-size rules (see
/// [`edge`]), and `Connection: close` on every answer once the
/// replica drains. The body limit is
/// [`DEFAULT_MAX_BODY_BYTES`](crate::config::DEFAULT_MAX_BODY_BYTES) unless
/// the router is wrapped with [`with_body_limit`] (as [`run`] does).
pub fn app(service: &'static str, routes: Router, readiness: Readiness) -> Router {
    let (probes, _) = probes(service, readiness.clone()).split_for_parts();
    routes
        .merge(probes)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(edge::request_head))
        .layer(axum::middleware::from_fn_with_state(
            readiness.clone(),
            close_when_draining,
        ))
        .layer(axum::middleware::from_fn_with_state(
            service,
            admission::admit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            observe::Observe::new(service),
            observe::observe,
        ))
        // The observe layer enforces the configured limit itself, so axum's
        // fixed 2 MB default must not add a second, different one.
        .layer(DefaultBodyLimit::disable())
}

/// `/health`, `/ready` and `/metrics`, documented by the same registration
/// that routes them.
fn probes(service: &'static str, readiness: Readiness) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(
            OpenApiRouter::new()
                .routes(routes!(health::health))
                .with_state(service),
        )
        .merge(
            OpenApiRouter::new()
                .routes(routes!(health::ready))
                .with_state((service, readiness)),
        )
        .routes(routes!(metrics::handler))
}

/// The OpenAPI paths of the probes every service answers: `/health`,
/// `/ready` and `/metrics` (the gateway's are public).
pub fn probes_openapi() -> utoipa::openapi::OpenApi {
    probes("", Readiness::new(None)).into_openapi()
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
        admission::with_admission(
            with_body_limit(app, config.max_body_bytes),
            admission::Admission::new(config.max_in_flight as usize),
        ),
        readiness,
        shutdown_signal(),
        config.drain(),
        config.http,
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

// Neither detail repeats the path or the method: nothing a client sends is
// echoed back.
async fn not_found() -> Problem {
    Problem::not_found("no route for this path")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        crate::problem::Code::MethodNotAllowed,
        "this method is not allowed on this path; `Allow` lists those that are",
    )
}

/// Serves `app` on `listener` until `shutdown` completes, then drains:
/// 1. `/ready` turns 503 and every answer closes its connection, while the
///    listener still accepts, for `drain.delay`;
/// 2. the listener closes (a successor sharing the port takes every new
///    connection), and connections it accepted just before get a moment to
///    send their request;
/// 3. idle connections close and in-flight requests get up to
///    `drain.timeout` to finish.
///
/// Every connection is held to `limits` (see [`conn`]). Tests pass their own
/// `shutdown` future.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Drain,
    limits: HttpLimits,
) -> std::io::Result<()> {
    let draining = readiness.clone();
    let shutdown = async move {
        shutdown.await;
        draining.start_draining();
        tracing::info!(delay = ?drain.delay, "shutdown requested: unready, closing connections after their answer");
        tokio::time::sleep(drain.delay).await;
    };
    conn::Server::new(listener, app, limits)
        .run(shutdown, drain.timeout)
        .await
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
