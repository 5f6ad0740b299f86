//! The api-gateway binary: config → telemetry → serve.

use anyhow::Context as _;
use api_gateway::{Config, Gateway, SERVICE, app};
use clap::Parser as _;
use loja_runtime::{Readiness, healthcheck, server, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    healthcheck::exit_if_requested();
    let config = Config::parse();
    let telemetry = telemetry::init(SERVICE, &config.common)?;
    let gateway = Gateway::from_config(&config).context("reading the gateway's routes")?;
    let readiness = Readiness::new(None);
    let result = server::run(&config.common, app(gateway, readiness.clone()), readiness).await;
    telemetry.shutdown().await;
    result
}
