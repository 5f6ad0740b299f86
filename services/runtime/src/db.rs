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
