//! Requests the gateway answers itself, in-process with `oneshot`: unknown
//! and internal paths, body limit, media type, unreachable upstreams.

use std::net::SocketAddr;
use std::time::Duration;

use api_gateway::{Document, Gateway, RouteTable, app};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use loja_runtime::Readiness;
use serde_json::Value;
use tower::ServiceExt;

/// The document the gateway embeds: its templates label the metrics.
const DOCUMENT: &[u8] = include_bytes!("../../../generated/openapi.json");

/// An address where nothing listens.
async fn refusing() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A gateway whose only route, `/api/v1/orders`, leads to `upstream`.
fn gateway(upstream: SocketAddr, timeout: Duration) -> Router {
    let routes = RouteTable::parse("/api/v1/orders=pedidos", timeout, |_| {
        Ok(format!("http://{upstream}"))
    })
    .unwrap();
    app(
        Gateway::new(routes, 64 * 1024, Document::new(DOCUMENT)),
        Readiness::new(None),
    )
}

async fn send(app: Router, req: Request<Body>) -> (StatusCode, Value) {
    let response = app.oneshot(req).await.unwrap();
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn metrics(app: Router) -> String {
    let response = app
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn count(metrics: &str, endpoint: &str, status: u16) -> u64 {
    let needle = format!(
        r#"http_requests_total{{endpoint="{endpoint}",method="POST",service="api-gateway",status="{status}"}} "#
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn unknown_paths_are_404_problems() {
    let app = gateway(refusing().await, Duration::from_secs(1));
    for path in ["/", "/api/v2/orders", "/api/v1/ordersx", "/api/v1"] {
        let (status, body) =
            send(app.clone(), Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["code"], "not_found", "{path}");
    }
}

#[tokio::test]
async fn internal_paths_are_never_forwarded_in_any_spelling() {
    // The upstream refuses connections: any forwarding attempt would be a 503.
    let app = gateway(refusing().await, Duration::from_secs(1));
    for path in [
        "/internal/reservations",
        "/api/v1/orders/../../../internal/reservations",
        "/api/v1/orders/%2e%2e/%2e%2e/%2e%2e/internal/reservations",
        "/api/v1/orders/%2E%2E/%2E%2E/.%2e/internal/payments",
        "/api/v1/orders/..%2F..%2F..%2Finternal%2Freservations",
        "/api/v1/orders/./../../../internal/reservations/x/commit",
        "//internal/reservations",
        "/%69nternal/reservations",
    ] {
        let (status, body) = send(
            app.clone(),
            Request::post(path)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["code"], "not_found", "{path}");
    }
}

#[tokio::test]
async fn an_oversize_body_is_413_counted_under_the_route() {
    let app = gateway(refusing().await, Duration::from_secs(1));
    let big = vec![b' '; 64 * 1024 + 1];
    let (status, body) = send(
        app.clone(),
        Request::post("/api/v1/orders")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(big.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "payload_too_large");

    // Streamed without content-length: found too large while reading.
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from(vec![b' '; 40 * 1024])),
        Ok(Bytes::from(vec![b' '; 40 * 1024])),
    ];
    let (status, body) = send(
        app.clone(),
        Request::post("/api/v1/orders")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(futures::stream::iter(chunks)))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "payload_too_large");
    assert_eq!(count(&metrics(app).await, "/api/v1/orders", 413), 2);
}

#[tokio::test]
async fn a_non_json_body_is_415_counted_under_the_route() {
    let app = gateway(refusing().await, Duration::from_secs(1));
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = Request::post("/api/v1/orders/1/cancel");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let (status, body) = send(app.clone(), req.body(Body::from("a=1")).unwrap()).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        assert_eq!(body["code"], "unsupported_media_type");
    }
    assert_eq!(
        count(&metrics(app).await, "/api/v1/orders/{id}/cancel", 415),
        3
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_503_counted_under_the_route() {
    let app = gateway(refusing().await, Duration::from_secs(1));
    // A bodiless POST needs no content type.
    let (status, body) = send(
        app.clone(),
        Request::post("/api/v1/orders/1/cancel")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "upstream_unavailable");
    assert_eq!(
        count(&metrics(app).await, "/api/v1/orders/{id}/cancel", 503),
        1
    );
}

#[tokio::test]
async fn a_slow_upstream_is_504() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let slow = Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    tokio::spawn(async move { axum::serve(listener, slow).await });
    let app = gateway(addr, Duration::from_millis(200));
    let (status, body) = send(
        app,
        Request::get("/api/v1/orders/1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["code"], "upstream_timeout");
}

#[tokio::test]
async fn the_gateway_is_ready_without_dependencies() {
    let app = gateway(refusing().await, Duration::from_secs(1));
    let (status, body) = send(
        app.clone(),
        Request::get("/ready").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["service"], "api-gateway");
    let (status, _) = send(app, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}
