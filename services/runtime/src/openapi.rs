//! The OpenAPI side of what every service shares: the RFC 9457 problem
//! schema, the problem responses handlers name in their `#[utoipa::path]`,
//! the admin bearer scheme, the `x-request-id` header on every answer, and
//! schema helpers that take their bounds from the very constants the
//! validation uses, so the document and the checks cannot disagree.
//!
//! A service registers its public routes through a
//! [`utoipa_axum::router::OpenApiRouter`]: the router it serves and the
//! paths it documents come from the same `routes!(...)` calls. Its
//! `openapi()` is [`document`] of that router.

use std::collections::BTreeMap;

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, Object, ObjectBuilder, SchemaFormat, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{InfoBuilder, OpenApi, Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::problem::{Code, PROBLEM_JSON, Problem};

/// The name of the admin bearer scheme in `components.securitySchemes`.
pub const ADMIN_SCHEME: &str = "adminToken";

/// The response header carrying the request id, on every answer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

impl PartialSchema for Problem {
    fn schema() -> RefOr<Schema> {
        let string = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        let integer = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .description(Some(description))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "An RFC 9457 problem (`application/problem+json`): every 4xx and 5xx body. \
                 `code` is stable and machine-readable; `detail` is for humans and never \
                 carries another service's answer, an internal address or a library's error. \
                 Extension members appear where they apply.",
            ))
            .property(
                "type",
                string("A URI reference naming the problem type: `/problems/<code, dashed>`."),
            )
            .required("type")
            .property("title", string("The status code's reason phrase."))
            .required("title")
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(400))
                    .maximum(Some(599))
                    .description(Some("The HTTP status code of the answer.")),
            )
            .required("status")
            .property("detail", string("What went wrong, for humans."))
            .required("detail")
            .property("code", Ref::from_schema_name(Code::name()))
            .required("code")
            .property(
                "field",
                string("`validation_failed`: the input that is wrong, such as `items[0].quantity` or `Idempotency-Key`."),
            )
            .property(
                "order_id",
                string("Order outcomes: the stored order; present only when an order was stored.")
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
            )
            .property("sku", string("`insufficient_stock`, `unknown_sku`: the sku at fault."))
            .property(
                "skus",
                ArrayBuilder::new()
                    .items(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some("`unknown_sku`: every unknown sku.")),
            )
            .property("requested", integer("`insufficient_stock`: units asked for."))
            .property("available", integer("`insufficient_stock`: units available."))
            .property(
                "decline_reason",
                string("`payment_declined`: `card_declined` or `insufficient_funds`."),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .examples([serde_json::json!({
                "type": "/problems/insufficient-stock",
                "title": "Conflict",
                "status": 409,
                "detail": "CAM-001: 3 requested, 1 available",
                "code": "insufficient_stock",
                "order_id": "01938f4e-7b7a-7c3e-9a51-4f0c2d8e6b1a",
                "sku": "CAM-001"
            })])
            .into()
    }
}

impl ToSchema for Problem {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Code::name().into_owned(), Code::schema()));
    }
}

/// A problem answer with this description.
pub fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(Problem::name())))
                .build(),
        )
        .build()
}

/// Declares reusable problem responses: a unit struct per answer that a
/// handler names as `(status = 400, response = Malformed)`, registered in
/// `components.responses` by [`document`].
macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident => $description:literal;)*) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), problem_response($description).into())
                }
            }
        )*

        /// Every shared problem response, by component name.
        pub fn problem_responses() -> BTreeMap<String, RefOr<Response>> {
            [$(<$name as utoipa::ToResponse>::response()),*]
                .into_iter()
                .map(|(name, response)| (name.to_owned(), response))
                .collect()
        }
    };
}

problem_responses! {
    /// 400: a body that is not JSON at all, or a head that breaks HTTP/1.1's `Host` rule.
    Malformed => "`validation_failed`: the body is not one JSON document, or an HTTP/1.1 request has no single valid `Host`.";
    /// 401: the admin token is missing or wrong.
    Unauthorized => "`unauthorized`: this operation needs `Authorization: Bearer <admin token>`.";
    /// 404: no such resource.
    NotFound => "`not_found`: no such resource.";
    /// 409: the request contradicts the resource's state.
    Conflict => "`conflict`: the request contradicts the resource's current state.";
    /// 413: the body is too large.
    PayloadTooLarge => "`payload_too_large`: the body is larger than the platform accepts (64 KiB).";
    /// 415: the body is not declared JSON, or is encoded.
    UnsupportedMediaType => "`unsupported_media_type`: the body must be sent as `application/json`, with no `Content-Encoding`.";
    /// 431: the request head is over the server's limit.
    HeadersTooLarge => "`headers_too_large`: the request line and header fields exceed the server's limit.";
    /// 422: well-formed input of the wrong shape or out of range.
    Invalid => "`validation_failed`: a missing or unknown field, a wrong type or a value out of range, named in `field`.";
    /// 503: a dependency is down, or the server is at its capacity.
    Unavailable => "`upstream_unavailable`: a service or database this request needs is down; or `overloaded`: the server is at its capacity (`Retry-After` says when to try again).";
    /// 504: a dependency did not answer in time.
    Timeout => "`upstream_timeout`: a service this request needs did not answer in time.";
}

/// An integer schema bounded by `min..=max`.
pub fn integer(min: i64, max: i64) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min))
        .maximum(Some(max))
        .build()
}

/// A string schema of `min..=max` characters matching `pattern` (an
/// ECMA-262 regular expression, anchored by the caller).
pub fn string(min: usize, max: usize, pattern: Option<&str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(pattern)
        .build()
}

/// The document of a service's public routes: `router`'s paths plus the
/// shared problem schema and responses, the admin scheme, and the
/// `x-request-id` header on every response.
pub fn document<S: Clone + Send + Sync + 'static>(
    service: &str,
    router: OpenApiRouter<S>,
) -> OpenApi {
    let mut api = router.into_openapi();
    api.info = InfoBuilder::new()
        .title(service)
        .version(env!("CARGO_PKG_VERSION"))
        .build();
    let mut components = api.components.take().unwrap_or_default();
    let mut schemas = Vec::new();
    <Problem as ToSchema>::schemas(&mut schemas);
    schemas.push((Problem::name().into_owned(), Problem::schema()));
    components.schemas.extend(schemas);
    components.responses.extend(problem_responses());
    components.security_schemes.insert(
        ADMIN_SCHEME.to_owned(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The admin token, a secret of the deployment (`ADMIN_TOKEN`).",
                ))
                .build(),
        )),
    );
    api.components = Some(components);
    with_request_id(&mut api);
    api
}

/// Every operation of a path item.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Adds the `x-request-id` header to every response of every operation:
/// the observe layer sets it on every answer.
fn with_request_id(api: &mut OpenApi) {
    let header = HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1)),
        ))
        .description(Some(
            "The request id: the client's `x-request-id` if it sent one, else a generated UUID.",
        ))
        .build();
    let header = RefOr::T(header);
    for item in api.paths.paths.values_mut() {
        for operation in operations_mut(item) {
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response
                        .headers
                        .insert(REQUEST_ID_HEADER.to_owned(), header.clone());
                }
            }
        }
    }
    if let Some(components) = api.components.as_mut() {
        for response in components.responses.values_mut() {
            if let RefOr::T(response) = response {
                response
                    .headers
                    .insert(REQUEST_ID_HEADER.to_owned(), header.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_problem_schema_lists_every_stable_code() {
        let code = serde_json::to_value(Code::schema()).unwrap();
        let listed: Vec<&str> = code["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let all: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, all);
        let problem = serde_json::to_value(Problem::schema()).unwrap();
        assert_eq!(
            problem["required"],
            serde_json::json!(["type", "title", "status", "detail", "code"])
        );
        assert_eq!(
            problem["properties"]["code"]["$ref"],
            "#/components/schemas/Code"
        );
    }

    #[test]
    fn a_documents_responses_all_carry_the_request_id() {
        let api = document::<()>("test", OpenApiRouter::new());
        let doc = serde_json::to_value(&api).unwrap();
        for name in problem_responses().into_keys() {
            let response = &doc["components"]["responses"][&name];
            assert!(response["headers"][REQUEST_ID_HEADER].is_object(), "{name}");
            assert_eq!(
                response["content"][PROBLEM_JSON]["schema"]["$ref"],
                "#/components/schemas/Problem"
            );
        }
        assert_eq!(
            doc["components"]["securitySchemes"][ADMIN_SCHEME]["scheme"],
            "bearer"
        );
    }
}
