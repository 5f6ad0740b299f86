//! The estoque binary: config, pool and migrations, sweeper, then serve.

use anyhow::Context;
use clap::Parser;
use estoque::{AppState, Config, MIGRATOR, app, sweeper};
use loja_runtime::{db, server};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let pool = db::connect(
        &config.database,
        &MIGRATOR,
        std::time::Duration::from_secs(60),
    )
    .await?;
    let state = AppState::new(
        pool.clone(),
        config.admin_token.clone(),
        config.reservation_ttl(),
    );
    let sweeper = tokio::spawn(sweeper::run(pool, config.sweep_interval()));

    let listener = tokio::net::TcpListener::bind(config.common.listen_addr)
        .await
        .with_context(|| format!("binding {}", config.common.listen_addr))?;
    tracing::info!(addr = %config.common.listen_addr, "estoque listening");
    let result = server::serve(
        listener,
        app(state.clone()),
        state.readiness.clone(),
        server::shutdown_signal(),
        config.common.shutdown_timeout(),
    )
    .await;
    sweeper.abort();
    result.context("serving HTTP")
}
