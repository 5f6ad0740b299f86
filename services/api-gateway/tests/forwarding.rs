//! The gateway in front of real upstreams on loopback: forwarding, header
//! handling, request ids, trace continuation, round-robin and failover.

use std::net::SocketAddr;
use std::time::Duration;

use api_gateway::{Document, Gateway, RouteTable};
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::routing::any;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use loja_runtime::config::{Drain, HttpLimits, LogFormat};
use loja_runtime::{Readiness, server, telemetry};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running server and the means to stop it.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(app: Router, readiness: Readiness) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(
            listener,
            app,
            readiness,
            async move {
                let _ = stopped.await;
            },
            Drain {
                delay: Duration::ZERO,
                timeout: Duration::from_secs(5),
            },
            HttpLimits::default(),
        ));
        Running {
            addr,
            stop: Some(stop),
            task,
        }
    }

    /// Stops accepting and waits until the server has exited.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

/// An upstream built on the runtime, answering every orders path with what it
/// received: method, path and query, headers, body, and its own name.
async fn replica(name: &'static str) -> Running {
    let echo = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| async move {
        let headers: serde_json::Map<String, Value> = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("?").into()))
            .collect();
        let body = json!({
            "replica": name,
            "method": method.as_str(),
            "uri": uri.to_string(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        });
        (
            StatusCode::CREATED,
            [("x-upstream", name), ("keep-alive", "timeout=5")],
            axum::Json(body),
        )
    };
    let routes = Router::new()
        .route("/api/v1/orders", any(echo))
        .route("/api/v1/orders/{*rest}", any(echo));
    let readiness = Readiness::new(None);
    Running::start(server::app("pedidos", routes, readiness.clone()), readiness).await
}

async fn gateway(replicas: &[&Running]) -> Running {
    let urls = replicas
        .iter()
        .map(|r| format!("http://{}", r.addr))
        .collect::<Vec<_>>()
        .join(",");
    let routes = RouteTable::parse("/api/v1/orders=pedidos", Duration::from_secs(5), |_| {
        Ok(urls.clone())
    })
    .unwrap();
    let readiness = Readiness::new(None);
    let app = api_gateway::app(
        Gateway::new(routes, 64 * 1024, Document::new(&b"{}"[..])),
        readiness.clone(),
    );
    Running::start(app, readiness).await
}

/// A plain client, so the tests control every header they send.
fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

async fn call(
    gw: &Running,
    req: axum::http::request::Builder,
    body: &'static str,
) -> (StatusCode, HeaderMap, Value) {
    let path = req.uri_ref().unwrap().path_and_query().unwrap().to_string();
    let req = req
        .uri(format!("http://{}{path}", gw.addr))
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let response = client().request(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Log lines nowhere, but an OpenTelemetry layer so spans have trace ids.
fn traced() -> tracing::subscriber::DefaultGuard {
    let provider = telemetry::tracer_provider("test", None).unwrap();
    let subscriber =
        telemetry::subscriber("test", LogFormat::Text, "info", &provider, std::io::sink).unwrap();
    tracing::subscriber::set_default(subscriber)
}

#[tokio::test]
async fn method_path_query_body_and_answer_cross_unchanged() {
    let _t = traced();
    let upstream = replica("a").await;
    let gw = gateway(&[&upstream]).await;
    let (status, headers, echo) = call(
        &gw,
        Request::post("/api/v1/orders/abc/cancel?x=1&y=%20z")
            .header("content-type", "application/json"),
        r#"{"k":"v"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["x-upstream"], "a");
    assert!(
        !headers.contains_key("keep-alive"),
        "hop-by-hop answer header"
    );
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["uri"], "/api/v1/orders/abc/cancel?x=1&y=%20z");
    assert_eq!(echo["body"], r#"{"k":"v"}"#);
    assert_eq!(echo["headers"]["content-type"], "application/json");
}

#[tokio::test]
async fn dot_segments_are_resolved_before_forwarding() {
    let _t = traced();
    let upstream = replica("a").await;
    let gw = gateway(&[&upstream]).await;
    let (status, _, echo) = call(&gw, Request::get("/api/v1/orders/x/%2e%2e/y"), "").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(echo["uri"], "/api/v1/orders/y");
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_and_forwarded_headers_set() {
    let _t = traced();
    let upstream = replica("a").await;
    let gw = gateway(&[&upstream]).await;
    let (_, _, echo) = call(
        &gw,
        Request::get("/api/v1/orders/1")
            .header("host", "shop.example")
            .header("connection", "keep-alive, x-hop-secret")
            .header("x-hop-secret", "1")
            .header("te", "trailers")
            .header("proxy-authorization", "Basic eDp5")
            .header("x-forwarded-for", "203.0.113.7")
            .header("authorization", "Bearer end-to-end"),
        "",
    )
    .await;
    let h = &echo["headers"];
    for hop in ["connection", "x-hop-secret", "te", "proxy-authorization"] {
        assert!(h.get(hop).is_none(), "{hop} crossed the gateway: {h}");
    }
    assert_eq!(h["authorization"], "Bearer end-to-end");
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "shop.example");
    assert_eq!(h["host"], upstream.addr.to_string());
}

#[tokio::test]
async fn the_request_id_is_forwarded_and_returned() {
    let _t = traced();
    let upstream = replica("a").await;
    let gw = gateway(&[&upstream]).await;
    let (_, headers, echo) = call(
        &gw,
        Request::get("/api/v1/orders/1").header("x-request-id", "req-42"),
        "",
    )
    .await;
    assert_eq!(headers["x-request-id"], "req-42");
    assert_eq!(echo["headers"]["x-request-id"], "req-42");

    let (_, headers, echo) = call(&gw, Request::get("/api/v1/orders/1"), "").await;
    let generated = headers["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36);
    assert_eq!(echo["headers"]["x-request-id"], generated);
}

fn trace_parts(traceparent: &Value) -> (String, String) {
    let parts: Vec<&str> = traceparent.as_str().unwrap().split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[1].len(), 32);
    (parts[1].to_owned(), parts[2].to_owned())
}

#[tokio::test]
async fn the_clients_trace_is_continued() {
    let _t = traced();
    let upstream = replica("a").await;
    let gw = gateway(&[&upstream]).await;
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let (_, _, echo) = call(
        &gw,
        Request::get("/api/v1/orders/1")
            .header("traceparent", format!("00-{client_trace}-{client_span}-01")),
        "",
    )
    .await;
    let (trace, parent) = trace_parts(&echo["headers"]["traceparent"]);
    assert_eq!(trace, client_trace);
    assert_ne!(parent, client_span, "the gateway's own span is the parent");
}

#[tokio::test]
async fn the_gateway_starts_a_trace_when_the_client_sent_none() {
    let _t = traced();
    let upstream = replica("a").await;
    let gw = gateway(&[&upstream]).await;
    let (_, _, first) = call(&gw, Request::get("/api/v1/orders/1"), "").await;
    let (_, _, second) = call(&gw, Request::get("/api/v1/orders/1"), "").await;
    let (t1, _) = trace_parts(&first["headers"]["traceparent"]);
    let (t2, _) = trace_parts(&second["headers"]["traceparent"]);
    assert_ne!(t1, "0".repeat(32));
    assert_ne!(t1, t2, "each request is its own trace");
}

#[tokio::test]
async fn requests_alternate_between_replicas_and_survive_one_dying() {
    let _t = traced();
    let (a, b) = (replica("a").await, replica("b").await);
    let gw = gateway(&[&a, &b]).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (status, _, echo) = call(&gw, Request::get("/api/v1/orders/1"), "").await;
        assert_eq!(status, StatusCode::CREATED);
        seen.push(echo["replica"].as_str().unwrap().to_owned());
    }
    seen.sort();
    assert_eq!(seen, ["a", "a", "b", "b"]);

    a.stop().await;
    for _ in 0..4 {
        let (status, _, echo) = call(&gw, Request::get("/api/v1/orders/1"), "").await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(echo["replica"], "b");
    }

    b.stop().await;
    let (status, _, problem) = call(&gw, Request::get("/api/v1/orders/1"), "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem["code"], "upstream_unavailable");
}
