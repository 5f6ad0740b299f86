//! `Upstream` against real loopback servers: round-robin, failover on refused
//! connections and, for repeatable requests, on connections closed before an
//! answer; timeouts, unavailability and trace propagation.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use loja_runtime::config::LogFormat;
use loja_runtime::{Problem, Upstream, UpstreamError, telemetry};
use tokio::net::TcpListener;

/// Serves a replica that answers `GET /who` with `name` and echoes what it got.
async fn replica(name: &'static str) -> SocketAddr {
    let app = Router::new()
        .route("/who", get(move || async move { name }))
        .route(
            "/headers",
            get(|headers: HeaderMap| async move {
                headers
                    .get("traceparent")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default()
            }),
        )
        .route(
            "/internal/echo",
            post(|headers: HeaderMap, body: String| async move {
                format!("{}|{body}", headers["content-type"].to_str().unwrap())
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// An address where nothing listens: connecting to it is refused.
async fn refusing() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A replica that accepts connections, reads the request and closes without
/// answering, as a replica shutting down does to an idle keep-alive
/// connection. Counts the requests it swallowed.
async fn closing() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::AsyncReadExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    (addr, seen)
}

fn urls(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| format!("http://{a}"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn who(upstream: &Upstream) -> String {
    let response = upstream.get("/who").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    String::from_utf8(response.body().to_vec()).unwrap()
}

#[tokio::test]
async fn calls_alternate_between_replicas() {
    let (a, b) = (replica("a").await, replica("b").await);
    let upstream = Upstream::new("svc", &urls(&[a, b]), Duration::from_secs(5)).unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(who(&upstream).await);
    }
    seen.sort();
    assert_eq!(seen, ["a", "a", "b", "b"]);
}

#[tokio::test]
async fn a_refusing_replica_is_skipped() {
    let dead = refusing().await;
    let live = replica("live").await;
    let upstream = Upstream::new("svc", &urls(&[dead, live]), Duration::from_secs(5)).unwrap();
    for _ in 0..4 {
        assert_eq!(who(&upstream).await, "live");
    }
}

#[tokio::test]
async fn no_replica_accepting_is_unavailable_503() {
    let upstream = Upstream::new(
        "svc",
        &urls(&[refusing().await, refusing().await]),
        Duration::from_secs(5),
    )
    .unwrap();
    let err = upstream.get("/who").await.unwrap_err();
    assert!(matches!(err, UpstreamError::Unavailable { .. }), "{err}");
    let problem = Problem::from(err);
    assert_eq!(problem.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem.code, "upstream_unavailable");
}

#[tokio::test]
async fn a_slow_replica_is_a_timeout_504() {
    let upstream = Upstream::new(
        "svc",
        &urls(&[replica("slow").await]),
        Duration::from_millis(200),
    )
    .unwrap();
    let err = upstream.get("/slow").await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let problem = Problem::from(err);
    assert_eq!(problem.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(problem.code, "upstream_timeout");
}

#[tokio::test]
async fn post_json_sends_a_json_body() {
    let upstream =
        Upstream::new("svc", &urls(&[replica("j").await]), Duration::from_secs(5)).unwrap();
    let response = upstream
        .post_json("/internal/echo", &serde_json::json!({"order_id": "o-1"}))
        .await
        .unwrap();
    assert_eq!(
        std::str::from_utf8(response.body()).unwrap(),
        r#"application/json|{"order_id":"o-1"}"#
    );
}

#[tokio::test]
async fn calls_carry_the_current_trace() {
    let provider = telemetry::tracer_provider("caller", None).unwrap();
    let subscriber =
        telemetry::subscriber("caller", LogFormat::Text, "info", &provider, std::io::sink).unwrap();
    let _default = tracing::subscriber::set_default(subscriber);
    let upstream =
        Upstream::new("svc", &urls(&[replica("t").await]), Duration::from_secs(5)).unwrap();

    let span = tracing::info_span!("caller request");
    let (traceparent, trace_id) = {
        let _entered = span.enter();
        let trace_id = telemetry::current_trace_id().expect("a trace id");
        (upstream.get("/headers"), trace_id)
    };
    use tracing::Instrument;
    let response = traceparent.instrument(span).await.unwrap();
    let traceparent = std::str::from_utf8(response.body()).unwrap();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent:?}");
    assert_eq!(parts[1], trace_id);
}

#[tokio::test]
async fn a_connection_closed_before_an_answer_is_repeated_only_when_repeatable() {
    let (dead, swallowed) = closing().await;
    let live = replica("live").await;
    let upstream = Upstream::new("svc", &urls(&[dead, live]), Duration::from_secs(5)).unwrap();

    // GET is idempotent: every call lands on the live replica in the end.
    for _ in 0..4 {
        assert_eq!(who(&upstream).await, "live");
    }
    assert!(swallowed.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    // A POST with an Idempotency-Key is repeated too.
    let keyed = || {
        axum::http::Request::post("/internal/echo")
            .header("content-type", "application/json")
            .header("idempotency-key", "k-1")
            .body(axum::body::Bytes::from_static(b"{}"))
            .unwrap()
    };
    for _ in 0..2 {
        let response = upstream.send(keyed()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    // A plain POST may have been processed: it is not sent twice.
    let mut unavailable = 0;
    for _ in 0..2 {
        match upstream
            .post_json("/internal/echo", &serde_json::json!({}))
            .await
        {
            Ok(response) => assert_eq!(response.status(), StatusCode::OK),
            Err(UpstreamError::Unavailable { .. }) => unavailable += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        unavailable, 1,
        "exactly the call that went to the closing replica failed"
    );
}
