//! Helpers for the cross-service tests: build the service binaries once,
//! start real estoque, pagamentos and pedidos processes (and, when a test
//! asks, the api-gateway in front of them) on free loopback ports, each with a
//! fresh database, with the environment `loja.toml` renders, and kill them
//! when the test ends, however it ends.

pub mod platform;
pub mod process;

pub use loja_testkit::free_port;
pub use platform::{Platform, Settings};
pub use process::Process;

use serde_json::{Value, json};

/// The admin token every test platform runs with.
pub const ADMIN_TOKEN: &str = "loja-tests-admin-token";

/// The service binaries the tests start.
pub const SERVICES: &[&str] = &["estoque", "pagamentos", "pedidos", "api-gateway"];

/// The PostgreSQL server the tests use: the one `DATABASE_URL` points at
/// (`cargo xtask test` exports its own cluster there).
pub fn database_server() -> String {
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL names the test server: run the tests with `cargo xtask test`");
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
