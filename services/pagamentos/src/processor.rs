//! The test-mode processor: the outcome is a pure function of method and
//! token, in the manner of a card processor's test cards.

use serde::{Deserialize, Serialize};

/// How the customer pays: `card` (with a test token) or `pix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = PaymentMethod)]
pub enum Method {
    Card,
    Pix,
}

impl Method {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Card => "card",
            Method::Pix => "pix",
        }
    }
}

/// What the processor answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Approved,
    Declined(&'static str),
}

/// The outcome for a validated method and token.
pub fn decide(method: Method, token: Option<&str>) -> Outcome {
    match (method, token) {
        (Method::Card, Some("tok_chargeDeclined")) => Outcome::Declined("card_declined"),
        (Method::Card, Some("tok_insufficientFunds")) => Outcome::Declined("insufficient_funds"),
        _ => Outcome::Approved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_test_card_table() {
        assert_eq!(decide(Method::Card, Some("tok_visa")), Outcome::Approved);
        assert_eq!(
            decide(Method::Card, Some("tok_mastercard")),
            Outcome::Approved
        );
        assert_eq!(
            decide(Method::Card, Some("tok_anything")),
            Outcome::Approved
        );
        assert_eq!(
            decide(Method::Card, Some("tok_chargeDeclined")),
            Outcome::Declined("card_declined")
        );
        assert_eq!(
            decide(Method::Card, Some("tok_insufficientFunds")),
            Outcome::Declined("insufficient_funds")
        );
        assert_eq!(decide(Method::Pix, None), Outcome::Approved);
    }
}
