//! The tables behind the saga: idempotency keys (claim, purge), the
//! reconciler's claims, and the reconciler completing a crashed request's key.

mod common;

use std::time::Duration;

use common::*;
use pedidos::reconciler::Reconciler;
use pedidos::{idempotency, repo};
use sqlx::PgPool;
use uuid::Uuid;

async fn insert_order(db: &PgPool, status: &str, age_secs: f64, lease_secs: f64) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO orders (id, customer_id, status, items, payment_method, payment_token, \
             lease_until, created_at, updated_at) \
         VALUES ($1, 'c-1', $2, '[{\"sku\":\"A\",\"quantity\":1,\"unit_price_cents\":null}]', \
             'card', 'tok_visa', now() + make_interval(secs => $4), \
             now() - make_interval(secs => $3), now() - make_interval(secs => $3))",
    )
    .bind(id)
    .bind(status)
    .bind(age_secs)
    .bind(lease_secs)
    .execute(db)
    .await
    .unwrap();
    id
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn a_key_is_owned_once_and_freed_after_its_retention(db: PgPool) {
    let a = insert_order(&db, "failed", 0.0, 0.0).await;
    let b = insert_order(&db, "failed", 0.0, 0.0).await;
    let mut tx = db.begin().await.unwrap();
    assert!(idempotency::claim(&mut tx, "k", "f1", a, 24).await.unwrap());
    tx.commit().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    assert!(!idempotency::claim(&mut tx, "k", "f1", b, 24).await.unwrap());
    tx.rollback().await.unwrap();

    // 25 hours later the key is free again, and the purge removes such keys.
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&db)
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    assert!(idempotency::claim(&mut tx, "k", "f2", b, 24).await.unwrap());
    tx.commit().await.unwrap();
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(idempotency::purge(&db, 24).await.unwrap(), 1);
    assert_eq!(count_keys(&db).await, 0);
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn the_reconciler_claims_only_abandoned_orders_and_each_once(db: PgPool) {
    let fresh = insert_order(&db, "pending", 0.0, -1.0).await;
    let leased = insert_order(&db, "pending", 60.0, 30.0).await;
    let done = insert_order(&db, "confirmed", 60.0, -1.0).await;
    let abandoned = insert_order(&db, "pending", 60.0, -1.0).await;
    let after = Duration::from_secs(5);
    let lease = Duration::from_secs(30);

    let (a, b) = tokio::join!(
        repo::claim_unfinished(&db, after, lease, 10),
        repo::claim_unfinished(&db, after, lease, 10),
    );
    let mut claimed = a.unwrap();
    claimed.extend(b.unwrap());
    assert_eq!(
        claimed,
        vec![abandoned],
        "fresh {fresh}, leased {leased}, done {done}"
    );
    // The claim took a lease: nobody claims it again until the lease lapses.
    assert!(
        repo::claim_unfinished(&db, after, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn the_reconciler_finishes_a_crashed_order_and_completes_its_key(db: PgPool) {
    let id = insert_order(&db, "pending", 60.0, -1.0).await;
    sqlx::query("INSERT INTO idempotency_keys (key, fingerprint, order_id) VALUES ('k', 'f', $1)")
        .bind(id)
        .execute(&db)
        .await
        .unwrap();
    let reconciler = Reconciler {
        saga: saga(db.clone()),
        after: Duration::from_secs(5),
        interval: Duration::from_secs(5),
        idempotency_ttl_hours: 24,
    };
    assert_eq!(reconciler.pass().await.unwrap(), 1);

    let order = repo::get(&db, id).await.unwrap().unwrap();
    assert_eq!(order.status.as_str(), "failed");
    // estoque was unreachable, so whether a hold exists is unknown: it stays to settle.
    assert!(order.compensation_pending);
    let (status, body): (i16, serde_json::Value) = sqlx::query_as(
        "SELECT response_status, response_body FROM idempotency_keys WHERE key = 'k'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(status, 503);
    assert_eq!(body["order_id"], id.to_string());
    assert_eq!(body["code"], "upstream_unavailable");
}
