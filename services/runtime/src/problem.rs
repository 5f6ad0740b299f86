//! RFC 9457 problem details: the one error body every service answers with.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};

/// The media type of every 4xx and 5xx body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The stable, machine-readable reason of a problem (its `code` member),
/// what clients switch on. The OpenAPI document lists exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    /// 400 (not JSON at all) or 422 (a value of the wrong shape or range).
    ValidationFailed,
    /// 404: no such resource, or no route for the path.
    NotFound,
    /// 405: the path exists, the method does not (`Allow` lists those that do).
    MethodNotAllowed,
    /// 409: the request contradicts the resource's current state.
    Conflict,
    /// 409: an order asked for more units than are available.
    InsufficientStock,
    /// 422: an order names a sku that is not in the catalog.
    UnknownSku,
    /// 402: the payment was declined.
    PaymentDeclined,
    /// 422: an Idempotency-Key was first used with a different body.
    IdempotencyKeyReused,
    /// 503 (with `Retry-After`): the first request with this Idempotency-Key
    /// was still running when the caller's time ran out.
    IdempotencyKeyInFlight,
    /// 401: the operation needs the admin bearer token.
    Unauthorized,
    /// 413: the body is larger than the service accepts.
    PayloadTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 431: the request line and header fields are larger than the server reads.
    HeadersTooLarge,
    /// 429: too many requests from one client (the edge's rate limit).
    RateLimited,
    /// 503: the server is at its capacity (connections or work in flight);
    /// `Retry-After` says when to try again.
    Overloaded,
    /// 503: a dependency (database or service) is down.
    UpstreamUnavailable,
    /// 504: a dependency did not answer in time.
    UpstreamTimeout,
    /// 500: a fault of the server, logged with the trace id, never detailed.
    Internal,
}

impl Code {
    /// Every code, in the order the contract lists them.
    pub const ALL: [Code; 18] = [
        Code::ValidationFailed,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::Conflict,
        Code::InsufficientStock,
        Code::UnknownSku,
        Code::PaymentDeclined,
        Code::IdempotencyKeyReused,
        Code::IdempotencyKeyInFlight,
        Code::Unauthorized,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::HeadersTooLarge,
        Code::RateLimited,
        Code::Overloaded,
        Code::UpstreamUnavailable,
        Code::UpstreamTimeout,
        Code::Internal,
    ];

    /// The wire spelling, such as `insufficient_stock`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ValidationFailed => "validation_failed",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::Conflict => "conflict",
            Code::InsufficientStock => "insufficient_stock",
            Code::UnknownSku => "unknown_sku",
            Code::PaymentDeclined => "payment_declined",
            Code::IdempotencyKeyReused => "idempotency_key_reused",
            Code::IdempotencyKeyInFlight => "idempotency_key_in_flight",
            Code::Unauthorized => "unauthorized",
            Code::PayloadTooLarge => "payload_too_large",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::HeadersTooLarge => "headers_too_large",
            Code::RateLimited => "rate_limited",
            Code::Overloaded => "overloaded",
            Code::UpstreamUnavailable => "upstream_unavailable",
            Code::UpstreamTimeout => "upstream_timeout",
            Code::Internal => "internal",
        }
    }

    /// The code spelled `s`, if it is one.
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

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
    pub code: Code,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn serialize_status<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl Problem {
    /// A problem with the given status, stable code and human-readable detail.
    pub fn new(status: StatusCode, code: Code, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("/problems/{}", code.as_str().replace('_', "-")),
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
            Code::ValidationFailed,
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
        Self::new(StatusCode::BAD_REQUEST, Code::ValidationFailed, detail)
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, Code::NotFound, detail)
    }

    /// 409 `conflict`.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, Code::Conflict, detail)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthorized,
            "this operation needs `Authorization: Bearer <admin token>`",
        )
    }

    /// 503 `upstream_unavailable`: a dependency (database or service) is down.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::UpstreamUnavailable,
            detail,
        )
    }

    /// 504 `upstream_timeout`: a dependency did not answer in time.
    pub fn timeout(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, Code::UpstreamTimeout, detail)
    }

    /// 500 `internal`. The cause is logged here and never sent to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::Internal,
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
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        // RFC 9110: a 401 names the scheme that would be accepted.
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
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
            Code::InsufficientStock,
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
    fn every_code_parses_back_from_its_wire_spelling() {
        for code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(code));
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
        assert_eq!(Code::parse("teapot"), None);
    }

    #[test]
    fn a_401_names_the_bearer_scheme() {
        let r = Problem::unauthorized().into_response();
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let r = Problem::not_found("x").into_response();
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn response_is_problem_json() {
        let r = Problem::not_found("no such product").into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
