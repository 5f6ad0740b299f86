//! The pagamentos binary: the shared `main` of a database service, with no
//! background task.

use loja_runtime::launch;
use pagamentos::{Config, MIGRATOR, SERVICE, app};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config = launch::config();
    launch::with_database(SERVICE, &config.base, &MIGRATOR, |state, _| Ok(app(state))).await
}
