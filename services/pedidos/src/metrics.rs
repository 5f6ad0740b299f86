//! Order metrics, registered on the runtime's registry so `/metrics` serves
//! them next to the HTTP ones: how orders end, and what the reconciler had to do.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, Opts};

/// The instruments pedidos adds.
pub struct OrderMetrics {
    /// `pedidos_orders_total{status}`: orders reaching a final status
    /// (`confirmed`, `rejected`, `payment_declined`, `failed`, `cancelled`).
    pub outcomes: IntCounterVec,
    /// `pedidos_reconciled_total{action}`: orders the reconciler took up, by
    /// what they needed (`resumed`, `cancel_finished`, `settled`).
    pub reconciled: IntCounterVec,
}

static METRICS: LazyLock<OrderMetrics> = LazyLock::new(|| {
    let registry = loja_runtime::metrics::http().registry();
    let outcomes = IntCounterVec::new(
        Opts::new(
            "pedidos_orders_total",
            "Orders that reached a final status.",
        ),
        &["status"],
    )
    .expect("valid counter definition");
    let reconciled = IntCounterVec::new(
        Opts::new(
            "pedidos_reconciled_total",
            "Orders the reconciler took up, by what they needed.",
        ),
        &["action"],
    )
    .expect("valid counter definition");
    for collector in [&outcomes, &reconciled] {
        registry
            .register(Box::new(collector.clone()))
            .expect("first registration");
    }
    OrderMetrics {
        outcomes,
        reconciled,
    }
});

/// The process-wide order metrics.
pub fn orders() -> &'static OrderMetrics {
    &METRICS
}
