//! Extractors whose rejections are problems, so a malformed request gets the
//! same `application/problem+json` answer as every other error.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::problem::{Code, Problem};

mod strict;

use strict::Strict;

/// A JSON body. Not JSON at all → 400; JSON of the wrong shape (missing or
/// unknown field, wrong type) → 422 naming the field; wrong content type → 415.
/// As a response it serializes `T` with `content-type: application/json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let RawJson(bytes) = RawJson::from_request(req, state).await?;
        parse(&bytes).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Parses a JSON document into `T`, classifying failures as API.md asks:
/// not one JSON document (a syntax error, or anything after it) → 400; an
/// object member that is missing, unknown, repeated, of the wrong type (an
/// array where an object belongs included) → 422 naming the field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(Strict(&mut de)).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let said = in_api_words(&inner.to_string());
                let detail = if path == "." {
                    said
                } else {
                    format!("{path}: {said}")
                };
                Problem::validation(detail).with("field", path)
            }
            _ => Problem::malformed(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    de.end().map_err(|_| {
        Problem::malformed("the body is not one JSON document: something follows it")
    })?;
    Ok(value)
}

/// serde's message with the names of this code's types (`expected struct
/// NewOrder`) replaced by what a client sees: a JSON object.
fn in_api_words(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("expected struct ") {
        out.push_str(&rest[..at]);
        out.push_str("expected an object");
        let name = &rest[at + "expected struct ".len()..];
        rest = &name[name
            .find(|c: char| !c.is_alphanumeric() && c != '_')
            .unwrap_or(name.len())..];
    }
    out.push_str(rest);
    out
}

/// For an optional member, as `#[serde(default, deserialize_with =
/// "loja_runtime::json::not_null")]`: absent is `None`, and `null` is
/// refused (422) like any other wrong type, so that the OpenAPI document can
/// describe the member as its type or absent, and mean it.
pub fn not_null<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(de).map(Some)
}

/// For an integer member, as `#[serde(deserialize_with =
/// "loja_runtime::json::integer")]`: any JSON number with no fractional part
/// (`180`, `180.0`, `1.8e2`), as JSON Schema's `integer` admits, within
/// `i64`; anything else is refused (422) like any other wrong type. Only
/// whole numbers pass, so no fraction ever reaches a money path.
pub fn integer<'de, D: Deserializer<'de>>(de: D) -> Result<i64, D::Error> {
    struct Whole;
    impl serde::de::Visitor<'_> for Whole {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("integer out of range"))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            // 2^63 is the first f64 beyond i64; every f64 this large is whole.
            if v.fract() == 0.0 && v.abs() < 9_223_372_036_854_775_808.0 {
                Ok(v as i64)
            } else {
                Err(E::invalid_type(serde::de::Unexpected::Float(v), &self))
            }
        }
    }
    de.deserialize_any(Whole)
}

/// [`integer`] for an optional member that may be absent but not null, as
/// [`not_null`] says.
pub fn integer_not_null<'de, D: Deserializer<'de>>(de: D) -> Result<Option<i64>, D::Error> {
    integer(de).map(Some)
}

/// True when the request declares a JSON media type (`application/json` or
/// any `+json` suffix), parameters such as `charset` allowed.
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json")
}

/// True when the body declares a content coding (gzip, say) other than
/// `identity`: this API reads only plain JSON.
fn is_encoded(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONTENT_ENCODING).iter().any(|v| {
        v.to_str().map_or(true, |v| {
            v.split(',')
                .any(|c| !c.trim().is_empty() && !c.trim().eq_ignore_ascii_case("identity"))
        })
    })
}

/// 415 `unsupported_media_type`.
pub fn unsupported_media_type() -> Problem {
    Problem::new(
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Code::UnsupportedMediaType,
        "the body must be JSON, sent with `content-type: application/json`",
    )
}

/// 413 `payload_too_large`.
pub fn payload_too_large() -> Problem {
    Problem::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        Code::PayloadTooLarge,
        "the body is larger than this service accepts",
    )
}

/// Query-string parameters; a bad or unknown parameter → 422 naming it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs = form_urlencoded::parse(query.as_bytes());
        // No parameter of this API holds a control character; none reaches
        // a handler (or a database, which refuses a NUL).
        if let Some((name, _)) = pairs
            .clone()
            .find(|(k, v)| k.chars().chain(v.chars()).any(char::is_control))
        {
            let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
            return Err(Problem::validation(format!(
                "query: parameter `{name}` holds a control character"
            ))
            .with("field", name));
        }
        let de = serde_urlencoded::Deserializer::new(pairs);
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|err| Problem::validation(format!("query: {err}")))
    }
}

/// Path parameters. A segment that is not UTF-8 once decoded, or holds a
/// control character, names no resource: 404, as a problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let nothing = || Problem::not_found("no resource has this name");
        let raw = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| nothing())?;
        if raw.iter().any(|(_, v)| v.chars().any(char::is_control)) {
            return Err(nothing());
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Path(v))
            .map_err(|_| nothing())
    }
}

/// The body of a request declared as JSON (else 415), read within the body
/// limit (else 413), for a handler that needs the bytes as well as what
/// [`parse`] makes of them.
#[derive(Debug, Clone)]
pub struct RawJson(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawJson {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(unsupported_media_type());
        }
        if is_encoded(req.headers()) {
            return Err(Problem::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::UnsupportedMediaType,
                "the body must be sent as is: no Content-Encoding is accepted",
            ));
        }
        Bytes::from_request(req, state)
            .await
            .map(RawJson)
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    payload_too_large()
                } else {
                    Problem::malformed("the body could not be read")
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        sku: String,
        quantity: i64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Item>,
    }

    #[test]
    fn anything_after_the_document_is_400() {
        for body in [
            &br#"{"items":[]} xyz"#[..],
            br#"{"items":[]}{}"#,
            br#"{"items":[]}]"#,
        ] {
            let err = parse::<Order>(body).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{err}");
        }
        // Whitespace after it is no second document.
        assert!(parse::<Order>(b"{\"items\":[]} \n").is_ok());
    }

    #[test]
    fn an_array_in_place_of_an_object_is_422_at_any_depth() {
        let err = parse::<Order>(br#"[[["A",1]]]"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        let err = parse::<Order>(br#"{"items":[["A",1]]}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert_eq!(err.extra["field"], "items[0]");
        assert!(!err.detail.contains("Item"), "{err}");
        assert!(err.detail.contains("expected an object"), "{err}");
    }

    #[test]
    fn a_repeated_member_is_422_naming_it() {
        let err = parse::<Order>(br#"{"items":[],"items":[]}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
        assert!(err.detail.contains("duplicate field `items`"), "{err}");
        let body = br#"{"items":[{"sku":"A","sku":"B","quantity":1}]}"#;
        let err = parse::<Order>(body).unwrap_err();
        assert!(err.detail.contains("duplicate field `sku`"), "{err}");
    }

    #[test]
    fn not_json_is_400() {
        let err = parse::<Order>(b"{nope").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code, "validation_failed");
    }

    #[test]
    fn unknown_nested_field_is_422_naming_it() {
        let body = br#"{"items":[{"sku":"A","quantity":1,"price_cents":1}]}"#;
        let err = parse::<Order>(body).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err.detail.contains("items[0]"), "{}", err.detail);
        assert!(err.detail.contains("price_cents"), "{}", err.detail);
    }

    #[test]
    fn wrong_type_is_422_naming_the_field() {
        let err = parse::<Order>(br#"{"items":[{"sku":"A","quantity":"2"}]}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err.detail.contains("items[0].quantity"), "{}", err.detail);
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Patch {
        #[serde(default, deserialize_with = "not_null")]
        name: Option<String>,
    }

    #[test]
    fn an_optional_member_may_be_absent_but_not_null() {
        assert_eq!(parse::<Patch>(b"{}").unwrap().name, None);
        assert_eq!(
            parse::<Patch>(br#"{"name":"a"}"#).unwrap().name.as_deref(),
            Some("a")
        );
        let err = parse::<Patch>(br#"{"name":null}"#).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err.detail.contains("name"), "{}", err.detail);
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Count {
        #[serde(deserialize_with = "integer")]
        n: i64,
    }

    #[test]
    fn an_integer_is_any_whole_number_and_nothing_else() {
        for (body, n) in [
            (r#"{"n":180}"#, 180),
            (r#"{"n":180.0}"#, 180),
            (r#"{"n":-2e2}"#, -200),
        ] {
            assert_eq!(parse::<Count>(body.as_bytes()).unwrap().n, n, "{body}");
        }
        for body in [
            r#"{"n":1.5}"#,
            r#"{"n":"1"}"#,
            r#"{"n":1e19}"#,
            r#"{"n":null}"#,
            r#"{"n":true}"#,
        ] {
            let err = parse::<Count>(body.as_bytes()).unwrap_err();
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert!(err.detail.contains('n'), "{body}: {}", err.detail);
        }
    }

    #[test]
    fn json_media_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&h));
    }
}
