//! The api-gateway binary: the shared `main` of a service without a
//! database, serving the routes of `GATEWAY_ROUTES`.

use anyhow::Context as _;
use api_gateway::{Config, Gateway, SERVICE, app};
use loja_runtime::launch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = launch::config();
    launch::without_database(SERVICE, &config.common, |readiness, _| {
        let gateway = Gateway::from_config(&config).context("reading the gateway's routes")?;
        Ok(app(gateway, readiness))
    })
    .await
}
