//! Every order outcome against real estoque and pagamentos processes, checked
//! afterwards through estoque's and pagamentos' own APIs.

use loja_tests::{Platform, card, order_body};
use serde_json::json;

#[tokio::test]
async fn a_confirmed_order_takes_the_stock_and_charges_once() {
    let p = Platform::start().await.unwrap();
    p.product("CAM-001", 4990, 10).await.unwrap();
    p.product("MEIA-002", 1500, 3).await.unwrap();
    let body = order_body("c-42", &[("CAM-001", 2), ("MEIA-002", 1)], card("tok_visa"));
    let (status, order) = p.order(&body, None).await.unwrap();
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["customer_id"], "c-42");
    assert_eq!(order["items"][0]["unit_price_cents"], 4990);
    assert_eq!(order["items"][1]["unit_price_cents"], 1500);
    assert_eq!(order["total_cents"], 2 * 4990 + 1500);
    assert_eq!(order["payment"]["status"], "approved");
    assert!(order["created_at"].is_string());
    let id = order["id"].as_str().unwrap();

    assert_eq!(p.stock("CAM-001").await.unwrap(), 8);
    assert_eq!(p.stock("MEIA-002").await.unwrap(), 2);
    let payments = p.payments_of(id).await.unwrap();
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0]["status"], "approved");
    assert_eq!(payments[0]["amount_cents"], 2 * 4990 + 1500);
    assert_eq!(payments[0]["id"], order["payment"]["id"]);
    let (status, fetched) = p.get_order(id).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(fetched["status"], "confirmed");
}

#[tokio::test]
async fn a_pix_order_is_confirmed() {
    let p = Platform::start().await.unwrap();
    p.product("PIX-1", 100, 1).await.unwrap();
    let body = order_body("c-1", &[("PIX-1", 1)], json!({"method": "pix"}));
    let (status, order) = p.order(&body, None).await.unwrap();
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["payment"]["method"], "pix");
    assert_eq!(p.stock("PIX-1").await.unwrap(), 0);
}

#[tokio::test]
async fn insufficient_stock_is_409_rejected_with_nothing_held_or_charged() {
    let p = Platform::start().await.unwrap();
    p.product("CAM-001", 4990, 1).await.unwrap();
    let body = order_body("c-42", &[("CAM-001", 2)], card("tok_visa"));
    let (status, problem) = p.order(&body, None).await.unwrap();
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "insufficient_stock");
    assert_eq!(problem["sku"], "CAM-001");
    let id = problem["order_id"].as_str().unwrap();

    assert_eq!(p.stock("CAM-001").await.unwrap(), 1);
    assert!(p.payments_of(id).await.unwrap().is_empty());
    let (_, order) = p.get_order(id).await.unwrap();
    assert_eq!(order["status"], "rejected");
}

#[tokio::test]
async fn an_unknown_sku_is_422_and_the_order_is_stored_rejected() {
    let p = Platform::start().await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    let body = order_body("c-42", &[("CAM-001", 1), ("NOPE-9", 1)], card("tok_visa"));
    let (status, problem) = p.order(&body, None).await.unwrap();
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "unknown_sku");
    assert_eq!(problem["sku"], "NOPE-9");
    let id = problem["order_id"].as_str().unwrap();
    assert_eq!(p.stock("CAM-001").await.unwrap(), 5);
    assert!(p.payments_of(id).await.unwrap().is_empty());
    let (_, order) = p.get_order(id).await.unwrap();
    assert_eq!(order["status"], "rejected");
    assert_eq!(order["failure"]["code"], "unknown_sku");
}

#[tokio::test]
async fn a_declined_card_is_402_and_the_hold_is_released() {
    let p = Platform::start().await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    for (token, reason) in [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_insufficientFunds", "insufficient_funds"),
    ] {
        let body = order_body("c-42", &[("CAM-001", 2)], card(token));
        let (status, problem) = p.order(&body, None).await.unwrap();
        assert_eq!(status, 402, "{problem}");
        assert_eq!(problem["code"], "payment_declined");
        assert_eq!(problem["decline_reason"], reason);
        let id = problem["order_id"].as_str().unwrap();
        let payments = p.payments_of(id).await.unwrap();
        assert_eq!(payments.len(), 1);
        assert_eq!(payments[0]["status"], "declined");
        let (_, order) = p.get_order(id).await.unwrap();
        assert_eq!(order["status"], "payment_declined");
    }
    assert_eq!(p.stock("CAM-001").await.unwrap(), 5);
}

#[tokio::test]
async fn cancel_returns_the_stock_and_refunds_and_is_repeatable() {
    let p = Platform::start().await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    let body = order_body("c-42", &[("CAM-001", 2)], card("tok_visa"));
    let (status, order) = p.order(&body, None).await.unwrap();
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap();
    assert_eq!(p.stock("CAM-001").await.unwrap(), 3);

    let (status, cancelled) = p.cancel(id).await.unwrap();
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["payment"]["status"], "refunded");
    assert_eq!(p.stock("CAM-001").await.unwrap(), 5);
    let payments = p.payments_of(id).await.unwrap();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["status"], "refunded");

    let (status, again) = p.cancel(id).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(again, cancelled);
    assert_eq!(p.stock("CAM-001").await.unwrap(), 5);

    // A rejected order cannot be cancelled.
    let big = order_body("c-42", &[("CAM-001", 50)], card("tok_visa"));
    let (status, problem) = p.order(&big, None).await.unwrap();
    assert_eq!(status, 409);
    let rejected = problem["order_id"].as_str().unwrap();
    let (status, problem) = p.cancel(rejected).await.unwrap();
    assert_eq!(status, 409);
    assert_eq!(problem["code"], "conflict");
}

#[tokio::test]
async fn a_replay_returns_the_first_response_even_after_a_cancel() {
    let p = Platform::start().await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    let body = order_body("c-42", &[("CAM-001", 1)], card("tok_visa"));
    let (status, first) = p.order(&body, Some("replay-1")).await.unwrap();
    assert_eq!(status, 201, "{first}");
    let id = first["id"].as_str().unwrap();
    let (status, _) = p.cancel(id).await.unwrap();
    assert_eq!(status, 200);

    let (status, replay) = p.order(&body, Some("replay-1")).await.unwrap();
    assert_eq!(status, 201);
    assert_eq!(replay, first);
    assert_eq!(p.payments_of(id).await.unwrap().len(), 1);
    assert_eq!(p.stock("CAM-001").await.unwrap(), 5);

    let other = order_body("c-42", &[("CAM-001", 2)], card("tok_visa"));
    let (status, problem) = p.order(&other, Some("replay-1")).await.unwrap();
    assert_eq!(status, 422);
    assert_eq!(problem["code"], "idempotency_key_reused");
}

#[tokio::test]
async fn one_order_is_one_trace_across_the_services() {
    let p = Platform::start().await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let body = order_body("c-42", &[("CAM-001", 1)], card("tok_visa"));
    let r = p
        .http
        .post(format!("{}/api/v1/orders", p.pedidos.url()))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Every hop logs its request line with the trace id it continued.
    for process in [&p.pedidos, &p.estoque, &p.pagamentos] {
        let log = process.log_text();
        assert!(
            log.lines().any(|l| l.contains(trace_id)),
            "{} did not continue the trace:\n{log}",
            process.name
        );
    }
}
