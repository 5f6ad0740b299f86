//! Charges and refunds under real concurrency: many tasks on a multi-thread
//! runtime call several replicas (each with its own pool) of one database.

mod common;

use axum::http::StatusCode;
use common::{Client, charge, state};
use loja_testkit::db::TestDb;
use pagamentos::{MIGRATOR, app};
use tokio::task::JoinSet;
use uuid::Uuid;

async fn replicas(db: &TestDb) -> Vec<Client> {
    let mut clients = vec![Client::new(app(state(db.pool.clone())))];
    for _ in 0..3 {
        clients.push(Client::new(app(state(db.replica_pool(8).await))));
    }
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_for_one_order_charge_once() {
    let db = TestDb::create(&MIGRATOR, 8).await;
    let clients = replicas(&db).await;
    let mut orders = Vec::new();
    let mut tasks = JoinSet::new();
    for o in 0..5 {
        let order_id = Uuid::now_v7().to_string();
        orders.push(order_id.clone());
        let token = if o % 2 == 0 {
            "tok_visa"
        } else {
            "tok_chargeDeclined"
        };
        for i in 0..40usize {
            let c = clients[i % clients.len()].clone();
            let body = charge(&order_id, 2500, "card", Some(token));
            tasks.spawn(async move { c.internal("/internal/payments", Some(body)).await });
        }
    }
    let mut ids = std::collections::HashMap::new();
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let order = body["order_id"].as_str().unwrap().to_string();
        let id = body["id"].as_str().unwrap().to_string();
        let first = ids.entry(order).or_insert_with(|| id.clone());
        assert_eq!(*first, id, "every retry of an order sees one payment");
    }
    for order_id in &orders {
        let count: i64 =
            sqlx::query_scalar("SELECT count(*) FROM payments WHERE order_id = $1::uuid")
                .bind(order_id)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!(count, 1, "{order_id}");
    }
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refunds_refund_once() {
    let db = TestDb::create(&MIGRATOR, 8).await;
    let clients = replicas(&db).await;
    let (_, paid) = clients[0]
        .internal(
            "/internal/payments",
            Some(charge(&Uuid::now_v7().to_string(), 700, "pix", None)),
        )
        .await;
    let uri = format!("/internal/payments/{}/refund", paid["id"].as_str().unwrap());
    let mut tasks = JoinSet::new();
    for i in 0..40usize {
        let c = clients[i % clients.len()].clone();
        let uri = uri.clone();
        tasks.spawn(async move { c.internal(&uri, None).await });
    }
    let mut refunded_at = None;
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "refunded");
        let at = body["refunded_at"].as_str().unwrap().to_string();
        assert_eq!(
            refunded_at.get_or_insert(at.clone()),
            &at,
            "one refund, seen by all"
        );
    }
    db.drop_database().await;
}
