//! The one error type of pedidos and the single place it becomes a problem.

use axum::response::{IntoResponse, Response};
use loja_runtime::Problem;
use loja_runtime::problem::{Code, from_sqlx};

/// Everything a pedidos request can fail with before an order outcome exists.
/// Order outcomes (rejected, declined, failed) are not errors: they are stored
/// responses built by [`crate::saga`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, already phrased as the problem the client should see.
    #[error("{0}")]
    Invalid(Problem),
    /// No order with that id.
    #[error("no such order")]
    NotFound,
    /// The order is in a state that does not allow the request.
    #[error("{0}")]
    Conflict(String),
    /// The Idempotency-Key was first used with a different body.
    #[error("the idempotency key was used with a different request body")]
    KeyReused,
    /// The first request with this Idempotency-Key has not finished in
    /// time: 503 with `Retry-After`, since a retry with the same key gets its
    /// outcome (never a 409, which would read as the client's own mistake
    /// when the first request was a lost attempt of this one).
    #[error(
        "a request with this idempotency key is still being processed; retry with the same key"
    )]
    KeyInFlight,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// A problem built elsewhere that already carries the right status (an
    /// upstream failure while cancelling, say).
    #[error("{0}")]
    Upstream(Problem),
}

impl From<Problem> for Error {
    fn from(p: Problem) -> Self {
        Error::Invalid(p)
    }
}

impl From<Error> for Problem {
    fn from(err: Error) -> Problem {
        use axum::http::StatusCode;
        match err {
            Error::Invalid(p) | Error::Upstream(p) => p,
            Error::NotFound => Problem::not_found("no order with that id"),
            Error::Conflict(detail) => Problem::conflict(detail),
            Error::KeyReused => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::IdempotencyKeyReused,
                err.to_string(),
            ),
            Error::KeyInFlight => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::IdempotencyKeyInFlight,
                err.to_string(),
            ),
            Error::Db(e) => from_sqlx(e),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let retry = matches!(self, Error::KeyInFlight);
        let mut response = Problem::from(self).into_response();
        if retry {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(loja_runtime::admission::RETRY_AFTER_SECS),
            );
        }
        response
    }
}
