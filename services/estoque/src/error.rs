//! estoque's error type: the failures every database service has, plus a
//! refused reservation, and the one place a refusal becomes a problem.

use axum::http::StatusCode;
use loja_runtime::Problem;
use loja_runtime::problem::Code;

/// Every way an estoque request can fail.
pub type Error = loja_runtime::Error<Refused>;

/// Why a reservation was refused; nothing was held.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// More units were asked for than are available.
    #[error("{sku}: {requested} requested, {available} available")]
    InsufficientStock {
        sku: String,
        requested: i64,
        available: i64,
    },
    /// Skus that are not in the catalog.
    #[error("unknown sku {}", .0.join(", "))]
    UnknownSku(Vec<String>),
}

impl From<Refused> for Problem {
    fn from(refused: Refused) -> Problem {
        match refused {
            Refused::InsufficientStock {
                ref sku,
                requested,
                available,
            } => Problem::new(
                StatusCode::CONFLICT,
                Code::InsufficientStock,
                refused.to_string(),
            )
            .with("sku", sku.clone())
            .with("requested", requested)
            .with("available", available),
            Refused::UnknownSku(ref skus) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::UnknownSku,
                refused.to_string(),
            )
            .with("sku", skus.first().cloned().unwrap_or_default())
            .with("skus", skus.clone()),
        }
    }
}
