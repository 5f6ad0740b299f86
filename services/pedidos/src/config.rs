//! pedidos' settings, read from the environment (see the env-var contract).

use std::time::Duration;

use loja_runtime::DatabaseServiceConfig;
use loja_runtime::upstream::Upstream;
use sqlx::PgPool;

use crate::clients::{Estoque, Pagamentos, RetryPolicy, Service};
use crate::reconciler::Reconciler;
use crate::saga::Saga;

/// How calls to estoque and pagamentos are retried: transient failures get
/// three tries in all, backing off from 100ms.
const RETRY: RetryPolicy = RetryPolicy {
    attempts: 3,
    backoff: Duration::from_millis(100),
};

/// Everything pedidos reads at startup.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "pedidos", about = "Loja Veloz orders")]
pub struct Config {
    #[command(flatten)]
    pub base: DatabaseServiceConfig,

    /// estoque's base URLs, comma-separated (one per replica).
    #[arg(long, env = "ESTOQUE_URL")]
    pub estoque_url: String,

    /// pagamentos' base URLs, comma-separated (one per replica).
    #[arg(long, env = "PAGAMENTOS_URL")]
    pub pagamentos_url: String,

    /// How long one try of a call to estoque or pagamentos may take, in milliseconds.
    #[arg(long, env = "UPSTREAM_TIMEOUT_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub upstream_timeout_ms: u64,

    /// Age, in seconds, after which a `pending` order nobody drives is finished
    /// or compensated by the reconciler.
    #[arg(long, env = "RECONCILE_AFTER_SECS", default_value_t = 5)]
    pub reconcile_after_secs: u64,

    /// Seconds between two passes of the reconciler.
    #[arg(long, env = "RECONCILE_INTERVAL_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub reconcile_interval_secs: u64,

    /// Hours an Idempotency-Key and its response are kept.
    #[arg(long, env = "IDEMPOTENCY_TTL_HOURS", default_value_t = 24,
          value_parser = clap::value_parser!(u32).range(24..))]
    pub idempotency_ttl_hours: u32,
}

impl Config {
    /// The per-try upstream timeout.
    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_millis(self.upstream_timeout_ms)
    }

    /// How old an undriven pending order must be before the reconciler takes it.
    pub fn reconcile_after(&self) -> Duration {
        Duration::from_secs(self.reconcile_after_secs)
    }

    /// The reconciler period.
    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(self.reconcile_interval_secs)
    }

    /// The saga over `db` and the estoque and pagamentos replicas at
    /// `ESTOQUE_URL` and `PAGAMENTOS_URL`.
    pub fn saga(&self, db: PgPool) -> anyhow::Result<Saga> {
        let timeout = self.upstream_timeout();
        let estoque = Upstream::new("estoque", &self.estoque_url, timeout)?;
        let pagamentos = Upstream::new("pagamentos", &self.pagamentos_url, timeout)?;
        Ok(Saga {
            db,
            estoque: Estoque(Service::new("estoque", estoque, RETRY)),
            pagamentos: Pagamentos(Service::new("pagamentos", pagamentos, RETRY)),
            // One call with all its tries, plus a margin; renewed before every call.
            lease: RETRY.budget(timeout) + Duration::from_secs(1),
        })
    }

    /// The reconciler that finishes or compensates what `saga`'s drivers
    /// left behind.
    pub fn reconciler(&self, saga: Saga) -> Reconciler {
        Reconciler {
            saga,
            after: self.reconcile_after(),
            interval: self.reconcile_interval(),
            idempotency_ttl_hours: self.idempotency_ttl_hours,
        }
    }
}
