//! The caller's time budget across real processes: a request whose budget
//! is spent does no work, and what is left of a budget travels with every
//! internal call, so a callee never starts what its caller gave up on.

use loja_tests::{Platform, card, order_body};
use serde_json::{Value, json};

/// A platform with 10 `CAM-001` in stock, and the answer to an order of 2
/// sent straight to pedidos with `budget_ms` of budget.
async fn ordered_with_budget(budget_ms: &str) -> (Platform, u16, Value) {
    let p = Platform::start().await.unwrap();
    p.product("CAM-001", 4990, 10).await.unwrap();
    let body = order_body("c-42", &[("CAM-001", 2)], card("tok_visa"));
    let r = p
        .http
        .post(format!("{}/api/v1/orders", p.pedidos.url()))
        .header("x-deadline-ms", budget_ms)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let answer = r.json().await.unwrap();
    (p, status, answer)
}

#[tokio::test]
async fn a_spent_budget_places_no_order_and_holds_no_stock() {
    let (p, status, problem) = ordered_with_budget("0").await;
    assert_eq!(status, 504, "{problem}");
    assert_eq!(problem["code"], "upstream_timeout");
    let db = p.pedidos_db().await.unwrap();
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(orders, 0, "no order row");

    // Nor does estoque hold stock for a caller that gave up.
    let order_id = "018f0000-0000-7000-8000-000000000001".to_owned();
    let r = p
        .http
        .post(format!("{}/internal/reservations", p.estoque.url()))
        .header("x-deadline-ms", "0")
        .json(&json!({"order_id": order_id, "items": [{"sku": "CAM-001", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 504);
    assert_eq!(p.reservation(&order_id).await.unwrap(), None);
    assert_eq!(p.stock("CAM-001").await.unwrap(), 10);
}

#[tokio::test]
async fn a_budget_spent_inside_pedidos_reaches_no_reservation() {
    // One millisecond: admitted, but spent by the time pedidos has stored
    // the order, so the reservation is never sent (or, sent with what is
    // left, refused by estoque before any work).
    let (p, status, order) = ordered_with_budget("1").await;
    assert_eq!(status, 504, "{order}");
    assert_eq!(order["code"], "upstream_timeout");
    let id = order["order_id"].as_str().unwrap();
    assert_eq!(p.reservation(id).await.unwrap(), None, "no reservation");
    assert!(p.payments_of(id).await.unwrap().is_empty(), "no charge");
    assert_eq!(p.stock("CAM-001").await.unwrap(), 10);
}
