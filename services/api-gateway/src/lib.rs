//! The api-gateway: the only public entry of Loja Veloz. It forwards each
//! public route to the service that owns it (from `GATEWAY_ROUTES`), never
//! forwards `/internal/...`, enforces the body limit and JSON media type, and
//! carries request ids and traces across.

pub mod config;
pub mod path;
pub mod proxy;
pub mod routes;

use std::sync::Arc;

use axum::Router;
use axum::routing::any;
use loja_runtime::{Readiness, server};

pub use config::Config;
pub use routes::RouteTable;

/// The service name in logs, metrics and traces.
pub const SERVICE: &str = "api-gateway";

/// What the handler needs: the route table and the body limit.
#[derive(Clone)]
pub struct Gateway {
    routes: Arc<RouteTable>,
    max_body_bytes: usize,
}

impl Gateway {
    /// A gateway over `routes` accepting bodies up to `max_body_bytes`.
    pub fn new(routes: RouteTable, max_body_bytes: usize) -> Self {
        Gateway {
            routes: Arc::new(routes),
            max_body_bytes,
        }
    }

    /// The gateway described by `config`, upstream addresses from the environment.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let routes = RouteTable::from_env(&config.gateway_routes, config.upstream_timeout())?;
        Ok(Self::new(routes, config.common.max_body_bytes))
    }
}

/// The gateway's router. It has no dependencies, so `/ready` is 200 until
/// shutdown begins.
pub fn app(gateway: Gateway, readiness: Readiness) -> Router {
    let routes = Router::new()
        .route("/", any(proxy::forward))
        .route("/{*path}", any(proxy::forward))
        .with_state(gateway);
    // The handler enforces the body limit itself, after finding the route,
    // so that a 413 is counted under the route prefix; the shared layer's
    // own check must not answer first.
    server::with_body_limit(server::app(SERVICE, routes, readiness), usize::MAX)
}
