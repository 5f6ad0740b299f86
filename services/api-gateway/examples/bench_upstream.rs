//! A minimal runtime service for measuring the gateway's overhead: it answers
//! `GET /api/v1/products/{sku}` with a small JSON document, through the same
//! layers (logs, traces, metrics) as every real service.
//!
//! `LISTEN_ADDR=127.0.0.1:18081 cargo run --release -p api-gateway --example bench_upstream`

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use clap::Parser as _;
use loja_runtime::{CommonConfig, Json, Readiness, server, telemetry};

#[derive(clap::Parser)]
struct Config {
    #[command(flatten)]
    common: CommonConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let telemetry = telemetry::init("bench-upstream", &config.common)?;
    let routes = Router::new().route(
        "/api/v1/products/{sku}",
        get(|Path(sku): Path<String>| async move {
            Json(serde_json::json!({"sku": sku, "name": "Camiseta", "price_cents": 4990, "stock": 10}))
        }),
    );
    let readiness = Readiness::new(None);
    let app = server::app("bench-upstream", routes, readiness.clone());
    let result = server::run(&config.common, app, readiness).await;
    telemetry.shutdown().await;
    result
}
