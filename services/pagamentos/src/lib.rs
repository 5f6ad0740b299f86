//! pagamentos: a deterministic test-mode payment processor. pedidos charges
//! and refunds through `/internal/payments`; anyone may read a payment.

pub mod config;
pub mod payments;
pub mod processor;

use axum::Router;
use loja_runtime::server;

pub use config::Config;

/// The service name used in probes, logs and metrics.
pub const SERVICE: &str = "pagamentos";

/// The embedded migrations, applied by `loja_runtime::db::connect` at startup.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Every way a pagamentos request can fail: only the ways every database
/// service can.
pub type Error = loja_runtime::Error;

/// What every handler can reach: the pool, the admin token that admits
/// listing every payment, and readiness. Nothing else.
pub type AppState = loja_runtime::AppState;

/// The whole HTTP surface: public reads, internal charges and refunds, and
/// the probes and fallbacks every service shares.
pub fn app(state: AppState) -> Router {
    let readiness = state.readiness.clone();
    let (public, _) = payments::public().split_for_parts();
    let routes = payments::internal().merge(public).with_state(state);
    server::app(SERVICE, routes, readiness)
}

/// The OpenAPI document of pagamentos' public routes, from the registration
/// [`app`] serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    loja_runtime::openapi::document(SERVICE, payments::public())
}
