//! Releases reservations that stayed held past their deadline. Every replica
//! runs it; `FOR UPDATE SKIP LOCKED` lets them share the work without ever
//! releasing one reservation twice.

use std::time::Duration;

use loja_runtime::{db, tasks};
use sqlx::PgPool;
use uuid::Uuid;

use crate::Error;
use crate::reservations::{Status, return_units, set_status};

/// Most reservations released in one transaction.
const BATCH: i64 = 100;

/// Releases every expired held reservation, batch by batch; returns how many.
pub async fn sweep(pool: &PgPool) -> Result<u64, Error> {
    let mut released = 0;
    loop {
        let n = sweep_batch(pool).await?;
        released += n;
        if n < BATCH as u64 {
            return Ok(released);
        }
    }
}

async fn sweep_batch(pool: &PgPool) -> Result<u64, Error> {
    let mut tx = db::begin(pool).await?;
    const EXPIRED: &str = "SELECT order_id FROM reservations
         WHERE status = 'held' AND expires_at <= now()
         ORDER BY expires_at LIMIT $1
         FOR UPDATE SKIP LOCKED";
    // Rows another replica is releasing right now are skipped, not waited for.
    let expired: Vec<Uuid> = db::instrument(
        EXPIRED,
        sqlx::query_scalar(EXPIRED).bind(BATCH).fetch_all(&mut *tx),
    )
    .await?;
    if expired.is_empty() {
        return Ok(0);
    }
    return_units(&mut tx, &expired).await?;
    set_status(&mut tx, &expired, Status::Released).await?;
    tx.commit().await?;
    tracing::info!(released = expired.len(), "released expired reservations");
    Ok(expired.len() as u64)
}

/// Sweeps every `interval` until `stop` completes. A failed pass (the
/// database is down) is logged and retried on the next tick; a pass cut short
/// by `stop` rolls its batch back, for the next sweep to release.
pub async fn run(pool: PgPool, interval: Duration, stop: impl Future<Output = ()>) {
    let pool = &pool;
    tasks::every(interval, stop, move || async move {
        if let Err(err) = sweep(pool).await {
            tracing::warn!(error = %err, "reservation sweep failed");
        }
    })
    .await;
}
