//! Assembling a service's router and serving it until a shutdown signal.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, Uri};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::health::{self, Readiness};
use crate::problem::Problem;

/// Wraps a service's own routes with what every service has: `/health`,
/// `/ready`, `/metrics`, problem answers for unknown paths and methods, and the
/// request layers (request id, metrics, tracing, body limit).
pub fn app(service: &'static str, routes: Router, readiness: Readiness) -> Router {
    let probes = Router::new()
        .route("/health", get(health::health).with_state(service))
        .route(
            "/ready",
            get(health::ready).with_state((service, readiness)),
        );
    routes
        .merge(probes)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
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
/// turns 503 first, the listener stops accepting, and in-flight requests get
/// up to `drain_timeout` to finish. Tests pass their own `shutdown` future.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) -> std::io::Result<()> {
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let draining = readiness.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        draining.start_draining();
        tracing::info!("shutdown requested, draining in-flight requests");
        let _ = started_tx.send(());
    });
    let deadline = async move {
        if started_rx.await.is_ok() {
            tokio::time::sleep(drain_timeout).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!(timeout = ?drain_timeout, "drain timeout reached, exiting with requests in flight");
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
