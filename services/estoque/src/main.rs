//! The estoque binary: config → telemetry → pool and migrations → sweeper → serve.

use std::time::Duration;

use clap::Parser;
use estoque::{AppState, Config, Estoque, MIGRATOR, SERVICE, app, sweeper};
use loja_runtime::tasks::Tasks;
use loja_runtime::{db, healthcheck, server, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    healthcheck::exit_if_requested();
    let config = Config::parse();
    let telemetry = telemetry::init(SERVICE, &config.base.common)?;
    let pool = db::connect(&config.base.database, &MIGRATOR, Duration::from_secs(60)).await?;
    let estoque = Estoque {
        reservation_ttl: config.reservation_ttl(),
    };
    let state = AppState::new(pool.clone(), config.base.admin_token.clone(), estoque);
    // Every replica sweeps; SKIP LOCKED keeps them from releasing a hold twice.
    let mut tasks = Tasks::new();
    let interval = config.sweep_interval();
    tasks.spawn("sweeper", |stop| sweeper::run(pool, interval, stop));
    let result = server::run(
        &config.base.common,
        app(state.clone()),
        state.readiness.clone(),
    )
    .await;
    tasks.stop(Duration::from_secs(1)).await;
    telemetry.shutdown().await;
    result
}
