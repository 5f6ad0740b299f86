//! Faults: a dependency that is down or hangs. Whatever happens, no hold is
//! left behind and every charge of an order that did not complete is refunded.

use std::time::{Duration, Instant};

use loja_tests::{Platform, Settings, card, order_body};

fn quick() -> Settings {
    Settings {
        upstream_timeout_ms: 300,
        reconcile_after_secs: 1,
        reconcile_interval_secs: 1,
        ..Settings::default()
    }
}

#[tokio::test]
async fn no_orphan_hold_when_pagamentos_is_down() {
    let mut p = Platform::start_with(quick()).await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    p.pagamentos.kill();

    let body = order_body("c-42", &[("CAM-001", 2)], card("tok_visa"));
    let (status, problem) = p.order(&body, Some("down-1")).await.unwrap();
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["code"], "upstream_unavailable");
    let id = problem["order_id"].as_str().unwrap().to_owned();
    let (_, order) = p.get_order(&id).await.unwrap();
    assert_eq!(order["status"], "failed");
    assert_eq!(p.stock("CAM-001").await.unwrap(), 5);

    // Back up, pagamentos has no charge for it, and the key still replays the failure.
    p.pagamentos.restart().await.unwrap();
    assert!(p.payments_of(&id).await.unwrap().is_empty());
    let (status, replay) = p.order(&body, Some("down-1")).await.unwrap();
    assert_eq!(status, 503);
    assert_eq!(replay, problem);
}

#[tokio::test]
async fn no_orphan_hold_when_estoque_is_down() {
    let mut p = Platform::start_with(quick()).await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    p.estoque.kill();
    let body = order_body("c-42", &[("CAM-001", 2)], card("tok_visa"));
    let (status, problem) = p.order(&body, None).await.unwrap();
    assert_eq!(status, 503, "{problem}");
    let id = problem["order_id"].as_str().unwrap().to_owned();
    // estoque may have taken the hold before it went away: pedidos owes it a
    // release, and asks for it once estoque is back.
    assert!(p.compensation_pending(&id).await.unwrap());
    p.estoque.restart().await.unwrap();
    let release = format!("/internal/reservations/{id}/release");
    let asked = || async { Ok(p.estoque.log_text().contains(&release)) };
    p.eventually(
        "the release reached estoque",
        Duration::from_secs(30),
        asked,
    )
    .await
    .unwrap();
    assert_ne!(p.reservation(&id).await.unwrap().as_deref(), Some("held"));
    assert_eq!(p.stock("CAM-001").await.unwrap(), 5);
    assert!(p.payments_of(&id).await.unwrap().is_empty());
    let (_, order) = p.get_order(&id).await.unwrap();
    assert_eq!(order["status"], "failed");
}

#[tokio::test]
async fn a_hung_pagamentos_gives_504_and_a_late_charge_is_refunded() {
    let p = Platform::start_with(quick()).await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    // SIGSTOP: connections are accepted by the kernel but nothing answers.
    p.pagamentos.freeze();
    let body = order_body("c-42", &[("CAM-001", 2)], card("tok_visa"));
    let (status, problem) = p.order(&body, None).await.unwrap();
    p.pagamentos.thaw();
    assert_eq!(status, 504, "{problem}");
    assert_eq!(problem["code"], "upstream_timeout");
    let id = problem["order_id"].as_str().unwrap().to_owned();
    assert_eq!(p.stock("CAM-001").await.unwrap(), 5);

    // A hung pagamentos may still carry out the charge once it wakes up. Make
    // that happen for sure (pedidos retries are idempotent per order, so this
    // is the one charge any of them could have made); the reconciler must find
    // it and refund it.
    let late = p
        .http
        .post(format!("{}/internal/payments", p.pagamentos.url()))
        .json(&serde_json::json!({
            "order_id": id, "amount_cents": 9980, "method": "card", "token": "tok_visa"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 201);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let payments = p.payments_of(&id).await.unwrap();
        assert!(payments.len() <= 1, "{payments:?}");
        let settled = payments.len() == 1 && payments[0]["status"] == "refunded";
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "charge never refunded: {payments:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, order) = p.get_order(&id).await.unwrap();
    assert_eq!(order["status"], "failed");
    assert_eq!(p.stock("CAM-001").await.unwrap(), 5);
}

#[tokio::test]
async fn a_cancel_cut_short_by_an_outage_is_finished_by_the_reconciler() {
    let mut p = Platform::start_with(quick()).await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    let body = order_body("c-42", &[("CAM-001", 2)], card("tok_visa"));
    let (status, order) = p.order(&body, None).await.unwrap();
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();

    p.pagamentos.kill();
    let (status, problem) = p.cancel(&id).await.unwrap();
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["order_id"], id.as_str());

    // Once pagamentos is back, the accepted cancel completes by itself.
    p.pagamentos.restart().await.unwrap();
    let order = p
        .wait_order(&id, Duration::from_secs(40), |o| o["status"] == "cancelled")
        .await
        .unwrap();
    assert_eq!(order["status"], "cancelled", "{order}");
    assert_eq!(p.stock("CAM-001").await.unwrap(), 5);
    let payments = p.payments_of(&id).await.unwrap();
    assert_eq!(payments[0]["status"], "refunded");
}

#[tokio::test]
async fn no_orphan_hold_when_estoque_hangs_mid_reservation() {
    let p = Platform::start_with(quick()).await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    p.estoque.freeze();
    let body = order_body("c-42", &[("CAM-001", 2)], card("tok_visa"));
    let (status, problem) = p.order(&body, None).await.unwrap();
    p.estoque.thaw();
    assert_eq!(status, 504, "{problem}");
    assert_eq!(problem["code"], "upstream_timeout");
    let id = problem["order_id"].as_str().unwrap().to_owned();

    // A hung estoque may still carry out the reservation once it wakes up.
    // Make that happen for sure (the same idempotent call pedidos made); the
    // reconciler must release it.
    let late = p
        .http
        .post(format!("{}/internal/reservations", p.estoque.url()))
        .json(&serde_json::json!({"order_id": id, "items": [{"sku": "CAM-001", "quantity": 2}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 201);
    assert!(p.reservation(&id).await.unwrap().is_some());
    p.eventually(
        "the late hold was released",
        Duration::from_secs(40),
        || async { Ok(p.reservation(&id).await?.as_deref() == Some("released")) },
    )
    .await
    .unwrap();
    assert_eq!(p.stock("CAM-001").await.unwrap(), 5);
    let (_, order) = p.get_order(&id).await.unwrap();
    assert_eq!(order["status"], "failed");
    assert!(p.payments_of(&id).await.unwrap().is_empty());
}
