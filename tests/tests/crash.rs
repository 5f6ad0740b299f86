//! pedidos killed (SIGKILL) at exact points of the saga, observed through its
//! database: a restarted pedidos, or another replica, resumes every order with
//! the same idempotent calls, so no order stays `pending`, nothing is charged
//! twice and no hold is left behind.

use std::time::Duration;

use loja_tests::{Platform, Settings, card, order_body};

/// The charge waits on a frozen pagamentos for three tries of 800 ms: a window
/// wide enough to observe the saga and SIGKILL pedidos in, on a loaded machine too.
fn crashable() -> Settings {
    Settings {
        upstream_timeout_ms: 800,
        reconcile_after_secs: 1,
        reconcile_interval_secs: 1,
        ..Settings::default()
    }
}

#[tokio::test]
async fn no_order_stuck_pending_after_pedidos_is_killed_while_charging() {
    let mut p = Platform::start_with(crashable()).await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    let db = p.pedidos_db().await.unwrap();

    // pagamentos hangs, so the saga waits on the charge right after the hold.
    p.pagamentos.freeze();
    let body = order_body("c-42", &[("CAM-001", 2)], card("tok_visa"));
    let request = p.order_in_background(&body, Some("crash-1"));
    let id = p.wait_for_step(&db, "reserved").await.unwrap();
    p.pedidos.kill();
    assert!(
        request.await.unwrap().is_err(),
        "the client saw the connection die"
    );
    // pagamentos may now carry out the charge pedidos no longer waits for.
    p.pagamentos.thaw();
    assert_eq!(
        p.stock("CAM-001").await.unwrap(),
        3,
        "the hold is still there"
    );

    // A new pedidos resumes the saga: the charge returns the first payment
    // (or makes it), the commit makes the sale final.
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
async fn no_order_stuck_pending_after_pedidos_is_killed_between_charge_and_commit() {
    let mut p = Platform::start_with(crashable()).await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    let db = p.pedidos_db().await.unwrap();

    // Hold the saga at the charge, freeze estoque so the commit cannot
    // happen, then let the charge through.
    p.pagamentos.freeze();
    let body = order_body("c-42", &[("CAM-001", 1)], card("tok_visa"));
    let request = p.order_in_background(&body, None);
    let id = p.wait_for_step(&db, "reserved").await.unwrap();
    p.estoque.freeze();
    p.pagamentos.thaw();
    let charged = p.wait_for_step(&db, "charged").await.unwrap();
    assert_eq!(charged, id);
    // Charged, not committed: kill pedidos there.
    p.pedidos.kill();
    let _ = request.await;
    p.estoque.thaw();
    let payments = p.payments_of(&id).await.unwrap();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["status"], "approved");

    p.pedidos.restart().await.unwrap();
    let order = p
        .wait_order(&id, Duration::from_secs(40), |o| o["status"] != "pending")
        .await
        .unwrap();
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(p.stock("CAM-001").await.unwrap(), 4);
    let payments = p.payments_of(&id).await.unwrap();
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0]["status"], "approved");
}

#[tokio::test]
async fn no_order_stuck_pending_when_one_of_two_replicas_dies_mid_saga() {
    let mut p = Platform::start_with(crashable()).await.unwrap();
    let survivor = p.pedidos.replica().await.unwrap();
    p.product("CAM-001", 4990, 5).await.unwrap();
    let db = p.pedidos_db().await.unwrap();

    p.pagamentos.freeze();
    let body = order_body("c-42", &[("CAM-001", 1)], card("tok_visa"));
    let request = p.order_in_background(&body, None);
    let id = p.wait_for_step(&db, "reserved").await.unwrap();
    p.pedidos.kill();
    let _ = request.await;
    p.pagamentos.thaw();

    // The other replica's reconciler takes the order over without any restart.
    let url = format!("{}/api/v1/orders/{id}", survivor.url());
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let order = loop {
        let order: serde_json::Value = p.http.get(&url).send().await.unwrap().json().await.unwrap();
        if order["status"] != "pending" || std::time::Instant::now() > deadline {
            break order;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(p.stock("CAM-001").await.unwrap(), 4);
    assert_eq!(p.payments_of(&id).await.unwrap().len(), 1);
}
