//! The runtime every Loja Veloz service shares: configuration, RFC 9457
//! problems, JSON extractors, admin auth, health and readiness, the database
//! pool, logs, traces and metrics, calls to other services, and serving with
//! graceful shutdown.
//!
//! Every service's `main` is [`launch::config`] followed by
//! [`launch::with_database`] (or [`launch::without_database`] for the
//! gateway): the service passes its name, its flattened
//! [`DatabaseServiceConfig`], its migrations, and a closure that completes the
//! shared [`AppState`] with what only it needs, builds its router and starts
//! its background [`tasks`].
//!
//! SQL runs inside [`db::instrument`] so that traces show it; calls to other
//! services go through [`upstream::Upstream`] so that they carry the trace.

pub mod admission;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod health;
pub mod healthcheck;
pub mod json;
pub mod launch;
pub mod logfmt;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod page;
pub mod problem;
pub mod rules;
pub mod server;
pub mod state;
pub mod tasks;
pub mod telemetry;
pub mod upstream;

pub use auth::{Admin, AdminToken};
pub use config::{CommonConfig, DatabaseConfig, DatabaseServiceConfig, LogFormat};
pub use error::Error;
pub use health::Readiness;
pub use json::{Json, Query};
pub use problem::Problem;
pub use state::AppState;
pub use telemetry::TelemetryGuard;
pub use upstream::{Upstream, UpstreamError};
