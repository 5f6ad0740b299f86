//! `GET /openapi.json`: the committed document, served by the gateway
//! itself (never forwarded), with an `ETag` that `If-None-Match` revalidates.

use std::time::Duration;

use api_gateway::{Document, Gateway, RouteTable, app};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use loja_runtime::Readiness;
use serde_json::Value;
use tower::ServiceExt;

/// The document `cargo xtask gen` renders, as the binary embeds it.
const DOCUMENT: &[u8] = include_bytes!("../../../generated/openapi.json");

/// A gateway whose routes lead nowhere: `/openapi.json` needs none of them.
fn gateway() -> Router {
    let routes = RouteTable::parse("/=pedidos", Duration::from_secs(1), |_| {
        Ok("http://127.0.0.1:9".to_owned())
    })
    .unwrap();
    app(
        Gateway::new(routes, 64 * 1024, Document::new(DOCUMENT)),
        Readiness::new(None),
    )
}

fn get(if_none_match: Option<&str>) -> Request<Body> {
    let mut req = Request::get("/openapi.json");
    if let Some(tag) = if_none_match {
        req = req.header(header::IF_NONE_MATCH, tag);
    }
    req.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_document_is_served_with_an_etag_even_where_a_route_covers_everything() {
    let response = gateway().oneshot(get(None)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(&etag, Document::new(DOCUMENT).etag());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], DOCUMENT);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/openapi.json"]["get"].is_object());
}

#[tokio::test]
async fn a_matching_if_none_match_is_answered_304_without_a_body() {
    let etag = Document::new(DOCUMENT).etag().to_str().unwrap().to_owned();
    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".into(),
    ] {
        let response = gateway().oneshot(get(Some(&tag))).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{tag}");
        assert_eq!(response.headers()[header::ETAG], etag.as_str());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(body.is_empty());
    }
    let response = gateway().oneshot(get(Some("\"other\""))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn other_methods_on_the_document_are_405_with_allow() {
    let req = Request::post("/openapi.json").body(Body::empty()).unwrap();
    let response = gateway().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        response.headers()[header::ALLOW]
            .to_str()
            .unwrap()
            .contains("GET")
    );
}
