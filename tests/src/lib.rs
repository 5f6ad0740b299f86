//! Helpers for the cross-service tests: build the service binaries once,
//! start real estoque, pagamentos and pedidos processes (and, when a test
//! asks, the api-gateway in front of them) on free loopback ports, each with a
//! fresh database, following the env-var contract, and kill them when the
//! test ends, however it ends.

pub mod platform;
pub mod process;

pub use platform::{Platform, Settings};
pub use process::{Process, free_port};

use serde_json::{Value, json};

/// The admin token every test platform runs with.
pub const ADMIN_TOKEN: &str = "loja-tests-admin-token";

/// The PostgreSQL server the tests use: the one `DATABASE_URL` points at
/// (CI exports its own cluster there), else the development cluster.
pub fn database_server() -> String {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5433/postgres".into());
    // Keep scheme, credentials, host and port; drop the database and query.
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", &url));
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    format!("{scheme}://{authority}")
}

/// An order body for `items` of `(sku, quantity)` paid with `payment`.
pub fn order_body(customer: &str, items: &[(&str, i64)], payment: Value) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
        .collect();
    json!({"customer_id": customer, "items": items, "payment": payment})
}

/// A card payment with `token`.
pub fn card(token: &str) -> Value {
    json!({"method": "card", "token": token})
}
