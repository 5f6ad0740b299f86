//! The pedidos binary: config → telemetry → pool and migrations → reconciler → serve.

use std::time::Duration;

use clap::Parser;
use loja_runtime::tasks::Tasks;
use loja_runtime::upstream::Upstream;
use loja_runtime::{db, healthcheck, server, telemetry};
use pedidos::clients::{Estoque, Pagamentos, RetryPolicy, Service};
use pedidos::reconciler::Reconciler;
use pedidos::saga::Saga;
use pedidos::{AppState, Config, MIGRATOR, Pedidos, SERVICE, app};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    healthcheck::exit_if_requested();
    let config = Config::parse();
    let telemetry = telemetry::init(SERVICE, &config.base.common)?;
    let pool = db::connect(&config.base.database, &MIGRATOR, Duration::from_secs(60)).await?;

    let retry = RetryPolicy {
        attempts: 3,
        backoff: Duration::from_millis(100),
    };
    let timeout = config.upstream_timeout();
    let estoque = Upstream::new("estoque", &config.estoque_url, timeout)?;
    let pagamentos = Upstream::new("pagamentos", &config.pagamentos_url, timeout)?;
    let saga = Saga {
        db: pool.clone(),
        estoque: Estoque(Service::new("estoque", estoque, retry)),
        pagamentos: Pagamentos(Service::new("pagamentos", pagamentos, retry)),
        // One call with all its tries, plus a margin; renewed before every call.
        lease: retry.budget(timeout) + Duration::from_secs(1),
    };
    let pedidos = Pedidos {
        saga: saga.clone(),
        idempotency_ttl_hours: config.idempotency_ttl_hours,
    };
    let state = AppState::new(pool, config.base.admin_token.clone(), pedidos);

    let mut tasks = Tasks::new();
    let reconciler = Reconciler {
        saga,
        after: config.reconcile_after(),
        interval: config.reconcile_interval(),
        idempotency_ttl_hours: config.idempotency_ttl_hours,
    };
    tasks.spawn("reconciler", |stop| reconciler.run(stop));

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
