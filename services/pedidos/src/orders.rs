//! The orders resource (`/api/v1/orders`): place, read, list and cancel.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use loja_runtime::page::{DEFAULT_LIMIT, MAX_LIMIT, Page};
use loja_runtime::problem::PROBLEM_JSON;
use loja_runtime::{Admin, Json, Query};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::Instrument;
use uuid::Uuid;

use crate::AppState;
use crate::error::Error;
use crate::idempotency::{self, Existing};
use crate::model::{NewOrder, Order};
use crate::repo::{self, Cursor};
use crate::saga;

/// The orders routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orders", post(create).get(list))
        .route("/api/v1/orders/{id}", get(fetch))
        .route("/api/v1/orders/{id}/cancel", post(cancel))
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

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, Error> {
    // Everything is checked before anything is stored.
    let key = idempotency::parse_key(&headers)?;
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let new: NewOrder = loja_runtime::json::parse(&bytes)?;
    new.validate()?;

    let id = Uuid::now_v7();
    let mut tx = state.db.begin().await?;
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
            return match idempotency::existing(&state.db, key, &fingerprint).await? {
                Existing::Replay(status, body) => {
                    let mut response = respond(status, &body);
                    response.headers_mut().insert(
                        HeaderName::from_static("idempotent-replayed"),
                        HeaderValue::from_static("true"),
                    );
                    Ok(response)
                }
                Existing::InFlight => Err(Error::KeyInFlight),
                Existing::Reused => Err(Error::KeyReused),
            };
        }
    }
    tx.commit().await?;
    tracing::info!(order_id = %id, customer_id = %new.customer_id, "order placed");

    // The saga runs on its own task: a client that hangs up must not leave it
    // halfway (the reconciler would finish it, but only after a delay). The
    // task stays in the request's span, so its calls continue the trace.
    let saga = state.service.saga.clone();
    let order =
        tokio::spawn(async move { saga.drive(order).await }.instrument(tracing::Span::current()))
            .await
            .map_err(|e| Error::Upstream(loja_runtime::Problem::internal(e)))??;
    let (status, body) = saga::response_for(&order);
    Ok(respond(status, &body))
}

/// An order id from the path; anything that is not a UUID names no order.
fn order_id(raw: &str) -> Result<Uuid, Error> {
    Uuid::try_parse(raw).map_err(|_| Error::NotFound)
}

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

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Order>, Error> {
    let id = order_id(&id)?;
    state.service.saga.cancel(id).await.map(Json)
}

/// Query of `GET /api/v1/orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    customer_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// An empty parameter (`?limit=&cursor=`) counts as absent.
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

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
