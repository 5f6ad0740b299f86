//! pedidos: orders placed as a saga over estoque (stock) and pagamentos
//! (payments), with idempotency keys, compensation and crash recovery.

pub mod clients;
pub mod config;
pub mod error;
pub mod idempotency;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod orders;
pub mod reconciler;
pub mod repo;
pub mod saga;

use axum::Router;
use loja_runtime::server;

pub use config::Config;
pub use error::Error;
pub use openapi::openapi;

/// The service name used in probes, logs and metrics.
pub const SERVICE: &str = "pedidos";

/// The embedded migrations, applied by `loja_runtime::db::connect` at startup.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What every handler can reach: the pool, the admin token that admits
/// order listings, readiness, and [`Pedidos`].
pub type AppState = loja_runtime::AppState<Pedidos>;

/// What pedidos' handlers need beyond what every database service has.
#[derive(Clone)]
pub struct Pedidos {
    /// Runs order sagas against estoque and pagamentos.
    pub saga: saga::Saga,
    /// Hours an Idempotency-Key is kept.
    pub idempotency_ttl_hours: u32,
}

/// The whole HTTP surface: the orders resource plus the probes and fallbacks
/// every service shares.
pub fn app(state: AppState) -> Router {
    let readiness = state.readiness.clone();
    let (public, _) = orders::router().split_for_parts();
    let routes = Router::new().merge(public).with_state(state);
    server::app(SERVICE, routes, readiness)
}
