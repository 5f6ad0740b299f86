//! The pagamentos binary: config → telemetry → pool and migrations → serve.

use std::time::Duration;

use clap::Parser;
use loja_runtime::{db, healthcheck, server, telemetry};
use pagamentos::{AppState, Config, MIGRATOR, SERVICE, app};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    healthcheck::exit_if_requested();
    let config = Config::parse();
    let telemetry = telemetry::init(SERVICE, &config.base.common)?;
    let pool = db::connect(&config.base.database, &MIGRATOR, Duration::from_secs(60)).await?;
    let state = AppState::new(pool, config.base.admin_token.clone(), ());
    let result = server::run(
        &config.base.common,
        app(state.clone()),
        state.readiness.clone(),
    )
    .await;
    telemetry.shutdown().await;
    result
}
