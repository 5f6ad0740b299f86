//! Payments: charges and refunds for pedidos (`/internal/payments`), public
//! reads (`/api/v1/payments`). A payment exists at most once per order.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::{DateTime, Utc};
use loja_runtime::json::Path;
use loja_runtime::openapi::{self as doc, Invalid, NotFound, Unauthorized, Unavailable};
use loja_runtime::page::{self, Page};
use loja_runtime::{Admin, Json, Problem, Query, db, rules};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::Object;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::processor::{Method, Outcome, decide};
use crate::{AppState, Error};

/// Largest charge accepted, in cents: 100 items × 1000 units × R$ 10 million,
/// the most an order can cost.
pub const MAX_AMOUNT_CENTS: i64 = 100_000_000_000_000;

/// The charges and refunds pedidos asks for; never public.
pub fn internal() -> Router<AppState> {
    Router::new()
        .route("/internal/payments", post(charge))
        .route("/internal/payments/{id}/refund", post(refund))
}

/// The public reads, each documented by the handler it routes to.
pub fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(fetch))
}

/// A cursor this API hands out: the simple form of the last payment's id.
pub const CURSOR_PATTERN: &str = "^[0-9A-Fa-f]{32}$";

fn cursor_schema() -> Object {
    doc::string(32, 32, Some(CURSOR_PATTERN))
}

/// Where a payment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = PaymentStatus)]
pub enum Status {
    Approved,
    Declined,
    Refunded,
}

impl Status {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Approved => "approved",
            Status::Declined => "declined",
            Status::Refunded => "refunded",
        }
    }
}

impl TryFrom<String> for Status {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "approved" => Ok(Status::Approved),
            "declined" => Ok(Status::Declined),
            "refunded" => Ok(Status::Refunded),
            _ => Err(format!("unknown payment status {s:?}")),
        }
    }
}

/// A payment as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
#[schema(example = json!({
    "id": "01938f4e-7c01-7d2a-8b4e-2f6a9c3d1e5b", "order_id": "01938f4e-7b7a-7c3e-9a51-4f0c2d8e6b1a",
    "amount_cents": 9980, "method": "card", "status": "approved", "created_at": "2026-11-29T12:00:00Z"
}))]
pub struct Payment {
    pub id: Uuid,
    /// The order it pays; an order has at most one payment.
    pub order_id: Uuid,
    /// Integer cents (BRL).
    pub amount_cents: i64,
    #[schema(value_type = Method)]
    pub method: String,
    #[sqlx(try_from = "String")]
    pub status: Status,
    /// `card_declined` or `insufficient_funds`; only on declined payments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunded_at: Option<DateTime<Utc>>,
    /// Kept to recognise a retry; never sent back.
    #[serde(skip)]
    #[schema(ignore)]
    pub token: Option<String>,
}

/// The columns of [`Payment`], spliced into queries with `concat!` so every
/// SQL string stays a literal.
macro_rules! columns {
    () => {
        "id, order_id, amount_cents, method, status, decline_reason, created_at, refunded_at, token"
    };
}

/// Body of `POST /internal/payments`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPayment {
    pub order_id: Uuid,
    pub amount_cents: i64,
    pub method: Method,
    #[serde(default)]
    pub token: Option<String>,
}

impl NewPayment {
    fn validate(&self) -> Result<(), Error> {
        if !(0..=MAX_AMOUNT_CENTS).contains(&self.amount_cents) {
            return Err(Error::validation(
                "amount_cents",
                format!("must be an integer from 0 to {MAX_AMOUNT_CENTS}"),
            ));
        }
        match (self.method, self.token.as_deref()) {
            (Method::Card, None) => Err(Error::validation("token", "is required for card")),
            (Method::Card, Some(token)) if !rules::is_card_token(token) => {
                Err(Error::validation("token", rules::CARD_TOKEN_RULE))
            }
            (Method::Pix, Some(_)) => Err(Error::validation("token", "pix takes no token")),
            _ => Ok(()),
        }
    }
}

/// Query of `GET /api/v1/payments`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only the payment of this order; without it, the admin token is needed.
    pub order_id: Option<Uuid>,
    /// Page size, 1 to 200 (50 when absent).
    #[param(schema_with = page::limit_schema)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = cursor_schema)]
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The page size and the id to continue after.
    fn validate(&self) -> Result<(i64, Option<Uuid>), Error> {
        let limit = page::limit(self.limit)?;
        let after = self
            .cursor
            .as_deref()
            .map(|c| Uuid::try_parse(c).map_err(|_| page::bad_cursor()))
            .transpose()?;
        Ok((limit, after))
    }
}

/// Charges once per order. The UNIQUE order_id decides which of several
/// concurrent retries creates the payment; the others read it back.
async fn charge(
    State(state): State<AppState>,
    Json(body): Json<NewPayment>,
) -> Result<impl IntoResponse, Error> {
    body.validate()?;
    let (status, reason) = match decide(body.method, body.token.as_deref()) {
        Outcome::Approved => (Status::Approved, None),
        Outcome::Declined(reason) => (Status::Declined, Some(reason)),
    };
    const INSERT_PAYMENT: &str = concat!(
        "INSERT INTO payments (id, order_id, amount_cents, method, token, status, decline_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (order_id) DO NOTHING
         RETURNING ",
        columns!()
    );
    let created: Option<Payment> = db::instrument(
        INSERT_PAYMENT,
        sqlx::query_as(INSERT_PAYMENT)
            .bind(Uuid::now_v7())
            .bind(body.order_id)
            .bind(body.amount_cents)
            .bind(body.method.as_str())
            .bind(&body.token)
            .bind(status.as_str())
            .bind(reason)
            .fetch_optional(&state.db),
    )
    .await?;
    let payment = match created {
        Some(payment) => payment,
        None => {
            const FIND_BY_ORDER: &str =
                concat!("SELECT ", columns!(), " FROM payments WHERE order_id = $1");
            let first: Payment = db::instrument(
                FIND_BY_ORDER,
                sqlx::query_as(FIND_BY_ORDER)
                    .bind(body.order_id)
                    .fetch_one(&state.db),
            )
            .await?;
            let same = first.amount_cents == body.amount_cents
                && first.method == body.method.as_str()
                && first.token == body.token;
            if !same {
                return Err(Error::Conflict(format!(
                    "order {} was already charged with a different amount, method or token (payment {})",
                    body.order_id, first.id
                )));
            }
            first
        }
    };
    Ok((StatusCode::CREATED, Json(payment)))
}

/// Refunds an approved payment; a refunded one is returned unchanged; a
/// declined one captured nothing, so there is nothing to refund (409).
async fn refund(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Payment>, Error> {
    let id = parse_id(&id)?;
    const REFUND: &str = concat!(
        "UPDATE payments SET status = 'refunded', refunded_at = now()
         WHERE id = $1 AND status = 'approved'
         RETURNING ",
        columns!()
    );
    let refunded: Option<Payment> = db::instrument(
        REFUND,
        sqlx::query_as(REFUND).bind(id).fetch_optional(&state.db),
    )
    .await?;
    if let Some(payment) = refunded {
        return Ok(Json(payment));
    }
    let payment = find(&state, id).await?;
    match payment.status {
        Status::Refunded => Ok(Json(payment)),
        Status::Declined => Err(Error::Conflict(format!(
            "payment {id} was declined: nothing was captured, so there is nothing to refund"
        ))),
        // Approved a moment ago by no one: the UPDATE above would have matched.
        Status::Approved => Err(Error::Conflict(format!(
            "payment {id} changed while being refunded, try again"
        ))),
    }
}

/// One payment.
#[utoipa::path(get, path = "/api/v1/payments/{id}", tag = "payments", operation_id = "getPayment",
    params(("id" = String, Path, description = "The payment's id (a UUID; anything else names no payment).")),
    responses(
        (status = 200, description = "The payment.", body = Payment),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Payment>, Error> {
    find(&state, parse_id(&id)?).await.map(Json)
}

/// Lists payments, newest first. With `order_id` anyone may ask (an order has
/// at most one payment); listing every payment needs the admin token.
#[utoipa::path(get, path = "/api/v1/payments", tag = "payments", operation_id = "listPayments",
    security((), ("adminToken" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of payments.", body = Page<Payment>),
        (status = 401, response = Unauthorized),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
async fn list(
    admin: Result<Admin, Problem>,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<Payment>>, Error> {
    if query.order_id.is_none() && admin.is_err() {
        return Err(Error::Unauthorized);
    }
    let (limit, after) = query.validate()?;
    const LIST_PAYMENTS: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM payments
         WHERE ($1::uuid IS NULL OR order_id = $1) AND ($2::uuid IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3"
    );
    // Payments come newest first; one extra row tells whether another page
    // follows.
    let rows = db::instrument(
        LIST_PAYMENTS,
        sqlx::query_as(LIST_PAYMENTS)
            .bind(query.order_id)
            .bind(after)
            .bind(limit + 1)
            .fetch_all(&state.db),
    )
    .await?;
    let page = Page::new(rows, limit, |p: &Payment| p.id.simple().to_string());
    Ok(Json(page))
}

async fn find(state: &AppState, id: Uuid) -> Result<Payment, Error> {
    const FIND_PAYMENT: &str = concat!("SELECT ", columns!(), " FROM payments WHERE id = $1");
    db::instrument(
        FIND_PAYMENT,
        sqlx::query_as(FIND_PAYMENT)
            .bind(id)
            .fetch_optional(&state.db),
    )
    .await?
    .ok_or_else(|| not_found(&id.to_string()))
}

/// A path segment that is not a UUID names no payment.
fn parse_id(raw: &str) -> Result<Uuid, Error> {
    Uuid::try_parse(raw).map_err(|_| not_found(raw))
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("no payment {id}"))
}
