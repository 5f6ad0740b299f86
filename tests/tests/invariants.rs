//! The invariants that must hold under concurrency: stock is never oversold,
//! a customer is never charged twice, no payment exists without a confirmed
//! order.

use std::collections::HashMap;
use std::sync::Arc;

use loja_tests::{ADMIN_TOKEN, Platform, card, order_body};
use serde_json::Value;

/// Every payment pagamentos holds, through its admin listing.
async fn all_payments(p: &Platform) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/api/v1/payments?limit=200", p.pagamentos.url());
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = p
            .http
            .get(url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return all,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_oversell_when_many_orders_race_for_the_last_units() {
    let p = Arc::new(Platform::start().await.unwrap());
    p.product("LAST-1", 1000, 5).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let p = p.clone();
        tasks.spawn(async move {
            let body = order_body(&format!("c-{i}"), &[("LAST-1", 1)], card("tok_visa"));
            p.order(&body, None).await.unwrap()
        });
    }
    let mut outcomes: HashMap<u16, Vec<Value>> = HashMap::new();
    while let Some(result) = tasks.join_next().await {
        let (status, body) = result.unwrap();
        outcomes.entry(status).or_default().push(body);
    }
    let confirmed = outcomes.remove(&201).unwrap_or_default();
    let rejected = outcomes.remove(&409).unwrap_or_default();
    assert!(outcomes.is_empty(), "unexpected outcomes: {outcomes:?}");
    assert_eq!(confirmed.len(), 5);
    assert_eq!(rejected.len(), 19);
    assert!(rejected.iter().all(|r| r["code"] == "insufficient_stock"));
    assert_eq!(p.stock("LAST-1").await.unwrap(), 0);

    // No payment without a confirmed order, and one per confirmed order.
    let confirmed_ids: Vec<&str> = confirmed
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    let payments = all_payments(&p).await;
    assert_eq!(payments.len(), 5, "{payments:?}");
    for payment in &payments {
        assert!(confirmed_ids.contains(&payment["order_id"].as_str().unwrap()));
        assert_eq!(payment["status"], "approved");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_double_charge_when_one_key_is_sent_concurrently_and_retried() {
    let p = Arc::new(Platform::start().await.unwrap());
    p.product("CAM-001", 4990, 10).await.unwrap();
    let body = order_body("c-42", &[("CAM-001", 1)], card("tok_visa"));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (p, body) = (p.clone(), body.clone());
        tasks.spawn(async move { p.order(&body, Some("same-key")).await.unwrap() });
    }
    let mut created = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (status, body) = result.unwrap();
        match status {
            201 => created.push(body),
            503 => assert_eq!(body["code"], "idempotency_key_in_flight", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(!created.is_empty());
    // Replays carry the first order; a later retry does too.
    let (status, later) = p.order(&body, Some("same-key")).await.unwrap();
    assert_eq!(status, 201);
    for c in &created {
        assert_eq!(c, &later);
    }
    assert_eq!(p.stock("CAM-001").await.unwrap(), 9);
    let payments = all_payments(&p).await;
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0]["order_id"], later["id"]);
}
