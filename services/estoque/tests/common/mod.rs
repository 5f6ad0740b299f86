//! Helpers shared by estoque's integration tests: a client that drives the
//! router in-process, and a snapshot of every table to prove nothing changed.

#![allow(dead_code)]

pub mod pg;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use estoque::{AppState, app};
use http_body_util::BodyExt;
use loja_runtime::AdminToken;
use serde_json::{Value, json};
use sqlx::PgPool;
use tower::ServiceExt;

/// The admin token every test state is built with.
pub const TOKEN: &str = "test-admin-token";

/// State with the test token and the default five-minute reservation TTL.
pub fn state(pool: PgPool) -> AppState {
    state_with_ttl(pool, Duration::from_secs(300))
}

/// State whose reservations expire after `ttl`.
pub fn state_with_ttl(pool: PgPool, ttl: Duration) -> AppState {
    AppState::new(pool, AdminToken::new(TOKEN).unwrap(), ttl)
}

/// Drives one app in-process; clones are cheap and share the state.
#[derive(Clone)]
pub struct Client {
    pub app: Router,
}

impl Client {
    pub fn new(pool: PgPool) -> Client {
        Client {
            app: app(state(pool)),
        }
    }

    pub fn with_state(state: AppState) -> Client {
        Client { app: app(state) }
    }

    /// Sends a request; `body` is sent as JSON, `token` as a bearer token.
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let request = match body {
            Some(v) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => builder.body(Body::empty()),
        };
        self.raw(request.unwrap()).await
    }

    /// Sends a prepared request and decodes the JSON answer (Null if empty).
    pub async fn raw(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "application/problem+json",
                "errors are problems"
            );
        }
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, value)
    }

    pub async fn get(&self, uri: &str) -> (StatusCode, Value) {
        self.send(Method::GET, uri, None, None).await
    }

    /// An admin write.
    pub async fn admin(&self, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
        self.send(method, uri, Some(body), Some(TOKEN)).await
    }

    /// An internal (pedidos → estoque) call.
    pub async fn internal(&self, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.send(Method::POST, uri, body, None).await
    }

    /// Creates a product and returns it.
    pub async fn product(&self, sku: &str, price_cents: i64, stock: i64) -> Value {
        let (status, body) = self
            .admin(
                Method::POST,
                "/api/v1/products",
                json!({"sku": sku, "name": format!("Product {sku}"), "price_cents": price_cents, "stock": stock}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// The `stock` of a product as the API reports it.
    pub async fn stock(&self, sku: &str) -> i64 {
        let (status, body) = self.get(&format!("/api/v1/products/{sku}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["stock"].as_i64().unwrap()
    }
}

/// Every row of every table, to compare before and after a rejected request.
pub async fn snapshot(pool: &PgPool) -> Value {
    let products: Value =
        sqlx::query_scalar("SELECT coalesce(json_agg(p ORDER BY sku), '[]') FROM products p")
            .fetch_one(pool)
            .await
            .unwrap();
    let reservations: Value = sqlx::query_scalar(
        "SELECT coalesce(json_agg(r ORDER BY order_id), '[]') FROM reservations r",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let items: Value = sqlx::query_scalar(
        "SELECT coalesce(json_agg(i ORDER BY order_id, sku), '[]') FROM reservation_items i",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    json!({"products": products, "reservations": reservations, "items": items})
}

/// For each product: (sku, received, available, held, sold). The stock
/// invariant is `received == available + held + sold`.
pub async fn ledger(pool: &PgPool) -> Vec<(String, i64, i64, i64, i64)> {
    sqlx::query_as(
        "SELECT p.sku, p.received, p.available,
                coalesce(sum(i.quantity) FILTER (WHERE r.status = 'held'), 0)::bigint,
                coalesce(sum(i.quantity) FILTER (WHERE r.status = 'committed'), 0)::bigint
         FROM products p
         LEFT JOIN reservation_items i ON i.sku = p.sku
         LEFT JOIN reservations r ON r.order_id = i.order_id
         GROUP BY p.sku ORDER BY p.sku",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Asserts the stock invariant for every product.
pub async fn assert_ledger_balances(pool: &PgPool) {
    for (sku, received, available, held, sold) in ledger(pool).await {
        assert_eq!(
            received,
            available + held + sold,
            "{sku}: received {received} != available {available} + held {held} + sold {sold}"
        );
    }
}
