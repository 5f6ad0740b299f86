//! `GET /openapi.json`: the OpenAPI 3.1 document of the public API, the file
//! `cargo xtask gen` renders into `generated/openapi.json` (the binary
//! embeds it), with an `ETag` so clients revalidate instead of downloading
//! it again. Also what the gateway itself adds to every route it forwards.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loja_runtime::openapi::{
    HeadersTooLarge, Malformed, PayloadTooLarge, Timeout, Unavailable, UnsupportedMediaType,
};
use sha2::{Digest, Sha256};
use utoipa::ToResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The document as served: its bytes and their entity tag.
#[derive(Debug, Clone)]
pub struct Document {
    body: Bytes,
    etag: HeaderValue,
}

impl Document {
    /// The document whose JSON text is `json`; its strong `ETag` is the
    /// start of the text's SHA-256, so it changes with every byte.
    pub fn new(json: impl Into<Bytes>) -> Self {
        let body = json.into();
        let digest = hex::encode(Sha256::digest(&body));
        let etag = HeaderValue::from_str(&format!("\"{}\"", &digest[..32]))
            .expect("hex digits are a valid header value");
        Document { body, etag }
    }

    /// The document's JSON text.
    pub fn json(&self) -> &[u8] {
        &self.body
    }

    /// The entity tag, quotes included.
    pub fn etag(&self) -> &HeaderValue {
        &self.etag
    }

    /// True when `If-None-Match` names this document's tag (or `*`),
    /// compared weakly as RFC 9110 section 13.1.2 asks.
    fn matches(&self, headers: &HeaderMap) -> bool {
        let ours = self.etag.as_bytes();
        headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours)
    }
}

/// The OpenAPI 3.1 document of every public route, as the gateway routes
/// them. Revalidate with `If-None-Match`: an unchanged document is a 304.
#[utoipa::path(get, path = "/openapi.json", tag = "gateway", operation_id = "openapi",
    params(("If-None-Match" = Option<String>, Header,
        description = "An `ETag` from an earlier answer: 304 while the document is unchanged.")),
    responses(
        (status = 200, description = "The document.", body = Object, content_type = "application/json",
            headers(("etag" = String, description = "The document's entity tag."))),
        (status = 304, description = "The document is unchanged.",
            headers(("etag" = String, description = "The document's entity tag."))),
    ))]
pub async fn serve(State(document): State<Document>, headers: HeaderMap) -> Response {
    let tags = [
        (header::ETAG, document.etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if document.matches(&headers) {
        return (StatusCode::NOT_MODIFIED, tags).into_response();
    }
    let json = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    )];
    (tags, json, document.body.clone()).into_response()
}

/// The gateway's own routes besides the probes.
pub fn router() -> OpenApiRouter<Document> {
    OpenApiRouter::new().routes(routes!(serve))
}

/// What the gateway itself may answer on a route it forwards, before or
/// instead of the owner: a body over the limit (413), a head over the limit
/// (431), an unreadable body or a broken `Host` rule (400), a non-JSON body on `POST`, `PUT` and `PATCH` (415), and an owner
/// that is down (503) or too slow (504). Status and the name of the shared
/// problem response in `components.responses`.
pub fn forwarded_answers(method: &str) -> Vec<(u16, &'static str)> {
    let name = |r: (&'static str, _)| r.0;
    let mut answers = vec![
        (400, name(Malformed::response())),
        (413, name(PayloadTooLarge::response())),
        (431, name(HeadersTooLarge::response())),
        (503, name(Unavailable::response())),
        (504, name(Timeout::response())),
    ];
    if matches!(method, "post" | "put" | "patch") {
        answers.push((415, name(UnsupportedMediaType::response())));
    }
    answers.sort();
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_if_none_match(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, value.parse().unwrap());
        h
    }

    #[test]
    fn the_etag_follows_the_bytes() {
        let a = Document::new(&b"{\"a\":1}"[..]);
        let b = Document::new(&b"{\"a\":2}"[..]);
        assert_ne!(a.etag(), b.etag());
        assert_eq!(a.etag(), Document::new(&b"{\"a\":1}"[..]).etag());
        assert!(a.etag().to_str().unwrap().starts_with('"'));
    }

    #[test]
    fn if_none_match_compares_weakly_and_in_lists() {
        let doc = Document::new(&b"{}"[..]);
        let tag = doc.etag().to_str().unwrap().to_owned();
        assert!(doc.matches(&with_if_none_match(&tag)));
        assert!(doc.matches(&with_if_none_match(&format!("W/{tag}"))));
        assert!(doc.matches(&with_if_none_match(&format!("\"x\", {tag}"))));
        assert!(doc.matches(&with_if_none_match("*")));
        assert!(!doc.matches(&with_if_none_match("\"x\"")));
        assert!(!doc.matches(&HeaderMap::new()));
    }
}
