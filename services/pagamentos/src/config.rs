//! pagamentos' settings, read from the environment (see the env-var contract).

use loja_runtime::DatabaseServiceConfig;

/// Everything pagamentos reads at startup: only what every database service
/// reads.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "pagamentos", about = "Loja Veloz test-mode payments")]
pub struct Config {
    #[command(flatten)]
    pub base: DatabaseServiceConfig,
}
