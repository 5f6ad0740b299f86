//! The order saga: reserve stock, charge, commit, and the compensations when
//! a step fails. Every step is an idempotent call keyed by the order id and is
//! recorded in the order's `step` before the next one starts, so the request
//! that began a saga and the reconciler that resumes it after a crash run the
//! same code and converge on the same outcome.

use std::time::Duration;

use axum::http::StatusCode;
use loja_runtime::problem::Code;
use loja_runtime::{Problem, db};
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::clients::{CallError, Charge, Commit, Estoque, Pagamentos, Reserve};
use crate::error::Error;
use crate::idempotency;
use crate::metrics;
use crate::model::{Order, OrderItem, Status, Step};
use crate::repo::{self, Outcome};

/// How long after an order failed with a charge of unknown outcome the
/// reconciler keeps looking for that charge (to refund it) before it settles.
pub const UNRESOLVED_CHARGE_HORIZON: Duration = Duration::from_secs(60);

/// Runs sagas against the order table and the two upstream services.
#[derive(Clone)]
pub struct Saga {
    pub db: PgPool,
    pub estoque: Estoque,
    pub pagamentos: Pagamentos,
    /// How long a driver owns an order after each recorded step (and before
    /// each compensating call): longer than one upstream call with all its
    /// retries, so the reconciler never steps in while a live request is
    /// still waiting on estoque or pagamentos.
    pub lease: Duration,
}

/// What one step did to the order.
enum Progress {
    /// The step was recorded; go on with the next one from the order as it
    /// now stands.
    Next(Box<Order>),
    /// The order reached its outcome.
    Finished(Box<Order>),
    /// Someone else moved the order first; they drive it now.
    Lost,
}

fn failure(code: &str, detail: impl Into<String>) -> Value {
    json!({"code": code, "detail": detail.into()})
}

/// The stored failure of an order: the stable code and the detail a client
/// may read; the cause went to the logs.
fn call_failure(err: &CallError) -> Value {
    failure(err.code(), err.detail())
}

impl Saga {
    /// Drives the order with this id, as stored, until it has an outcome (or
    /// someone else took it over) and returns it as it stands.
    pub async fn run(&self, id: Uuid) -> Result<Order, Error> {
        let order = repo::get(&self.db, id).await?.ok_or(Error::NotFound)?;
        self.drive(order).await
    }

    /// Drives `order`, just read or written, until it has an outcome (or
    /// someone else took it over) and returns it as it stands. Every step
    /// hands over the order as its update returned it: nothing is re-read.
    pub async fn drive(&self, mut order: Order) -> Result<Order, Error> {
        loop {
            if order.status != Status::Pending {
                return Ok(order);
            }
            let progress = match order.step {
                Step::Created => self.reserve(&order).await?,
                Step::Reserved => self.charge(&order).await?,
                Step::Charged => self.commit(&order).await?,
                Step::Done => return Ok(order),
            };
            match progress {
                Progress::Next(next) => order = *next,
                Progress::Finished(order) => return Ok(*order),
                Progress::Lost => {
                    return repo::get(&self.db, order.id).await?.ok_or(Error::NotFound);
                }
            }
        }
    }

    async fn reserve(&self, order: &Order) -> Result<Progress, Error> {
        let lines: Vec<(&str, i64)> = order
            .items
            .iter()
            .map(|i| (i.sku.as_str(), i.quantity))
            .collect();
        match self.estoque.reserve(order.id, &lines).await {
            Ok(Reserve::Held(prices)) => {
                let mut items = Vec::with_capacity(order.items.len());
                let mut total: i64 = 0;
                for item in &order.items {
                    let price = prices.get(&item.sku).copied();
                    let line = price.and_then(|p| p.checked_mul(item.quantity));
                    let Some(sum) = line.and_then(|l| total.checked_add(l)) else {
                        // estoque answered without a usable price: undo the hold and fail.
                        let released = self.release_hold(order.id).await;
                        let err = CallError::Unexpected(format!(
                            "estoque gave no usable price for {}",
                            item.sku
                        ));
                        return self.failed(order, &err, !released, None).await;
                    };
                    total = sum;
                    items.push(OrderItem {
                        unit_price_cents: price,
                        ..item.clone()
                    });
                }
                let recorded =
                    repo::record_reserved(&self.db, order.id, &items, total, self.lease).await?;
                Ok(recorded.map_or(Progress::Lost, |o| Progress::Next(Box::new(o))))
            }
            Ok(Reserve::InsufficientStock { sku, detail }) => {
                let mut f = failure("insufficient_stock", detail);
                f["sku"] = sku.into();
                self.finish(order.id, Status::Rejected, Some(f), None, false)
                    .await
            }
            Ok(Reserve::UnknownSku { sku, detail }) => {
                let mut f = failure("unknown_sku", detail);
                f["sku"] = sku.into();
                self.finish(order.id, Status::Rejected, Some(f), None, false)
                    .await
            }
            Err(err) => {
                // The hold may exist (a timeout is no proof it does not), or be
                // made later by a request estoque still has queued: release it
                // now, and leave the order for the reconciler to release again.
                self.release_hold(order.id).await;
                self.failed(order, &err, true, None).await
            }
        }
    }

    async fn charge(&self, order: &Order) -> Result<Progress, Error> {
        let amount = order.total_cents.unwrap_or_default();
        let charge = self
            .pagamentos
            .charge(
                order.id,
                amount,
                order.payment_method,
                order.payment_token.as_deref(),
            )
            .await;
        match charge {
            Ok(Charge::Approved { id }) => {
                let recorded = repo::record_charged(&self.db, order.id, &id, self.lease).await?;
                Ok(recorded.map_or(Progress::Lost, |o| Progress::Next(Box::new(o))))
            }
            Ok(Charge::Declined { id, reason }) => {
                let released = self.release_hold(order.id).await;
                let mut f = failure(
                    "payment_declined",
                    format!("the payment was declined: {reason}"),
                );
                f["decline_reason"] = reason.into();
                self.finish(
                    order.id,
                    Status::PaymentDeclined,
                    Some(f),
                    Some((id, "declined".into())),
                    !released,
                )
                .await
            }
            Ok(Charge::Other { id, status }) => {
                // The first payment of this order was already refunded by an
                // earlier compensation: the order cannot go on.
                let released = self.release_hold(order.id).await;
                let err = CallError::Unexpected(format!("the order's payment is already {status}"));
                self.failed(order, &err, !released, Some((id, status)))
                    .await
            }
            Err(err) => {
                // Whether pagamentos charged is unknown: release the hold now and
                // leave the order for the reconciler to find and refund a charge.
                self.release_hold(order.id).await;
                self.failed(order, &err, true, None).await
            }
        }
    }

    async fn commit(&self, order: &Order) -> Result<Progress, Error> {
        let payment_id = order.payment.as_ref().map(|p| p.id.clone());
        let result = self.estoque.commit(order.id).await;
        if let Ok(Commit::Done) = result {
            return self
                .finish(order.id, Status::Confirmed, None, None, false)
                .await;
        }
        let err = match result {
            Ok(Commit::NotHeld(detail)) => CallError::Unexpected(detail),
            Err(err) => err,
            Ok(Commit::Done) => unreachable!("handled above"),
        };
        // The sale cannot be completed: give the stock back (the commit may
        // have happened if it timed out) and refund the approved charge.
        self.renew_lease(order.id).await;
        let stock_back = self.estoque.return_stock(order.id).await.is_ok();
        self.renew_lease(order.id).await;
        let refunded = match &payment_id {
            Some(id) => self.pagamentos.refund(id).await.is_ok(),
            None => true,
        };
        let payment = payment_id
            .filter(|_| refunded)
            .map(|id| (id, "refunded".to_owned()));
        self.failed(order, &err, !(stock_back && refunded), payment)
            .await
    }

    /// Keeps the order leased to this driver for one more call, so the
    /// reconciler does not step in while a compensation is under way.
    async fn renew_lease(&self, id: Uuid) {
        if let Err(err) = repo::renew_lease(&self.db, id, self.lease).await {
            tracing::warn!(order_id = %id, error = %err, "could not renew the lease");
        }
    }

    /// Releases the order's hold (if any); true when estoque confirmed it.
    async fn release_hold(&self, id: Uuid) -> bool {
        self.renew_lease(id).await;
        self.estoque.release(id).await.is_ok()
    }

    async fn failed(
        &self,
        order: &Order,
        err: &CallError,
        compensation_pending: bool,
        payment: Option<(String, String)>,
    ) -> Result<Progress, Error> {
        tracing::warn!(order_id = %order.id, error = %err, "order failed");
        self.finish(
            order.id,
            Status::Failed,
            Some(call_failure(err)),
            payment,
            compensation_pending,
        )
        .await
    }

    /// Records the outcome and, in the same transaction, the response of the
    /// order's Idempotency-Key, so a replay answers what this request answers.
    async fn finish(
        &self,
        id: Uuid,
        status: Status,
        failure: Option<Value>,
        payment: Option<(String, String)>,
        compensation_pending: bool,
    ) -> Result<Progress, Error> {
        let outcome = Outcome {
            status,
            failure,
            payment,
            compensation_pending,
        };
        let mut tx = db::begin(&self.db).await?;
        let Some(order) = repo::finish(&mut tx, id, &outcome).await? else {
            tx.rollback().await?;
            return Ok(Progress::Lost);
        };
        let (status, body) = response_for(&order);
        idempotency::complete(&mut tx, id, status, &body).await?;
        tx.commit().await?;
        tracing::info!(order_id = %id, status = order.status.as_str(), "order finished");
        metrics::orders()
            .outcomes
            .with_label_values(&[order.status.as_str()])
            .inc();
        Ok(Progress::Finished(Box::new(order)))
    }

    /// Cancels a confirmed order: stock back to estoque, payment refunded.
    /// A cancelled order is returned as it is; other states are a conflict.
    pub async fn cancel(&self, id: Uuid) -> Result<Order, Error> {
        let order = repo::get(&self.db, id).await?.ok_or(Error::NotFound)?;
        match order.status {
            Status::Cancelled => return Ok(order),
            Status::Confirmed => {}
            Status::Pending => {
                return Err(Error::Conflict(
                    "the order is still being placed; it can be cancelled once confirmed".into(),
                ));
            }
            other => {
                return Err(Error::Conflict(format!(
                    "a {} order cannot be cancelled",
                    other.as_str()
                )));
            }
        }
        if !order.cancel_requested && !repo::request_cancel(&self.db, id, self.lease).await? {
            // It changed under us (a concurrent cancel finished): answer what it is now.
            return Box::pin(self.cancel(id)).await;
        }
        self.finish_cancel(&order)
            .await
            .map_err(|err| Error::Upstream(err.problem().with("order_id", id.to_string())))
    }

    /// Gives the stock back and refunds the charge of an order whose cancel
    /// was accepted, then marks it cancelled. Both calls are idempotent, so a
    /// repeated or resumed cancel is harmless.
    pub async fn finish_cancel(&self, order: &Order) -> Result<Order, CallError> {
        self.estoque.return_stock(order.id).await?;
        if let Some(payment) = &order.payment {
            self.pagamentos.refund(&payment.id).await?;
        }
        let done = repo::finish_cancel(&self.db, order.id)
            .await
            .map_err(|e| CallError::Unavailable(format!("database: {e}")))?;
        match done {
            Some(order) => {
                tracing::info!(order_id = %order.id, "order cancelled");
                metrics::orders()
                    .outcomes
                    .with_label_values(&[order.status.as_str()])
                    .inc();
                Ok(order)
            }
            None => repo::get(&self.db, order.id)
                .await
                .ok()
                .flatten()
                .ok_or_else(|| CallError::Unavailable("the order vanished".into())),
        }
    }

    /// Settles the compensation of a finished order that could not be
    /// completed at the time: gives back any stock still held and refunds any
    /// approved charge pagamentos recorded for it.
    pub async fn settle(&self, order: &Order) -> Result<(), Error> {
        let stock_back = match order.status {
            Status::Failed | Status::PaymentDeclined => {
                self.estoque.return_stock(order.id).await.is_ok()
            }
            _ => true,
        };
        let mut payment: Option<(String, String)> = None;
        let charges_settled = match self.pagamentos.find_by_order(order.id).await {
            Ok(found) => {
                let mut all_refunded = true;
                for p in found {
                    if p.status == "approved" {
                        if self.pagamentos.refund(&p.id).await.is_ok() {
                            payment = Some((p.id, "refunded".into()));
                        } else {
                            all_refunded = false;
                        }
                    } else {
                        payment = Some((p.id, p.status));
                    }
                }
                all_refunded
            }
            Err(_) => false,
        };
        // A charge still in flight at pagamentos may appear a little later:
        // keep looking for a while before calling the order settled.
        let old_enough = chrono::Utc::now() - order.updated_at
            > chrono::Duration::from_std(UNRESOLVED_CHARGE_HORIZON).unwrap_or_default();
        let settled = stock_back && charges_settled && (payment.is_some() || old_enough);
        let payment = payment.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
        repo::set_compensation(&self.db, order.id, !settled, payment).await?;
        Ok(())
    }
}

/// The response an order's outcome gets: 201 with the order when confirmed,
/// otherwise the outcome's problem naming the order. This is what the first
/// request answers and what an Idempotency-Key replay repeats.
pub fn response_for(order: &Order) -> (StatusCode, Value) {
    let order_json = || serde_json::to_value(order).unwrap_or_default();
    match order.status {
        Status::Confirmed => (StatusCode::CREATED, order_json()),
        Status::Cancelled => (StatusCode::OK, order_json()),
        // Another driver still owns the saga; the order is accepted, not finished.
        Status::Pending => (StatusCode::ACCEPTED, order_json()),
        Status::Rejected | Status::PaymentDeclined | Status::Failed => {
            let problem = outcome_problem(order);
            let status = problem.status;
            (status, serde_json::to_value(problem).unwrap_or_default())
        }
    }
}

fn outcome_problem(order: &Order) -> Problem {
    let failure = order.failure.clone().unwrap_or_default();
    let code = failure["code"].as_str().unwrap_or("upstream_unavailable");
    let detail = failure["detail"].as_str().unwrap_or_default().to_owned();
    let (status, code) = match code {
        "insufficient_stock" => (StatusCode::CONFLICT, Code::InsufficientStock),
        "unknown_sku" => (StatusCode::UNPROCESSABLE_ENTITY, Code::UnknownSku),
        "payment_declined" => (StatusCode::PAYMENT_REQUIRED, Code::PaymentDeclined),
        "upstream_timeout" => (StatusCode::GATEWAY_TIMEOUT, Code::UpstreamTimeout),
        "validation_failed" => (StatusCode::UNPROCESSABLE_ENTITY, Code::ValidationFailed),
        _ => (StatusCode::SERVICE_UNAVAILABLE, Code::UpstreamUnavailable),
    };
    let mut problem = Problem::new(status, code, detail).with("order_id", order.id.to_string());
    for key in ["sku", "decline_reason"] {
        if let Some(v) = failure.get(key) {
            problem = problem.with(key, v.clone());
        }
    }
    problem
}
