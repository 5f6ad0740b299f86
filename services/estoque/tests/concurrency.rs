//! Stock under real concurrency: many tasks on a multi-thread runtime call
//! several replicas (each with its own pool) sharing one database.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{Client, assert_ledger_balances, ledger, state, state_with_ttl};
use estoque::MIGRATOR;
use loja_testkit::db::TestDb;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use uuid::Uuid;

/// Four replicas of estoque on one fresh database.
async fn replicas(db: &TestDb, ttl: Duration) -> Vec<Client> {
    let mut clients = vec![Client::with_state(state_with_ttl(db.pool.clone(), ttl))];
    for _ in 0..3 {
        let pool = db.replica_pool(8).await;
        clients.push(Client::with_state(state_with_ttl(pool, ttl)));
    }
    clients
}

fn reservation(order_id: Uuid, items: &[(&str, i64)]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(sku, q)| json!({"sku": sku, "quantity": q}))
        .collect();
    json!({"order_id": order_id, "items": items})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_concurrent_reservations_never_oversell() {
    let db = TestDb::create(&MIGRATOR, 8).await;
    let clients = replicas(&db, Duration::from_secs(300)).await;
    clients[0].product("HOT-A", 100, 40).await;
    clients[0].product("HOT-B", 250, 25).await;

    let mut tasks = JoinSet::new();
    for i in 0..400usize {
        let c = clients[i % clients.len()].clone();
        tasks.spawn(async move {
            let id = Uuid::now_v7();
            // Items in both orders: the service must lock in sku order anyway.
            let items: &[(&str, i64)] = match i % 3 {
                0 => &[("HOT-A", 1)],
                1 => &[("HOT-B", 2)],
                _ => &[("HOT-B", 1), ("HOT-A", 2)],
            };
            let (status, body) = c
                .internal("/internal/reservations", Some(reservation(id, items)))
                .await;
            match status {
                StatusCode::CREATED => {}
                StatusCode::CONFLICT => {
                    assert_eq!(body["code"], "insufficient_stock", "{body}");
                    return false;
                }
                other => panic!("unexpected {other}: {body}"),
            }
            // Some orders are committed, some released, some raced both ways.
            let actions: &[&str] = match i % 4 {
                0 => &["release"],
                1 => &["commit"],
                2 => &["commit", "release", "commit"],
                _ => &[],
            };
            let mut racers = JoinSet::new();
            for action in actions {
                let c = c.clone();
                let uri = format!("/internal/reservations/{id}/{action}");
                racers.spawn(async move { c.internal(&uri, None).await });
            }
            while let Some(done) = racers.join_next().await {
                let (status, body) = done.unwrap();
                assert!(
                    status == StatusCode::OK || status == StatusCode::CONFLICT,
                    "{status}: {body}"
                );
            }
            true
        });
    }
    let (mut held, mut refused) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        if done.unwrap() {
            held += 1;
        } else {
            refused += 1;
        }
    }
    assert!(held > 0 && refused > 0, "held {held}, refused {refused}");

    assert_ledger_balances(&db.pool).await;
    // Release whatever is still held: then sold + available = received.
    let still_held: Vec<Uuid> =
        sqlx::query_scalar("SELECT order_id FROM reservations WHERE status = 'held'")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    for id in still_held {
        let (status, _) = clients[1]
            .internal(&format!("/internal/reservations/{id}/release"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    for (sku, received, available, held, sold) in ledger(&db.pool).await {
        assert_eq!(held, 0, "{sku}");
        assert_eq!(sold + available, received, "{sku}");
        assert_eq!(clients[2].stock(&sku).await, available);
    }
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_restocks_and_reservations_lose_nothing() {
    let db = TestDb::create(&MIGRATOR, 8).await;
    let clients = replicas(&db, Duration::from_secs(300)).await;
    clients[0].product("R-1", 100, 5).await;

    let mut tasks = JoinSet::new();
    for i in 0..300i64 {
        let c = clients[i as usize % clients.len()].clone();
        tasks.spawn(async move {
            if i % 2 == 0 {
                let quantity = i % 5 + 1;
                let (status, body) = c
                    .admin(
                        Method::POST,
                        "/api/v1/products/R-1/restock",
                        json!({"quantity": quantity}),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK, "{body}");
                (quantity, 0)
            } else {
                let order = reservation(Uuid::now_v7(), &[("R-1", 3)]);
                let (status, body) = c.internal("/internal/reservations", Some(order)).await;
                match status {
                    StatusCode::CREATED => (0, 3),
                    StatusCode::CONFLICT => (0, 0),
                    other => panic!("unexpected {other}: {body}"),
                }
            }
        });
    }
    let (mut restocked, mut reserved) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (r, h) = done.unwrap();
        restocked += r;
        reserved += h;
    }
    let expected: i64 = (0..300i64).filter(|i| i % 2 == 0).map(|i| i % 5 + 1).sum();
    assert_eq!(restocked, expected);
    let rows = ledger(&db.pool).await;
    let (_, received, available, held, sold) = rows[0].clone();
    assert_eq!(received, 5 + expected);
    assert_eq!(held, reserved);
    assert_eq!(sold, 0);
    assert_eq!(available, received - reserved);
    assert_eq!(clients[3].stock("R-1").await, available);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_one_order_hold_once() {
    let db = TestDb::create(&MIGRATOR, 8).await;
    let clients = replicas(&db, Duration::from_secs(300)).await;
    clients[0].product("ONE", 990, 10).await;
    let order = reservation(Uuid::now_v7(), &[("ONE", 3)]);

    let mut tasks = JoinSet::new();
    for i in 0..50usize {
        let c = clients[i % clients.len()].clone();
        let order = order.clone();
        tasks.spawn(async move { c.internal("/internal/reservations", Some(order)).await });
    }
    let mut bodies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        bodies.push(body);
    }
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "every retry sees one reservation"
    );
    assert_eq!(clients[0].stock("ONE").await, 7);
    assert_ledger_balances(&db.pool).await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweepers_on_every_replica_release_each_hold_once() {
    let db = TestDb::create(&MIGRATOR, 8).await;
    let expiring = Client::with_state(state_with_ttl(db.pool.clone(), Duration::ZERO));
    expiring.product("EXP", 100, 500).await;
    for _ in 0..250 {
        let (status, _) = expiring
            .internal(
                "/internal/reservations",
                Some(reservation(Uuid::now_v7(), &[("EXP", 2)])),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(expiring.stock("EXP").await, 0);

    let mut sweepers = JoinSet::new();
    for _ in 0..4 {
        let pool = db.replica_pool(4).await;
        sweepers.spawn(async move { estoque::sweeper::sweep(&pool).await.unwrap() });
    }
    let mut released = 0;
    while let Some(done) = sweepers.join_next().await {
        released += done.unwrap();
    }
    assert_eq!(released, 250);
    let c = Client::with_state(state(db.pool.clone()));
    assert_eq!(c.stock("EXP").await, 500);
    assert_ledger_balances(&db.pool).await;
    db.drop_database().await;
}
