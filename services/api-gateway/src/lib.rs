//! The api-gateway: the only public entry of Loja Veloz. It forwards each
//! public route to the service that owns it (from `GATEWAY_ROUTES`), never
//! forwards `/internal/...`, enforces the body limit and JSON media type, and
//! carries request ids and traces across.

pub mod config;
pub mod document;
pub mod limit;
pub mod path;
pub mod proxy;
pub mod routes;
pub mod templates;

use std::sync::Arc;

use axum::Router;
use axum::routing::any;
use loja_runtime::{Readiness, server};

pub use config::Config;
pub use document::Document;
pub use limit::RateLimits;
pub use routes::RouteTable;
pub use templates::RouteTemplates;

/// The service name in logs, metrics and traces.
pub const SERVICE: &str = "api-gateway";

/// What the handlers need: the route table, the body limit, the OpenAPI
/// document served at `/openapi.json` and the route templates read from it.
#[derive(Clone)]
pub struct Gateway {
    routes: Arc<RouteTable>,
    templates: Arc<RouteTemplates>,
    max_body_bytes: usize,
    document: Document,
    limits: RateLimits,
}

impl Gateway {
    /// A gateway over `routes` accepting bodies up to `max_body_bytes` and
    /// serving `document`, whose forwarded paths label the metrics.
    pub fn new(routes: RouteTable, max_body_bytes: usize, document: Document) -> Self {
        Gateway {
            routes: Arc::new(routes),
            templates: Arc::new(RouteTemplates::from_document(document.json())),
            max_body_bytes,
            document,
            limits: RateLimits::default(),
        }
    }

    /// The same gateway, limiting each client's requests by `limits`.
    pub fn with_limits(self, limits: RateLimits) -> Self {
        Gateway { limits, ..self }
    }

    /// The gateway described by `config`, upstream addresses from the environment.
    pub fn from_config(config: &Config, document: Document) -> anyhow::Result<Self> {
        let routes = RouteTable::from_env(&config.gateway_routes, config.upstream_timeout())?;
        let limits = RateLimits::parse(&config.rate_limits, &config.trusted_proxies)?;
        for prefix in limits.prefixes() {
            anyhow::ensure!(
                routes.has_prefix(prefix),
                "RATE_LIMITS names {prefix:?}, which is no route of GATEWAY_ROUTES"
            );
        }
        Ok(Self::new(routes, config.common.max_body_bytes, document).with_limits(limits))
    }
}

/// The gateway's router: its own routes (the probes and `/openapi.json`),
/// and everything else forwarded. It has no dependencies, so `/ready` is 200
/// until shutdown begins.
pub fn app(gateway: Gateway, readiness: Readiness) -> Router {
    let (own, _) = document::router().split_for_parts();
    let routes = Router::new()
        .route("/", any(proxy::forward))
        .route("/{*path}", any(proxy::forward))
        .with_state(gateway.clone())
        .merge(own.with_state(gateway.document));
    // The handler enforces the body limit itself, after finding the route,
    // so that a 413 is counted under the route template; the shared layer's
    // own check must not answer first.
    server::with_body_limit(server::app(SERVICE, routes, readiness), usize::MAX)
}

/// The OpenAPI document of the gateway's own public routes: the probes and
/// `/openapi.json`. `cargo xtask gen` adds every route it forwards.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut api = loja_runtime::openapi::document(SERVICE, document::router());
    api.merge(loja_runtime::openapi::document(
        SERVICE,
        utoipa_axum::router::OpenApiRouter::<()>::with_openapi(
            loja_runtime::server::probes_openapi(),
        ),
    ));
    api
}
