//! The pagamentos binary: config, pool and migrations, then serve.

use anyhow::Context;
use clap::Parser;
use loja_runtime::{db, server};
use pagamentos::{AppState, Config, MIGRATOR, app};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let pool = db::connect(
        &config.database,
        &MIGRATOR,
        std::time::Duration::from_secs(60),
    )
    .await?;
    let state = AppState::new(pool, config.admin_token.clone());

    let listener = tokio::net::TcpListener::bind(config.common.listen_addr)
        .await
        .with_context(|| format!("binding {}", config.common.listen_addr))?;
    tracing::info!(addr = %config.common.listen_addr, "pagamentos listening");
    server::serve(
        listener,
        app(state.clone()),
        state.readiness.clone(),
        server::shutdown_signal(),
        config.common.shutdown_timeout(),
    )
    .await
    .context("serving HTTP")
}
