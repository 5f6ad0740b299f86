//! The estoque binary: the shared `main` of a database service, plus the
//! sweeper that releases expired holds.

use estoque::{Config, Estoque, MIGRATOR, SERVICE, app, sweeper};
use loja_runtime::launch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = launch::config();
    launch::with_database(SERVICE, &config.base, &MIGRATOR, |state, tasks| {
        // Every replica sweeps; SKIP LOCKED keeps them from releasing a hold twice.
        tasks.spawn("sweeper", |stop| {
            sweeper::run(state.db.clone(), config.sweep_interval(), stop)
        });
        let reservation_ttl = config.reservation_ttl();
        Ok(app(state.with(Estoque { reservation_ttl })))
    })
    .await
}
