//! Typed calls to estoque and pagamentos. Every call is idempotent per order
//! (or payment) id, so each is retried a bounded number of times on a
//! connection failure, a timeout or a 5xx before the saga gives up on it.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode};
use loja_runtime::Problem;
use loja_runtime::upstream::{self, Upstream};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::model::PaymentMethod;

/// Why an upstream call gave no usable answer. The text of each variant is
/// the cause, for the logs (it may name addresses and repeat what the
/// service answered); a client sees only [`CallError::detail`].
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The service could not be reached, or answered that it is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// The service did not answer within the timeout: what it did is unknown.
    #[error("{0}")]
    Timeout(String),
    /// The service answered something this contract does not allow.
    #[error("{0}")]
    Unexpected(String),
    /// The service refused the request as invalid (a 4xx this contract does
    /// not expect): what the client sent is at fault, not the platform.
    #[error("{0}")]
    Refused(String),
}

impl CallError {
    /// The problem code an order that failed on this gets.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::Timeout(_) => "upstream_timeout",
            CallError::Unavailable(_) | CallError::Unexpected(_) => "upstream_unavailable",
            CallError::Refused(_) => "validation_failed",
        }
    }

    /// What a client is told, written for it: never the cause.
    pub fn detail(&self) -> &'static str {
        match self {
            CallError::Timeout(_) => "a service this order needs did not answer in time",
            CallError::Unavailable(_) | CallError::Unexpected(_) => {
                "a service this order needs is unavailable; try again shortly"
            }
            CallError::Refused(_) => "the order was refused as invalid by a service it needs",
        }
    }

    /// The problem for this failure (its cause is logged here).
    pub fn problem(&self) -> Problem {
        tracing::warn!(error = %self, "upstream call failed");
        let detail = self.detail();
        match self {
            CallError::Timeout(_) => Problem::timeout(detail),
            CallError::Unavailable(_) | CallError::Unexpected(_) => Problem::unavailable(detail),
            CallError::Refused(_) => Problem::validation(detail),
        }
    }

    fn retryable(&self) -> bool {
        !matches!(self, CallError::Unexpected(_) | CallError::Refused(_))
    }
}

/// How calls are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries per call, the first included.
    pub attempts: u32,
    /// Pause before the second try; doubled before each further one.
    pub backoff: Duration,
}

impl RetryPolicy {
    /// The longest one call can take with all its tries, given the per-try timeout.
    pub fn budget(&self, timeout: Duration) -> Duration {
        let pauses: Duration = (0..self.attempts.saturating_sub(1))
            .map(|n| self.backoff * 2u32.pow(n))
            .sum();
        timeout * self.attempts + pauses
    }
}

/// One upstream service (all its replicas) reached over HTTP.
#[derive(Clone)]
pub struct Service {
    name: &'static str,
    upstream: Upstream,
    retry: RetryPolicy,
}

impl Service {
    /// A client for `name` over `upstream`.
    pub fn new(name: &'static str, upstream: Upstream, retry: RetryPolicy) -> Self {
        Service {
            name,
            upstream,
            retry,
        }
    }

    /// Sends one request, retrying transient failures. Returns the status and
    /// JSON body of the first non-5xx answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), CallError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send(method.clone(), path, body).await;
            match result {
                Err(err) if err.retryable() && attempt < self.retry.attempts => {
                    tracing::debug!(service = self.name, path, attempt, error = %err, "retrying");
                    tokio::time::sleep(self.retry.backoff * 2u32.pow(attempt - 1)).await;
                }
                other => return other,
            }
        }
    }

    /// One try over the pooled, round-robin [`Upstream`] (which also carries
    /// the trace context). A 5xx counts as a failure to retry.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), CallError> {
        let sent = match (method, body) {
            (Method::POST, Some(body)) => self.upstream.post_json(path, body).await,
            (Method::GET, None) => self.upstream.get(path).await,
            (method, _) => {
                let request = Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Bytes::new())
                    .map_err(|e| CallError::Unexpected(e.to_string()))?;
                self.upstream.send(request).await
            }
        };
        let response = sent.map_err(|err| {
            if err.is_timeout() {
                CallError::Timeout(err.to_string())
            } else {
                CallError::Unavailable(err.to_string())
            }
        })?;
        let status = response.status();
        let body = upstream::json::<Value>(&response).unwrap_or(Value::Null);
        match status {
            StatusCode::GATEWAY_TIMEOUT => Err(CallError::Timeout(format!(
                "{} answered {status}: {body}",
                self.name
            ))),
            s if s.is_server_error() => Err(CallError::Unavailable(format!(
                "{} answered {status}: {body}",
                self.name
            ))),
            _ => Ok((status, body)),
        }
    }
}

/// An answer outside the contract: a 4xx is the request's fault (a client
/// error that must stay one), anything else the service's.
fn unexpected(service: &str, what: &str, status: StatusCode, body: &Value) -> CallError {
    let cause = format!("{service} answered {what} with {status}: {body}");
    if status.is_client_error() {
        CallError::Refused(cause)
    } else {
        CallError::Unexpected(cause)
    }
}

/// What estoque did with a reservation request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reserve {
    /// Every item is held; the unit price of each sku.
    Held(HashMap<String, i64>),
    /// Not enough stock of `sku`; nothing is held.
    InsufficientStock { sku: String, detail: String },
    /// `sku` is not in the catalog; nothing is held.
    UnknownSku { sku: String, detail: String },
}

/// What estoque did with a commit.
#[derive(Debug, Clone, PartialEq)]
pub enum Commit {
    /// The sale is final.
    Done,
    /// The hold is gone (released, by expiry or a compensation): nothing to commit.
    NotHeld(String),
}

#[derive(Deserialize)]
struct ReservationBody {
    status: String,
    items: Vec<ReservedItem>,
}

#[derive(Deserialize)]
struct ReservedItem {
    sku: String,
    unit_price_cents: i64,
}

/// estoque's internal reservation API.
#[derive(Clone)]
pub struct Estoque(pub Service);

impl Estoque {
    /// `POST /internal/reservations`: holds every item or none. A retry
    /// returns the order's existing reservation.
    pub async fn reserve(
        &self,
        order_id: Uuid,
        items: &[(&str, i64)],
    ) -> Result<Reserve, CallError> {
        let items: Vec<Value> = items
            .iter()
            .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
            .collect();
        let body = json!({"order_id": order_id, "items": items});
        let (status, body) = self
            .0
            .call(Method::POST, "/internal/reservations", Some(&body))
            .await?;
        let problem_sku = || body["sku"].as_str().unwrap_or_default().to_owned();
        let detail = || body["detail"].as_str().unwrap_or_default().to_owned();
        match (status, body["code"].as_str()) {
            (s, _) if s.is_success() => {
                let reservation: ReservationBody = serde_json::from_value(body.clone())
                    .map_err(|_| unexpected("estoque", "a reservation", status, &body))?;
                if reservation.status == "released" {
                    // A reservation for this order existed and was already released:
                    // the units are back on sale, so this order cannot use them.
                    return Err(CallError::Unexpected(format!(
                        "the stock hold of order {order_id} was already released"
                    )));
                }
                Ok(Reserve::Held(
                    reservation
                        .items
                        .into_iter()
                        .map(|i| (i.sku, i.unit_price_cents))
                        .collect(),
                ))
            }
            (StatusCode::CONFLICT, Some("insufficient_stock")) => Ok(Reserve::InsufficientStock {
                sku: problem_sku(),
                detail: detail(),
            }),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_sku")) => Ok(Reserve::UnknownSku {
                sku: problem_sku(),
                detail: detail(),
            }),
            _ => Err(unexpected("estoque", "a reservation", status, &body)),
        }
    }

    /// `POST /internal/reservations/{id}/commit`: the sale is final.
    pub async fn commit(&self, order_id: Uuid) -> Result<Commit, CallError> {
        let path = format!("/internal/reservations/{order_id}/commit");
        let (status, body) = self.0.call(Method::POST, &path, None).await?;
        match status {
            s if s.is_success() => Ok(Commit::Done),
            StatusCode::CONFLICT | StatusCode::NOT_FOUND => Ok(Commit::NotHeld(format!(
                "the stock hold of order {order_id} lapsed before the sale was final"
            ))),
            _ => Err(unexpected("estoque", "a commit", status, &body)),
        }
    }

    /// `POST /internal/reservations/{id}/release`: the units go back on sale,
    /// whether the reservation was held or committed (estoque releases a
    /// committed reservation too; that is how a cancel returns stock). An
    /// order without a reservation has nothing to release.
    pub async fn release(&self, order_id: Uuid) -> Result<(), CallError> {
        let path = format!("/internal/reservations/{order_id}/release");
        let (status, body) = self.0.call(Method::POST, &path, None).await?;
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Ok(()),
            _ => Err(unexpected("estoque", "a release", status, &body)),
        }
    }

    /// Returns the units of an order whose reservation may be committed: the
    /// same idempotent release (named apart so callers say what they mean).
    pub async fn return_stock(&self, order_id: Uuid) -> Result<(), CallError> {
        self.release(order_id).await
    }
}

/// What pagamentos did with a charge.
#[derive(Debug, Clone, PartialEq)]
pub enum Charge {
    Approved {
        id: String,
    },
    Declined {
        id: String,
        reason: String,
    },
    /// The order's first payment is in another state (already refunded).
    Other {
        id: String,
        status: String,
    },
}

/// A payment as pagamentos shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Payment {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub decline_reason: Option<String>,
}

#[derive(Deserialize)]
struct PaymentPage {
    items: Vec<Payment>,
}

/// pagamentos' internal payment API.
#[derive(Clone)]
pub struct Pagamentos(pub Service);

fn id_string(v: &Value) -> Value {
    // Payment ids are UUIDs today; keep whatever shape they have as a string.
    match v {
        Value::String(_) => v.clone(),
        other => Value::String(other.to_string()),
    }
}

impl Pagamentos {
    /// `POST /internal/payments`: charges the order once; a retry returns the first payment.
    pub async fn charge(
        &self,
        order_id: Uuid,
        amount_cents: i64,
        method: PaymentMethod,
        token: Option<&str>,
    ) -> Result<Charge, CallError> {
        let mut body =
            json!({"order_id": order_id, "amount_cents": amount_cents, "method": method});
        if let Some(token) = token {
            body["token"] = token.into();
        }
        let (status, mut answer) = self
            .0
            .call(Method::POST, "/internal/payments", Some(&body))
            .await?;
        if !status.is_success() {
            return Err(unexpected("pagamentos", "a charge", status, &answer));
        }
        answer["id"] = id_string(&answer["id"]);
        let payment: Payment = serde_json::from_value(answer.clone())
            .map_err(|_| unexpected("pagamentos", "a charge", status, &answer))?;
        Ok(match payment.status.as_str() {
            "approved" => Charge::Approved { id: payment.id },
            "declined" => Charge::Declined {
                id: payment.id,
                reason: payment.decline_reason.unwrap_or_else(|| "declined".into()),
            },
            _ => Charge::Other {
                id: payment.id,
                status: payment.status,
            },
        })
    }

    /// `POST /internal/payments/{id}/refund`; idempotent.
    pub async fn refund(&self, payment_id: &str) -> Result<(), CallError> {
        let path = format!("/internal/payments/{payment_id}/refund");
        let (status, body) = self.0.call(Method::POST, &path, None).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(unexpected("pagamentos", "a refund", status, &body))
        }
    }

    /// `GET /api/v1/payments?order_id=`: every payment recorded for the order.
    pub async fn find_by_order(&self, order_id: Uuid) -> Result<Vec<Payment>, CallError> {
        let path = format!("/api/v1/payments?order_id={order_id}");
        let (status, mut body) = self.0.call(Method::GET, &path, None).await?;
        if !status.is_success() {
            return Err(unexpected("pagamentos", "a payment lookup", status, &body));
        }
        if let Some(items) = body["items"].as_array_mut() {
            for item in items {
                item["id"] = id_string(&item["id"]);
            }
        }
        let page: PaymentPage = serde_json::from_value(body.clone())
            .map_err(|_| unexpected("pagamentos", "a payment lookup", status, &body))?;
        Ok(page.items)
    }
}
