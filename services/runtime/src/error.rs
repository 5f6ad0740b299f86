//! The error type of a database service's handlers: the failures every such
//! service has, plus `E` for the ones only that service has, and the one
//! place the shared ones become problems.

use std::convert::Infallible;

use axum::response::{IntoResponse, Response};

use crate::problem::{Problem, from_sqlx};

/// Every way a request to a database service can fail. `E` is what only
/// that service fails with (estoque's refused reservations); a service with
/// nothing of its own leaves it [`Infallible`].
#[derive(Debug, thiserror::Error)]
pub enum Error<E = Infallible> {
    /// Well-formed input with a value out of its allowed range: a 422 that
    /// names the field.
    #[error("{field}: {detail}")]
    Validation { field: String, detail: String },
    /// An admin-only request without the admin token.
    #[error("unauthorized")]
    Unauthorized,
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the resource's current state.
    #[error("{0}")]
    Conflict(String),
    /// The database failed or could not be reached.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A failure only this service has; it becomes the problem its own
    /// `Into<Problem>` says.
    #[error(transparent)]
    Service(E),
}

impl<E> Error<E> {
    /// A 422 naming the offending field.
    pub fn validation(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

impl<E: Into<Problem>> From<Error<E>> for Problem {
    fn from(err: Error<E>) -> Problem {
        match err {
            Error::Validation { field, detail } => Problem::invalid_field(field, detail),
            Error::Unauthorized => Problem::unauthorized(),
            Error::NotFound(detail) => Problem::not_found(detail),
            Error::Conflict(detail) => Problem::conflict(detail),
            Error::Database(err) => from_sqlx(err),
            Error::Service(err) => err.into(),
        }
    }
}

/// A service with no failures of its own never builds this.
impl From<Infallible> for Problem {
    fn from(never: Infallible) -> Problem {
        match never {}
    }
}

impl<E: Into<Problem>> IntoResponse for Error<E> {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Code;
    use axum::http::StatusCode;

    #[derive(Debug, thiserror::Error)]
    #[error("short and stout")]
    struct Teapot;

    impl From<Teapot> for Problem {
        fn from(err: Teapot) -> Problem {
            Problem::new(StatusCode::IM_A_TEAPOT, Code::Conflict, err.to_string())
        }
    }

    #[test]
    fn shared_failures_and_a_services_own_become_their_problems() {
        let p = Problem::from(Error::<Teapot>::validation("limit", "must be 1"));
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.detail, "limit: must be 1");
        assert_eq!(p.extra["field"], "limit");
        let status = |err: Error<Teapot>| Problem::from(err).status;
        assert_eq!(status(Error::Unauthorized), StatusCode::UNAUTHORIZED);
        assert_eq!(
            status(Error::NotFound("gone".into())),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(Error::Conflict("taken".into())),
            StatusCode::CONFLICT
        );
        assert_eq!(status(Error::Service(Teapot)), StatusCode::IM_A_TEAPOT);
    }
}
