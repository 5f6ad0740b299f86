//! The `main` every service shares, so that a binary says only what is its
//! own. In order: answer `<service> healthcheck`, parse the settings, start
//! telemetry, open the pool and migrate (database services), let the
//! service build its router and start its background tasks, serve until
//! SIGTERM and drain, stop the tasks, flush telemetry.
//!
//! ```text
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     let config: Config = launch::config();
//!     launch::with_database(SERVICE, &config.base, &MIGRATOR, |state, tasks| {
//!         tasks.spawn("sweeper", |stop| sweeper::run(state.db.clone(), config.sweep_interval(), stop));
//!         Ok(app(state.with(Estoque { reservation_ttl: config.reservation_ttl() })))
//!     })
//!     .await
//! }
//! ```

use std::time::Duration;

use axum::Router;
use sqlx::migrate::Migrator;

use crate::config::{CommonConfig, DatabaseServiceConfig};
use crate::health::Readiness;
use crate::state::AppState;
use crate::tasks::Tasks;
use crate::{db, healthcheck, server, telemetry};

/// How long a starting replica waits for its database: replicas that start
/// together with PostgreSQL must not crash-loop.
const DATABASE_WAIT: Duration = Duration::from_secs(60);

/// How long background tasks get to return once told to stop. They return at
/// their next await, so this only bounds a stuck one; it is short because it
/// comes out of the grace period left after the drain, which the telemetry
/// flush needs too.
const TASKS_STOP_WAIT: Duration = Duration::from_secs(1);

/// The first line of every `main`: as `<service> healthcheck` the process
/// probes its own `/ready` and exits; otherwise the service's settings, from
/// its environment and arguments (a bad value exits with the usage).
pub fn config<C: clap::Parser>() -> C {
    healthcheck::exit_if_requested();
    C::parse()
}

/// The rest of the `main` of a service without a database (the gateway).
/// `start` gets the replica's readiness, builds the router with
/// `server::app`, and may start background tasks.
pub async fn without_database<F>(
    service: &'static str,
    config: &CommonConfig,
    start: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Readiness, &mut Tasks) -> anyhow::Result<Router>,
{
    let telemetry = telemetry::init(service, config)?;
    let readiness = Readiness::new(None);
    let result = serve(config, readiness.clone(), |tasks| start(readiness, tasks)).await;
    telemetry.shutdown().await;
    result
}

/// The rest of the `main` of a service that owns a database: the pool is
/// opened and `migrator` applied before `start` gets the state every
/// database service shares (complete it with [`AppState::with`]), builds the
/// router and may start background tasks.
pub async fn with_database<F>(
    service: &'static str,
    config: &DatabaseServiceConfig,
    migrator: &Migrator,
    start: F,
) -> anyhow::Result<()>
where
    F: FnOnce(AppState, &mut Tasks) -> anyhow::Result<Router>,
{
    let telemetry = telemetry::init(service, &config.common)?;
    let result = async {
        let db = db::connect(&config.database, migrator, DATABASE_WAIT).await?;
        let state = AppState::new(db, config.admin_token.clone(), ());
        let readiness = state.readiness.clone();
        serve(&config.common, readiness, |tasks| start(state, tasks)).await
    }
    .await;
    telemetry.shutdown().await;
    result
}

/// Builds the router and the tasks, serves until SIGTERM (see
/// [`server::run`]), then stops the tasks, also when building or serving
/// failed.
async fn serve(
    config: &CommonConfig,
    readiness: Readiness,
    start: impl FnOnce(&mut Tasks) -> anyhow::Result<Router>,
) -> anyhow::Result<()> {
    let mut tasks = Tasks::new();
    let result = match start(&mut tasks) {
        Ok(app) => server::run(config, app, readiness).await,
        Err(err) => Err(err),
    };
    tasks.stop(TASKS_STOP_WAIT).await;
    result
}
