//! The pedidos binary: the shared `main` of a database service, plus the
//! saga's upstreams and the reconciler that recovers abandoned orders.

use loja_runtime::launch;
use pedidos::{Config, MIGRATOR, Pedidos, SERVICE, app};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = launch::config();
    launch::with_database(SERVICE, &config.base, &MIGRATOR, |state, tasks| {
        let saga = config.saga(state.db.clone())?;
        let reconciler = config.reconciler(saga.clone());
        tasks.spawn("reconciler", |stop| reconciler.run(stop));
        let idempotency_ttl_hours = config.idempotency_ttl_hours;
        Ok(app(state.with(Pedidos {
            saga,
            idempotency_ttl_hours,
        })))
    })
    .await
}
