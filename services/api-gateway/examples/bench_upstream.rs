//! A minimal runtime service for measuring the gateway's overhead: it answers
//! `GET /api/v1/products/{sku}` with a small JSON document, through the same
//! layers (logs, traces, metrics) as every real service.
//!
//! `LISTEN_ADDR=127.0.0.1:18081 cargo run --release -p api-gateway --example bench_upstream`

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use loja_runtime::{CommonConfig, Json, launch, server};

#[derive(clap::Parser)]
struct Config {
    #[command(flatten)]
    common: CommonConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = launch::config();
    launch::without_database("bench-upstream", &config.common, |readiness, _| {
        let routes = Router::new().route(
            "/api/v1/products/{sku}",
            get(|Path(sku): Path<String>| async move {
                Json(serde_json::json!({"sku": sku, "name": "Camiseta", "price_cents": 4990, "stock": 10}))
            }),
        );
        Ok(server::app("bench-upstream", routes, readiness))
    })
    .await
}
