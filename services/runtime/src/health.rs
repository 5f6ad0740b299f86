//! Liveness (`/health`) and readiness (`/ready`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::json::Json;
use crate::openapi::Unavailable;
use crate::problem::Problem;

/// The body of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: Alive,
    /// The service that answered, such as `api-gateway`.
    #[schema(example = "api-gateway")]
    pub service: &'static str,
}

/// A process that answers is alive.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Alive {
    Ok,
}

/// The body of `GET /ready` while the replica takes traffic.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    pub status: Prepared,
    /// The service that answered.
    #[schema(example = "api-gateway")]
    pub service: &'static str,
    /// The process that answered: during a rolling restart two share the port.
    #[schema(example = 4242)]
    pub pid: u32,
}

/// A replica that takes traffic is ready.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Prepared {
    Ready,
}

/// Whether this replica should receive traffic: false once shutdown began or
/// while its database does not answer.
#[derive(Clone)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
    db: Option<PgPool>,
}

impl Readiness {
    /// Readiness of a service whose only dependency is `db` (none for the gateway).
    pub fn new(db: Option<PgPool>) -> Self {
        Readiness {
            draining: Arc::new(AtomicBool::new(false)),
            db,
        }
    }

    /// Turns `/ready` to 503 for good: the first step of a graceful shutdown.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// True once [`Readiness::start_draining`] was called.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Ok when this replica can serve: not draining and its database answers.
    pub async fn check(&self) -> Result<(), Problem> {
        if self.is_draining() {
            return Err(Problem::unavailable("shutting down"));
        }
        if let Some(db) = &self.db {
            let ping = sqlx::query("SELECT 1").execute(db);
            match tokio::time::timeout(Duration::from_secs(2), ping).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    return Err(Problem::unavailable(format!("database: {err}")));
                }
                Err(_) => return Err(Problem::unavailable("database: no answer within 2s")),
            }
        }
        Ok(())
    }
}

/// Liveness: 200 while the process can serve; never looks at other services.
#[utoipa::path(get, path = "/health", tag = "probes", operation_id = "health",
    responses((status = 200, description = "The process can serve.", body = Health)))]
pub async fn health(State(service): State<&'static str>) -> Response {
    Json(Health {
        status: Alive::Ok,
        service,
    })
    .into_response()
}

/// Readiness: 200 when the service's own dependencies (its database) answer,
/// else 503. The body names the process (`pid`): during a rolling restart two
/// processes share the port, and `cargo xtask restart` waits for the new one.
#[utoipa::path(get, path = "/ready", tag = "probes", operation_id = "ready",
    responses(
        (status = 200, description = "The replica takes traffic.", body = Ready),
        (status = 503, response = Unavailable),
    ))]
pub async fn ready(
    State((service, readiness)): State<(&'static str, Readiness)>,
) -> Result<Response, Problem> {
    readiness.check().await?;
    Ok(Json(Ready {
        status: Prepared::Ready,
        service,
        pid: std::process::id(),
    })
    .into_response())
}
