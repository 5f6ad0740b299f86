//! Helpers shared by estoque's integration tests: clients for the router,
//! catalog shortcuts, and table snapshots that prove nothing changed.

#![allow(dead_code)]

pub use loja_testkit::client::TOKEN;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use estoque::{AppState, Estoque, app};
use loja_runtime::AdminToken;
use serde_json::{Value, json};
use sqlx::PgPool;

/// State with the test token and the default five-minute reservation TTL.
pub fn state(pool: PgPool) -> AppState {
    state_with_ttl(pool, Duration::from_secs(300))
}

/// State whose reservations expire after `ttl`.
pub fn state_with_ttl(pool: PgPool, ttl: Duration) -> AppState {
    let estoque = Estoque {
        reservation_ttl: ttl,
    };
    AppState::new(pool, AdminToken::new(TOKEN).unwrap(), estoque)
}

/// The shared in-process client with estoque's catalog shortcuts.
#[derive(Clone)]
pub struct Client(loja_testkit::client::Client);

impl std::ops::Deref for Client {
    type Target = loja_testkit::client::Client;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Client {
    /// A client for estoque backed by `pool`, with the default TTL.
    pub fn estoque(pool: PgPool) -> Client {
        Client::with_state(state(pool))
    }

    /// A client for estoque with the given state.
    pub fn with_state(state: AppState) -> Client {
        Client(loja_testkit::client::Client::new(app(state)))
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
