//! A write whose caller gives up half-way leaves nothing behind: no pooled
//! session is ever handed on inside a transaction it did not open.

use std::time::Duration;

use loja_runtime::db;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// Cancels `begin` after each of a sweep of delays on a pool of one
/// connection, and counts the times the next borrower found itself inside a
/// transaction (a `SAVEPOINT` only succeeds in one).
async fn leaks<F, Fut>(pool: &PgPool, begin: F) -> usize
where
    F: Fn(PgPool) -> Fut,
    Fut: Future<Output = Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error>>,
{
    let mut leaked = 0;
    for micros in (0..3000).step_by(10) {
        let attempt = tokio::time::timeout(Duration::from_micros(micros), begin(pool.clone()));
        if let Ok(Ok(tx)) = attempt.await {
            tx.rollback().await.unwrap();
        }
        let mut conn = pool.acquire().await.unwrap();
        if sqlx::query("SAVEPOINT probe")
            .execute(&mut *conn)
            .await
            .is_ok()
        {
            leaked += 1;
            sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
        }
    }
    leaked
}

async fn one_connection(pool: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .connect_with(pool.connect_options().as_ref().clone())
        .await
        .unwrap()
}

#[sqlx::test]
async fn a_begin_dropped_half_way_never_hands_on_a_transaction(pool: PgPool) {
    let single = one_connection(&pool).await;
    assert_eq!(
        leaks(&single, |p| async move { db::begin(&p).await }).await,
        0
    );
}

/// The defect [`db::begin`] works around, shown on the same sweep: when this
/// fails, sqlx has fixed it (launchbadge/sqlx#4393) and the workaround can go.
/// It hits the window by timing, so on a busy machine a sweep can miss it:
/// run it on purpose (nextest's `--run-ignored only`, with `DATABASE_URL`), not
/// in every suite run.
#[sqlx::test]
#[ignore = "times a race in sqlx itself; run on purpose"]
async fn a_plain_begin_dropped_half_way_hands_on_a_transaction(pool: PgPool) {
    let single = one_connection(&pool).await;
    assert!(leaks(&single, |p| async move { p.begin().await }).await > 0);
}
