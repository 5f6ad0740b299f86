//! The gateway's settings, read from its environment.

use std::time::Duration;

use loja_runtime::CommonConfig;

/// Everything the gateway reads at start. Each routed service's addresses
/// come from its own `<SERVICE>_URL` variable (see [`crate::routes`]).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "api-gateway", about = "The public entry of Loja Veloz")]
pub struct Config {
    #[command(flatten)]
    pub common: CommonConfig,

    /// Comma-separated `prefix=service` pairs, such as
    /// `/api/v1/orders=pedidos,/api/v1/products=estoque`.
    #[arg(long, env = "GATEWAY_ROUTES")]
    pub gateway_routes: String,

    /// Longest wait for an upstream's complete answer, in milliseconds.
    #[arg(long, env = "UPSTREAM_TIMEOUT_MS", default_value_t = 10_000)]
    pub upstream_timeout_ms: u64,

    /// Per-client rate limits by route prefix, `prefix=PER_SECOND:BURST`
    /// comma-separated, such as `/api/v1/orders=5:10`. Empty: no limits.
    #[arg(long, env = "RATE_LIMITS", default_value = "")]
    pub rate_limits: String,

    /// Proxies (addresses or CIDR blocks, comma-separated) whose
    /// `X-Forwarded-For` names the client a rate limit counts.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,
}

impl Config {
    /// The upstream timeout as a [`Duration`].
    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_timeout_ms)
    }
}
