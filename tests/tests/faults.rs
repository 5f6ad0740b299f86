//! Faults: a dependency that is down or hangs, and pedidos killed mid-saga.
//! Whatever happens, no hold is left behind, every charge of an order that did
//! not complete is refunded, and no order stays `pending`.

use std::time::{Duration, Instant};

use loja_tests::{Platform, Settings, card, order_body};

fn quick() -> Settings {
    Settings {
        upstream_timeout_ms: 300,
        reconcile_after_secs: 1,
        reconcile_interval_secs: 1,
    }
}

/// For the crash tests: the charge waits on a frozen pagamentos for three
/// tries of 800 ms, a window wide enough to observe and SIGKILL pedidos in,
/// even on a loaded machine.
fn crashable() -> Settings {
    Settings {
        upstream_timeout_ms: 800,
        ..quick()
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
    p.estoque.restart().await.unwrap();
    assert_eq!(p.stock("CAM-001").await.unwrap(), 5);
    assert!(p.payments_of(&id).await.unwrap().is_empty());
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
async fn no_order_stuck_pending_after_pedidos_is_killed_between_charge_and_commit() {
    let mut p = Platform::start_with(crashable()).await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    let db = p.pedidos_db().await.unwrap();

    // pagamentos hangs, so the saga waits on the charge right after the hold.
    p.pagamentos.freeze();
    let body = order_body("c-42", &[("CAM-001", 2)], card("tok_visa"));
    let request = {
        let http = p.http.clone();
        let url = format!("{}/api/v1/orders", p.pedidos.url());
        let body = body.clone();
        tokio::spawn(async move {
            http.post(url)
                .header("idempotency-key", "crash-1")
                .json(&body)
                .send()
                .await
        })
    };
    // Observe the saga reach "stock held, charge sent", then kill pedidos.
    let deadline = Instant::now() + Duration::from_secs(20);
    let id: String = loop {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT id::text FROM orders WHERE step = 'reserved'")
                .fetch_optional(&db)
                .await
                .unwrap();
        if let Some((id,)) = row {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the saga never reached the charge"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    p.pedidos.kill();
    assert!(
        request.await.unwrap().is_err(),
        "the client saw the connection die"
    );
    // pagamentos now charges the order that pedidos no longer waits for.
    p.pagamentos.thaw();
    assert_eq!(
        p.stock("CAM-001").await.unwrap(),
        3,
        "the hold is still there"
    );

    // A new pedidos resumes the saga with the same idempotent calls: the
    // charge returns the first payment, the commit makes the sale final.
    p.pedidos.restart().await.unwrap();
    let order = p
        .wait_order(&id, Duration::from_secs(40), |o| o["status"] != "pending")
        .await
        .unwrap();
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(p.stock("CAM-001").await.unwrap(), 3);
    let payments = p.payments_of(&id).await.unwrap();
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0]["status"], "approved");

    // The crashed request's key now replays the outcome the reconciler reached.
    let (status, replay) = p.order(&body, Some("crash-1")).await.unwrap();
    assert_eq!(status, 201, "{replay}");
    assert_eq!(replay["id"], id.as_str());
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE status = 'pending'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(pending, 0);
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

    // A reservation estoque carries out late is released by the reconciler.
    let deadline = Instant::now() + Duration::from_secs(40);
    while p.stock("CAM-001").await.unwrap() != 5 {
        assert!(Instant::now() < deadline, "the hold was never released");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, order) = p.get_order(&id).await.unwrap();
    assert_eq!(order["status"], "failed");
    assert!(p.payments_of(&id).await.unwrap().is_empty());
}

#[tokio::test]
async fn no_order_stuck_pending_when_one_of_two_replicas_dies_mid_saga() {
    let mut p = Platform::start_with(crashable()).await.unwrap();
    let survivor = p.pedidos.replica().await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    let db = p.pedidos_db().await.unwrap();

    p.pagamentos.freeze();
    let body = order_body("c-42", &[("CAM-001", 1)], card("tok_visa"));
    let request = {
        let http = p.http.clone();
        let url = format!("{}/api/v1/orders", p.pedidos.url());
        tokio::spawn(async move { http.post(url).json(&body).send().await })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let id: String = loop {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT id::text FROM orders WHERE step = 'reserved'")
                .fetch_optional(&db)
                .await
                .unwrap();
        if let Some((id,)) = row {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "the saga never reached the charge"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    p.pedidos.kill();
    let _ = request.await;
    p.pagamentos.thaw();

    // The other replica's reconciler takes the order over without any restart.
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        let order: serde_json::Value = p
            .http
            .get(format!("{}/api/v1/orders/{id}", survivor.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if order["status"] != "pending" || Instant::now() > deadline {
            break order["status"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, "confirmed");
    assert_eq!(p.stock("CAM-001").await.unwrap(), 4);
    assert_eq!(p.payments_of(&id).await.unwrap().len(), 1);
}
