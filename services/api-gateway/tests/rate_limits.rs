//! Per-client rate limits in process (`oneshot` with the peer address the
//! server would give): the 429's shape and headers, one bucket per client,
//! the client behind trusted proxies, and limits per route.

use std::net::SocketAddr;
use std::time::Duration;

use api_gateway::limit::Limit;
use api_gateway::{Document, Gateway, RateLimits, RouteTable, app};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::routing::any;
use http_body_util::BodyExt;
use loja_runtime::server::PeerAddr;
use serde_json::Value;
use tower::ServiceExt;

/// An upstream answering 200 to everything.
async fn upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(any(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn limit(per_second: u32, burst: u32) -> Limit {
    Limit {
        per_second: per_second.try_into().unwrap(),
        burst: burst.try_into().unwrap(),
    }
}

/// Orders: 1/s in bursts of 2; products: 1/s in bursts of 5. 10.0.0.0/8 is
/// a trusted proxy.
async fn gateway() -> Router {
    let to = upstream().await;
    let routes = RouteTable::parse(
        "/api/v1/orders=pedidos,/api/v1/products=estoque",
        Duration::from_secs(2),
        |_| Ok(format!("http://{to}")),
    )
    .unwrap();
    let limits = RateLimits::new(
        [
            ("/api/v1/orders".to_owned(), limit(1, 2)),
            ("/api/v1/products".to_owned(), limit(1, 5)),
        ],
        vec!["10.0.0.0/8".parse().unwrap()],
    );
    let gateway = Gateway::new(routes, 64 * 1024, Document::new(&b"{}"[..])).with_limits(limits);
    app(gateway, loja_runtime::Readiness::new(None))
}

fn from(peer: &str, path: &str, xff: Option<&str>) -> Request<Body> {
    let mut req = Request::get(path);
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    let mut req = req.body(Body::empty()).unwrap();
    let addr: SocketAddr = format!("{peer}:40000").parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(PeerAddr(addr)));
    req
}

async fn status(app: &Router, req: Request<Body>) -> StatusCode {
    app.clone().oneshot(req).await.unwrap().status()
}

/// How many of `n` requests pass before the first 429.
async fn passed(app: &Router, n: usize, req: impl Fn() -> Request<Body>) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        match status(app, req()).await {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => break,
            other => panic!("unexpected {other}"),
        }
    }
    ok
}

#[tokio::test]
async fn over_the_limit_is_a_429_problem_with_retry_after_and_ratelimit_headers() {
    let app = gateway().await;
    let req = || from("198.51.100.7", "/api/v1/orders", None);
    assert_eq!(passed(&app, 2, req).await, 2);
    let response = app.clone().oneshot(req()).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert_eq!(headers["ratelimit-policy"], r#""/api/v1/orders";q=2;w=2"#);
    assert_eq!(headers["ratelimit"], r#""/api/v1/orders";r=0;t=1"#);
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(body["status"], 429);
}

#[tokio::test]
async fn each_client_has_its_own_bucket() {
    let app = gateway().await;
    assert_eq!(
        passed(&app, 3, || from("198.51.100.1", "/api/v1/orders", None)).await,
        2
    );
    assert_eq!(
        passed(&app, 3, || from("198.51.100.2", "/api/v1/orders", None)).await,
        2
    );
}

#[tokio::test]
async fn the_client_is_the_first_untrusted_hop_from_the_right() {
    let app = gateway().await;
    // Behind two trusted proxies: the client is 203.0.113.9, whatever it
    // claims further left.
    let behind = |spoof: &str| {
        let xff = format!("{spoof}, 203.0.113.9, 10.1.1.1");
        from("10.0.0.5", "/api/v1/orders", Some(&xff))
    };
    assert_eq!(status(&app, behind("1.1.1.1")).await, StatusCode::OK);
    assert_eq!(status(&app, behind("2.2.2.2")).await, StatusCode::OK);
    assert_eq!(
        status(&app, behind("3.3.3.3")).await,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged left hop does not make a new client"
    );
    // Another client behind the same proxy has its own bucket.
    let other = || from("10.0.0.5", "/api/v1/orders", Some("203.0.113.10"));
    assert_eq!(passed(&app, 3, other).await, 2);
    // An untrusted peer's X-Forwarded-For is not believed: it is the client.
    let untrusted = |xff: &'static str| from("198.51.100.50", "/api/v1/orders", Some(xff));
    assert_eq!(status(&app, untrusted("4.4.4.4")).await, StatusCode::OK);
    assert_eq!(status(&app, untrusted("5.5.5.5")).await, StatusCode::OK);
    assert_eq!(
        status(&app, untrusted("6.6.6.6")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn each_route_has_its_own_limit() {
    let app = gateway().await;
    let client = "198.51.100.77";
    assert_eq!(
        passed(&app, 10, || from(client, "/api/v1/orders", None)).await,
        2
    );
    // Reading the catalog is limited less strictly, and separately.
    assert_eq!(
        passed(&app, 10, || from(client, "/api/v1/products", None)).await,
        5
    );
}
