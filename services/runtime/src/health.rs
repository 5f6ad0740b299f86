//! Liveness (`/health`) and readiness (`/ready`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sqlx::PgPool;

use crate::json::Json;
use crate::problem::Problem;

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

/// `GET /health`: 200 while the process can serve; never looks at dependencies.
pub async fn health(State(service): State<&'static str>) -> Response {
    Json(json!({"status": "ok", "service": service})).into_response()
}

/// `GET /ready`: 200 when the service's own dependencies answer, else 503
/// problem. The body names the process (`pid`): during a rolling restart two
/// processes share the port, and `cargo xtask restart` waits for the new one.
pub async fn ready(
    State((service, readiness)): State<(&'static str, Readiness)>,
) -> Result<Response, Problem> {
    readiness.check().await?;
    Ok(
        Json(json!({"status": "ready", "service": service, "pid": std::process::id()}))
            .into_response(),
    )
}
