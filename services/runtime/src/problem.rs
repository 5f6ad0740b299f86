//! RFC 9457 problem details: the one error body every service answers with.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// The media type of every 4xx and 5xx body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem. `code` is the stable, machine-readable reason that
/// clients switch on; `detail` is for humans. Extra members (such as
/// `order_id`) are flattened into the body.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    #[serde(serialize_with = "serialize_status")]
    pub status: StatusCode,
    pub detail: String,
    pub code: &'static str,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn serialize_status<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl Problem {
    /// A problem with the given status, stable code and human-readable detail.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("/problems/{}", code.replace('_', "-")),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status,
            detail: detail.into(),
            code,
            extra: Map::new(),
        }
    }

    /// Adds an extension member to the body, such as `order_id` or `sku`.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// 422 `validation_failed`: well-formed input with a wrong shape or value.
    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        )
    }

    /// 422 `validation_failed` about one input field, named in `detail` and
    /// in a `field` member so clients can point at it.
    pub fn invalid_field(field: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self::validation(format!("{field}: {detail}")).with("field", field)
    }

    /// 400 `validation_failed`: a body that is not JSON at all.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", detail)
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 409 `conflict`.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this operation needs `Authorization: Bearer <admin token>`",
        )
    }

    /// 503 `upstream_unavailable`: a dependency (database or service) is down.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_unavailable",
            detail,
        )
    }

    /// 504 `upstream_timeout`: a dependency did not answer in time.
    pub fn timeout(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", detail)
    }

    /// 500 `internal`. The cause is logged here and never sent to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete the request",
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// Maps a database error to the problem a client should see: a unique
/// violation is a 409, a database that cannot be reached is a 503 that heals
/// by itself when the database is back, anything else is a logged 500.
pub fn from_sqlx(err: sqlx::Error) -> Problem {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Problem::conflict("the resource already exists")
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => {
            tracing::warn!(error = %err, "database unavailable");
            Problem::unavailable("the database is unavailable, try again shortly")
        }
        // 57P01 admin_shutdown, 57P03 cannot_connect_now, 08xxx connection exceptions:
        // what a restarting PostgreSQL answers to sessions it is dropping.
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) =>
        {
            tracing::warn!(error = %err, "database unavailable");
            Problem::unavailable("the database is unavailable, try again shortly")
        }
        _ => Problem::internal(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_rfc9457_members_and_extensions() {
        let p = Problem::new(
            StatusCode::CONFLICT,
            "insufficient_stock",
            "CAM-001 has 1 left",
        )
        .with("order_id", "abc");
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["status"], 409);
        assert_eq!(v["code"], "insufficient_stock");
        assert_eq!(v["type"], "/problems/insufficient-stock");
        assert_eq!(v["title"], "Conflict");
        assert_eq!(v["order_id"], "abc");
    }

    #[test]
    fn an_invalid_field_is_named_in_detail_and_member() {
        let p = Problem::invalid_field("items[0].quantity", "must be 1 to 1000");
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.code, "validation_failed");
        assert_eq!(p.detail, "items[0].quantity: must be 1 to 1000");
        assert_eq!(p.extra["field"], "items[0].quantity");
    }

    #[test]
    fn response_is_problem_json() {
        let r = Problem::not_found("no such product").into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
