//! The api-gateway binary: the shared `main` of a service without a
//! database, serving the routes of `GATEWAY_ROUTES`.

use anyhow::Context as _;
use api_gateway::{Config, Document, Gateway, SERVICE, app};
use loja_runtime::launch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = launch::config();
    launch::without_database(SERVICE, &config.common, |readiness, _| {
        // The document `cargo xtask gen` renders, checked by `gen --check`.
        let document = Document::new(&include_bytes!("../../../generated/openapi.json")[..]);
        let gateway =
            Gateway::from_config(&config, document).context("reading the gateway's routes")?;
        Ok(app(gateway, readiness))
    })
    .await
}
