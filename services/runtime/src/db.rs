//! The PostgreSQL pool of a service: connect, migrate, and survive restarts.

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::config::DatabaseConfig;

/// Opens the pool and applies the service's embedded migrations. A database
/// that is still starting is waited for (up to `wait`), so replicas that start
/// together with PostgreSQL do not crash-loop. Once running, the pool
/// reconnects by itself after a database restart; requests made meanwhile fail
/// with 503 (see [`crate::problem::from_sqlx`]).
pub async fn connect(
    config: &DatabaseConfig,
    migrator: &Migrator,
    wait: Duration,
) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = config
        .database_url
        .parse()
        .context("DATABASE_URL is not a valid postgres:// URL")?;
    let pool = PgPoolOptions::new()
        .max_connections(config.db_max_connections)
        .acquire_timeout(Duration::from_millis(config.db_acquire_timeout_ms))
        // A connection that died with a restarted server is noticed before use.
        .test_before_acquire(true)
        .connect_lazy_with(options);

    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match migrator.run(&pool).await {
            Ok(()) => return Ok(pool),
            Err(err) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %err, "database not ready, retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(err) => return Err(err).context("applying database migrations"),
        }
    }
}

/// The span one SQL statement runs in: a child of the current (request)
/// span named after the statement's operation (`SELECT`, `INSERT`, ...),
/// carrying the statement text with its `$1` placeholders (never the bound
/// values) as `db.query.text`.
pub fn span(statement: &str) -> tracing::Span {
    let operation = statement
        .split_whitespace()
        .next()
        .unwrap_or("SQL")
        .to_ascii_uppercase();
    tracing::info_span!(
        "db.query",
        otel.name = %operation,
        otel.kind = "client",
        db.system.name = "postgresql",
        db.operation.name = %operation,
        db.query.text = statement,
    )
}

/// Runs one database call as a child span (see [`span`]), the convention
/// every service follows so that a trace shows its SQL:
///
/// ```text
/// const FIND: &str = "SELECT sku, name FROM products WHERE sku = $1";
/// let row = db::instrument(FIND, sqlx::query_as(FIND).bind(&sku).fetch_optional(&pool)).await?;
/// ```
pub fn instrument<F: std::future::IntoFuture>(
    statement: &str,
    call: F,
) -> tracing::instrument::Instrumented<F::IntoFuture> {
    tracing::Instrument::instrument(call.into_future(), span(statement))
}
