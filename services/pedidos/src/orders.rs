//! The orders resource (`/api/v1/orders`): place, read, list and cancel.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loja_runtime::json::{Path, RawJson};
use loja_runtime::openapi::{
    Conflict, Invalid, Malformed, NotFound, PayloadTooLarge, Timeout, Unauthorized, Unavailable,
    UnsupportedMediaType,
};
use loja_runtime::page::{DEFAULT_LIMIT, MAX_LIMIT, Page};
use loja_runtime::problem::PROBLEM_JSON;
use loja_runtime::{Admin, Json, Problem, Query, admission, db, rules};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Instant;
use tracing::Instrument;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::Error;
use crate::idempotency::{self, Existing};
use crate::model::{MAX_CUSTOMER_ID, NewOrder, Order};
use crate::openapi::PaymentDeclined;
use crate::repo::{self, Cursor};
use crate::saga;

/// The orders routes, each documented by the handler it routes to.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(fetch))
        .routes(routes!(cancel))
}

/// A JSON response with the given status; problem+json for errors, so a
/// replayed problem looks exactly like the first one.
fn respond(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if status.is_client_error() || status.is_server_error() {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    }
    response
}

/// Places an order: stock is reserved in the catalog (prices come from
/// there), the payment is charged, the reservation committed. With an
/// `Idempotency-Key`, a retry of the same body answers the first response
/// again (with `Idempotent-Replayed: true`) and creates nothing. Problems of
/// the order outcomes (402, 409 `insufficient_stock`, 422 `unknown_sku`,
/// 503, 504) carry the stored order's `order_id`.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", operation_id = "placeOrder",
    params(crate::idempotency::KeyHeader),
    request_body = NewOrder,
    responses(
        (status = 201, description = "The order, `confirmed`.", body = Order,
            headers(("idempotent-replayed" = String, description = "`true` on a replay of an earlier request with the same key."))),
        (status = 200, description = "Replayed: the order was cancelled since.", body = Order),
        (status = 202, description = "Replayed while another replica finishes the order: still `pending`.", body = Order),
        (status = 400, response = Malformed),
        (status = 402, response = PaymentDeclined),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
        (status = 504, response = Timeout),
    ))]
async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawJson(bytes): RawJson,
) -> Result<Response, Error> {
    // Everything is checked before anything is stored, on the bytes the
    // client sent: a repeated member or an array in place of an object is
    // refused, never settled by a JSON value's last-one-wins.
    let key = idempotency::parse_key(&headers)?;
    let new: NewOrder = loja_runtime::json::parse(&bytes)?;
    new.validate()?;
    let body: Value = serde_json::from_slice(&bytes).map_err(Problem::internal)?;

    let id = Uuid::now_v7();
    let mut tx = db::begin(&state.db).await?;
    let order = repo::insert(&mut tx, id, &new, state.service.saga.lease).await?;
    if let Some(key) = &key {
        let fingerprint = idempotency::fingerprint(&body);
        let owned = idempotency::claim(
            &mut tx,
            key,
            &fingerprint,
            id,
            state.service.idempotency_ttl_hours,
        )
        .await?;
        if !owned {
            tx.rollback().await?;
            // The first request with this key may be a lost attempt of this
            // very one (the gateway re-sends a POST whose replica died):
            // wait for its outcome within this request's own budget.
            let deadline =
                admission::deadline().unwrap_or_else(|| Instant::now() + state.service.saga.lease);
            return match idempotency::outcome(&state.db, key, &fingerprint, deadline).await? {
                Existing::Replay(status, body) => {
                    let mut response = respond(status, &body);
                    response.headers_mut().insert(
                        HeaderName::from_static("idempotent-replayed"),
                        HeaderValue::from_static("true"),
                    );
                    Ok(response)
                }
                Existing::InFlight { .. } => Err(Error::KeyInFlight),
                Existing::Reused => Err(Error::KeyReused),
            };
        }
    }
    tx.commit().await?;
    tracing::info!(order_id = %id, customer_id = %new.customer_id, "order placed");

    // The saga runs on its own task: a client that hangs up must not leave it
    // halfway (the reconciler would finish it, but only after a delay). The
    // task stays in the request's span, so its calls continue the trace.
    // It keeps the caller's budget too, which its calls pass on.
    let saga = state.service.saga.clone();
    let deadline = admission::deadline();
    let drive = admission::scope(deadline, async move { saga.drive(order).await });
    let order = tokio::spawn(drive.instrument(tracing::Span::current()))
        .await
        .map_err(|e| Error::Upstream(loja_runtime::Problem::internal(e)))??;
    let (status, body) = saga::response_for(&order);
    Ok(respond(status, &body))
}

/// An order id from the path; anything that is not a UUID names no order.
fn order_id(raw: &str) -> Result<Uuid, Error> {
    Uuid::try_parse(raw).map_err(|_| Error::NotFound)
}

/// One order.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", operation_id = "getOrder",
    params(("id" = String, Path, description = "The order's id (a UUID; anything else names no order).")),
    responses(
        (status = 200, description = "The order.", body = Order),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ))]
async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Order>, Error> {
    let id = order_id(&id)?;
    repo::get(&state.db, id)
        .await?
        .map(Json)
        .ok_or(Error::NotFound)
}

/// Cancels a confirmed order: the stock goes back, the payment is refunded.
/// A cancelled order is returned unchanged; a pending, rejected, declined or
/// failed one cannot be cancelled (409).
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", operation_id = "cancelOrder",
    params(("id" = String, Path, description = "The order's id.")),
    responses(
        (status = 200, description = "The order, `cancelled`.", body = Order),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
        (status = 504, response = Timeout),
    ))]
async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Order>, Error> {
    let id = order_id(&id)?;
    state.service.saga.cancel(id).await.map(Json)
}

/// Query of `GET /api/v1/orders`; an empty parameter counts as absent.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only this customer's orders.
    customer_id: Option<String>,
    /// Page size, 1 to 200 (50 when absent or empty).
    #[param(schema_with = crate::openapi::limit_schema)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::openapi::cursor_schema)]
    cursor: Option<String>,
}

/// An empty parameter (`?limit=&cursor=`) counts as absent.
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// Lists orders, newest first, optionally of one customer.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", operation_id = "listOrders",
    security(("adminToken" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of orders.", body = Page<Order>),
        (status = 401, response = Unauthorized),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    ))]
async fn list(
    _: Admin,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, Error> {
    let limit = match present(query.limit) {
        None => DEFAULT_LIMIT,
        Some(raw) => raw.parse::<i64>().unwrap_or(0),
    };
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(
            loja_runtime::Problem::validation(format!("limit: must be 1 to {MAX_LIMIT}"))
                .with("field", "limit")
                .into(),
        );
    }
    let after = match present(query.cursor).as_deref() {
        None => None,
        Some(raw) => Some(Cursor::decode(raw).ok_or_else(|| {
            loja_runtime::Problem::validation("cursor: not a cursor this service handed out")
                .with("field", "cursor")
        })?),
    };
    let customer_id = present(query.customer_id);
    if let Some(id) = &customer_id
        && !rules::is_visible_text(id, 1..=MAX_CUSTOMER_ID)
    {
        return Err(Problem::invalid_field(
            "customer_id",
            format!("must be 1 to {MAX_CUSTOMER_ID} characters, some of them visible"),
        )
        .into());
    }
    // Orders come newest first; one extra row tells whether another page follows.
    let rows = repo::list(&state.db, customer_id.as_deref(), limit, after).await?;
    let page = Page::new(rows, limit, |o: &Order| {
        Cursor {
            created_at: o.created_at,
            id: o.id,
        }
        .encode()
    });
    // Through a JSON value, as listed orders always went, so that their
    // members stay in the (alphabetical) order clients have seen.
    Ok(Json(json!(page)))
}
