//! Crash recovery: a background loop that finishes or compensates every order
//! nobody is driving any more. Safe with several replicas: orders are claimed
//! with `FOR UPDATE SKIP LOCKED` and a lease, so each is worked on by one.

use std::time::Duration;

use loja_runtime::tasks;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::Error;
use crate::idempotency;
use crate::metrics;
use crate::model::Status;
use crate::repo;
use crate::saga::Saga;

/// Orders claimed per query.
const BATCH: i64 = 16;

/// What the reconciler needs to know.
#[derive(Clone)]
pub struct Reconciler {
    pub saga: Saga,
    /// A pending order whose last step is older than this is taken over.
    pub after: Duration,
    /// Time between passes.
    pub interval: Duration,
    /// Idempotency keys older than this many hours are purged.
    pub idempotency_ttl_hours: u32,
}

impl Reconciler {
    /// Runs a pass now and then one every `interval`, until `shutdown`
    /// completes. A pass cut short by shutdown is harmless: every step it
    /// takes is recorded and idempotent, and its leases lapse for the next
    /// replica (or the next start) to resume.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let this = &self;
        tasks::every(self.interval, shutdown, move || async move {
            if let Err(err) = this.pass().await {
                tracing::warn!(error = %err, "reconciler pass failed; retrying next tick");
            }
        })
        .await;
    }

    /// One pass: purge expired idempotency keys, then claim and settle
    /// unfinished orders until none is left. Returns how many were handled.
    pub async fn pass(&self) -> Result<usize, Error> {
        let purged = idempotency::purge(&self.saga.db, self.idempotency_ttl_hours).await?;
        if purged > 0 {
            tracing::info!(purged, "expired idempotency keys purged");
        }
        let mut handled = 0;
        loop {
            // Settling or cancelling makes up to three calls without renewing the lease.
            let lease = self.saga.lease * 3;
            let ids = repo::claim_unfinished(&self.saga.db, self.after, lease, BATCH).await?;
            if ids.is_empty() {
                return Ok(handled);
            }
            handled += ids.len();
            // The batch runs concurrently so that every claimed order is worked
            // on well within the lease its claim took.
            let work = ids.into_iter().map(|id| {
                // Each order gets its own trace, so its upstream calls and SQL group together.
                let span = tracing::info_span!("reconcile", order_id = %id);
                async move {
                    if let Err(err) = self.reconcile(id).await {
                        tracing::warn!(order_id = %id, error = %err, "could not reconcile order");
                    }
                }
                .instrument(span)
            });
            futures::future::join_all(work).await;
        }
    }

    async fn reconcile(&self, id: Uuid) -> Result<(), Error> {
        let Some(order) = repo::get(&self.saga.db, id).await? else {
            return Ok(());
        };
        let action = if order.status == Status::Pending {
            "resumed"
        } else if order.cancel_requested {
            "cancel_finished"
        } else {
            "settled"
        };
        metrics::orders()
            .reconciled
            .with_label_values(&[action])
            .inc();
        if order.status == Status::Pending {
            tracing::info!(order_id = %id, step = order.step.as_str(), "resuming an abandoned order");
            let order = self.saga.run(id).await?;
            tracing::info!(order_id = %id, status = order.status.as_str(), "abandoned order finished");
        } else if order.status == Status::Confirmed && order.cancel_requested {
            tracing::info!(order_id = %id, "finishing an interrupted cancel");
            if let Err(err) = self.saga.finish_cancel(&order).await {
                tracing::warn!(order_id = %id, error = %err, "cancel still cannot finish");
            }
        } else if order.compensation_pending {
            self.saga.settle(&order).await?;
        }
        Ok(())
    }
}
