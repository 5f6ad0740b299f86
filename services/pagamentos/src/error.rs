//! The one error type of pagamentos and the one place it becomes a problem.

use axum::response::{IntoResponse, Response};
use loja_runtime::Problem;
use loja_runtime::problem::from_sqlx;

/// Every way a pagamentos request can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Well-formed input with a value out of its allowed range.
    #[error("{field}: {detail}")]
    Validation { field: String, detail: String },
    /// Listing every payment without the admin token.
    #[error("unauthorized")]
    Unauthorized,
    /// No such payment.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the payment's state (refunding a declined
    /// payment, a retry with a different charge).
    #[error("{0}")]
    Conflict(String),
    /// The database failed or could not be reached.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Error {
    /// A 422 naming the offending field.
    pub fn validation(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Validation {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

impl From<Error> for Problem {
    fn from(err: Error) -> Problem {
        match err {
            Error::Validation { field, detail } => Problem::invalid_field(field, detail),
            Error::Unauthorized => Problem::unauthorized(),
            Error::NotFound(detail) => Problem::not_found(detail),
            Error::Conflict(detail) => Problem::conflict(detail),
            Error::Database(err) => from_sqlx(err),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
