//! The OpenAPI side of pedidos: the schemas of the order request, bounded by
//! the constants its validation uses, the 402 of a declined payment, and the
//! document of the orders routes.

use loja_runtime::openapi::{self as doc, problem_response};
use loja_runtime::page::MAX_LIMIT;
use loja_runtime::rules;
use utoipa::PartialSchema;
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, Type,
};
use utoipa::openapi::{OpenApi, RefOr, Schema};

use crate::model::{MAX_CUSTOMER_ID, MAX_ITEMS, MAX_QUANTITY, NewItem};

/// The OpenAPI document of pedidos' public routes, from the registration
/// [`crate::app`] serves.
pub fn openapi() -> OpenApi {
    let mut api = doc::document(crate::SERVICE, crate::orders::router());
    if let Some(components) = api.components.as_mut() {
        let (name, response) = <PaymentDeclined as utoipa::ToResponse>::response();
        components.responses.insert(name.to_owned(), response);
    }
    api
}

/// 402: the payment was declined; the order is stored as `payment_declined`.
pub struct PaymentDeclined;

impl<'r> utoipa::ToResponse<'r> for PaymentDeclined {
    fn response() -> (&'r str, RefOr<Response>) {
        (
            "PaymentDeclined",
            problem_response(
                "`payment_declined`: the card was declined (`decline_reason`); the order is \
                 stored as `payment_declined` and its stock released.",
            )
            .into(),
        )
    }
}

/// A page size: 1 to [`MAX_LIMIT`], or empty for the default.
pub fn limit_schema() -> RefOr<Schema> {
    AnyOfBuilder::new()
        .item(doc::integer(1, MAX_LIMIT))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(0)),
        )
        .into()
}

/// A cursor this API hands out: `<unix micros>.<order id, simple form>`, or
/// empty for the first page.
pub fn cursor_schema() -> Object {
    doc::string(0, 50, Some("^(?:-?[0-9]{1,16}\\.[0-9A-Fa-f]{32})?$"))
}

pub fn customer_id_schema() -> Object {
    doc::string(1, MAX_CUSTOMER_ID, Some(&rules::visible_text_pattern()))
}

pub fn sku_schema() -> Object {
    doc::string(1, rules::MAX_SKU_LEN, Some(rules::SKU_PATTERN))
}

pub fn quantity_schema() -> Object {
    doc::integer(1, MAX_QUANTITY)
}

pub fn items_schema() -> utoipa::openapi::schema::Array {
    ArrayBuilder::new()
        .items(NewItem::schema())
        .min_items(Some(1))
        .max_items(Some(MAX_ITEMS))
        .description(Some("1 to 100 lines, each sku at most once."))
        .build()
}

/// `card` with a token, or `pix` without one.
pub fn payment_schema() -> RefOr<Schema> {
    let method = |name: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([name]))
    };
    let card = ObjectBuilder::new()
        .schema_type(Type::Object)
        .title(Some("card"))
        .property("method", method("card"))
        .required("method")
        .property(
            "token",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(5))
                .max_length(Some(64))
                .pattern(Some(rules::CARD_TOKEN_PATTERN))
                .description(Some(
                    "A test card token: `tok_visa`, `tok_mastercard` or any other `tok_…` is \
                     approved; `tok_chargeDeclined` and `tok_insufficientFunds` are declined.",
                )),
        )
        .required("token")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    let pix = ObjectBuilder::new()
        .schema_type(Type::Object)
        .title(Some("pix"))
        .property("method", method("pix"))
        .required("method")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    OneOfBuilder::new()
        .item(card)
        .item(pix)
        .description(Some(
            "How the customer pays: a card with its token, or pix (no token).",
        ))
        .into()
}
