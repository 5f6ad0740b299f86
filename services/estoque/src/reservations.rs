//! Internal reservations (`/internal/reservations`), called by pedidos: hold
//! stock for an order, then commit (the sale is final) or release (units go
//! back on sale). Every call is idempotent per `order_id`.
//!
//! Lock order, which keeps concurrent transactions free of deadlocks: a
//! transaction locks at most its own reservation row first, then product rows
//! in byte order of sku. The sweeper never waits for reservation rows.

use std::collections::HashSet;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use loja_runtime::json::Path;
use loja_runtime::{Json, db};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::Refused;
use crate::products::check_sku;
use crate::{AppState, Error};

/// Most distinct skus in one reservation (the order limit).
pub const MAX_ITEMS: usize = 100;
/// Most units of one sku in one reservation (the order limit).
pub const MAX_QUANTITY: i64 = 1000;

/// The reservation routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/internal/reservations", post(reserve))
        .route("/internal/reservations/{order_id}", get(fetch))
        .route("/internal/reservations/{order_id}/commit", post(commit))
        .route("/internal/reservations/{order_id}/release", post(release))
}

/// Where a reservation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Units are taken out of `stock` and wait for commit or release.
    Held,
    /// The sale is final.
    Committed,
    /// The units are back on sale (released by pedidos or by the sweeper).
    Released,
}

impl Status {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Held => "held",
            Status::Committed => "committed",
            Status::Released => "released",
        }
    }

    fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "held" => Ok(Status::Held),
            "committed" => Ok(Status::Committed),
            "released" => Ok(Status::Released),
            other => Err(Error::Database(sqlx::Error::Protocol(format!(
                "unknown reservation status {other:?}"
            )))),
        }
    }
}

/// A reservation as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reservation {
    pub order_id: Uuid,
    pub status: Status,
    /// In byte order of sku.
    pub items: Vec<ReservedItem>,
    /// Sum of `quantity * unit_price_cents`.
    pub total_cents: i64,
    /// When the sweeper releases it if it is still held.
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One line of a reservation, priced when it was held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ReservedItem {
    pub sku: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// Body of `POST /internal/reservations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReservation {
    pub order_id: Uuid,
    pub items: Vec<NewItem>,
}

/// One requested line; prices come from the catalog, never from the caller.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    pub sku: String,
    pub quantity: i64,
}

impl NewReservation {
    /// Checks every rule and returns the items in byte order of sku, the
    /// order in which their rows are locked.
    fn validate(&self) -> Result<Vec<NewItem>, Error> {
        if !(1..=MAX_ITEMS).contains(&self.items.len()) {
            return Err(Error::validation(
                "items",
                format!("must hold 1 to {MAX_ITEMS} items"),
            ));
        }
        let mut seen = HashSet::new();
        for (i, item) in self.items.iter().enumerate() {
            check_sku(&format!("items[{i}].sku"), &item.sku)?;
            if !(1..=MAX_QUANTITY).contains(&item.quantity) {
                return Err(Error::validation(
                    format!("items[{i}].quantity"),
                    format!("must be an integer from 1 to {MAX_QUANTITY}"),
                ));
            }
            if !seen.insert(item.sku.as_str()) {
                return Err(Error::validation(
                    format!("items[{i}].sku"),
                    format!("{} appears more than once", item.sku),
                ));
            }
        }
        let mut items = self.items.clone();
        items.sort_by(|a, b| a.sku.cmp(&b.sku));
        Ok(items)
    }
}

async fn reserve(
    State(state): State<AppState>,
    Json(body): Json<NewReservation>,
) -> Result<impl IntoResponse, Error> {
    let items = body.validate()?;
    let reservation = hold(&state, body.order_id, &items).await?;
    Ok((StatusCode::CREATED, Json(reservation)))
}

/// Holds every item or none. A retry for an order that already has a
/// reservation returns that reservation, whatever its status now.
async fn hold(state: &AppState, order_id: Uuid, items: &[NewItem]) -> Result<Reservation, Error> {
    let mut tx = db::begin(&state.db).await?;
    const CLAIM_ORDER: &str = "INSERT INTO reservations (order_id, status, expires_at)
         VALUES ($1, 'held', now() + make_interval(secs => $2))
         ON CONFLICT (order_id) DO NOTHING";
    // Claiming the order id first makes concurrent retries for one order wait
    // here for the first one, then see its reservation.
    let claimed = db::instrument(
        CLAIM_ORDER,
        sqlx::query(CLAIM_ORDER)
            .bind(order_id)
            .bind(state.service.reservation_ttl.as_secs_f64())
            .execute(&mut *tx),
    )
    .await?
    .rows_affected()
        == 1;
    if !claimed {
        tx.rollback().await?;
        return existing(&state.db, order_id, items).await;
    }

    let skus: Vec<&str> = items.iter().map(|i| i.sku.as_str()).collect();
    const KNOWN_SKUS: &str = "SELECT sku FROM products WHERE sku = ANY($1)";
    let known: HashSet<String> = db::instrument(
        KNOWN_SKUS,
        sqlx::query_scalar(KNOWN_SKUS)
            .bind(&skus)
            .fetch_all(&mut *tx),
    )
    .await?
    .into_iter()
    .collect();
    let unknown: Vec<String> = skus
        .iter()
        .filter(|s| !known.contains(**s))
        .map(|s| s.to_string())
        .collect();
    if !unknown.is_empty() {
        return Err(Error::Service(Refused::UnknownSku(unknown)));
    }

    for item in items {
        const TAKE_UNITS: &str = "UPDATE products SET available = available - $2
             WHERE sku = $1 AND available >= $2
             RETURNING price_cents";
        // The guard `available >= $2` makes overselling impossible: the row
        // lock serializes writers, and a short row simply matches nothing.
        let price: Option<i64> = db::instrument(
            TAKE_UNITS,
            sqlx::query_scalar(TAKE_UNITS)
                .bind(&item.sku)
                .bind(item.quantity)
                .fetch_optional(&mut *tx),
        )
        .await?;
        let Some(price) = price else {
            const AVAILABLE: &str = "SELECT available FROM products WHERE sku = $1";
            let available: i64 = db::instrument(
                AVAILABLE,
                sqlx::query_scalar(AVAILABLE)
                    .bind(&item.sku)
                    .fetch_one(&mut *tx),
            )
            .await?;
            // Dropping `tx` rolls back every unit held so far.
            return Err(Error::Service(Refused::InsufficientStock {
                sku: item.sku.clone(),
                requested: item.quantity,
                available,
            }));
        };
        const INSERT_ITEM: &str =
            "INSERT INTO reservation_items (order_id, sku, quantity, unit_price_cents)
             VALUES ($1, $2, $3, $4)";
        db::instrument(
            INSERT_ITEM,
            sqlx::query(INSERT_ITEM)
                .bind(order_id)
                .bind(&item.sku)
                .bind(item.quantity)
                .bind(price)
                .execute(&mut *tx),
        )
        .await?;
    }
    let reservation = load(&mut tx, order_id).await?;
    tx.commit().await?;
    reservation.ok_or_else(|| not_found(order_id))
}

/// The reservation a retry refers to; a different set of items under the
/// same order id is a caller bug, refused rather than silently ignored.
async fn existing(pool: &PgPool, order_id: Uuid, items: &[NewItem]) -> Result<Reservation, Error> {
    let mut conn = pool.acquire().await?;
    let reservation = load(&mut conn, order_id)
        .await?
        .ok_or_else(|| not_found(order_id))?;
    let same = reservation.items.len() == items.len()
        && reservation
            .items
            .iter()
            .zip(items)
            .all(|(held, asked)| held.sku == asked.sku && held.quantity == asked.quantity);
    if same {
        Ok(reservation)
    } else {
        Err(Error::Conflict(format!(
            "order {order_id} already has a reservation with different items"
        )))
    }
}

async fn fetch(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
) -> Result<Json<Reservation>, Error> {
    let order_id = parse_order_id(&order_id)?;
    let mut conn = state.db.acquire().await?;
    load(&mut conn, order_id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(order_id))
}

async fn commit(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
) -> Result<Json<Reservation>, Error> {
    let order_id = parse_order_id(&order_id)?;
    transition(&state.db, order_id, Status::Committed)
        .await
        .map(Json)
}

async fn release(
    State(state): State<AppState>,
    Path(order_id): Path<String>,
) -> Result<Json<Reservation>, Error> {
    let order_id = parse_order_id(&order_id)?;
    transition(&state.db, order_id, Status::Released)
        .await
        .map(Json)
}

/// Moves a reservation to `target`:
///
/// | now \ call | commit            | release                          |
/// |------------|-------------------|----------------------------------|
/// | held       | committed         | released, units back on sale     |
/// | committed  | unchanged (200)   | released, units back on sale     |
/// | released   | 409 `conflict`    | unchanged (200)                  |
///
/// Releasing a committed reservation is how a cancelled order returns its
/// units; committing a released one would sell units already back on sale.
async fn transition(pool: &PgPool, order_id: Uuid, target: Status) -> Result<Reservation, Error> {
    let mut tx = db::begin(pool).await?;
    const LOCK_RESERVATION: &str = "SELECT status FROM reservations WHERE order_id = $1 FOR UPDATE";
    let status: Option<String> = db::instrument(
        LOCK_RESERVATION,
        sqlx::query_scalar(LOCK_RESERVATION)
            .bind(order_id)
            .fetch_optional(&mut *tx),
    )
    .await?;
    let status = Status::parse(&status.ok_or_else(|| not_found(order_id))?)?;
    match (status, target) {
        (now, target) if now == target => {}
        (Status::Released, _) => {
            return Err(Error::Conflict(format!(
                "the reservation of order {order_id} was released: its units are back on sale"
            )));
        }
        (_, Status::Released) => {
            return_units(&mut tx, &[order_id]).await?;
            set_status(&mut tx, &[order_id], Status::Released).await?;
        }
        (_, _) => set_status(&mut tx, &[order_id], target).await?,
    }
    let reservation = load(&mut tx, order_id).await?;
    tx.commit().await?;
    reservation.ok_or_else(|| not_found(order_id))
}

/// Puts the units of `orders` back on sale, locking products in sku order.
pub(crate) async fn return_units(conn: &mut PgConnection, orders: &[Uuid]) -> Result<(), Error> {
    const HELD_TOTALS: &str = "SELECT sku, sum(quantity)::bigint FROM reservation_items
         WHERE order_id = ANY($1) GROUP BY sku ORDER BY sku";
    let totals: Vec<(String, i64)> = db::instrument(
        HELD_TOTALS,
        sqlx::query_as(HELD_TOTALS)
            .bind(orders)
            .fetch_all(&mut *conn),
    )
    .await?;
    for (sku, quantity) in totals {
        const RETURN_UNITS: &str = "UPDATE products SET available = available + $2 WHERE sku = $1";
        db::instrument(
            RETURN_UNITS,
            sqlx::query(RETURN_UNITS)
                .bind(sku)
                .bind(quantity)
                .execute(&mut *conn),
        )
        .await?;
    }
    Ok(())
}

/// Sets the status of `orders`, whose rows the caller has locked.
pub(crate) async fn set_status(
    conn: &mut PgConnection,
    orders: &[Uuid],
    status: Status,
) -> Result<(), Error> {
    const SET_STATUS: &str =
        "UPDATE reservations SET status = $2, updated_at = now() WHERE order_id = ANY($1)";
    db::instrument(
        SET_STATUS,
        sqlx::query(SET_STATUS)
            .bind(orders)
            .bind(status.as_str())
            .execute(conn),
    )
    .await?;
    Ok(())
}

/// status, expires_at, created_at, updated_at of a reservation row.
type Head = (String, DateTime<Utc>, DateTime<Utc>, DateTime<Utc>);

async fn load(conn: &mut PgConnection, order_id: Uuid) -> Result<Option<Reservation>, Error> {
    const FIND_RESERVATION: &str =
        "SELECT status, expires_at, created_at, updated_at FROM reservations WHERE order_id = $1";
    let head: Option<Head> = db::instrument(
        FIND_RESERVATION,
        sqlx::query_as(FIND_RESERVATION)
            .bind(order_id)
            .fetch_optional(&mut *conn),
    )
    .await?;
    let Some((status, expires_at, created_at, updated_at)) = head else {
        return Ok(None);
    };
    const FIND_ITEMS: &str = "SELECT sku, quantity, unit_price_cents FROM reservation_items
         WHERE order_id = $1 ORDER BY sku";
    let items: Vec<ReservedItem> = db::instrument(
        FIND_ITEMS,
        sqlx::query_as(FIND_ITEMS)
            .bind(order_id)
            .fetch_all(&mut *conn),
    )
    .await?;
    let total_cents = items.iter().map(|i| i.quantity * i.unit_price_cents).sum();
    Ok(Some(Reservation {
        order_id,
        status: Status::parse(&status)?,
        items,
        total_cents,
        expires_at,
        created_at,
        updated_at,
    }))
}

/// A path segment that is not a UUID names no reservation.
fn parse_order_id(raw: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(raw).map_err(|_| Error::NotFound(format!("no reservation for order {raw}")))
}

fn not_found(order_id: Uuid) -> Error {
    Error::NotFound(format!("no reservation for order {order_id}"))
}
