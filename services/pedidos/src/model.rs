//! What an order looks like: the request a client sends (and its validation)
//! and the order as stored and shown.

use chrono::{DateTime, Utc};
use loja_runtime::{Problem, rules};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// Most items one order may carry.
pub const MAX_ITEMS: usize = 100;
/// Most units of one sku in one order.
pub const MAX_QUANTITY: i64 = 1000;
/// Longest `customer_id`, in characters.
pub const MAX_CUSTOMER_ID: usize = 128;

/// `POST /api/v1/orders` body. Unknown fields (a client-sent price, say) are
/// rejected at every level; prices come from the catalog.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "customer_id": "c-42",
    "items": [{"sku": "CAM-001", "quantity": 2}],
    "payment": {"method": "card", "token": "tok_visa"}
}))]
pub struct NewOrder {
    /// 1 to 128 characters, some of them visible, none a control character.
    #[schema(schema_with = crate::openapi::customer_id_schema)]
    pub customer_id: String,
    #[schema(schema_with = crate::openapi::items_schema)]
    pub items: Vec<NewItem>,
    #[schema(schema_with = crate::openapi::payment_schema)]
    pub payment: PaymentRequest,
}

/// One line of a new order.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    #[schema(schema_with = crate::openapi::sku_schema)]
    pub sku: String,
    /// 1 to 1000 units.
    #[serde(deserialize_with = "loja_runtime::json::integer")]
    #[schema(schema_with = crate::openapi::quantity_schema)]
    pub quantity: i64,
}

/// How the customer pays.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub method: PaymentMethod,
    #[serde(default, deserialize_with = "loja_runtime::json::not_null")]
    pub token: Option<String>,
}

/// How the customer pays: `card` (with a test token) or `pix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    Card,
    Pix,
}

impl PaymentMethod {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Card => "card",
            PaymentMethod::Pix => "pix",
        }
    }
}

fn invalid(field: &str, detail: impl Into<String>) -> Problem {
    Problem::invalid_field(field, detail.into())
}

impl NewOrder {
    /// Checks every rule API.md states for a new order. Runs before anything
    /// is stored; the first broken rule is reported, naming its field.
    pub fn validate(&self) -> Result<(), Problem> {
        if !rules::is_visible_text(&self.customer_id, 1..=MAX_CUSTOMER_ID) {
            return Err(invalid(
                "customer_id",
                format!(
                    "must be 1 to {MAX_CUSTOMER_ID} characters, some of them visible, none a control character"
                ),
            ));
        }
        if self.items.is_empty() || self.items.len() > MAX_ITEMS {
            return Err(invalid(
                "items",
                format!("must hold 1 to {MAX_ITEMS} items"),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, item) in self.items.iter().enumerate() {
            // A sku estoque cannot hold cannot exist: refused before the
            // order is stored.
            if !rules::is_sku(&item.sku) {
                return Err(invalid(
                    &format!("items[{i}].sku"),
                    "must match [A-Za-z0-9._-]{1,64}",
                ));
            }
            if !seen.insert(item.sku.as_str()) {
                return Err(invalid(
                    &format!("items[{i}].sku"),
                    format!("{} appears more than once", item.sku),
                ));
            }
            if !(1..=MAX_QUANTITY).contains(&item.quantity) {
                return Err(invalid(
                    &format!("items[{i}].quantity"),
                    format!("must be 1 to {MAX_QUANTITY}"),
                ));
            }
        }
        match (self.payment.method, self.payment.token.as_deref()) {
            // pagamentos' own rule: a token it would refuse never makes an
            // order that fails there.
            (PaymentMethod::Card, Some(token)) if rules::is_card_token(token) => {}
            (PaymentMethod::Card, _) => {
                return Err(invalid(
                    "payment.token",
                    format!(
                        "a card payment needs a token that {}",
                        rules::CARD_TOKEN_RULE
                    ),
                ));
            }
            (PaymentMethod::Pix, None) => {}
            (PaymentMethod::Pix, Some(_)) => {
                return Err(invalid("payment.token", "a pix payment takes no token"));
            }
        }
        Ok(())
    }
}

/// One line of a stored order; the price is known once estoque reserved it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderItem {
    pub sku: String,
    pub quantity: i64,
    /// The catalog's price when the stock was reserved; null before.
    pub unit_price_cents: Option<i64>,
}

/// Where an order is in its life: `pending`, then `confirmed`, `rejected`
/// (no stock), `payment_declined` or `failed`; `confirmed` → `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = OrderStatus)]
pub enum Status {
    Pending,
    Confirmed,
    Rejected,
    PaymentDeclined,
    Failed,
    Cancelled,
}

impl Status {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Confirmed => "confirmed",
            Status::Rejected => "rejected",
            Status::PaymentDeclined => "payment_declined",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    /// Parses the stored spelling; the table's CHECK constraint admits no other.
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "confirmed" => Status::Confirmed,
            "rejected" => Status::Rejected,
            "payment_declined" => Status::PaymentDeclined,
            "failed" => Status::Failed,
            "cancelled" => Status::Cancelled,
            _ => return None,
        })
    }
}

/// How far the saga of a pending order got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Stored; nothing asked of estoque or pagamentos yet (or not known to have happened).
    Created,
    /// Stock is held and the prices are known.
    Reserved,
    /// The payment was approved.
    Charged,
    /// The saga reached an outcome.
    Done,
}

impl Step {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Created => "created",
            Step::Reserved => "reserved",
            Step::Charged => "charged",
            Step::Done => "done",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Step> {
        Some(match s {
            "created" => Step::Created,
            "reserved" => Step::Reserved,
            "charged" => Step::Charged,
            "done" => Step::Done,
            _ => return None,
        })
    }
}

/// The payment of an order as shown to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = OrderPayment)]
pub struct PaymentView {
    /// The payment's id in pagamentos (`GET /api/v1/payments/{id}`).
    pub id: String,
    /// `approved`, `declined` or `refunded`.
    pub status: String,
    pub method: PaymentMethod,
}

/// An order as stored, and (serialized) as `GET /api/v1/orders/{id}` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "01938f4e-7b7a-7c3e-9a51-4f0c2d8e6b1a", "customer_id": "c-42", "status": "confirmed",
    "items": [{"sku": "CAM-001", "quantity": 2, "unit_price_cents": 4990}], "total_cents": 9980,
    "payment": {"id": "01938f4e-7c01-7d2a-8b4e-2f6a9c3d1e5b", "status": "approved", "method": "card"},
    "created_at": "2026-11-29T12:00:00Z", "updated_at": "2026-11-29T12:00:00Z"
}))]
pub struct Order {
    pub id: Uuid,
    pub customer_id: String,
    pub status: Status,
    pub items: Vec<OrderItem>,
    /// The sum of the lines in integer cents (BRL); null before the stock is reserved.
    pub total_cents: Option<i64>,
    /// Null until a payment was asked for.
    pub payment: Option<PaymentView>,
    /// Why the order did not end confirmed: `{"code", "detail", ...}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub failure: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    #[schema(ignore)]
    pub step: Step,
    #[serde(skip)]
    #[schema(ignore)]
    pub payment_method: PaymentMethod,
    #[serde(skip)]
    #[schema(ignore)]
    pub payment_token: Option<String>,
    #[serde(skip)]
    #[schema(ignore)]
    pub compensation_pending: bool,
    #[serde(skip)]
    #[schema(ignore)]
    pub cancel_requested: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(body: Value) -> Result<(), Problem> {
        let bytes = serde_json::to_vec(&body).unwrap();
        loja_runtime::json::parse::<NewOrder>(&bytes)?.validate()
    }

    fn field_of(result: Result<(), Problem>) -> String {
        let p = result.unwrap_err();
        assert_eq!(p.status.as_u16(), 422, "{p}");
        assert_eq!(p.code, "validation_failed");
        p.extra["field"].as_str().unwrap().to_owned()
    }

    fn valid() -> Value {
        serde_json::json!({
            "customer_id": "c-42",
            "items": [{"sku": "CAM-001", "quantity": 2}],
            "payment": {"method": "card", "token": "tok_visa"}
        })
    }

    #[test]
    fn a_well_formed_order_passes() {
        order(valid()).unwrap();
        let mut pix = valid();
        pix["payment"] = serde_json::json!({"method": "pix"});
        order(pix).unwrap();
    }

    #[test]
    fn customer_id_must_be_1_to_128_characters() {
        let mut v = valid();
        v["customer_id"] = "".into();
        assert_eq!(field_of(order(v.clone())), "customer_id");
        v["customer_id"] = "é".repeat(128).into();
        order(v.clone()).unwrap();
        v["customer_id"] = "x".repeat(129).into();
        assert_eq!(field_of(order(v)), "customer_id");
    }

    #[test]
    fn items_must_number_1_to_100_with_unique_skus() {
        let mut v = valid();
        v["items"] = serde_json::json!([]);
        assert_eq!(field_of(order(v.clone())), "items");
        let many: Vec<Value> = (0..101)
            .map(|i| serde_json::json!({"sku": format!("S{i}"), "quantity": 1}))
            .collect();
        v["items"] = many[..100].to_vec().into();
        order(v.clone()).unwrap();
        v["items"] = many.into();
        assert_eq!(field_of(order(v.clone())), "items");
        v["items"] = serde_json::json!([{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}]);
        assert_eq!(field_of(order(v)), "items[1].sku");
    }

    #[test]
    fn quantity_must_be_1_to_1000() {
        for bad in [0, -1, 1001] {
            let mut v = valid();
            v["items"][0]["quantity"] = bad.into();
            assert_eq!(field_of(order(v)), "items[0].quantity", "{bad}");
        }
        let mut v = valid();
        v["items"][0]["quantity"] = 1000.into();
        order(v).unwrap();
        // A whole number is an integer however it is written, as JSON
        // Schema says; a fraction is not.
        let mut v = valid();
        v["items"][0]["quantity"] = serde_json::json!(2.0);
        order(v.clone()).unwrap();
        v["items"][0]["quantity"] = serde_json::json!(1.5);
        assert_eq!(field_of(order(v)), "items[0].quantity");
    }

    #[test]
    fn skus_that_cannot_exist_are_refused() {
        let mut v = valid();
        v["items"][0]["sku"] = "has space".into();
        assert_eq!(field_of(order(v.clone())), "items[0].sku");
        v["items"][0]["sku"] = "x".repeat(65).into();
        assert_eq!(field_of(order(v)), "items[0].sku");
    }

    #[test]
    fn card_needs_a_tok_token_and_pix_takes_none() {
        let mut v = valid();
        v["payment"] = serde_json::json!({"method": "card"});
        assert_eq!(field_of(order(v.clone())), "payment.token");
        v["payment"] = serde_json::json!({"method": "card", "token": "visa"});
        assert_eq!(field_of(order(v.clone())), "payment.token");
        v["payment"] = serde_json::json!({"method": "pix", "token": "tok_visa"});
        assert_eq!(field_of(order(v.clone())), "payment.token");
        // The document says pix takes no token: a null one is still one.
        v["payment"] = serde_json::json!({"method": "pix", "token": null});
        assert_eq!(field_of(order(v.clone())), "payment.token");
        v["payment"] = serde_json::json!({"method": "boleto"});
        assert_eq!(field_of(order(v)), "payment.method");
    }

    #[test]
    fn unknown_fields_are_refused_at_every_level() {
        let mut v = valid();
        v["items"][0]["unit_price_cents"] = 1.into();
        assert_eq!(field_of(order(v)), "items[0].unit_price_cents");
        let mut v = valid();
        v["coupon"] = "FREE".into();
        assert_eq!(field_of(order(v)), "coupon");
        let mut v = valid();
        v["payment"]["amount_cents"] = 1.into();
        assert_eq!(field_of(order(v)), "payment.amount_cents");
    }

    #[test]
    fn wrong_types_are_422_naming_the_field() {
        let mut v = valid();
        v["items"][0]["quantity"] = "2".into();
        assert_eq!(field_of(order(v)), "items[0].quantity");
        let mut v = valid();
        v.as_object_mut().unwrap().remove("customer_id");
        assert_eq!(field_of(order(v)), ".");
    }
}
