//! Helpers for pagamentos' integration tests: the app over a database, a
//! charge shortcut, and table snapshots that prove nothing changed.

#![allow(dead_code)]

pub use loja_testkit::client::{Client, TOKEN};

use loja_runtime::AdminToken;
use pagamentos::{AppState, app};
use serde_json::{Value, json};
use sqlx::PgPool;

/// State with the test admin token.
pub fn state(pool: PgPool) -> AppState {
    AppState::new(pool, AdminToken::new(TOKEN).unwrap(), ())
}

/// A client for pagamentos backed by `pool`.
pub fn payments(pool: PgPool) -> Client {
    Client::new(app(state(pool)))
}

/// Every payment row, to compare before and after a rejected request.
pub async fn snapshot(pool: &PgPool) -> Value {
    let rows: Value =
        sqlx::query_scalar("SELECT coalesce(json_agg(p ORDER BY id), '[]') FROM payments p")
            .fetch_one(pool)
            .await
            .unwrap();
    json!({ "payments": rows })
}

/// A charge body.
pub fn charge(order_id: &str, amount_cents: i64, method: &str, token: Option<&str>) -> Value {
    let mut body = json!({"order_id": order_id, "amount_cents": amount_cents, "method": method});
    if let Some(t) = token {
        body["token"] = json!(t);
    }
    body
}
