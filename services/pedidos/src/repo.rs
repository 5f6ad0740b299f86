//! The orders table: every query pedidos runs against it. State changes are
//! conditional on the state they expect, so two drivers of one saga (a slow
//! request and the reconciler) can never both move it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use loja_runtime::db;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{Executor, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::model::{NewOrder, Order, OrderItem, PaymentMethod, PaymentView, Status, Step};

/// The columns [`from_row`] reads, as a literal so queries stay static strings.
macro_rules! columns {
    () => {
        "id, customer_id, status, step, items, total_cents, payment_method, payment_token, \
         payment_id, payment_status, failure, compensation_pending, cancel_requested, \
         created_at, updated_at"
    };
}

const INSERT_ORDER: &str = concat!(
    "INSERT INTO orders (id, customer_id, items, payment_method, payment_token, lease_until) \
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) RETURNING ",
    columns!()
);

const SELECT_ORDER: &str = concat!("SELECT ", columns!(), " FROM orders WHERE id = $1");

const LIST_ORDERS: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM orders \
         WHERE ($1::text IS NULL OR customer_id = $1) \
           AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
         ORDER BY created_at DESC, id DESC LIMIT $4"
);

// The two intermediate saga steps commit asynchronously (`synchronous_commit`
// off for their own transaction, set in the statement itself so that it
// stays one round trip): the commit does not wait for its WAL to reach disk.
// A crash may lose such a step, never anything after it, since every later
// synchronous commit flushes the WAL before it; the reconciler then redoes
// the step, and both calls it repeats (estoque's hold, pagamentos' charge)
// are idempotent per order. The order's creation and its outcome stay
// synchronous: a client is only answered once they are on disk.
// Each step returns the order as it now stands, so the saga never reads it again.
const RECORD_RESERVED: &str = concat!(
    "UPDATE orders SET step = 'reserved', items = $2, total_cents = $3, \
             lease_until = now() + make_interval(secs => $4), updated_at = now() \
         FROM (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous_commit \
         WHERE id = $1 AND status = 'pending' AND step = 'created' RETURNING ",
    columns!()
);

const RECORD_CHARGED: &str = concat!(
    "UPDATE orders SET step = 'charged', payment_id = $2, payment_status = 'approved', \
             lease_until = now() + make_interval(secs => $3), updated_at = now() \
         FROM (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous_commit \
         WHERE id = $1 AND status = 'pending' AND step = 'reserved' RETURNING ",
    columns!()
);

const FINISH: &str = concat!(
    "UPDATE orders SET status = $2, step = 'done', failure = $3, \
             payment_id = COALESCE($4, payment_id), payment_status = COALESCE($5, payment_status), \
             compensation_pending = $6, updated_at = now() \
         WHERE id = $1 AND status = 'pending' RETURNING ",
    columns!()
);

const RENEW_LEASE: &str = "UPDATE orders SET lease_until = now() + make_interval(secs => $2) \
     WHERE id = $1 AND status = 'pending'";

const SET_COMPENSATION: &str = "UPDATE orders SET compensation_pending = $2, \
             payment_id = COALESCE($3, payment_id), payment_status = COALESCE($4, payment_status), \
             updated_at = CASE WHEN $2 THEN updated_at ELSE now() END \
         WHERE id = $1";

const REQUEST_CANCEL: &str = "UPDATE orders SET cancel_requested = true, \
             lease_until = now() + make_interval(secs => $2) \
         WHERE id = $1 AND status = 'confirmed'";

const FINISH_CANCEL: &str = concat!(
    "UPDATE orders SET status = 'cancelled', cancel_requested = false, \
             payment_status = CASE WHEN payment_id IS NULL THEN payment_status ELSE 'refunded' END, \
             updated_at = now() \
         WHERE id = $1 AND status = 'confirmed' RETURNING ",
    columns!()
);

const CLAIM_UNFINISHED: &str = "UPDATE orders SET lease_until = now() + make_interval(secs => $2) \
         WHERE id IN ( \
             SELECT id FROM orders \
             WHERE (status = 'pending' OR compensation_pending OR cancel_requested) \
               AND lease_until < now() \
               AND (status <> 'pending' OR updated_at < now() - make_interval(secs => $1)) \
             ORDER BY updated_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING id";

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn from_row(row: &PgRow) -> Result<Order, sqlx::Error> {
    let decode = |col: &str, what: &str| sqlx::Error::ColumnDecode {
        index: col.to_owned(),
        source: format!("unexpected {what}").into(),
    };
    let status: String = row.try_get("status")?;
    let step: String = row.try_get("step")?;
    let method: String = row.try_get("payment_method")?;
    let items: Value = row.try_get("items")?;
    let payment_id: Option<String> = row.try_get("payment_id")?;
    let payment_status: Option<String> = row.try_get("payment_status")?;
    let payment_method = match method.as_str() {
        "card" => PaymentMethod::Card,
        "pix" => PaymentMethod::Pix,
        _ => return Err(decode("payment_method", "payment method")),
    };
    Ok(Order {
        id: row.try_get("id")?,
        customer_id: row.try_get("customer_id")?,
        status: Status::parse(&status).ok_or_else(|| decode("status", "status"))?,
        step: Step::parse(&step).ok_or_else(|| decode("step", "step"))?,
        items: serde_json::from_value(items).map_err(|e| sqlx::Error::ColumnDecode {
            index: "items".into(),
            source: e.into(),
        })?,
        total_cents: row.try_get("total_cents")?,
        payment: payment_id.map(|id| PaymentView {
            id,
            status: payment_status.unwrap_or_default(),
            method: payment_method,
        }),
        failure: row.try_get("failure")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        payment_method,
        payment_token: row.try_get("payment_token")?,
        compensation_pending: row.try_get("compensation_pending")?,
        cancel_requested: row.try_get("cancel_requested")?,
    })
}

/// Stores a new `pending` order, leased to its caller for `lease`.
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    new: &NewOrder,
    lease: Duration,
) -> Result<Order, sqlx::Error> {
    let items: Vec<OrderItem> = new
        .items
        .iter()
        .map(|i| OrderItem {
            sku: i.sku.clone(),
            quantity: i.quantity,
            unit_price_cents: None,
        })
        .collect();
    db::instrument(
        INSERT_ORDER,
        sqlx::query(INSERT_ORDER)
            .bind(id)
            .bind(&new.customer_id)
            .bind(serde_json::to_value(&items).unwrap_or_default())
            .bind(new.payment.method.as_str())
            .bind(new.payment.token.as_deref())
            .bind(secs(lease))
            .fetch_one(&mut **tx),
    )
    .await
    .and_then(|row| from_row(&row))
}

/// The order with that id.
pub async fn get<'e>(
    db: impl Executor<'e, Database = Postgres>,
    id: Uuid,
) -> Result<Option<Order>, sqlx::Error> {
    let row = db::instrument(
        SELECT_ORDER,
        sqlx::query(SELECT_ORDER).bind(id).fetch_optional(db),
    )
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Where a listing page starts: after the order with this creation time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    /// The opaque form handed to clients: `<unix micros>.<uuid>`.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        )
    }

    /// Parses what [`Cursor::encode`] produced; `None` for anything else.
    pub fn decode(s: &str) -> Option<Cursor> {
        let (micros, id) = s.split_once('.')?;
        let created_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        // Every order was created in years PostgreSQL can store; a cursor
        // beyond them was made up, and the database would refuse it.
        if !(1..=9999).contains(&chrono::Datelike::year(&created_at)) {
            return None;
        }
        Some(Cursor {
            created_at,
            id: Uuid::try_parse(id).ok()?,
        })
    }
}

/// One page of orders, newest first, optionally of one customer; fetches one
/// more than `limit` so the caller knows whether another page exists.
pub async fn list(
    db: &PgPool,
    customer_id: Option<&str>,
    limit: i64,
    after: Option<Cursor>,
) -> Result<Vec<Order>, sqlx::Error> {
    let rows = db::instrument(
        LIST_ORDERS,
        sqlx::query(LIST_ORDERS)
            .bind(customer_id)
            .bind(after.map(|c| c.created_at))
            .bind(after.map(|c| c.id))
            .bind(limit + 1)
            .fetch_all(db),
    )
    .await?;
    rows.iter().map(from_row).collect()
}

/// Records the hold: prices from estoque, the total, and step `reserved`.
/// The order as it now stands, or `None` when it is no longer `pending` at
/// step `created`.
pub async fn record_reserved(
    db: &PgPool,
    id: Uuid,
    items: &[OrderItem],
    total_cents: i64,
    lease: Duration,
) -> Result<Option<Order>, sqlx::Error> {
    let row = db::instrument(
        RECORD_RESERVED,
        sqlx::query(RECORD_RESERVED)
            .bind(id)
            .bind(serde_json::to_value(items).unwrap_or_default())
            .bind(total_cents)
            .bind(secs(lease))
            .fetch_optional(db),
    )
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Records the approved payment and step `charged`. The order as it now
/// stands, or `None` when it is no longer `pending` at step `reserved`.
pub async fn record_charged(
    db: &PgPool,
    id: Uuid,
    payment_id: &str,
    lease: Duration,
) -> Result<Option<Order>, sqlx::Error> {
    let row = db::instrument(
        RECORD_CHARGED,
        sqlx::query(RECORD_CHARGED)
            .bind(id)
            .bind(payment_id)
            .bind(secs(lease))
            .fetch_optional(db),
    )
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Extends the lease of a `pending` order by `lease` from now.
pub async fn renew_lease(db: &PgPool, id: Uuid, lease: Duration) -> Result<(), sqlx::Error> {
    db::instrument(
        RENEW_LEASE,
        sqlx::query(RENEW_LEASE)
            .bind(id)
            .bind(secs(lease))
            .execute(db),
    )
    .await?;
    Ok(())
}

/// How a saga ended, as it is written to the order.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    pub failure: Option<Value>,
    /// The payment as it stands after the outcome (a declined one, say).
    pub payment: Option<(String, String)>,
    pub compensation_pending: bool,
}

/// Moves a `pending` order to its outcome. Returns the updated order, or
/// `None` when someone else already finished it.
pub async fn finish(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    outcome: &Outcome,
) -> Result<Option<Order>, sqlx::Error> {
    let (payment_id, payment_status) = outcome.payment.clone().unzip();
    let row = db::instrument(
        FINISH,
        sqlx::query(FINISH)
            .bind(id)
            .bind(outcome.status.as_str())
            .bind(&outcome.failure)
            .bind(payment_id)
            .bind(payment_status)
            .bind(outcome.compensation_pending)
            .fetch_optional(&mut **tx),
    )
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Marks a compensation as settled (or still pending).
pub async fn set_compensation(
    db: &PgPool,
    id: Uuid,
    pending: bool,
    payment: Option<(&str, &str)>,
) -> Result<(), sqlx::Error> {
    let (payment_id, payment_status) = payment.unzip();
    db::instrument(
        SET_COMPENSATION,
        sqlx::query(SET_COMPENSATION)
            .bind(id)
            .bind(pending)
            .bind(payment_id)
            .bind(payment_status)
            .execute(db),
    )
    .await?;
    Ok(())
}

/// Accepts a cancel of a `confirmed` order; true when the order is (now) being cancelled.
pub async fn request_cancel(db: &PgPool, id: Uuid, lease: Duration) -> Result<bool, sqlx::Error> {
    let done = db::instrument(
        REQUEST_CANCEL,
        sqlx::query(REQUEST_CANCEL)
            .bind(id)
            .bind(secs(lease))
            .execute(db),
    )
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Completes a cancel once stock is back and the payment refunded.
pub async fn finish_cancel(db: &PgPool, id: Uuid) -> Result<Option<Order>, sqlx::Error> {
    let row = db::instrument(
        FINISH_CANCEL,
        sqlx::query(FINISH_CANCEL).bind(id).fetch_optional(db),
    )
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Leases up to `limit` orders that need the reconciler: `pending` ones whose
/// last step is older than `after`, and terminal ones with a compensation or
/// cancel still to finish, in every case only once the previous lease lapsed.
/// `SKIP LOCKED` lets several replicas share the work without waiting on
/// each other; the lease keeps the claim after this statement commits.
pub async fn claim_unfinished(
    db: &PgPool,
    after: Duration,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    db::instrument(
        CLAIM_UNFINISHED,
        sqlx::query_scalar(CLAIM_UNFINISHED)
            .bind(secs(after))
            .bind(secs(lease))
            .bind(limit)
            .fetch_all(db),
    )
    .await
}
