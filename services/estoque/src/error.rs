//! The one error type of estoque and the one place it becomes a problem.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use loja_runtime::Problem;
use loja_runtime::problem::from_sqlx;

/// Every way an estoque request can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Well-formed input with a value out of its allowed range.
    #[error("{field}: {detail}")]
    Validation { field: String, detail: String },
    /// No such product or reservation.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state (duplicate sku, final sale).
    #[error("{0}")]
    Conflict(String),
    /// A reservation asked for more units than are available; nothing was held.
    #[error("{sku}: {requested} requested, {available} available")]
    InsufficientStock {
        sku: String,
        requested: i64,
        available: i64,
    },
    /// A reservation named skus that are not in the catalog; nothing was held.
    #[error("unknown sku {}", .0.join(", "))]
    UnknownSku(Vec<String>),
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
            Error::NotFound(detail) => Problem::not_found(detail),
            Error::Conflict(detail) => Problem::conflict(detail),
            Error::InsufficientStock {
                ref sku,
                requested,
                available,
            } => Problem::new(StatusCode::CONFLICT, "insufficient_stock", err.to_string())
                .with("sku", sku.clone())
                .with("requested", requested)
                .with("available", available),
            Error::UnknownSku(ref skus) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_sku",
                err.to_string(),
            )
            .with("sku", skus.first().cloned().unwrap_or_default())
            .with("skus", skus.clone()),
            Error::Database(err) => from_sqlx(err),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
