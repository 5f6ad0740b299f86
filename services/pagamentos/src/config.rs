//! pagamentos' settings, read from the environment (see the env-var contract).

use loja_runtime::{AdminToken, CommonConfig, DatabaseConfig};

/// Everything pagamentos reads at startup.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "pagamentos", about = "Loja Veloz test-mode payments")]
pub struct Config {
    #[command(flatten)]
    pub common: CommonConfig,

    #[command(flatten)]
    pub database: DatabaseConfig,

    /// Bearer token that admits listing every payment.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: AdminToken,
}
