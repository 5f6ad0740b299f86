//! A request whose Idempotency-Key belongs to an attempt still in flight
//! (what the gateway's re-sent POST finds when the replica of the first
//! attempt died mid-order): it waits, within its own budget, for that
//! attempt's outcome and answers it; when the budget runs out or the first
//! attempt's driver is gone, 503 with `Retry-After`. Never a 409.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// Stores what a first attempt leaves behind before its outcome: the order,
/// pending and leased for `lease_secs` from now (negative: lapsed), and its key.
async fn first_attempt(db: &PgPool, key: &str, lease_secs: f64) -> Uuid {
    let fingerprint = pedidos::idempotency::fingerprint(&serde_json::from_str(VALID).unwrap());
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO orders (id, customer_id, items, payment_method, payment_token, lease_until) \
         VALUES ($1, 'c-42', '[]', 'card', 'tok_visa', now() + make_interval(secs => $2))",
    )
    .bind(id)
    .bind(lease_secs)
    .execute(db)
    .await
    .unwrap();
    sqlx::query("INSERT INTO idempotency_keys (key, fingerprint, order_id) VALUES ($1, $2, $3)")
        .bind(key)
        .bind(&fingerprint)
        .bind(id)
        .execute(db)
        .await
        .unwrap();
    id
}

fn resent(key: &str, budget_ms: u64) -> axum::http::Request<axum::body::Body> {
    let mut request = post_order(VALID, Some(key));
    request
        .headers_mut()
        .insert("x-deadline-ms", budget_ms.into());
    request
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn a_resent_request_answers_the_first_attempts_outcome(db: PgPool) {
    let router = router(db.clone());
    let id = first_attempt(&db, "resent-1", 3600.0).await;
    let waiting = tokio::spawn({
        let router = router.clone();
        async move { send(&router, resent("resent-1", 5000)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "it waits for the first attempt");
    // The first attempt reaches its outcome (on another replica).
    let body = json!({"id": id.to_string(), "status": "confirmed"});
    sqlx::query(
        "UPDATE idempotency_keys SET response_status = 201, response_body = $2 WHERE order_id = $1",
    )
    .bind(id)
    .bind(&body)
    .execute(&db)
    .await
    .unwrap();
    let reply = waiting.await.unwrap();
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    assert_eq!(reply.body, body);
    assert_eq!(count_orders(&db).await, 1);
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn a_first_attempt_outliving_the_budget_is_503_with_retry_after(db: PgPool) {
    let router = router(db.clone());
    first_attempt(&db, "resent-2", 3600.0).await;
    let response = tower::ServiceExt::oneshot(router, resent("resent-2", 400))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(count_orders(&db).await, 1);
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn a_first_attempt_whose_driver_is_gone_is_503_without_waiting(db: PgPool) {
    let router = router(db.clone());
    first_attempt(&db, "resent-3", -1.0).await;
    // A budget of a minute: answering at once is what shows it did not wait.
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        send(&router, resent("resent-3", 60_000)),
    )
    .await
    .expect("answered without waiting for the budget");
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(reply.body["code"], "idempotency_key_in_flight");
    assert_eq!(count_orders(&db).await, 1);
}
