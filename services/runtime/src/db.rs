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
        .after_release(|conn, _| Box::pin(async move { Ok(released_cleanly(conn)) }))
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

/// A connection comes back to the pool inside a transaction only if
/// something went wrong with the code that held it: it is closed rather than
/// handed to a borrower whose statements would run in a transaction it never
/// opened (and whose COMMIT could commit work it never did).
fn released_cleanly(conn: &mut sqlx::PgConnection) -> bool {
    use sqlx::Connection;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::error!("a connection came back inside a transaction; closing it");
    }
    clean
}

/// Opens a transaction on a pooled connection, in a task of its own.
///
/// Awaiting `pool.begin()` where the caller may be dropped (a client hung
/// up, a caller's timeout fired) is not cancel-safe in sqlx 0.9.0
/// (launchbadge/sqlx#4393): cancelled after BEGIN is sent but before its
/// answer is read, it leaves the session inside a transaction that sqlx does
/// not know of, and the pool hands that session on. In a task of its own,
/// BEGIN always completes; a transaction nobody awaits any more is dropped
/// whole, and so rolled back before its connection serves anyone else.
pub async fn begin(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.begin().await })
        .await
        .unwrap_or(Err(sqlx::Error::WorkerCrashed))
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
