//! The state every database service's handlers share: its pool, its admin
//! token and its readiness, next to what only that service needs.

use axum::extract::FromRef;
use sqlx::PgPool;

use crate::auth::AdminToken;
use crate::health::Readiness;

/// What every handler of a database service can reach. `T` is what only
/// that service needs, such as estoque's reservation TTL or pedidos' saga;
/// pagamentos needs nothing more.
#[derive(Clone)]
pub struct AppState<T = ()> {
    /// The service's own database.
    pub db: PgPool,
    /// The secret that admits the service's admin endpoints.
    pub admin_token: AdminToken,
    /// Pings `db`; shared with `server::serve`, which turns `/ready` to 503
    /// on shutdown.
    pub readiness: Readiness,
    /// What only this service's handlers need.
    pub service: T,
}

impl<T> AppState<T> {
    /// State backed by `db`, with a fresh readiness that pings it.
    pub fn new(db: PgPool, admin_token: AdminToken, service: T) -> Self {
        let readiness = Readiness::new(Some(db.clone()));
        AppState {
            db,
            admin_token,
            readiness,
            service,
        }
    }

    /// The same pool, token and readiness, with `service` as the service's
    /// own part: how a `main` completes the state the runtime built.
    pub fn with<U>(self, service: U) -> AppState<U> {
        AppState {
            db: self.db,
            admin_token: self.admin_token,
            readiness: self.readiness,
            service,
        }
    }
}

/// Lets the [`crate::Admin`] extractor find the token in any service's state.
impl<T> FromRef<AppState<T>> for AdminToken {
    fn from_ref(state: &AppState<T>) -> Self {
        state.admin_token.clone()
    }
}
