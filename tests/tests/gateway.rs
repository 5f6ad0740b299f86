//! The platform as clients see it: everything through the api-gateway.

use loja_tests::{ADMIN_TOKEN, Platform, card, order_body};
use serde_json::{Value, json};

#[tokio::test]
async fn an_order_through_the_gateway_is_one_trace_and_internal_paths_stay_hidden() {
    let p = Platform::start().await.unwrap();
    let gateway = p.gateway().await.unwrap();
    let base = gateway.url();

    let created = p
        .http
        .post(format!("{base}/api/v1/products"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"sku": "CAM-001", "name": "Camiseta", "price_cents": 4990, "stock": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let response = p
        .http
        .post(format!("{base}/api/v1/orders"))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .header("idempotency-key", "gw-1")
        .json(&order_body("c-42", &[("CAM-001", 2)], card("tok_visa")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(response.headers().contains_key("x-request-id"));
    let order: Value = response.json().await.unwrap();
    let id = order["id"].as_str().unwrap();

    let fetched: Value = p
        .http
        .get(format!("{base}/api/v1/orders/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["status"], "confirmed");
    let payment: Value = p
        .http
        .get(format!("{base}/api/v1/payments?order_id={id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(payment["items"][0]["status"], "approved");

    // The internal endpoints pedidos uses are not reachable from outside.
    for path in [
        format!("/internal/reservations/{id}"),
        "/internal/payments".to_owned(),
        "/api/v1/orders/../../internal/payments".to_owned(),
    ] {
        let r = p.http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }

    // gateway → pedidos → estoque and pagamentos: one trace.
    for process in [&gateway, &p.pedidos, &p.estoque, &p.pagamentos] {
        assert!(
            process.log_text().lines().any(|l| l.contains(trace_id)),
            "{} did not continue the trace",
            process.name
        );
    }
}
