//! The request layers of `server::app`, exercised in-process with `oneshot`.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use loja_runtime::server::{self, with_body_limit};
use loja_runtime::{Json, Readiness};
use serde_json::Value;
use tower::ServiceExt;

fn routes() -> Router {
    Router::new()
        .route(
            "/api/v1/orders/{id}",
            get(|| async { Json(serde_json::json!({"ok": true})) }),
        )
        .route("/echo", post(|Json(v): Json<Value>| async move { Json(v) }))
        .route(
            "/raw",
            post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        )
}

fn app(service: &'static str) -> Router {
    server::app(service, routes(), Readiness::new(None))
}

async fn body_json(response: axum::response::Response) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

async fn metrics_text() -> String {
    let response = app("metrics-reader")
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn every_response_gets_a_generated_request_id() {
    let response = app("rid-gen")
        .oneshot(Request::get("/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let response = app("rid-gen")
        .oneshot(Request::get("/nope").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn the_clients_request_id_is_kept() {
    let response = app("rid-keep")
        .oneshot(
            Request::get("/health")
                .header("x-request-id", "client-abc-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-abc-123");
}

#[tokio::test]
async fn metrics_label_the_route_template_not_the_raw_path() {
    for id in ["1", "2", "3"] {
        let response = app("svc-template")
            .oneshot(
                Request::get(format!("/api/v1/orders/{id}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    app("svc-template")
        .oneshot(
            Request::get("/random/probe/123")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let text = metrics_text().await;
    assert!(
        text.contains(r#"http_requests_total{endpoint="/api/v1/orders/{id}",method="GET",service="svc-template",status="200"} 3"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{endpoint="unmatched",method="GET",service="svc-template",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_count{endpoint="/api/v1/orders/{id}",method="GET",service="svc-template"} 3"#),
        "{text}"
    );
    assert!(!text.contains("/random/probe"), "{text}");
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
}

#[tokio::test]
async fn a_declared_oversize_body_is_413_problem() {
    let app = with_body_limit(app("limit-declared"), 16);
    let response = app
        .oneshot(
            Request::post("/echo")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"a":"0123456789012345"}"#))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    assert_eq!(body_json(response).await["code"], "payload_too_large");
}

#[tokio::test]
async fn a_streamed_oversize_body_is_413_problem_for_json_and_raw_handlers() {
    for path in ["/echo", "/raw"] {
        // No content-length: the body is only found too large while reading it.
        let chunks: Vec<Result<_, std::io::Error>> = vec![
            Ok(axum::body::Bytes::from_static(b"{\"a\":\"")),
            Ok(axum::body::Bytes::from(vec![b'x'; 70 * 1024])),
            Ok(axum::body::Bytes::from_static(b"\"}")),
        ];
        let body = Body::from_stream(futures::stream::iter(chunks));
        let response = app("limit-streamed")
            .oneshot(
                Request::post(path)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(
            body_json(response).await["code"],
            "payload_too_large",
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_body_within_the_limit_is_served() {
    let response = app("limit-ok")
        .oneshot(
            Request::post("/echo")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"a":1}"#))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await["a"], 1);
}

#[tokio::test]
async fn readiness_turns_503_once_draining() {
    let readiness = Readiness::new(None);
    let app = server::app("drain-ready", routes(), readiness.clone());
    let ok = app
        .clone()
        .oneshot(Request::get("/ready").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    readiness.start_draining();
    let draining = app
        .clone()
        .oneshot(Request::get("/ready").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(draining.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body_json(draining).await["code"], "upstream_unavailable");
    let health = app
        .oneshot(Request::get("/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK, "liveness ignores draining");
}

#[tokio::test]
async fn unknown_method_is_405_problem() {
    let response = app("method")
        .oneshot(Request::delete("/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body_json(response).await["code"], "method_not_allowed");
}
