//! Internal reservations: all-or-nothing holds, idempotent retries, commit and
//! release in every state, the TTL sweeper, and every validation rule.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Client, assert_ledger_balances, snapshot, state_with_ttl};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

fn order() -> String {
    Uuid::now_v7().to_string()
}

fn reservation(order_id: &str, items: &[(&str, i64)]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(sku, q)| json!({"sku": sku, "quantity": q}))
        .collect();
    json!({"order_id": order_id, "items": items})
}

async fn catalog(c: &Client) {
    c.product("CAM-001", 4990, 10).await;
    c.product("CAL-002", 12990, 3).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn reserve_holds_stock_and_prices_each_item(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    catalog(&c).await;
    let id = order();
    let (status, body) = c
        .internal(
            "/internal/reservations",
            Some(reservation(&id, &[("CAM-001", 2), ("CAL-002", 3)])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["order_id"], id.as_str());
    assert_eq!(body["status"], "held");
    assert_eq!(
        body["items"],
        json!([
            {"sku": "CAL-002", "quantity": 3, "unit_price_cents": 12990},
            {"sku": "CAM-001", "quantity": 2, "unit_price_cents": 4990},
        ])
    );
    assert_eq!(body["total_cents"], 3 * 12990 + 2 * 4990);
    assert_eq!(c.stock("CAM-001").await, 8);
    assert_eq!(c.stock("CAL-002").await, 0);

    let (status, fetched) = c.get(&format!("/internal/reservations/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, body);
    assert_ledger_balances(&pool).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn a_retry_returns_the_same_reservation_and_holds_nothing_more(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    catalog(&c).await;
    let id = order();
    let body = reservation(&id, &[("CAM-001", 2)]);
    let (first_status, first) = c
        .internal("/internal/reservations", Some(body.clone()))
        .await;
    assert_eq!(first_status, StatusCode::CREATED);
    // A price change after the hold does not reprice the reservation.
    c.admin(
        Method::PATCH,
        "/api/v1/products/CAM-001",
        json!({"price_cents": 1}),
    )
    .await;
    let (status, again) = c.internal("/internal/reservations", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, first);
    assert_eq!(c.stock("CAM-001").await, 8);
}

#[sqlx::test(migrations = "./migrations")]
async fn a_retry_with_other_items_is_a_conflict(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    catalog(&c).await;
    let id = order();
    c.internal(
        "/internal/reservations",
        Some(reservation(&id, &[("CAM-001", 2)])),
    )
    .await;
    let before = snapshot(&pool).await;
    for items in [&[("CAM-001", 3)][..], &[("CAM-001", 2), ("CAL-002", 1)][..]] {
        let (status, body) = c
            .internal("/internal/reservations", Some(reservation(&id, items)))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "conflict");
    }
    assert_eq!(snapshot(&pool).await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn insufficient_stock_names_the_sku_and_holds_nothing(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    catalog(&c).await;
    let before = snapshot(&pool).await;
    let id = order();
    // CAL-002 sorts first and is held before CAM-001 fails: it must be undone.
    let (status, body) = c
        .internal(
            "/internal/reservations",
            Some(reservation(&id, &[("CAM-001", 11), ("CAL-002", 1)])),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "insufficient_stock");
    assert_eq!(body["sku"], "CAM-001");
    assert_eq!(body["requested"], 11);
    assert_eq!(body["available"], 10);
    assert!(body["detail"].as_str().unwrap().contains("CAM-001"));
    assert!(body.get("order_id").is_none());
    assert_eq!(snapshot(&pool).await, before);

    // Nothing was stored for the order, so a later attempt can still succeed.
    let (status, _) = c
        .internal(
            "/internal/reservations",
            Some(reservation(&id, &[("CAM-001", 10)])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(c.stock("CAM-001").await, 0);
}

#[sqlx::test(migrations = "./migrations")]
async fn unknown_sku_is_422_and_holds_nothing(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    catalog(&c).await;
    let before = snapshot(&pool).await;
    let (status, body) = c
        .internal(
            "/internal/reservations",
            Some(reservation(
                &order(),
                &[("CAM-001", 1), ("NOPE-1", 1), ("CAL-002", 99)],
            )),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "unknown_sku");
    assert_eq!(body["sku"], "NOPE-1");
    assert_eq!(snapshot(&pool).await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn reserve_rejects_every_invalid_body(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    catalog(&c).await;
    let id = order();
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"sku": format!("S{i}"), "quantity": 1}))
        .collect();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"items": [{"sku": "CAM-001", "quantity": 1}]}),
            "order_id",
        ),
        (
            json!({"order_id": "order-1", "items": [{"sku": "CAM-001", "quantity": 1}]}),
            "order_id",
        ),
        (json!({"order_id": id}), "items"),
        (json!({"order_id": id, "items": []}), "items"),
        (json!({"order_id": id, "items": many}), "items"),
        (
            json!({"order_id": id, "items": [{"sku": "CAM-001"}]}),
            "items[0]",
        ),
        (
            json!({"order_id": id, "items": [{"sku": "CAM-001", "quantity": 0}]}),
            "items[0].quantity",
        ),
        (
            json!({"order_id": id, "items": [{"sku": "CAM-001", "quantity": -1}]}),
            "items[0].quantity",
        ),
        (
            json!({"order_id": id, "items": [{"sku": "CAM-001", "quantity": 1001}]}),
            "items[0].quantity",
        ),
        (
            json!({"order_id": id, "items": [{"sku": "CAM-001", "quantity": 1.5}]}),
            "items[0].quantity",
        ),
        (
            json!({"order_id": id, "items": [{"sku": "CAM-001", "quantity": "1"}]}),
            "items[0].quantity",
        ),
        (
            json!({"order_id": id, "items": [{"sku": "bad sku", "quantity": 1}]}),
            "items[0].sku",
        ),
        (
            json!({"order_id": id, "items": [{"sku": "CAM-001", "quantity": 1}, {"sku": "CAM-001", "quantity": 1}]}),
            "items[1].sku",
        ),
        (
            json!({"order_id": id, "items": [{"sku": "CAM-001", "quantity": 1, "unit_price_cents": 1}]}),
            "unit_price_cents",
        ),
        (
            json!({"order_id": id, "items": [{"sku": "CAM-001", "quantity": 1}], "total": 1}),
            "total",
        ),
    ];
    let before = snapshot(&pool).await;
    for (body, field) in cases {
        let (status, problem) = c
            .internal("/internal/reservations", Some(body.clone()))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert_eq!(problem["code"], "validation_failed", "{body}");
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{body}: should name {field}: {problem}"
        );
    }
    let request = Request::builder()
        .method(Method::POST)
        .uri("/internal/reservations")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"order_id\":"))
        .unwrap();
    let (status, problem) = c.raw(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "validation_failed");
    assert_eq!(snapshot(&pool).await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn commit_is_final_and_idempotent(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    catalog(&c).await;
    let id = order();
    c.internal(
        "/internal/reservations",
        Some(reservation(&id, &[("CAM-001", 4)])),
    )
    .await;
    for _ in 0..2 {
        let (status, body) = c
            .internal(&format!("/internal/reservations/{id}/commit"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "committed");
        assert_eq!(c.stock("CAM-001").await, 6);
    }
    assert_ledger_balances(&pool).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn release_returns_the_units_once(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    catalog(&c).await;
    let id = order();
    c.internal(
        "/internal/reservations",
        Some(reservation(&id, &[("CAM-001", 4), ("CAL-002", 1)])),
    )
    .await;
    assert_eq!(c.stock("CAM-001").await, 6);
    for _ in 0..2 {
        let (status, body) = c
            .internal(&format!("/internal/reservations/{id}/release"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "released");
        assert_eq!(c.stock("CAM-001").await, 10);
        assert_eq!(c.stock("CAL-002").await, 3);
    }
    assert_ledger_balances(&pool).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn commit_after_release_is_a_conflict(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    catalog(&c).await;
    let id = order();
    c.internal(
        "/internal/reservations",
        Some(reservation(&id, &[("CAM-001", 4)])),
    )
    .await;
    c.internal(&format!("/internal/reservations/{id}/release"), None)
        .await;
    let before = snapshot(&pool).await;
    let (status, body) = c
        .internal(&format!("/internal/reservations/{id}/commit"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "conflict");
    assert_eq!(snapshot(&pool).await, before);
}

#[sqlx::test(migrations = "./migrations")]
async fn release_after_commit_returns_the_sold_units(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    catalog(&c).await;
    let id = order();
    c.internal(
        "/internal/reservations",
        Some(reservation(&id, &[("CAM-001", 4)])),
    )
    .await;
    c.internal(&format!("/internal/reservations/{id}/commit"), None)
        .await;
    assert_eq!(c.stock("CAM-001").await, 6);
    // This is how a cancelled order gives its units back.
    let (status, body) = c
        .internal(&format!("/internal/reservations/{id}/release"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "released");
    assert_eq!(c.stock("CAM-001").await, 10);
    assert_ledger_balances(&pool).await;
}

#[sqlx::test(migrations = "./migrations")]
async fn unknown_reservations_are_404(pool: PgPool) {
    let c = Client::estoque(pool.clone());
    for uri in [
        format!("/internal/reservations/{}", order()),
        "/internal/reservations/not-a-uuid".to_string(),
    ] {
        assert_eq!(c.get(&uri).await.1["code"], "not_found");
        for action in ["commit", "release"] {
            let (status, body) = c.internal(&format!("{uri}/{action}"), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}/{action}");
            assert_eq!(body["code"], "not_found");
        }
    }
}

#[sqlx::test(migrations = "./migrations")]
async fn the_sweeper_releases_only_expired_holds(pool: PgPool) {
    let short = Client::with_state(state_with_ttl(pool.clone(), Duration::ZERO));
    let long = Client::estoque(pool.clone());
    catalog(&long).await;
    let (expired, committed, fresh) = (order(), order(), order());
    for (c, id) in [(&short, &expired), (&short, &committed), (&long, &fresh)] {
        let (status, _) = c
            .internal(
                "/internal/reservations",
                Some(reservation(id, &[("CAM-001", 2)])),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    short
        .internal(&format!("/internal/reservations/{committed}/commit"), None)
        .await;
    assert_eq!(long.stock("CAM-001").await, 4);

    assert_eq!(estoque::sweeper::sweep(&pool).await.unwrap(), 1);
    assert_eq!(long.stock("CAM-001").await, 6);
    let (_, body) = long.get(&format!("/internal/reservations/{expired}")).await;
    assert_eq!(body["status"], "released");
    let (_, body) = long
        .get(&format!("/internal/reservations/{committed}"))
        .await;
    assert_eq!(body["status"], "committed");
    let (_, body) = long.get(&format!("/internal/reservations/{fresh}")).await;
    assert_eq!(body["status"], "held");

    // A second pass finds nothing left to do.
    assert_eq!(estoque::sweeper::sweep(&pool).await.unwrap(), 0);
    assert_eq!(long.stock("CAM-001").await, 6);
    assert_ledger_balances(&pool).await;

    // The expired order cannot be committed any more.
    let (status, _) = long
        .internal(&format!("/internal/reservations/{expired}/commit"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}
