//! A database restart while the service runs: requests fail with 503 problems
//! during the outage and succeed again afterwards, with the same app and pool.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{Client, state};
use estoque::MIGRATOR;
use loja_runtime::{DatabaseConfig, db};
use loja_testkit::pg::TempCluster;
use serde_json::{Value, json};
use uuid::Uuid;

fn new_product(sku: &str) -> Value {
    json!({"sku": sku, "name": "Restart", "price_cents": 100, "stock": 5})
}

fn reserve(sku: &str) -> Value {
    json!({"order_id": Uuid::now_v7(), "items": [{"sku": sku, "quantity": 1}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_gives_503_then_heals_by_itself() {
    let cluster = TempCluster::start().unwrap();
    let config = DatabaseConfig {
        database_url: cluster.url("postgres"),
        db_max_connections: 4,
        db_acquire_timeout_ms: 500,
    };
    let pool = db::connect(&config, &MIGRATOR, Duration::from_secs(30))
        .await
        .unwrap();
    let c = Client::with_state(state(pool));
    c.product("DB-1", 100, 5).await;
    let (status, _) = c
        .internal("/internal/reservations", Some(reserve("DB-1")))
        .await;
    assert_eq!(status, StatusCode::CREATED);

    tokio::task::block_in_place(|| cluster.stop().unwrap());

    let outage = [
        c.get("/api/v1/products/DB-1").await,
        c.get("/api/v1/products").await,
        c.admin(Method::POST, "/api/v1/products", new_product("DB-2"))
            .await,
        c.internal("/internal/reservations", Some(reserve("DB-1")))
            .await,
        c.get("/ready").await,
    ];
    for (status, body) in outage {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "upstream_unavailable", "{body}");
    }
    assert_eq!(
        c.get("/health").await.0,
        StatusCode::OK,
        "liveness ignores the database"
    );

    tokio::task::block_in_place(|| cluster.start().unwrap());

    // The pool notices dead connections and reconnects; give it a few tries.
    let mut healed = false;
    for _ in 0..100 {
        let (status, body) = c.get("/api/v1/products/DB-1").await;
        if status == StatusCode::OK {
            healed = true;
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        healed,
        "the service never recovered after the database came back"
    );
    assert_eq!(c.stock("DB-1").await, 4, "the hold survived the restart");
    let (status, body) = c
        .admin(Method::POST, "/api/v1/products", new_product("DB-2"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = c
        .internal("/internal/reservations", Some(reserve("DB-1")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(c.get("/ready").await.0, StatusCode::OK);
}
