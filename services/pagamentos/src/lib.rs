//! pagamentos: a deterministic test-mode payment processor. pedidos charges
//! and refunds through `/internal/payments`; anyone may read a payment.

pub mod config;
pub mod error;
pub mod payments;
pub mod processor;

use axum::Router;
use axum::extract::FromRef;
use loja_runtime::{AdminToken, Readiness, server};
use sqlx::PgPool;

pub use config::Config;
pub use error::Error;

/// The service name used in probes, logs and metrics.
pub const SERVICE: &str = "pagamentos";

/// The embedded migrations, applied by `loja_runtime::db::connect` at startup.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The service's own database.
    pub db: PgPool,
    /// The secret that admits listing every payment.
    pub admin_token: AdminToken,
    /// Shared with `server::serve`, which turns `/ready` to 503 on shutdown.
    pub readiness: Readiness,
}

impl AppState {
    /// State for a service backed by `db`, with a fresh readiness flag.
    pub fn new(db: PgPool, admin_token: AdminToken) -> Self {
        let readiness = Readiness::new(Some(db.clone()));
        AppState {
            db,
            admin_token,
            readiness,
        }
    }
}

impl FromRef<AppState> for AdminToken {
    fn from_ref(state: &AppState) -> Self {
        state.admin_token.clone()
    }
}

/// The whole HTTP surface: public reads, internal charges and refunds, and
/// the probes and fallbacks every service shares.
pub fn app(state: AppState) -> Router {
    let readiness = state.readiness.clone();
    let routes = payments::router().with_state(state);
    server::app(SERVICE, routes, readiness)
}
