//! estoque: the product catalog, its stock, and the reservations that pedidos
//! holds, commits and releases while it places orders.

pub mod config;
pub mod error;
pub mod products;
pub mod reservations;
pub mod sweeper;

use std::time::Duration;

use axum::Router;
use loja_runtime::server;

pub use config::Config;
pub use error::Error;

/// The service name used in probes, logs and metrics.
pub const SERVICE: &str = "estoque";

/// The embedded migrations, applied by `loja_runtime::db::connect` at startup.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What every handler can reach: the pool, the admin token that admits
/// catalog writes, readiness, and [`Estoque`].
pub type AppState = loja_runtime::AppState<Estoque>;

/// What estoque's handlers need beyond what every database service has.
#[derive(Clone)]
pub struct Estoque {
    /// How long a reservation is held before the sweeper releases it.
    pub reservation_ttl: Duration,
}

/// The whole HTTP surface: public catalog, internal reservations, and the
/// probes and fallbacks every service shares.
pub fn app(state: AppState) -> Router {
    let readiness = state.readiness.clone();
    let (public, _) = products::router().split_for_parts();
    let routes = Router::new()
        .merge(public)
        .merge(reservations::router())
        .with_state(state);
    server::app(SERVICE, routes, readiness)
}

/// The OpenAPI document of estoque's public routes, from the registration
/// [`app`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    loja_runtime::openapi::document(SERVICE, products::router())
}
