//! estoque's settings, read from the environment (see the env-var contract).

use std::time::Duration;

use loja_runtime::DatabaseServiceConfig;

/// Everything estoque reads at startup.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "estoque", about = "Loja Veloz catalog, stock and reservations")]
pub struct Config {
    #[command(flatten)]
    pub base: DatabaseServiceConfig,

    /// Seconds a reservation stays held before it is released automatically.
    #[arg(long, env = "RESERVATION_TTL_SECS", default_value_t = 300)]
    pub reservation_ttl_secs: u64,

    /// Seconds between two passes of the expired-reservation sweeper.
    #[arg(long, env = "SWEEP_INTERVAL_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval_secs: u64,
}

impl Config {
    /// The reservation TTL as a [`Duration`].
    pub fn reservation_ttl(&self) -> Duration {
        Duration::from_secs(self.reservation_ttl_secs)
    }

    /// The sweeper period as a [`Duration`].
    pub fn sweep_interval(&self) -> Duration {
        Duration::from_secs(self.sweep_interval_secs)
    }
}
