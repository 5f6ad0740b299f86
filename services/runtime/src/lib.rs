//! The runtime every Loja Veloz service shares: configuration, RFC 9457
//! problems, JSON extractors, admin auth, health and readiness, the database
//! pool, logs, traces and metrics, calls to other services, and serving with
//! graceful shutdown.
//!
//! Every service's `main` has the same shape:
//!
//! ```text
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     loja_runtime::healthcheck::exit_if_requested(); // `estoque healthcheck` in compose
//!     let config = Config::parse();                    // CommonConfig flattened inside
//!     let telemetry = loja_runtime::telemetry::init(SERVICE, &config.common)?;
//!     let pool = loja_runtime::db::connect(&config.db, &MIGRATOR, Duration::from_secs(60)).await?;
//!     let readiness = Readiness::new(Some(pool.clone()));
//!     let app = estoque::app(state, readiness.clone()); // server::app(SERVICE, routes, readiness) inside
//!     let result = loja_runtime::server::run(&config.common, app, readiness).await;
//!     telemetry.shutdown().await;                      // flushes queued spans
//!     result
//! }
//! ```
//!
//! SQL runs inside [`db::instrument`] so that traces show it; calls to other
//! services go through [`upstream::Upstream`] so that they carry the trace.

pub mod auth;
pub mod config;
pub mod db;
pub mod health;
pub mod healthcheck;
pub mod json;
pub mod logfmt;
pub mod metrics;
pub mod observe;
pub mod problem;
pub mod server;
pub mod telemetry;
pub mod upstream;

pub use auth::{Admin, AdminToken};
pub use config::{CommonConfig, DatabaseConfig, LogFormat};
pub use health::Readiness;
pub use json::{Json, Query};
pub use problem::Problem;
pub use telemetry::TelemetryGuard;
pub use upstream::{Upstream, UpstreamError};
