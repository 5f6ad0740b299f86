//! Compensation paths that real services rarely take, driven by a stub that
//! answers estoque's and pagamentos' internal API as told and records every
//! call it gets.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use common::*;
use loja_runtime::upstream::Upstream;
use pedidos::clients::{Estoque, Pagamentos, RetryPolicy, Service};
use pedidos::reconciler::Reconciler;
use pedidos::saga::Saga;
use pedidos::{AppState, app, repo};
use serde_json::{Value, json};
use sqlx::PgPool;

/// What the stub answers, and what it was asked.
#[derive(Default)]
struct Stub {
    commit_status: Mutex<u16>,
    payments: Mutex<Vec<Value>>,
    calls: Mutex<Vec<String>>,
}

type Shared = Arc<Stub>;

fn record(stub: &Stub, call: impl Into<String>) {
    stub.calls.lock().unwrap().push(call.into());
}

async fn reserve(State(stub): State<Shared>, body: axum::Json<Value>) -> impl IntoResponse {
    record(&stub, "reserve");
    let items: Vec<Value> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| json!({"sku": i["sku"], "quantity": i["quantity"], "unit_price_cents": 1000}))
        .collect();
    (
        StatusCode::CREATED,
        axum::Json(json!({"order_id": body["order_id"], "status": "held", "items": items})),
    )
}

async fn commit(State(stub): State<Shared>) -> impl IntoResponse {
    record(&stub, "commit");
    let status = StatusCode::from_u16(*stub.commit_status.lock().unwrap()).unwrap();
    (
        status,
        axum::Json(json!({"code": "conflict", "detail": "released"})),
    )
}

async fn release(State(stub): State<Shared>) -> impl IntoResponse {
    record(&stub, "release");
    axum::Json(json!({"status": "released"}))
}

async fn charge(State(stub): State<Shared>, body: axum::Json<Value>) -> impl IntoResponse {
    record(&stub, "charge");
    let payment = json!({
        "id": "pay-1", "order_id": body["order_id"], "amount_cents": body["amount_cents"],
        "status": "approved"
    });
    stub.payments.lock().unwrap().push(payment.clone());
    (StatusCode::CREATED, axum::Json(payment))
}

async fn refund(State(stub): State<Shared>, Path(id): Path<String>) -> impl IntoResponse {
    record(&stub, format!("refund {id}"));
    for p in stub.payments.lock().unwrap().iter_mut() {
        if p["id"] == id.as_str() {
            p["status"] = "refunded".into();
        }
    }
    axum::Json(json!({"id": id, "status": "refunded"}))
}

async fn payments(State(stub): State<Shared>) -> impl IntoResponse {
    record(&stub, "lookup");
    let items = stub.payments.lock().unwrap().clone();
    axum::Json(json!({"items": items, "next_cursor": null}))
}

/// Serves the stub on a loopback port; returns its base URL.
async fn serve(stub: Shared) -> String {
    let router = Router::new()
        .route("/internal/reservations", post(reserve))
        .route("/internal/reservations/{id}/commit", post(commit))
        .route("/internal/reservations/{id}/release", post(release))
        .route("/internal/payments", post(charge))
        .route("/internal/payments/{id}/refund", post(refund))
        .route("/api/v1/payments", get(payments))
        .with_state(stub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

fn stub_saga(db: PgPool, url: &str) -> Saga {
    let retry = RetryPolicy {
        attempts: 2,
        backoff: Duration::from_millis(10),
    };
    let upstream = |name| Upstream::new(name, url, Duration::from_secs(2)).unwrap();
    Saga {
        db,
        estoque: Estoque(Service::new("estoque", upstream("estoque"), retry)),
        pagamentos: Pagamentos(Service::new("pagamentos", upstream("pagamentos"), retry)),
        lease: Duration::from_secs(5),
    }
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn a_hold_lost_before_the_commit_returns_the_stock_and_refunds(db: PgPool) {
    let stub = Shared::default();
    *stub.commit_status.lock().unwrap() = 409;
    let url = serve(stub.clone()).await;
    let mut state: AppState = state(db.clone());
    state.service.saga = stub_saga(db.clone(), &url);
    let router = app(state);

    let reply = send(&router, post_order(VALID, None)).await;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        reply.body
    );
    assert!(reply.body["order_id"].is_string());
    assert_eq!(
        *stub.calls.lock().unwrap(),
        ["reserve", "charge", "commit", "release", "refund pay-1"]
    );
    let id = reply.body["order_id"].as_str().unwrap().parse().unwrap();
    let order = repo::get(&db, id).await.unwrap().unwrap();
    assert_eq!(order.status.as_str(), "failed");
    assert_eq!(order.payment.unwrap().status, "refunded");
    assert!(!order.compensation_pending);
}

#[sqlx::test(migrator = "pedidos::MIGRATOR")]
async fn a_charge_found_after_a_failure_is_refunded_by_the_reconciler(db: PgPool) {
    let stub = Shared::default();
    let url = serve(stub.clone()).await;
    // An order that failed while its charge was unanswered...
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "INSERT INTO orders (id, customer_id, status, step, items, payment_method, payment_token, \
             compensation_pending, lease_until) \
         VALUES ($1, 'c', 'failed', 'done', '[]', 'card', 'tok_visa', true, now() - interval '1 second')",
    )
    .bind(id)
    .execute(&db)
    .await
    .unwrap();
    // ...and the charge pagamentos carried out after all.
    stub.payments.lock().unwrap().push(
        json!({"id": "pay-late", "order_id": id, "amount_cents": 2000, "status": "approved"}),
    );

    let reconciler = Reconciler {
        saga: stub_saga(db.clone(), &url),
        after: Duration::from_secs(5),
        interval: Duration::from_secs(5),
        idempotency_ttl_hours: 24,
    };
    assert_eq!(reconciler.pass().await.unwrap(), 1);
    assert_eq!(
        *stub.calls.lock().unwrap(),
        ["release", "lookup", "refund pay-late"]
    );
    let order = repo::get(&db, id).await.unwrap().unwrap();
    assert!(
        !order.compensation_pending,
        "settled once the charge is refunded"
    );
    let payment = order.payment.unwrap();
    assert_eq!(
        (payment.id.as_str(), payment.status.as_str()),
        ("pay-late", "refunded")
    );
}
