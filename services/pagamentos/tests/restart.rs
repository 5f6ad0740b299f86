//! A database restart while the service runs: requests fail with 503 problems
//! during the outage and succeed again afterwards, with the same app and pool.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::{Client, charge, state};
use loja_runtime::{DatabaseConfig, db};
use loja_testkit::pg::TempCluster;
use pagamentos::{MIGRATOR, app};
use uuid::Uuid;

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
    let c = Client::new(app(state(pool)));
    let (status, paid) = c
        .internal(
            "/internal/payments",
            Some(charge(&Uuid::now_v7().to_string(), 100, "pix", None)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let payment_uri = format!("/api/v1/payments/{}", paid["id"].as_str().unwrap());

    tokio::task::block_in_place(|| cluster.stop().unwrap());

    let outage = [
        c.get(&payment_uri).await,
        c.internal(
            "/internal/payments",
            Some(charge(&Uuid::now_v7().to_string(), 1, "pix", None)),
        )
        .await,
        c.internal(
            &format!("/internal/payments/{}/refund", paid["id"].as_str().unwrap()),
            None,
        )
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
    let mut healed = None;
    for _ in 0..100 {
        let (status, body) = c.get(&payment_uri).await;
        if status == StatusCode::OK {
            healed = Some(body);
            break;
        }
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(healed.expect("the service never recovered"), paid);
    let (status, body) = c
        .internal(
            "/internal/payments",
            Some(charge(&Uuid::now_v7().to_string(), 1, "pix", None)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(c.get("/ready").await.0, StatusCode::OK);
}
