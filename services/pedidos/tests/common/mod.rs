//! Shared setup of pedidos' in-process tests: the app over a fresh database,
//! with estoque and pagamentos pointed at an address nobody listens on.

#![allow(dead_code)]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use loja_runtime::AdminToken;
use loja_runtime::upstream::Upstream;
use pedidos::clients::{Estoque, Pagamentos, RetryPolicy, Service};
use pedidos::saga::Saga;
use pedidos::{AppState, Pedidos, app};
use serde_json::Value;
use sqlx::PgPool;
use tower::ServiceExt;

pub const TOKEN: &str = "test-admin-token";

/// A loopback port that refused connections when it was picked.
pub use loja_testkit::free_port as closed_port;

/// A saga whose upstreams refuse every connection.
pub fn saga(db: PgPool) -> Saga {
    let retry = RetryPolicy {
        attempts: 2,
        backoff: Duration::from_millis(10),
    };
    let url = format!("http://127.0.0.1:{}", closed_port());
    let timeout = Duration::from_millis(500);
    Saga {
        db,
        estoque: Estoque(Service::new(
            "estoque",
            Upstream::new("estoque", &url, timeout).unwrap(),
            retry,
        )),
        pagamentos: Pagamentos(Service::new(
            "pagamentos",
            Upstream::new("pagamentos", &url, timeout).unwrap(),
            retry,
        )),
        lease: Duration::from_secs(5),
    }
}

pub fn state(db: PgPool) -> AppState {
    let pedidos = Pedidos {
        saga: saga(db.clone()),
        idempotency_ttl_hours: 24,
    };
    AppState::new(db, AdminToken::new(TOKEN).unwrap(), pedidos)
}

pub fn router(db: PgPool) -> Router {
    app(state(db))
}

/// A response as tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
    pub raw: Vec<u8>,
}

pub async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let raw = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Reply {
        status,
        content_type,
        body,
        raw,
    }
}

/// `POST /api/v1/orders` with a raw body and an optional Idempotency-Key.
pub fn post_order(body: &str, key: Option<&str>) -> Request<Body> {
    let mut b = Request::post("/api/v1/orders").header("content-type", "application/json");
    if let Some(key) = key {
        b = b.header("idempotency-key", key);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

pub fn get(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

pub fn post_empty(uri: &str) -> Request<Body> {
    Request::post(uri).body(Body::empty()).unwrap()
}

pub async fn count_orders(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(db)
        .await
        .unwrap()
}

pub async fn count_keys(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(db)
        .await
        .unwrap()
}

pub const VALID: &str = r#"{"customer_id":"c-42","items":[{"sku":"CAM-001","quantity":2}],"payment":{"method":"card","token":"tok_visa"}}"#;
